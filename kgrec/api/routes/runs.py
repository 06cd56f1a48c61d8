"""Model runs."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter

from kgrec.api.deps import GraphDep
from kgrec.api.schemas import Run
from kgrec.graph_schema import queries as q

router = APIRouter(prefix="/runs", tags=["runs"])


@router.get("")
def read_runs(graph: GraphDep) -> list[Run]:
    """Every ModelRun, newest first, with its params, metrics and counts parsed from JSON."""
    rows = graph.read(q.API_LIST_RUNS)
    return [
        Run(
            **{
                **row,
                **{key: _json_object(row[key]) for key in ("params", "metrics", "counts")},
                "active": bool(row["active"]),
                "top_k": None if row["top_k"] is None else int(row["top_k"]),
            }
        )
        for row in rows
    ]


def _json_object(text: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
