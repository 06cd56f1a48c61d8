"""Items: similar items, and adding an item to the catalogue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from kgrec.api import catalog, serving
from kgrec.api.deps import (
    ApiKeyDep,
    GraphDep,
    ItemEmbedderDep,
    ItemMatricesDep,
    OptionalRunDep,
    TextEncoderDep,
)
from kgrec.api.schemas import ItemCreated, NewItem, SimilarItem, SimilarItems

router = APIRouter(prefix="/items", tags=["items"])


@router.get("/{item_id}/similar", responses={404: {"description": "unknown item"}})
async def read_similar_items(
    item_id: str,
    graph: GraphDep,
    k: Annotated[int, Query(ge=1, le=100, description="how many items")] = 10,
) -> SimilarItems:
    """The nearest items by the active run's item embeddings (vector index), or by text embeddings when the
    run did not embed this item (or no run is active)."""
    run, source, items = await run_in_threadpool(serving.similar_items, graph, item_id, k)  # one query
    return SimilarItems(
        item_id=item_id,
        run_id=run.id if source == "model" and run is not None else None,
        source=source,
        items=[SimilarItem(item_id=s.item_id, title=s.title, score=s.score) for s in items],
    )


@router.post(
    "",
    status_code=201,
    dependencies=[ApiKeyDep],
    responses={401: {"description": "missing or wrong X-API-Key"}, 409: {"description": "the item exists"}},
)
def create_item(
    body: NewItem,
    graph: GraphDep,
    run: OptionalRunDep,
    encoder: TextEncoderDep,
    embedder: ItemEmbedderDep,
    matrices: ItemMatricesDep,
) -> ItemCreated:
    """Create an item and its knowledge links in one transaction, encode its text, and — when the active run
    has a checkpoint — embed it into the run's slot, so that it is similar-searchable and recommendable at
    once."""
    added = catalog.add_item(graph, body, encoder, run, embedder)
    if added.model_embedding:
        matrices.invalidate()
    return ItemCreated(
        item_id=body.id,
        links=added.links,
        text_embedding=added.text_embedding,
        model_embedding=added.model_embedding,
        run_id=run.id if added.model_embedding and run is not None else None,
    )
