"""Writing through the API: interactions (idempotent on ``event_id``) and new items with their knowledge
links, text vector and — when the active run can embed new items — model vector. No HTTP here: errors are
:mod:`kgrec.api.errors`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timezone
from typing import Protocol

import numpy as np
from neo4j.exceptions import ConstraintError

from kgrec.api.errors import Conflict, InvalidReference, NotFound
from kgrec.api.schemas import NewInteraction, NewItem
from kgrec.api.serving import ActiveRun
from kgrec.db import Graph
from kgrec.errors import KgrecError
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.vocabulary import Label
from kgrec.model.text import TextEncoder, text_hash
from kgrec.model.text_graph import item_text

log = logging.getLogger(__name__)


class ItemEmbedder(Protocol):
    """What :class:`kgrec.model.inductive.ItemEmbedder` offers the API."""

    def embed(self, text_vectors: np.ndarray, links: list[list[tuple[str, str]]]) -> np.ndarray: ...


def record_interaction(graph: Graph, event: NewInteraction) -> bool:
    """Write the interaction unless its ``event_id`` is recorded already; return whether it was written.

    Raises:
        NotFound: the item does not exist (nothing is written, not even the user).
        Conflict: the ``event_id`` is recorded for another user or item.
    """
    ts = event.ts
    if ts is not None and ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    params = {
        "event_id": event.event_id,
        "user": event.user_id,
        "item": event.item_id,
        "kind": event.kind,
        "weight": event.weight,
        "rating": event.rating,
        "ts_ms": None if ts is None else round(ts.timestamp() * 1000),
    }
    try:
        rows, counters = graph.write_returning(q.API_RECORD_INTERACTION, **params)
    except ConstraintError:  # the unique event_id (migration 5): another user/item, or a concurrent twin
        recorded = graph.read(q.API_INTERACTION_BY_EVENT, event_id=event.event_id)
        if recorded and recorded[0] == {"user_id": event.user_id, "item_id": event.item_id}:
            return False
        raise Conflict(f"event_id {event.event_id!r} is recorded for another user or item") from None
    if not rows:
        raise NotFound(f"unknown item {event.item_id!r}")
    return counters["relationships_created"] > 0


@dataclass(frozen=True)
class AddedItem:
    links: int
    text_embedding: bool
    model_embedding: bool


def add_item(
    graph: Graph,
    item: NewItem,
    encoder: TextEncoder,
    run: ActiveRun | None,
    embedder: ItemEmbedder | None,
) -> AddedItem:
    """Create the item and its links in one transaction, then encode its text and, with an embedder for the
    active run, write its model vector into the run's slot.

    The item exists once the first step commits: a failure in the later steps is logged and reported in
    the result (``text_embedding``/``model_embedding`` false), not raised.

    Raises:
        InvalidReference: a link names an unknown entity or an unregistered relation.
        Conflict: an item with this id exists.
    """
    links = create_item(graph, item)
    try:
        text_vectors = encode_item_text(graph, encoder, item)  # (1, t)
    except Exception:  # the item is created; its vector can be made later by `kgrec encode`
        log.exception("item %r was created, but encoding its text failed", item.id)
        return AddedItem(links, text_embedding=False, model_embedding=False)
    if run is None or embedder is None:
        return AddedItem(links, text_embedding=True, model_embedding=False)
    try:
        embed_item(graph, run, embedder, item, text_vectors)
    except Exception:  # the item is created and text-searchable; the model embeds it at its next run
        log.exception("item %r was created, but embedding it with run %r failed", item.id, run.id)
        return AddedItem(links, text_embedding=True, model_embedding=False)
    return AddedItem(links, text_embedding=True, model_embedding=True)


def create_item(graph: Graph, item: NewItem) -> int:
    """Check the links' entities and relations, then create the item and its links; return the link count."""
    entity_ids = sorted({link.entity_id for link in item.links})
    relation_names = sorted({link.relation for link in item.links})
    entities = {r["id"] for r in graph.read(q.existing_ids(Label.ENTITY), ids=entity_ids)}
    relations = {r["id"] for r in graph.read(q.existing_ids(Label.RELATION), ids=relation_names)}
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for n, link in enumerate(item.links):
        if link.relation not in relations:
            problems.append((("body", "links", n, "relation"), f"unregistered relation {link.relation!r}"))
        if link.entity_id not in entities:
            problems.append((("body", "links", n, "entity_id"), f"unknown entity {link.entity_id!r}"))
    if problems:
        raise InvalidReference(problems)
    if graph.read(q.existing_ids(Label.ITEM), ids=[item.id]):
        raise Conflict(f"item {item.id!r} exists already")
    try:
        rows, _ = graph.write_returning(
            q.API_CREATE_ITEM,
            id=item.id,
            title=item.title,
            text=item.text,
            attributes=item.attributes,
            links=[link.model_dump() for link in item.links],
        )
    except ConstraintError:  # created by a concurrent request since the check
        raise Conflict(f"item {item.id!r} exists already") from None
    return rows[0]["linked"]


def encode_item_text(graph: Graph, encoder: TextEncoder, item: NewItem) -> np.ndarray:
    """Encode ``title. text`` as ``kgrec encode`` does and store it as the item's text vector; ``(1, t)``."""
    text = item_text(item.title, item.text or "")
    vectors = encoder.encode([text])  # (1, t)
    graph.write(
        q.SET_ITEM_TEXT_EMBEDDINGS,
        rows=[{"id": item.id, "vector": vectors[0].tolist(), "hash": text_hash(text)}],
        model=encoder.model_name,
    )
    return vectors


def embed_item(graph: Graph, run: ActiveRun, embedder: ItemEmbedder, item: NewItem, text_vectors: np.ndarray) -> None:
    """Write the embedder's vector of the item into the active run's slot, tagged with the run."""
    vectors = np.asarray(embedder.embed(text_vectors, [[(l.relation, l.entity_id) for l in item.links]]))  # (1, d)
    if vectors.ndim != 2 or vectors.shape[0] != 1 or not np.isfinite(vectors).all():
        raise KgrecError(f"the item embedder returned {vectors.shape} (or non-finite values) for one item")
    written = graph.write_returning(
        q.set_embeddings(Label.ITEM, run.slot), rows=[{"id": item.id, "vector": vectors[0].tolist()}], run=run.id
    )[0]
    if not written or written[0]["written"] != 1:
        raise KgrecError(f"item {item.id!r} vanished before its embedding was written")
