"""Serving against a recording fake of the gateway: a precomputed list and similar items are one query each,
with the exact parameters, and the errors come in the order the API has always checked them (user or item,
then the active run, then the entity)."""

from __future__ import annotations

import gc
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kgrec.api.app import create_app
from kgrec.api.errors import NoActiveRun, NotFound
from kgrec.api.serving import ActiveRun, ItemMatrixCache, PopularCache, Scored, recommend, similar_items
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.vocabulary import NODE_PROPS, REL_SPECS, Label, RelType
from kgrec.loaders.writeback import WriteBackError
from tests.conftest import free_port, make_settings

R1 = {"id": "R1", "slot": "embedding_a", "activated_at": "2026-01-01T00:00:00Z", "checkpoint": None, "top_k": 5}
LIST = [{"item_id": "i2", "title": "T2", "score": 0.9}, {"item_id": "i6", "title": None, "score": 0.8}]


class RecordingGraph:
    """Records every call; answers the one-record reads from a canned row, and nothing else."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def read_columns(self, query: str, **params: Any) -> dict[str, Any]:
        self.calls.append((query, params))
        return self.row

    def read(self, query: str, **params: Any) -> list[dict[str, Any]]:
        raise AssertionError(f"unexpected read {query[:60]}")


def user_row(**overrides: Any) -> dict[str, Any]:
    row = {"user_found": True, "entity_found": True, "runs": [R1], "recent": False, "has_list": True, "items": LIST}
    return {**row, **overrides}


def serve(graph: RecordingGraph, user: str = "u1", entity: str | None = None):
    return recommend(
        graph, user, k=2, exclude_seen=False, entity=entity, matrices=ItemMatrixCache(), popular=PopularCache()  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("entity", [None, "e1"])
def test_a_precomputed_list_is_one_query(entity: str | None) -> None:
    graph = RecordingGraph(user_row())
    result = serve(graph, entity=entity)
    assert graph.calls == [(q.API_RECOMMENDATIONS, {"user": "u1", "entity": entity, "exclude_seen": False, "k": 2})]
    assert (result.run_id, result.source) == ("R1", "precomputed")
    assert result.items == [Scored("i2", "T2", 0.9), Scored("i6", None, 0.8)]


def test_a_list_the_filters_empty_is_still_the_precomputed_source() -> None:
    result = serve(RecordingGraph(user_row(items=[])), entity="e1")
    assert (result.source, result.items) == ("precomputed", [])


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"user_found": False, "runs": [], "entity_found": False}, NotFound, "unknown user 'u1'"),
        ({"runs": [], "entity_found": False}, NoActiveRun, "no active model run"),
        ({"runs": [R1, {**R1, "id": "R2"}]}, WriteBackError, r"2 ModelRuns are marked active \(\['R1', 'R2'\]\)"),
        ({"runs": [{**R1, "slot": None}]}, WriteBackError, "the active run 'R1' has no embedding slot"),
        ({"entity_found": False}, NotFound, "unknown entity 'e404'"),
    ],
)
def test_errors_in_the_order_of_the_checks(overrides: dict[str, Any], error: type[Exception], message: str) -> None:
    graph = RecordingGraph(user_row(**overrides))
    with pytest.raises(error, match=message):
        serve(graph, entity="e404")
    assert len(graph.calls) == 1


@pytest.mark.parametrize(("recent", "has_list"), [(True, True), (False, False)])
def test_without_a_servable_list_the_embeddings_are_read(recent: bool, has_list: bool) -> None:
    graph = RecordingGraph(user_row(recent=recent, has_list=has_list, items=[]))
    with pytest.raises(AssertionError, match="unexpected read"):  # the slower path goes on reading
        serve(graph)


def item_row(**overrides: Any) -> dict[str, Any]:
    row = {"item_found": True, "runs": [R1], "model": True, "text": True, "items": LIST}
    return {**row, **overrides}


@pytest.mark.parametrize(
    ("overrides", "source", "run"),
    [
        ({}, "model", "R1"),
        ({"model": False}, "text", "R1"),
        ({"runs": [], "model": False}, "text", None),
        ({"model": False, "text": False, "items": []}, "none", "R1"),
    ],
)
def test_similar_items_are_one_query(overrides: dict[str, Any], source: str, run: str | None) -> None:
    graph = RecordingGraph(item_row(**overrides))
    active, got, items = similar_items(graph, "i5", 3)  # type: ignore[arg-type]
    assert graph.calls == [
        (
            q.API_SIMILAR_ITEMS,
            {"item": "i5", "k": 3, "indexes": {"embedding_a": "item_embedding_a", "embedding_b": "item_embedding_b"},
             "text_index": q.ITEM_TEXT_INDEX},
        )
    ]
    assert got == source and (active.id if active else None) == run
    assert items == ([] if source == "none" else [Scored("i2", "T2", 0.9), Scored("i6", None, 0.8)])
    assert active is None or active == ActiveRun(**R1)


def test_similar_items_errors() -> None:
    with pytest.raises(NotFound, match="unknown item 'i404'"):
        similar_items(RecordingGraph(item_row(item_found=False, runs=[])), "i404", 3)  # type: ignore[arg-type]
    with pytest.raises(WriteBackError, match="2 ModelRuns are marked active"):
        similar_items(RecordingGraph(item_row(runs=[R1, {**R1, "id": "R2"}])), "i5", 3)  # type: ignore[arg-type]


def test_the_one_query_reads_splice_only_vocabulary_and_take_values_as_parameters() -> None:
    vocabulary = {label.value for label in Label} | {rel.value for rel in RelType}
    vocabulary |= {p.name for props in NODE_PROPS.values() for p in props}
    vocabulary |= {p.name for spec in REL_SPECS.values() for p in spec.props}
    for query, params in [
        (q.API_RECOMMENDATIONS, {"user", "entity", "exclude_seen", "k"}),
        (q.API_SIMILAR_ITEMS, {"item", "k", "indexes", "text_index"}),
    ]:
        assert set(re.findall(r"`([^`]+)`", query)) <= vocabulary, query
        assert set(re.findall(r"\$(\w+)", query)) == params


def test_the_app_freezes_its_startup_objects_while_it_runs(tmp_path: Path) -> None:
    """Full garbage collections skip what the app made at startup (they paused every request in flight)."""
    settings = make_settings(neo4j_uri=f"bolt://127.0.0.1:{free_port()}", neo4j_password_="whatever-123", data_dir=tmp_path)
    before = gc.get_freeze_count()
    with TestClient(create_app(settings)) as client:  # the driver connects on first use: no Neo4j needed
        assert client.get("/health").json() == {"status": "ok"}
        assert gc.get_freeze_count() > before
    assert gc.get_freeze_count() == 0


def test_run_times_have_a_fixed_precision_so_they_sort_as_text() -> None:
    from neo4j.time import DateTime

    from kgrec.api.routes.runs import iso_utc

    earlier = DateTime(2026, 11, 28, 14, 32, 1, 800_000_000, tzinfo=timezone.utc)  # Cypher's toString writes "...01.8Z"
    later = DateTime(2026, 11, 28, 14, 32, 1, 859_000_000, tzinfo=timezone.utc)
    assert iso_utc(earlier) == "2026-11-28T14:32:01.800000Z" and iso_utc(later) == "2026-11-28T14:32:01.859000Z"
    assert iso_utc(later) > iso_utc(earlier) and iso_utc(None) is None
    paris = datetime(2026, 11, 28, 15, 32, 1, tzinfo=timezone(timedelta(hours=1)))
    assert iso_utc(paris) == "2026-11-28T14:32:01.000000Z"
