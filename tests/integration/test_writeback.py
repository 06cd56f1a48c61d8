"""Write-back against a real Neo4j: runs, slots, top-K lists, atomic activation, pruning."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kgrec.db import Graph
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.vocabulary import Label
from kgrec.loaders.writeback import (
    WriteBackError,
    activate_run,
    active_run,
    complete_run,
    prune_runs,
    start_run,
    write_embeddings,
    write_recommendations,
)

USERS = [f"u{i}" for i in range(6)]
ITEMS = [f"i{i}" for i in range(10)]


@pytest.fixture
def small(graph: Graph) -> Graph:
    graph.write("UNWIND $users AS id CREATE (:User {id: id})", users=USERS)
    graph.write("UNWIND $items AS id CREATE (:Item {id: id, title: 'T' + id})", items=ITEMS)
    return graph


def recs(offset: int, k: int = 3) -> pd.DataFrame:
    rows = [
        {"user_id": u, "item_id": ITEMS[(n + r + offset) % len(ITEMS)], "score": 1.0 / (r + 1), "rank": r + 1,
         "explanation": {"paths": [[u, "liked", ITEMS[r]]], "fusion": {"id": 0.5, "text": 0.3, "kg": 0.2}}}
        for n, u in enumerate(USERS) for r in range(k)
    ]
    return pd.DataFrame(rows)


def served(graph: Graph, user: str) -> list[str]:
    return [row["item"] for row in graph.read(q.TOP_K_ACTIVE, user=user, k=10)]


def full_run(graph: Graph, run_id: str, offset: int, dim: int = 8) -> None:
    run = start_run(graph, run_id, {"dim": dim})
    rng = np.random.default_rng(offset)
    write_embeddings(graph, run, Label.ITEM, ITEMS, rng.normal(size=(len(ITEMS), dim)))
    write_embeddings(graph, run, Label.USER, USERS, rng.normal(size=(len(USERS), dim)))
    write_recommendations(graph, run, recs(offset))
    complete_run(graph, run, metrics={"ndcg@20": 0.3}, counts={"users": len(USERS)})
    activate_run(graph, run_id)


def test_run_is_served_after_activation_only(small: Graph) -> None:
    run = start_run(small, "A", {"lr": 0.01})
    assert run.slot == "embedding_a" and active_run(small) is None
    assert write_recommendations(small, run, recs(0)) == 18
    assert served(small, "u0") == []  # not active yet
    complete_run(small, run, metrics={"ndcg@20": 0.25})
    assert activate_run(small, "A") is None
    assert served(small, "u0") == ["i0", "i1", "i2"]
    row = small.read("MATCH (:User {id: 'u0'})-[r:RECOMMENDED {rank: 1}]->() RETURN r.explanation AS e, r.score AS s")[0]
    assert json.loads(row["e"])["fusion"] == {"id": 0.5, "kg": 0.2, "text": 0.3} and row["s"] == 1.0


def test_readers_see_the_old_run_whole_until_the_switch(small: Graph) -> None:
    full_run(small, "A", offset=0)
    before = {u: served(small, u) for u in USERS}
    b = start_run(small, "B")
    assert b.slot == "embedding_b"  # the active run's slot is left alone
    write_recommendations(small, b, recs(5).query("user_id in ['u0', 'u1']"))  # interrupted half-way
    assert {u: served(small, u) for u in USERS} == before
    with pytest.raises(WriteBackError, match="cannot activate run 'B': it is 'writing', not 'complete'"):
        activate_run(small, "B")
    assert active_run(small).id == "A"
    write_recommendations(small, b, recs(5))  # the retry rewrites u0 and u1 rather than doubling them
    complete_run(small, b)
    assert activate_run(small, "B") == "A"
    assert served(small, "u0") == ["i5", "i6", "i7"]
    assert small.read("MATCH ()-[r:RECOMMENDED {run: 'B'}]->() RETURN count(r) AS n")[0]["n"] == 18
    assert small.read("MATCH (r:ModelRun) RETURN r.id AS id, r.active AS a ORDER BY id") == [
        {"id": "A", "a": False}, {"id": "B", "a": True}]


def test_embeddings_in_slots_and_their_vector_index(small: Graph) -> None:
    run = start_run(small, "A")
    vectors = np.eye(10, 8)[: len(ITEMS)] + 0.01  # item k points along axis k (items 8, 9 near the centre)
    assert write_embeddings(small, run, Label.ITEM, ITEMS, vectors) == len(ITEMS)
    small.run_autocommit(q.AWAIT_INDEXES, timeout_seconds=60)
    hits = small.read(q.QUERY_SIMILAR_ITEMS, index=q.embedding_index(Label.ITEM, "embedding_a"), k=1,
                      vector=vectors[3].tolist())
    assert hits[0]["id"] == "i3"
    tagged = small.read("MATCH (i:Item {id: 'i3'}) RETURN i.embedding_a_run AS run, size(i.embedding_a) AS d")[0]
    assert tagged == {"run": "A", "d": 8}


def test_complete_run_waits_for_indexes_populated_in_the_background(small: Graph) -> None:
    run = start_run(small, "A")
    vectors = np.eye(10, 8)[: len(ITEMS)] + 0.01
    write_embeddings(small, run, Label.ITEM, ITEMS, vectors, wait=False)
    write_embeddings(small, run, Label.USER, USERS, np.ones((len(USERS), 8)), wait=False)
    write_recommendations(small, run, recs(0))
    complete_run(small, run)
    states = {i["name"]: i["state"] for i in small.read(q.SHOW_INDEXES)}
    assert states["item_embedding_a"] == "ONLINE" and states["user_embedding_a"] == "ONLINE"
    activate_run(small, "A")
    hits = small.read(q.QUERY_SIMILAR_ITEMS, index=q.embedding_index(Label.ITEM, "embedding_a"), k=1,
                      vector=vectors[3].tolist())
    assert hits[0]["id"] == "i3"


def test_a_new_dimension_rebuilds_the_slot_index(small: Graph) -> None:
    full_run(small, "A", offset=0, dim=8)  # slot a
    full_run(small, "B", offset=1, dim=8)  # slot b
    full_run(small, "C", offset=2, dim=16)  # slot a again, with another dimension
    index = next(i for i in small.read(q.SHOW_INDEXES) if i["name"] == "item_embedding_a")
    assert index["dimensions"] == 16
    runs = {r["id"]: r for r in small.read(q.LIST_RUNS)}
    assert runs["A"]["status"] == "superseded" and runs["A"]["slot"] is None  # its vectors were overwritten


def test_bad_input_is_refused(small: Graph) -> None:
    run = start_run(small, "A")
    with pytest.raises(WriteBackError, match="exists already"):
        start_run(small, "A")
    with pytest.raises(WriteBackError, match="NaN"):
        write_embeddings(small, run, Label.ITEM, ITEMS, np.full((len(ITEMS), 4), np.nan))
    with pytest.raises(WriteBackError, match="expected 10 rows"):
        write_embeddings(small, run, Label.ITEM, ITEMS, np.ones((3, 4)))
    with pytest.raises(WriteBackError, match="not in the graph"):
        write_recommendations(small, run, pd.DataFrame({"user_id": ["u0"], "item_id": ["nope"], "score": [1.0], "rank": [1]}))
    with pytest.raises(WriteBackError, match="does not exist"):
        activate_run(small, "Z")


def test_prune_keeps_the_active_and_newest(small: Graph) -> None:
    for name, offset in (("A", 0), ("B", 1), ("C", 2)):
        full_run(small, name, offset)
    assert prune_runs(small, keep=1) == ["A"]
    assert [r["id"] for r in small.read(q.LIST_RUNS)] == ["C", "B"]
    assert small.read("MATCH ()-[r:RECOMMENDED {run: 'A'}]->() RETURN count(r) AS n")[0]["n"] == 0
    assert prune_runs(small, keep=0) == ["B"]
    assert active_run(small).id == "C" and served(small, "u0")


def test_prune_never_counts_interrupted_runs_and_removes_them(small: Graph) -> None:
    """An interrupted run (left 'writing') used to count towards keep and push out the last finished run."""
    full_run(small, "A", 0)
    interrupted = start_run(small, "B", {})
    write_recommendations(small, interrupted, recs(1))  # then Ctrl-C: never completed
    full_run(small, "C", 2)
    assert prune_runs(small, keep=1) == ["B"]  # A, the one finished rollback target, stays
    assert [r["id"] for r in small.read(q.LIST_RUNS)] == ["C", "A"]
    assert small.read("MATCH ()-[r:RECOMMENDED {run: 'B'}]->() RETURN count(r) AS n")[0]["n"] == 0
    start_run(small, "D", {})  # started after the active run: may be writing right now
    assert prune_runs(small, keep=0) == ["A"]
    assert [r["id"] for r in small.read(q.LIST_RUNS)] == ["D", "C"]
