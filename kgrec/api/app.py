"""The FastAPI application: health and readiness for now; recommendation routes come with write-back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from kgrec import __version__
from kgrec.config import Settings, get_settings
from kgrec.db import Graph
from kgrec.errors import KgrecError


def get_graph(request: Request) -> Graph:
    return request.app.state.graph


GraphDep = Annotated[Graph, Depends(get_graph)]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the Neo4j driver opens in the lifespan (not at import) and may start unreachable."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.graph = Graph.connect(settings, verify=False)
        try:
            yield
        finally:
            app.state.graph.close()

    app = FastAPI(title="kgrec", version=__version__, lifespan=lifespan)

    @app.get("/health", tags=["ops"])
    def read_health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"], responses={503: {"description": "Neo4j is unreachable"}})
    def read_ready(graph: GraphDep) -> JSONResponse:
        """Readiness: Neo4j answers with the configured credentials."""
        try:
            graph.ping()
        except KgrecError as e:
            return JSONResponse(status_code=503, content={"status": "unavailable", "detail": str(e)})
        return JSONResponse(content={"status": "ready", "database": graph.database})

    return app
