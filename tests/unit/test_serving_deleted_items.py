"""On-the-fly and popular lists come from caches (the run's item matrix, the popular items) that outlive a
``DETACH DELETE``: serving drops the items that no longer exist and still fills ``k`` when it can. Against a
fake gateway that answers each query from a dict of "graph" state."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kgrec.api.serving import ItemMatrixCache, PopularCache, Scored, recommend, top_rows
from kgrec.graph_schema import queries as q

R1 = {"id": "R1", "slot": "embedding_a", "activated_at": "2026-01-01T00:00:00Z", "checkpoint": None, "top_k": 5}
# item vectors of R1; user u4 has no stored vector and a history of i2, i3: vector [0, .5, .5, 0]
VECTORS = {
    "i1": [1, 0, 0, 0], "i2": [0, 1, 0, 0], "i3": [0, 0, 1, 0], "i4": [0, 0, 0, 1],
    "i5": [1, 0.5, 0, 0], "i6": [0.5, 0, 0.25, 0.25], "i7": [0, 0.25, 0, 0.25], "i8": [0, 0.125, 0, 0],
}
POPULAR = [("i1", 3), ("i3", 2), ("i2", 1), ("i4", 1), ("i5", 1)]


class FakeGraph:
    """The queries serving runs, answered from ``items`` (id → title: what exists now), the run's vectors,
    the user's history and the interaction counts; each query is recorded with its parameters."""

    def __init__(self, seen: list[str]) -> None:
        self.items = {item: f"T{item[1:]}" for item in VECTORS}
        self.seen = seen
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def read_columns(self, query: str, **params: Any) -> dict[str, Any]:
        self.calls.append((query, params))
        if query == q.API_RECOMMENDATIONS:
            return {"user_found": True, "entity_found": True, "runs": [R1], "recent": False, "has_list": False, "items": []}
        if query == q.api_item_vector_page("embedding_a"):
            ids = sorted(i for i in VECTORS if i > params["after"])[: params["page"]]
            return {"id": ids, "vector": [VECTORS[i] for i in ids]}
        raise AssertionError(f"unexpected read {query[:60]}")

    def read(self, query: str, **params: Any) -> list[dict[str, Any]]:
        self.calls.append((query, params))
        if query == q.api_user_state("embedding_a"):
            return [{"vector": None, "seen": self.seen, "recent": [], "has_list": False}]
        if query == q.API_ITEM_TITLES:
            return [{"id": i, "title": self.items[i]} for i in params["ids"] if i in self.items]
        if query == q.API_POPULAR_ITEMS:
            rows = [{"item_id": i, "title": self.items[i], "interactions": n} for i, n in POPULAR]
            return rows[: params["limit"]]
        raise AssertionError(f"unexpected read {query[:60]}")

    def delete(self, *items: str) -> None:  # MATCH (i:Item) WHERE i.id IN $items DETACH DELETE i
        for item in items:
            del self.items[item]

    def title_lookups(self) -> list[list[str]]:
        return [params["ids"] for query, params in self.calls if query == q.API_ITEM_TITLES]


@pytest.fixture
def caches() -> tuple[ItemMatrixCache, PopularCache]:
    return ItemMatrixCache(), PopularCache()


def serve(graph: FakeGraph, caches: tuple[ItemMatrixCache, PopularCache], k: int, entity: str | None = None):
    matrices, popular = caches
    return recommend(graph, "u4", k=k, exclude_seen=True, entity=entity, matrices=matrices, popular=popular)  # type: ignore[arg-type]


def ids(items: list[Scored]) -> list[str]:
    return [s.item_id for s in items]


def test_on_the_fly_lists_drop_items_deleted_after_the_matrix_was_cached(caches) -> None:
    graph = FakeGraph(seen=["i2", "i3"])
    before = serve(graph, caches, k=3)
    assert before.source == "on_the_fly"
    assert before.items == [Scored("i5", "T5", 0.25), Scored("i6", "T6", 0.125), Scored("i7", "T7", 0.125)]
    assert graph.title_lookups() == [["i5", "i6", "i7"]]  # nothing gone: one lookup of k ids, as before
    graph.delete("i5")  # the cached matrix still holds i5
    graph.calls.clear()
    after = serve(graph, caches, k=3)
    assert after.items == [Scored("i6", "T6", 0.125), Scored("i7", "T7", 0.125), Scored("i8", "T8", 0.0625)]
    assert all(s.title is not None for s in after.items)
    assert graph.title_lookups() == [["i5", "i6", "i7"], ["i8", "i1", "i4"]]  # then the next ones, twice as many
    assert not any(query == q.api_item_vector_page("embedding_a") for query, _ in graph.calls)  # still cached


def test_on_the_fly_fills_k_past_many_deleted_items_and_stops_at_the_end(caches) -> None:
    graph = FakeGraph(seen=["i2", "i3"])
    serve(graph, caches, k=2)
    graph.delete("i5", "i6", "i7", "i1")
    graph.calls.clear()
    assert ids(serve(graph, caches, k=2).items) == ["i8", "i4"]
    assert graph.title_lookups() == [["i5", "i6"], ["i7", "i8", "i1", "i4"]]
    graph.calls.clear()
    assert ids(serve(graph, caches, k=10).items) == ["i8", "i4"]  # fewer than k exist: all of them, once each
    assert graph.title_lookups() == [["i5", "i6", "i7", "i8", "i1", "i4"]]


def test_popular_items_drop_items_deleted_after_they_were_cached(caches) -> None:
    graph = FakeGraph(seen=[])  # no history, no vector: popular items
    assert serve(graph, caches, k=2).items == [Scored("i1", "T1", 3.0), Scored("i3", "T3", 2.0)]
    graph.delete("i1")
    graph.items["i3"] = "T3, renamed"
    popular = serve(graph, caches, k=2)
    assert popular.source == "popular"
    assert popular.items == [Scored("i3", "T3, renamed", 2.0), Scored("i2", "T2", 1.0)]  # titles read now
    assert sum(query == q.API_POPULAR_ITEMS for query, _ in graph.calls) == 1  # from the cache


def test_top_rows_is_the_head_of_the_full_order_ties_by_row() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        scores = rng.integers(0, 4, size=30).astype(np.float32)  # many ties
        rows = np.sort(rng.choice(30, size=int(rng.integers(1, 31)), replace=False))
        full = rows[np.lexsort((rows, -scores[rows]))]
        for n in (1, 2, 5, 29, 40):
            assert top_rows(scores, rows, n).tolist() == full[:n].tolist()
