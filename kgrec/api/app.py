"""The FastAPI application: recommendations, explanations, similar items, writes, runs, health.

Errors are JSON ``{"detail": ...}`` throughout: the services' errors (:mod:`kgrec.api.errors`) and the
gateway's become status codes here — 404 unknown, 409 conflict, 422 invalid, 503 when Neo4j is unreachable
or no run is active. The Neo4j driver opens in the lifespan (the server may be down then) and reconnects
by itself when Neo4j comes back.
"""

from __future__ import annotations

import gc
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from kgrec import __version__
from kgrec.api.errors import Conflict, InvalidReference, NoActiveRun, NotFound
from kgrec.api.routes import interactions, items, ops, runs, users
from kgrec.api.serving import ItemMatrixCache, PopularCache
from kgrec.config import Settings, get_settings
from kgrec.db import Graph
from kgrec.errors import KgrecError, Neo4jAuthError, Neo4jUnavailable
from kgrec.model.text import TextEncoder

log = logging.getLogger(__name__)

STATUS = {NotFound: 404, Conflict: 409, NoActiveRun: 503, Neo4jUnavailable: 503, Neo4jAuthError: 503, KgrecError: 500}


def create_app(
    settings: Settings | None = None, *, neo4j_retry_seconds: float = 2.0, popular_ttl: float = 300.0
) -> FastAPI:
    """Build the app; the Neo4j driver opens in the lifespan (not at import) and may start unreachable.

    Args:
        settings: defaults to the process settings (environment and ``.env``).
        neo4j_retry_seconds: how long a query retries while Neo4j is unreachable before the request gets 503.
        popular_ttl: seconds the popular-items list is cached.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.graph = Graph.connect(settings, verify=False, max_retry_seconds=neo4j_retry_seconds)
        app.state.item_matrices = ItemMatrixCache()
        app.state.popular = PopularCache(ttl=popular_ttl)
        app.state.text_encoder = TextEncoder(settings.text_model, settings.data_dir / "text_cache")
        app.state.item_embedders = {}
        # What startup made (the imported modules, the app, the driver: some 120,000 objects) lives as long
        # as the server: frozen, the garbage collector no longer walks it in every full collection, a pause
        # of tens of ms for all the requests in flight (most of the API's p99 at 16 clients in
        # benchmarks/serving.py). Unfrozen when the app stops (several apps may start in one process: tests).
        gc.freeze()
        try:
            yield
        finally:
            app.state.graph.close()
            gc.unfreeze()

    app = FastAPI(title="kgrec", version=__version__, lifespan=lifespan)
    for router in (ops.router, users.router, items.router, interactions.router, runs.router):
        app.include_router(router)
    for error in STATUS:
        app.add_exception_handler(error, _kgrec_error)
    app.add_exception_handler(InvalidReference, _invalid_reference)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _unexpected_error)
    return app


async def _kgrec_error(request: Request, exc: Exception) -> JSONResponse:
    status = next(code for error, code in STATUS.items() if isinstance(exc, error))
    if status == 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
    return JSONResponse(status_code=status, content={"detail": str(exc)})


async def _invalid_reference(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidReference)
    detail = [{"loc": list(loc), "msg": msg, "type": "value_error"} for loc, msg in exc.problems]
    return JSONResponse(status_code=422, content={"detail": detail})


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 body, with the non-finite numbers it echoes (``1e999``, ``NaN`` in a JSON body) as their
    repr strings: JSON has no such numbers, and FastAPI's own handler fails on them (a 500)."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": _json_safe(jsonable_encoder(exc.errors()))})


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(status_code=500, content={"detail": "internal server error"})
