"""A user's recommendations and their explanations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from kgrec.api import serving
from kgrec.api.deps import ActiveRunDep, GraphDep, ItemMatricesDep, KnownItemDep, KnownUserDep, PopularDep
from kgrec.api.schemas import (
    EntityPaths,
    Explanation,
    LiveExplanation,
    RecommendationList,
    RecommendedItem,
    SocialPaths,
    StoredExplanation,
)

router = APIRouter(prefix="/users", tags=["users"])

NOT_SERVED = {
    404: {"description": "unknown user, item or entity"},
    503: {"description": "no active run, or Neo4j is unreachable"},
}


@router.get("/{user_id}/recommendations", responses=NOT_SERVED)
async def read_recommendations(
    user_id: str,
    graph: GraphDep,
    matrices: ItemMatricesDep,
    popular: PopularDep,
    k: Annotated[int, Query(ge=1, le=100, description="how many items")] = 10,
    exclude_seen: Annotated[bool, Query(description="drop items the user interacted with, ever")] = True,
    entity: Annotated[str | None, Query(description="keep only items related to this entity id")] = None,
) -> RecommendationList:
    """The user's top ``k`` from the active run: its stored list, scores computed now from the stored
    embeddings when the user interacted since the run was activated (or has no list), or popular items
    when there is nothing to score from."""
    # one blocking call in the threadpool; the user and the run are checked by the same query as the list
    result = await run_in_threadpool(
        serving.recommend, graph, user_id, k=k, exclude_seen=exclude_seen, entity=entity, matrices=matrices, popular=popular
    )
    items = [
        RecommendedItem(item_id=s.item_id, title=s.title, score=s.score, rank=n) for n, s in enumerate(result.items, 1)
    ]
    return RecommendationList(user_id=user_id, run_id=result.run_id, source=result.source, items=items)


@router.get("/{user_id}/recommendations/{item_id}/explanation", responses=NOT_SERVED)
def read_explanation(
    user_id: KnownUserDep, item_id: KnownItemDep, run: ActiveRunDep, graph: GraphDep, matrices: ItemMatricesDep
) -> Explanation:
    """Why the item is recommended: the explanation the active run stored (if it did) and the paths in the
    graph now: items the user interacted with that share an entity with it, and followed users who
    interacted with it (the first 5 of each, all counted)."""
    result = serving.explain(graph, run, user_id, item_id, matrices)
    return Explanation(
        user_id=user_id,
        item_id=item_id,
        run_id=run.id,
        source=result.source,
        score=result.score,
        rank=result.rank,
        stored=None if result.stored is None else StoredExplanation.model_validate(result.stored),
        live=LiveExplanation(entity=EntityPaths(**result.entity), social=SocialPaths(**result.social)),
    )
