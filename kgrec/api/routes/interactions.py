"""Recording interactions."""

from __future__ import annotations

from fastapi import APIRouter

from kgrec.api import catalog
from kgrec.api.deps import ApiKeyDep, GraphDep
from kgrec.api.schemas import InteractionCreated, NewInteraction

router = APIRouter(prefix="/interactions", tags=["interactions"], dependencies=[ApiKeyDep])


@router.post(
    "",
    status_code=201,
    responses={
        401: {"description": "missing or wrong X-API-Key"},
        404: {"description": "unknown item"},
        409: {"description": "the event_id is recorded for another user or item"},
    },
)
def create_interaction(body: NewInteraction, graph: GraphDep) -> InteractionCreated:
    """Record that a user interacted with an item (the user is created if new). Idempotent on ``event_id``:
    posting the same event again answers ``created: false`` and changes nothing. The user's next
    recommendations are computed on the fly, taking it into account."""
    return InteractionCreated(created=catalog.record_interaction(graph, body))
