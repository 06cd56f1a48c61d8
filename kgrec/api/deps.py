"""Shared dependencies of the routes: the graph, settings, the active run, known users and items, the API
key, the caches and the models. Everything lives on ``app.state`` (set up in the lifespan).

Those that only look up ``app.state`` are ``async def``: FastAPI runs a plain ``def`` dependency in its
threadpool, a hop that costs more than the lookup. Those that query Neo4j stay ``def``."""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from kgrec.api.catalog import ItemEmbedder
from kgrec.api.errors import NoActiveRun
from kgrec.api.serving import ActiveRun, ItemMatrixCache, PopularCache, read_active_run
from kgrec.config import Settings
from kgrec.db import Graph
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.vocabulary import Label
from kgrec.model.text import TextEncoder

log = logging.getLogger(__name__)


async def get_graph(request: Request) -> Graph:
    return request.app.state.graph


GraphDep = Annotated[Graph, Depends(get_graph)]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_optional_run(graph: GraphDep) -> ActiveRun | None:
    """The active run, read for every request (cheap: an index seek), or ``None``."""
    return read_active_run(graph)


OptionalRunDep = Annotated[ActiveRun | None, Depends(get_optional_run)]


def get_active_run(run: OptionalRunDep) -> ActiveRun:
    if run is None:
        raise NoActiveRun()
    return run


ActiveRunDep = Annotated[ActiveRun, Depends(get_active_run)]


def get_known_user(user_id: str, graph: GraphDep) -> str:
    if not graph.read(q.existing_ids(Label.USER), ids=[user_id]):
        raise HTTPException(status_code=404, detail=f"unknown user {user_id!r}")
    return user_id


KnownUserDep = Annotated[str, Depends(get_known_user)]


def get_known_item(item_id: str, graph: GraphDep) -> str:
    if not graph.read(q.existing_ids(Label.ITEM), ids=[item_id]):
        raise HTTPException(status_code=404, detail=f"unknown item {item_id!r}")
    return item_id


KnownItemDep = Annotated[str, Depends(get_known_item)]

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="KGREC_API_KEY; write endpoints only")


async def require_api_key(settings: SettingsDep, key: Annotated[str | None, Security(api_key_header)] = None) -> None:
    """Write endpoints need ``X-API-Key: $KGREC_API_KEY`` (compared in constant time)."""
    expected = settings.api_key  # ConfigError (500) when unset outside development
    if key is None or not secrets.compare_digest(key.encode(), expected.encode()):
        raise HTTPException(status_code=401, detail="missing or wrong X-API-Key")


ApiKeyDep = Depends(require_api_key)


async def get_item_matrices(request: Request) -> ItemMatrixCache:
    return request.app.state.item_matrices


ItemMatricesDep = Annotated[ItemMatrixCache, Depends(get_item_matrices)]


async def get_popular(request: Request) -> PopularCache:
    return request.app.state.popular


PopularDep = Annotated[PopularCache, Depends(get_popular)]


async def get_text_encoder(request: Request) -> TextEncoder:
    """The app's encoder (``KGREC_TEXT_MODEL``, cached under the data dir); the model loads on first use."""
    return request.app.state.text_encoder


TextEncoderDep = Annotated[TextEncoder, Depends(get_text_encoder)]

_embedder_lock = threading.Lock()


def get_item_embedder(request: Request, run: OptionalRunDep) -> ItemEmbedder | None:
    """The active run's embedder of new items (``ItemEmbedder.load(run.checkpoint)``), loaded once per
    checkpoint; ``None`` without an active run, when the run has no checkpoint, or when loading fails
    (logged: new items are then created without a model vector, and the response says so)."""
    if run is None or not run.checkpoint:
        return None
    state: dict[str, Any] = request.app.state.item_embedders
    with _embedder_lock:
        if run.checkpoint not in state:
            try:
                from kgrec.model.inductive import ItemEmbedder as InductiveEmbedder  # torch: only when needed

                embedder = InductiveEmbedder.load(run.checkpoint)
            except Exception:  # a missing module or checkpoint must not stop items from being created
                log.exception("cannot load the item embedder of run %r from %s", run.id, run.checkpoint)
                return None
            state.clear()  # one run is served at a time
            state[run.checkpoint] = embedder
        return state[run.checkpoint]


ItemEmbedderDep = Annotated[ItemEmbedder | None, Depends(get_item_embedder)]
