"""Model runs."""

from __future__ import annotations

import json
from datetime import timezone
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
                **{key: iso_utc(row[key]) for key in ("created_at", "activated_at")},
                "active": bool(row["active"]),
                "top_k": None if row["top_k"] is None else int(row["top_k"]),
            }
        )
        for row in rows
    ]


def iso_utc(value: Any) -> str | None:
    """A Neo4j DATE TIME as ISO 8601 in UTC with microseconds always written (``2026-11-28T14:32:01.800000Z``),
    so that times sort as text; Cypher's toString drops trailing zeros (``...01.8Z`` sorts after ``...01.859Z``)."""
    if value is None:
        return None
    native = value.to_native() if hasattr(value, "to_native") else value
    return native.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _json_object(text: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
