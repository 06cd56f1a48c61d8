"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from kgrec.api.deps import GraphDep
from kgrec.api.schemas import Health, Ready
from kgrec.api.serving import read_active_run
from kgrec.errors import KgrecError

router = APIRouter(tags=["ops"])


@router.get("/health")
def read_health() -> Health:
    """Liveness: the process answers (Neo4j is not asked)."""
    return Health(status="ok")


@router.get(
    "/ready", response_model=Ready, responses={503: {"description": "Neo4j is unreachable, or no model run is active"}}
)
def read_ready(graph: GraphDep) -> Ready | JSONResponse:
    """Readiness: Neo4j answers with the configured credentials and a model run is active."""
    try:
        graph.ping()
        run = read_active_run(graph)
    except KgrecError as e:
        return JSONResponse(status_code=503, content={"status": "unavailable", "detail": str(e)})
    if run is None:
        return JSONResponse(
            status_code=503, content={"status": "no_active_run", "detail": "Neo4j answers, but no model run is active"}
        )
    return Ready(status="ready", database=graph.database, run_id=run.id)
