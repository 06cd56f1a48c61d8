"""The HTTP API against a real Neo4j: a small graph, one active run with hand-picked vectors, and expected
rankings worked out by hand from them (dot products for scores, cosine for similar items).

Item vectors (slot ``embedding_a`` of run R1; ``i7`` has none, only a text vector)::

    i1 [1, 0, 0, 0]   i2 [0, 1, 0, 0]   i3 [0, 0, 1, 0]   i4 [0, 0, 0, 1]
    i5 [1, .5, 0, 0]  i6 [.5, 0, .25, .25]

User u1 has a stored vector [1, .5, .25, 0] and a stored list (i2 .9, i6 .8, i1 .7, i5 .6, i3 .5) that is
deliberately not the dot-product order, so the source of a list shows in its order.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psutil
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from kgrec.api.app import create_app
from kgrec.api.catalog import record_interaction
from kgrec.api.deps import get_item_embedder, get_text_encoder
from kgrec.api.schemas import NewInteraction
from kgrec.api.serving import read_active_run
from kgrec.config import Settings
from kgrec.db import Graph
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.migrations import apply_migrations
from kgrec.graph_schema.vocabulary import Label
from kgrec.loaders.writeback import activate_run, complete_run, start_run, write_embeddings, write_recommendations
from kgrec.model.text import TextEncoder, text_hash
from kgrec.neo4j_local import LocalNeo4j
from tests.conftest import cli_env, free_port, make_settings

KEY = "test-api-key-0123456789"
AUTH = {"X-API-Key": KEY}
ITEM_VECTORS = {
    "i1": [1, 0, 0, 0],
    "i2": [0, 1, 0, 0],
    "i3": [0, 0, 1, 0],
    "i4": [0, 0, 0, 1],
    "i5": [1, 0.5, 0, 0],
    "i6": [0.5, 0, 0.25, 0.25],
}
TEXT_VECTORS = {  # Item.text_embedding (index item_text_embedding, 4 dimensions here)
    "i1": [1, 0, 0, 0],
    "i2": [0, 1, 0, 0],
    "i3": [0, 0, 1, 0],
    "i4": [0, 0, 0, 1],
    "i5": [1, 1, 0, 0],
    "i6": [0, 1, 1, 0],
    "i7": [0.9, 0.1, 0, 0.4],
}
ENTITIES = {"e1": ("Jazz", "genre", ["i2", "i5", "i6"]), "e2": ("Chill", "tag", ["i1", "i5"]), "e3": ("Piano", "tag", ["i1", "i3", "i5"])}
# (user, item): i1 has 3 interactions, i3 2, i2, i4 and i5 one each; all long before the run
INTERACTIONS = [("u1", "i1"), ("u5", "i1"), ("u6", "i1"), ("u2", "i3"), ("u4", "i3"), ("u4", "i2"), ("u2", "i4"), ("u5", "i5")]
U1_LIST = [("i2", 0.9), ("i6", 0.8), ("i1", 0.7), ("i5", 0.6), ("i3", 0.5)]
U1_I5_EXPLANATION = {
    "text": "because you listened to T1, which is tagged Chill",
    "fusion": {"id": 0.5, "text": 0.3, "kg": 0.2},
    "paths": [
        {"kind": "entity", "via_item": "i1", "via_item_title": "T1", "relation": "tag", "entity": "e2", "entity_name": "Chill", "weight": 0.42},
        {"kind": "social", "via_user": "u5", "weight": 0.1},
        {"kind": "item", "via_item": "i1", "via_item_title": "T1", "weight": 0.3},
    ],
}


class FakeEncoder:
    """A text encoder with fixed vectors per text (4 dimensions, like the test's text index)."""

    model_name = "fake-encoder"

    def __init__(self, vectors: dict[str, list[float]] | None = None) -> None:
        self.vectors = vectors or {}
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.asarray([self.vectors.get(t, [0.25, 0.25, 0.25, 0.25]) for t in texts], dtype=np.float32)


class FakeEmbedder:
    """An item embedder: the text vector plus 1.0 on each linked entity's axis (e1 → 0, e2 → 1, e3 → 2)."""

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray, list[list[tuple[str, str]]]]] = []

    def embed(self, text_vectors: np.ndarray, links: list[list[tuple[str, str]]]) -> np.ndarray:
        self.calls.append((text_vectors, links))
        out = np.array(text_vectors, dtype=np.float32)
        for row, item_links in enumerate(links):
            for _, entity in item_links:
                out[row, int(entity[1:]) - 1] += 1.0
        return out


def build_graph(graph: Graph) -> None:
    """The small graph, a superseded run R0 and the active run R1."""
    apply_migrations(graph, dimension=4)
    graph.write("UNWIND ['genre', 'tag'] AS name CREATE (:Relation {name: name})")
    items = [{"id": f"i{n}", "title": f"T{n}", "text": f"text {n}"} for n in range(1, 8)]
    graph.write("UNWIND $rows AS row CREATE (i:Item) SET i = row", rows=items)
    graph.write(
        q.SET_ITEM_TEXT_EMBEDDINGS,
        rows=[{"id": i, "vector": v, "hash": "h"} for i, v in TEXT_VECTORS.items()],
        model="fake-encoder",
    )
    for entity, (name, relation, linked) in ENTITIES.items():
        graph.write(
            "CREATE (e:Entity {id: $id, name: $name, type: $relation}) WITH e "
            "UNWIND $items AS item MATCH (i:Item {id: item}) CREATE (i)-[:RELATES_TO {relation: $relation}]->(e)",
            id=entity, name=name, relation=relation, items=linked,
        )
    graph.write("UNWIND ['u1', 'u2', 'u3', 'u4', 'u5', 'u6'] AS id CREATE (:User {id: id})")
    graph.write(
        "UNWIND $rows AS row MATCH (u:User {id: row[0]}), (i:Item {id: row[1]}) "
        "CREATE (u)-[:INTERACTED {kind: 'listen', weight: 1.0, ts: datetime('2024-01-01T00:00:00Z')}]->(i)",
        rows=[list(pair) for pair in INTERACTIONS],
    )
    graph.write("MATCH (u1:User {id: 'u1'}), (f:User) WHERE f.id IN ['u5', 'u6'] CREATE (u1)-[:FOLLOWS]->(f)")

    old = start_run(graph, "R0", {"dim": 2})
    complete_run(graph, old, metrics={"ndcg@10": 0.1})
    run = start_run(graph, "R1", {"dim": 4, "lr": 0.01})
    write_embeddings(graph, run, Label.ITEM, list(ITEM_VECTORS), np.array(list(ITEM_VECTORS.values())))
    write_embeddings(graph, run, Label.USER, ["u1"], np.array([[1, 0.5, 0.25, 0]]))
    recs = pd.DataFrame(
        [
            {"user_id": "u1", "item_id": item, "score": score, "rank": rank,
             "explanation": U1_I5_EXPLANATION if item == "i5" else {"text": f"because of {item}"}}
            for rank, (item, score) in enumerate(U1_LIST, 1)
        ]
    )
    write_recommendations(graph, run, recs)
    complete_run(graph, run, metrics={"ndcg@10": 0.25}, counts={"users": 1})
    graph.write("MATCH (r:ModelRun {id: 'R1'}) SET r.checkpoint = $path, r.top_k = 5", path="/nonexistent/R1")
    activate_run(graph, "R1")
    graph.run_autocommit(q.AWAIT_INDEXES, timeout_seconds=60)


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_key_": SecretStr(KEY)})


@pytest.fixture
def served(graph: Graph) -> Graph:
    build_graph(graph)
    return graph


@pytest.fixture
def encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def client(api_settings: Settings, served: Graph, encoder: FakeEncoder) -> Iterator[TestClient]:
    app = create_app(api_settings)
    app.dependency_overrides[get_text_encoder] = lambda: encoder
    with TestClient(app) as client:
        yield client


def recs(client: TestClient, user: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/users/{user}/recommendations", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def ids_scores(body: dict[str, Any]) -> list[tuple[str, float]]:
    return [(item["item_id"], pytest.approx(item["score"], abs=1e-6)) for item in body["items"]]


# -- recommendations -------------------------------------------------------------------------------------
def test_precomputed_list_in_rank_order_without_seen_items(client: TestClient) -> None:
    body = recs(client, "u1")
    assert (body["user_id"], body["run_id"], body["source"]) == ("u1", "R1", "precomputed")
    assert body["items"] == [  # i1 (seen) dropped; ranks renumbered in the response
        {"item_id": "i2", "title": "T2", "score": 0.9, "rank": 1},
        {"item_id": "i6", "title": "T6", "score": 0.8, "rank": 2},
        {"item_id": "i5", "title": "T5", "score": 0.6, "rank": 3},
        {"item_id": "i3", "title": "T3", "score": 0.5, "rank": 4},
    ]
    assert [i["item_id"] for i in recs(client, "u1", exclude_seen="false")["items"]] == ["i2", "i6", "i1", "i5", "i3"]
    assert [i["item_id"] for i in recs(client, "u1", k=2)["items"]] == ["i2", "i6"]
    assert [i["item_id"] for i in recs(client, "u1", entity="e1")["items"]] == ["i2", "i6", "i5"]
    assert [i["item_id"] for i in recs(client, "u1", entity="e2", exclude_seen="false")["items"]] == ["i1", "i5"]


@pytest.mark.parametrize("k", [0, -1, 101, "ten"])
def test_k_out_of_bounds_is_422(client: TestClient, k: object) -> None:
    response = client.get("/users/u1/recommendations", params={"k": k})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "k"]


def test_k_bounds_themselves_are_accepted(client: TestClient) -> None:
    assert len(recs(client, "u4", k=1)["items"]) == 1
    assert len(recs(client, "u4", k=100)["items"]) == 4  # every embedded item but the two seen


def test_unknown_user_or_entity_is_404(client: TestClient) -> None:
    response = client.get("/users/nobody/recommendations")
    assert response.status_code == 404 and response.json() == {"detail": "unknown user 'nobody'"}
    response = client.get("/users/u1/recommendations", params={"entity": "e404"})
    assert response.status_code == 404 and response.json() == {"detail": "unknown entity 'e404'"}


def test_user_without_list_is_scored_on_the_fly_from_their_history(client: TestClient) -> None:
    # u4: no stored vector or list; history i2, i3 → vector mean(i2, i3) = [0, .5, .5, 0]
    body = recs(client, "u4")
    assert body["source"] == "on_the_fly" and body["run_id"] == "R1"
    assert ids_scores(body) == [("i5", 0.25), ("i6", 0.125), ("i1", 0.0), ("i4", 0.0)]  # ties by id
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4] and body["items"][0]["title"] == "T5"
    everything = recs(client, "u4", exclude_seen="false")
    assert ids_scores(everything) == [("i2", 0.5), ("i3", 0.5), ("i5", 0.25), ("i6", 0.125), ("i1", 0.0), ("i4", 0.0)]
    assert ids_scores(recs(client, "u4", entity="e3")) == [("i5", 0.25), ("i1", 0.0)]
    assert ids_scores(recs(client, "u4", k=2)) == [("i5", 0.25), ("i6", 0.125)]


def test_interaction_after_the_run_switches_to_on_the_fly(client: TestClient, served: Graph) -> None:
    assert recs(client, "u1")["source"] == "precomputed"
    response = client.post("/interactions", json={"event_id": "ev-1", "user_id": "u1", "item_id": "i3", "kind": "listen"}, headers=AUTH)
    assert response.status_code == 201 and response.json() == {"created": True}
    # stored [1, .5, .25, 0] + mean of the items since the run (i3) = [1, .5, 1.25, 0]; i1 and i3 seen
    body = recs(client, "u1")
    assert body["source"] == "on_the_fly"
    assert ids_scores(body) == [("i5", 1.25), ("i6", 0.8125), ("i2", 0.5), ("i4", 0.0)]
    row = served.read(
        "MATCH (:User {id: 'u1'})-[r:INTERACTED {event_id: 'ev-1'}]->(i:Item) "
        "RETURN i.id AS item, r.kind AS kind, r.weight AS weight, r.ts > datetime() - duration('PT1M') AS recent"
    )
    assert row == [{"item": "i3", "kind": "listen", "weight": None, "recent": True}]


def test_interaction_dated_before_the_run_keeps_the_list(client: TestClient) -> None:
    event = {"event_id": "old", "user_id": "u1", "item_id": "i2", "ts": "2023-06-01T12:00:00"}
    assert client.post("/interactions", json=event, headers=AUTH).status_code == 201
    body = recs(client, "u1")  # not "since the run": the stored list, now without i2 (seen)
    assert body["source"] == "precomputed" and [i["item_id"] for i in body["items"]] == ["i6", "i5", "i3"]


def test_new_user_from_an_interaction_gets_on_the_fly(client: TestClient, served: Graph) -> None:
    event = {"event_id": "ev-new", "user_id": "newbie", "item_id": "i1", "weight": 2.5, "rating": 4, "ts": "2099-01-01T00:00:00+02:00"}
    assert client.post("/interactions", json=event, headers=AUTH).json() == {"created": True}
    row = served.read("MATCH (:User {id: 'newbie'})-[r:INTERACTED]->(i) RETURN r.kind AS kind, r.weight AS w, r.rating AS r, toString(r.ts) AS ts")
    assert row == [{"kind": "interaction", "w": 2.5, "r": 4.0, "ts": "2098-12-31T22:00:00Z"}]
    body = recs(client, "newbie")  # no vector: the mean of the history, i1 = [1, 0, 0, 0]
    assert body["source"] == "on_the_fly"
    assert ids_scores(body) == [("i5", 1.0), ("i6", 0.5), ("i2", 0.0), ("i3", 0.0), ("i4", 0.0)]


def test_user_without_history_gets_popular_items(client: TestClient, served: Graph) -> None:
    body = recs(client, "u3", k=3)
    assert body["source"] == "popular"
    assert ids_scores(body) == [("i1", 3.0), ("i3", 2.0), ("i2", 1.0)]
    assert ids_scores(recs(client, "u3", entity="e1")) == [("i2", 1.0), ("i5", 1.0)]  # i6: never interacted
    served.write(
        "MATCH (i:Item {id: 'i6'}) UNWIND range(1, 4) AS n "
        "MERGE (u:User {id: 'fan' + n}) CREATE (u)-[:INTERACTED {kind: 'listen'}]->(i)"
    )
    assert ids_scores(recs(client, "u3", k=3)) == [("i1", 3.0), ("i3", 2.0), ("i2", 1.0)]  # cached for the run
    client.app.state.popular.ttl = 0.0
    assert ids_scores(recs(client, "u3", k=3)) == [("i6", 4.0), ("i1", 3.0), ("i3", 2.0)]


def test_item_matrix_is_cached_per_run_and_reloaded_for_a_new_run(client: TestClient, served: Graph) -> None:
    assert recs(client, "u4")["items"][0]["item_id"] == "i5"
    matrix = client.app.state.item_matrices.get(served, read_active_run(served))
    assert matrix.run_id == "R1" and matrix.ids == list(ITEM_VECTORS) and matrix.vectors.shape == (6, 4)
    served.write("MATCH (i:Item {id: 'i4'}) SET i.embedding_a = [9.0, 9.0, 9.0, 9.0]")  # behind the cache's back
    assert recs(client, "u4")["items"][0]["item_id"] == "i5"  # still the cached matrix
    run = start_run(served, "R2")  # slot b
    vectors = np.array(list(ITEM_VECTORS.values()))
    vectors[3] = [0, 1, 1, 0]  # i4 now scores 1.0 for u4
    write_embeddings(served, run, Label.ITEM, list(ITEM_VECTORS), vectors)
    complete_run(served, run)
    activate_run(served, "R2")
    body = recs(client, "u4")
    assert body["run_id"] == "R2" and body["source"] == "on_the_fly"
    assert ids_scores(body)[:2] == [("i4", 1.0), ("i5", 0.25)]


def test_no_active_run_is_503(api_settings: Settings, graph: Graph) -> None:
    graph.write("CREATE (:User {id: 'u1'}), (:Item {id: 'i1', title: 'T1'})")
    with TestClient(create_app(api_settings)) as client:
        for path in ("/users/u1/recommendations", "/users/u1/recommendations/i1/explanation"):
            response = client.get(path)
            assert response.status_code == 503 and "no active model run" in response.json()["detail"]
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json() == {"status": "no_active_run", "detail": "Neo4j answers, but no model run is active"}
        assert client.get("/runs").json() == []
        similar = client.get("/items/i1/similar")  # no run and no text vector: nothing to compare
        assert similar.status_code == 200 and similar.json() == {"item_id": "i1", "run_id": None, "source": "none", "items": []}


def test_a_precomputed_list_and_similar_items_are_one_query_each(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    graph, queries = client.app.state.graph, []
    for name in ("read", "read_columns"):
        method = getattr(graph, name)
        monkeypatch.setattr(graph, name, lambda query, _method=method, **params: queries.append(query) or _method(query, **params))
    assert recs(client, "u1", entity="e1")["source"] == "precomputed"
    assert client.get("/items/i5/similar").json()["source"] == "model"
    assert client.get("/items/i7/similar").json()["source"] == "text"
    assert queries == [q.API_RECOMMENDATIONS, q.API_SIMILAR_ITEMS, q.API_SIMILAR_ITEMS]
    queries.clear()
    assert recs(client, "u4")["source"] == "on_the_fly"  # the slower path reads more
    assert queries[0] == q.API_RECOMMENDATIONS and len(queries) > 1


def test_a_list_the_filters_empty_is_still_precomputed(client: TestClient, served: Graph) -> None:
    served.write("CREATE (:Entity {id: 'e9', name: 'Nothing', type: 'tag'})")  # related to no item
    body = recs(client, "u1", entity="e9")
    assert (body["source"], body["items"]) == ("precomputed", [])
    piano = recs(client, "u1", entity="e3", k=1)  # e3: i1 (seen), i3, i5; i5 ranks first
    assert piano["source"] == "precomputed" and [i["item_id"] for i in piano["items"]] == ["i5"]


def test_several_active_runs_are_500_naming_them(client: TestClient, served: Graph) -> None:
    served.write("MATCH (r:ModelRun {id: 'R0'}) SET r.active = true")
    for path in ("/users/u1/recommendations", "/items/i5/similar"):
        response = client.get(path)
        assert response.status_code == 500, path
        assert response.json() == {"detail": "2 ModelRuns are marked active (['R0', 'R1']); keep one"}
    assert client.get("/users/nobody/recommendations").status_code == 404  # the user is checked first


# -- explanations ------------------------------------------------------------------------------------------
def test_explanation_of_a_stored_recommendation(client: TestClient) -> None:
    response = client.get("/users/u1/recommendations/i5/explanation")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["source"], body["run_id"], body["score"], body["rank"]) == ("precomputed", "R1", 0.6, 4)
    assert body["stored"]["text"] == U1_I5_EXPLANATION["text"]
    assert body["stored"]["fusion"] == {"id": 0.5, "text": 0.3, "kg": 0.2}
    assert [p["kind"] for p in body["stored"]["paths"]] == ["entity", "social", "item"]
    assert body["stored"]["paths"][0]["entity_name"] == "Chill" and body["stored"]["paths"][1]["via_user"] == "u5"
    # live: u1 listened to i1, which shares Chill (2 items) and Piano (3 items) with i5; u5 (followed) played i5
    assert body["live"] == {
        "entity": {
            "count": 2,
            "paths": [
                {"via_item": "i1", "via_item_title": "T1", "relation": "tag", "entity": "e2", "entity_name": "Chill", "entity_items": 2},
                {"via_item": "i1", "via_item_title": "T1", "relation": "tag", "entity": "e3", "entity_name": "Piano", "entity_items": 3},
            ],
        },
        "social": {"count": 1, "paths": [{"via_user": "u5", "interactions": 1}]},
    }
    plain = client.get("/users/u1/recommendations/i2/explanation").json()
    assert plain["stored"] == {"text": "because of i2", "fusion": None, "paths": []} and plain["rank"] == 1


def test_explanation_on_the_fly_and_popular(client: TestClient) -> None:
    body = client.get("/users/u4/recommendations/i5/explanation").json()
    assert (body["source"], body["stored"], body["rank"]) == ("on_the_fly", None, None)
    assert body["score"] == pytest.approx(0.25)
    assert [(p["via_item"], p["entity"]) for p in body["live"]["entity"]["paths"]] == [("i2", "e1"), ("i3", "e3")]
    assert body["live"]["entity"]["count"] == 2 and body["live"]["social"] == {"count": 0, "paths": []}
    popular = client.get("/users/u3/recommendations/i1/explanation").json()
    assert (popular["source"], popular["score"], popular["live"]["entity"]["count"]) == ("popular", None, 0)


def test_explanation_live_paths_are_capped_at_five_and_counted(client: TestClient, served: Graph) -> None:
    served.write(
        "MATCH (u:User {id: 'u4'}), (target:Item {id: 'i5'}) UNWIND range(1, 7) AS n "
        "CREATE (u)-[:INTERACTED {kind: 'listen'}]->(:Item {id: 'x' + n, title: 'X'})-[:RELATES_TO {relation: 'tag'}]->(e:Entity {id: 'ex' + n, name: 'E'})"
        "<-[:RELATES_TO {relation: 'tag'}]-(target)"
    )
    entity = client.get("/users/u4/recommendations/i5/explanation").json()["live"]["entity"]
    assert entity["count"] == 9 and len(entity["paths"]) == 5
    assert [p["via_item"] for p in entity["paths"]] == ["x1", "x2", "x3", "x4", "x5"]  # 2-item entities first


def test_explanation_counts_an_item_linked_twice_to_an_entity_once(client: TestClient, served: Graph) -> None:
    """i1 and i5 are linked to Chill (e2) as a tag and now also as a genre: still one path, and 2 items."""
    served.write(
        "MATCH (i:Item), (e:Entity {id: 'e2'}) WHERE i.id IN ['i1', 'i5'] "
        "CREATE (i)-[:RELATES_TO {relation: 'genre'}]->(e)"
    )
    entity = client.get("/users/u1/recommendations/i5/explanation").json()["live"]["entity"]
    assert entity["count"] == 2
    assert [(p["entity"], p["relation"], p["entity_items"]) for p in entity["paths"]] == [
        ("e2", "genre", 2), ("e3", "tag", 3)
    ]


def test_explanation_404s(client: TestClient) -> None:
    for path, detail in [
        ("/users/nobody/recommendations/i1/explanation", "unknown user 'nobody'"),
        ("/users/u1/recommendations/nothing/explanation", "unknown item 'nothing'"),
        ("/users/u1/recommendations/i4/explanation", "item 'i4' is not among the recommendations of user 'u1' in run 'R1'"),
    ]:
        response = client.get(path)
        assert response.status_code == 404 and response.json() == {"detail": detail}, path


# -- similar items -------------------------------------------------------------------------------------------
def test_similar_items_by_the_run_embeddings(client: TestClient) -> None:
    response = client.get("/items/i5/similar", params={"k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["item_id"], body["run_id"], body["source"]) == ("i5", "R1", "model")
    # cosine to i5 [1, .5, 0, 0]: i1 .894, i6 .730, i2 .447 (the index reports (1 + cos) / 2)
    i5 = np.array(ITEM_VECTORS["i5"])
    expected = [(i, (1 + np.dot(i5, ITEM_VECTORS[i]) / np.linalg.norm(i5) / np.linalg.norm(ITEM_VECTORS[i])) / 2) for i in ("i1", "i6", "i2")]
    assert [item["item_id"] for item in body["items"]] == ["i1", "i6", "i2"]
    for item, (_, score) in zip(body["items"], expected):
        assert item["score"] == pytest.approx(score, abs=5e-3) and item["title"] == "T" + item["item_id"][1:]
    everything = client.get("/items/i5/similar", params={"k": 100}).json()["items"]
    assert sorted(i["item_id"] for i in everything) == ["i1", "i2", "i3", "i4", "i6"]  # not itself, not i7 (no vector)


def test_similar_items_fall_back_to_text_vectors(client: TestClient) -> None:
    body = client.get("/items/i7/similar", params={"k": 2}).json()
    # text cosine to i7 [.9, .1, 0, .4]: i1 .908, i5 .707, i4 .404, ...
    assert (body["source"], body["run_id"]) == ("text", None)
    assert [i["item_id"] for i in body["items"]] == ["i1", "i5"]


def test_similar_items_errors(client: TestClient) -> None:
    response = client.get("/items/nothing/similar")
    assert response.status_code == 404 and response.json() == {"detail": "unknown item 'nothing'"}
    for k in (0, 101):
        assert client.get("/items/i1/similar", params={"k": k}).status_code == 422


# -- POST /interactions ---------------------------------------------------------------------------------------
def test_interactions_are_idempotent_on_event_id(client: TestClient, served: Graph) -> None:
    event = {"event_id": "ev-9", "user_id": "u2", "item_id": "i5", "kind": "click", "weight": 1.5}
    assert client.post("/interactions", json=event, headers=AUTH).json() == {"created": True}
    again = client.post("/interactions", json={**event, "weight": 99.0}, headers=AUTH)
    assert again.status_code == 201 and again.json() == {"created": False}
    rows = served.read("MATCH ()-[r:INTERACTED {event_id: 'ev-9'}]->() RETURN r.weight AS w, r.kind AS kind")
    assert rows == [{"w": 1.5, "kind": "click"}]  # the first write stands
    other = client.post("/interactions", json={**event, "item_id": "i6"}, headers=AUTH)
    assert other.status_code == 409
    assert other.json() == {"detail": "event_id 'ev-9' is recorded for another user or item"}
    assert served.read("MATCH ()-[r:INTERACTED {event_id: 'ev-9'}]->() RETURN count(r) AS n")[0]["n"] == 1


def test_concurrent_retries_of_one_event_write_it_once(served: Graph) -> None:
    event = NewInteraction(event_id="ev-race", user_id="racer", item_id="i2")
    barrier = threading.Barrier(6)

    def post() -> bool:
        barrier.wait()
        return record_interaction(served, event)

    with ThreadPoolExecutor(6) as pool:
        created = list(pool.map(lambda _: post(), range(6)))
    assert sorted(created) == [False] * 5 + [True]
    assert served.read("MATCH (:User {id: 'racer'})-[r:INTERACTED]->() RETURN count(r) AS n")[0]["n"] == 1
    assert served.read("MATCH (u:User {id: 'racer'}) RETURN count(u) AS n")[0]["n"] == 1


def test_interaction_with_an_unknown_item_is_404_and_writes_nothing(client: TestClient, served: Graph) -> None:
    response = client.post("/interactions", json={"event_id": "e", "user_id": "ghost", "item_id": "nothing"}, headers=AUTH)
    assert response.status_code == 404 and response.json() == {"detail": "unknown item 'nothing'"}
    assert served.read("MATCH (u:User {id: 'ghost'}) RETURN count(u) AS n")[0]["n"] == 0


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"user_id": "u1", "item_id": "i1"}, ["body", "event_id"]),
        ({"event_id": "e", "user_id": " ", "item_id": "i1"}, ["body", "user_id"]),
        ({"event_id": "e", "user_id": "u1", "item_id": "i1", "weight": "heavy"}, ["body", "weight"]),
        ({"event_id": "e", "user_id": "u1", "item_id": "i1", "ts": "yesterday"}, ["body", "ts"]),
        ({"event_id": "e", "user_id": "u1", "item_id": "i1", "colour": "red"}, ["body", "colour"]),
    ],
)
def test_interaction_validation_is_422_naming_the_field(client: TestClient, body: dict, loc: list[str]) -> None:
    response = client.post("/interactions", json=body, headers=AUTH)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [loc]


def test_write_endpoints_need_the_api_key(client: TestClient, served: Graph) -> None:
    event = {"event_id": "e", "user_id": "u1", "item_id": "i1"}
    item = {"id": "new", "title": "New"}
    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}):
        for path, body in (("/interactions", event), ("/items", item), ("/items", {"bad": "body"})):
            response = client.post(path, json=body, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.json() == {"detail": "missing or wrong X-API-Key"}
    assert served.read("MATCH ()-[r:INTERACTED {event_id: 'e'}]->() RETURN count(r) AS n")[0]["n"] == 0
    assert served.read("MATCH (i:Item {id: 'new'}) RETURN count(i) AS n")[0]["n"] == 0


# -- POST /items --------------------------------------------------------------------------------------------
NEW_ITEM = {
    "id": "i8",
    "title": "Blue Train",
    "text": "hard bop",
    "links": [{"relation": "genre", "entity_id": "e1"}, {"relation": "tag", "entity_id": "e3"}],
    "attributes": {"year": 1957, "label": "Blue Note", "formats": ["LP", "CD"]},
}


def test_create_item_with_links_and_text_vector(client: TestClient, served: Graph, encoder: FakeEncoder) -> None:
    encoder.vectors["Blue Train. hard bop"] = [0.95, 0.05, 0, 0.3]  # nearest texts: i7, then i1
    response = client.post("/items", json=NEW_ITEM, headers=AUTH)
    assert response.status_code == 201, response.text
    # the run has a checkpoint, but no embedder loads from it: created without a model vector
    assert response.json() == {"item_id": "i8", "links": 2, "text_embedding": True, "model_embedding": False, "run_id": None}
    item = served.read(
        "MATCH (i:Item {id: 'i8'}) RETURN i.title AS title, i.text AS text, i.year AS year, i.label AS label, "
        "i.formats AS formats, i.text_model AS model, i.text_hash AS hash, i.text_embedding AS vector, "
        "i.embedding_a AS slot, [(i)-[r:RELATES_TO]->(e) | [r.relation, e.id]] AS links"
    )[0]
    assert {k: v for k, v in item.items() if k not in ("vector", "links")} == {
        "title": "Blue Train", "text": "hard bop", "year": 1957, "label": "Blue Note", "formats": ["LP", "CD"],
        "model": "fake-encoder", "hash": text_hash("Blue Train. hard bop"), "slot": None,
    }
    assert sorted(item["links"]) == [["genre", "e1"], ["tag", "e3"]]
    assert item["vector"] == pytest.approx([0.95, 0.05, 0, 0.3], abs=1e-6)
    similar = client.get("/items/i8/similar", params={"k": 2}).json()
    assert similar["source"] == "text" and [i["item_id"] for i in similar["items"]] == ["i7", "i1"]
    assert recs(client, "u4", k=100)["source"] == "on_the_fly"  # i8 has no model vector: not recommendable yet
    assert "i8" not in [i["item_id"] for i in recs(client, "u4", k=100)["items"]]


def test_create_item_refusals(client: TestClient, served: Graph) -> None:
    assert client.post("/items", json=NEW_ITEM, headers=AUTH).status_code == 201
    again = client.post("/items", json=NEW_ITEM, headers=AUTH)
    assert again.status_code == 409 and again.json() == {"detail": "item 'i8' exists already"}
    bad_links = {**NEW_ITEM, "id": "i9", "links": [{"relation": "genre", "entity_id": "e404"}, {"relation": "mood", "entity_id": "e1"}]}
    response = client.post("/items", json=bad_links, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"loc": ["body", "links", 0, "entity_id"], "msg": "unknown entity 'e404'", "type": "value_error"},
        {"loc": ["body", "links", 1, "relation"], "msg": "unregistered relation 'mood'", "type": "value_error"},
    ]
    reserved = client.post("/items", json={"id": "i9", "title": "x", "attributes": {"embedding_a": [1.0]}}, headers=AUTH)
    assert reserved.status_code == 422 and "embedding_a" in reserved.json()["detail"][0]["msg"]
    twice = client.post("/items", json={"id": "i9", "title": "x", "links": [NEW_ITEM["links"][0]] * 2}, headers=AUTH)
    assert twice.status_code == 422 and "given twice" in twice.json()["detail"][0]["msg"]
    no_title = client.post("/items", json={"id": "i9"}, headers=AUTH)
    assert no_title.status_code == 422 and no_title.json()["detail"][0]["loc"] == ["body", "title"]
    assert served.read("MATCH (i:Item {id: 'i9'}) RETURN count(i) AS n")[0]["n"] == 0


def test_created_item_is_embedded_by_the_run_and_served_at_once(client: TestClient, served: Graph, encoder: FakeEncoder) -> None:
    embedder = FakeEmbedder()
    client.app.dependency_overrides[get_item_embedder] = lambda: embedder
    assert recs(client, "u4")["items"][0]["item_id"] == "i5"  # loads the item matrix before the new item
    encoder.vectors["Blue Train. hard bop"] = [0, 0, 0, 0.5]
    response = client.post("/items", json=NEW_ITEM, headers=AUTH)
    assert response.json() == {"item_id": "i8", "links": 2, "text_embedding": True, "model_embedding": True, "run_id": "R1"}
    text_vectors, links = embedder.calls[0]
    assert text_vectors.shape == (1, 4) and links == [[("genre", "e1"), ("tag", "e3")]]
    stored = served.read("MATCH (i:Item {id: 'i8'}) RETURN i.embedding_a AS v, i.embedding_a_run AS run")[0]
    assert stored["v"] == [1.0, 0.0, 1.0, 0.5] and stored["run"] == "R1"  # text + e1 axis + e3 axis
    # recommendable at once: u4's vector [0, .5, .5, 0] scores i8 at 0.5, above i5's 0.25
    assert ids_scores(recs(client, "u4", k=2)) == [("i8", 0.5), ("i5", 0.25)]
    similar = client.get("/items/i8/similar", params={"k": 1}).json()  # nearest by cosine: i6
    assert similar["source"] == "model" and [i["item_id"] for i in similar["items"]] == ["i6"]


def test_item_embedder_is_loaded_from_the_run_checkpoint_once(client: TestClient, served: Graph, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []

    class StubItemEmbedder(FakeEmbedder):
        @classmethod
        def load(cls, checkpoint_dir: str) -> StubItemEmbedder:
            loads.append(checkpoint_dir)
            return cls()

    stub = types.ModuleType("kgrec.model.inductive")
    stub.ItemEmbedder = StubItemEmbedder  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kgrec.model.inductive", stub)
    for n in (8, 9):
        response = client.post("/items", json={**NEW_ITEM, "id": f"i{n}"}, headers=AUTH)
        assert response.json()["model_embedding"] is True
    assert loads == ["/nonexistent/R1"]
    assert served.read("MATCH (i:Item) WHERE i.id IN ['i8', 'i9'] RETURN collect(i.embedding_a_run) AS runs")[0]["runs"] == ["R1", "R1"]


def test_create_item_with_the_real_text_encoder(api_settings: Settings, graph: Graph) -> None:
    apply_migrations(graph, dimension=384)
    graph.write("CREATE (:Relation {name: 'genre'}), (:Entity {id: 'jazz', name: 'Jazz', type: 'genre'})")
    item = {"id": "a1", "title": "Kind of Blue", "text": "modal jazz", "links": [{"relation": "genre", "entity_id": "jazz"}]}
    with TestClient(create_app(api_settings)) as client:
        response = client.post("/items", json=item, headers=AUTH)
    assert response.status_code == 201 and response.json()["text_embedding"] is True
    stored = graph.read("MATCH (i:Item {id: 'a1'}) RETURN i.text_embedding AS v, i.text_model AS m")[0]
    expected = TextEncoder("all-MiniLM-L6-v2", api_settings.data_dir / "text_cache").encode(["Kind of Blue. modal jazz"])[0]
    assert stored["m"] == "all-MiniLM-L6-v2" and np.allclose(stored["v"], expected, atol=1e-6)


def test_create_item_with_the_run_checkpoint_and_the_real_item_embedder(
    client: TestClient, served: Graph, encoder: FakeEncoder, tmp_path: Path
) -> None:
    inductive = pytest.importorskip("kgrec.model.inductive")
    import torch

    from kgrec.model.kgrec_net import KGRecConfig, KGRecNet

    torch.manual_seed(0)  # an untrained net of the test's sizes: 4-dim text vectors, 4-dim embeddings
    net = KGRecNet(6, 6, 3, 2, item_text=torch.rand(6, 4), config=KGRecConfig(dim=4, num_layers=1))
    checkpoint = tmp_path / "R1"
    checkpoint.mkdir()
    torch.save(
        {"state_dict": net.state_dict(), "config": net.config.as_dict(), "relation_index": {"genre": 0, "tag": 1},
         "entity_ids": ["e1", "e2", "e3"], "text_model": "fake-encoder"},
        checkpoint / inductive.CHECKPOINT,
    )
    served.write("MATCH (r:ModelRun {id: 'R1'}) SET r.checkpoint = $path", path=str(checkpoint))
    encoder.vectors["Blue Train. hard bop"] = [0.1, 0.2, 0.3, 0.4]
    response = client.post("/items", json=NEW_ITEM, headers=AUTH)
    assert response.status_code == 201 and response.json()["model_embedding"] is True, response.text
    expected = inductive.ItemEmbedder.load(checkpoint).embed(
        np.array([[0.1, 0.2, 0.3, 0.4]], dtype=np.float32), [[("genre", "e1"), ("tag", "e3")]]
    )[0]
    stored = served.read("MATCH (i:Item {id: 'i8'}) RETURN i.embedding_a AS v, i.embedding_a_run AS run")[0]
    assert stored["run"] == "R1" and np.allclose(stored["v"], expected, atol=1e-6)
    u4 = np.array([0, 0.5, 0.5, 0])  # served at once: scored for u4 as any embedded item
    scores = {item["item_id"]: item["score"] for item in recs(client, "u4", k=100)["items"]}
    assert scores["i8"] == pytest.approx(float(u4 @ expected), abs=1e-5)
    assert client.get("/items/i8/similar", params={"k": 1}).json()["source"] == "model"


# -- runs, health, docs -------------------------------------------------------------------------------------
def test_runs_newest_first_with_parsed_json(client: TestClient) -> None:
    runs = client.get("/runs").json()
    assert [r["id"] for r in runs] == ["R1", "R0"]
    r1, r0 = runs
    assert (r1["active"], r1["status"], r1["slot"], r1["checkpoint"], r1["top_k"]) == (True, "complete", "embedding_a", "/nonexistent/R1", 5)
    assert r1["params"] == {"dim": 4, "lr": 0.01} and r1["metrics"] == {"ndcg@10": 0.25} and r1["counts"] == {"users": 1}
    assert r1["activated_at"] and r1["created_at"] > r0["created_at"]
    assert (r0["active"], r0["status"], r0["slot"], r0["activated_at"], r0["params"]) == (False, "superseded", None, None, {"dim": 2})


def test_health_ready_and_docs(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "database": "neo4j", "run_id": "R1"}
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/users/{user_id}/recommendations", "/items", "/interactions", "/runs", "/ready"} <= set(spec["paths"])
    assert "APIKeyHeader" in spec["components"]["securitySchemes"]
    missing = client.get("/no/such/path")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}


def test_unreachable_neo4j_is_503_json() -> None:
    down = make_settings(neo4j_uri=f"bolt://127.0.0.1:{free_port()}", neo4j_password_="whatever-123", api_key_=KEY)
    with TestClient(create_app(down, neo4j_retry_seconds=0.5)) as client:
        assert client.get("/health").status_code == 200
        for method, path, body in (("GET", "/users/u1/recommendations", None), ("GET", "/runs", None),
                                   ("POST", "/interactions", {"event_id": "e", "user_id": "u", "item_id": "i"})):
            response = client.request(method, path, json=body, headers=AUTH)
            assert response.status_code == 503, (path, response.text)
            assert "cannot reach Neo4j" in response.json()["detail"]


def test_write_endpoints_without_a_configured_key_are_500_json() -> None:
    no_key = make_settings(neo4j_uri=f"bolt://127.0.0.1:{free_port()}", neo4j_password_="whatever-123")
    with TestClient(create_app(no_key), raise_server_exceptions=False) as client:
        response = client.post("/interactions", json={"event_id": "e", "user_id": "u", "item_id": "i"}, headers=AUTH)
    assert response.status_code == 500 and "KGREC_API_KEY is not set" in response.json()["detail"]


def test_api_recovers_when_neo4j_restarts(tmp_path: Path) -> None:
    server = LocalNeo4j(home=tmp_path / "neo4j", port=free_port(), password=secrets.token_urlsafe(12), heap="512m", pagecache="128m")
    server.start()
    try:
        settings = make_settings(neo4j_uri=server.uri, neo4j_password_=server.password, api_key_=KEY, data_dir=tmp_path / "data")
        with Graph.connect(settings) as graph:
            build_graph(graph)
        with TestClient(create_app(settings, neo4j_retry_seconds=1.0)) as client:
            assert recs(client, "u4")["source"] == "on_the_fly"
            server.stop()
            for path in ("/users/u1/recommendations", "/items/i5/similar"):
                down = client.get(path)
                assert down.status_code == 503 and "cannot reach Neo4j" in down.json()["detail"]
            ready = client.get("/ready")
            assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
            server.start()
            assert client.get("/ready").json() == {"status": "ready", "database": "neo4j", "run_id": "R1"}
            assert [i["item_id"] for i in recs(client, "u1")["items"]] == ["i2", "i6", "i5", "i3"]
    finally:
        server.stop()


@contextmanager
def kgrec_serve(settings: Settings, cwd: Path, *args: str, first: str = "/health") -> Iterator[tuple[subprocess.Popen, int, httpx.Response]]:
    """``kgrec serve ARGS`` on a free port, in its own process group: ``(process, port, the first answer to
    GET first)`` once it answers (at most 60 s); stopped with SIGTERM at the end."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kgrec", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env=cli_env(settings, KGREC_API_KEY=KEY), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}{first}", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode() if proc.poll() is not None else "no answer"
                time.sleep(0.3)
        yield proc, port, answer
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_kgrec_serve_runs_the_app(api_settings: Settings, tmp_path: Path) -> None:
    with kgrec_serve(api_settings, tmp_path) as (_, port, health):
        assert health.json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/docs", timeout=5).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10).status_code in (200, 503)


def test_kgrec_serve_with_workers_serves_from_each(api_settings: Settings, served: Graph, tmp_path: Path) -> None:
    with kgrec_serve(api_settings, tmp_path, "--workers", "2", first="/ready") as (proc, port, ready):
        assert ready.json() == {"status": "ready", "database": "neo4j", "run_id": "R1"}
        for _ in range(4):  # new connections: both workers answer
            body = httpx.get(f"http://127.0.0.1:{port}/users/u1/recommendations", timeout=10).json()
            assert body["source"] == "precomputed" and [i["item_id"] for i in body["items"]] == ["i2", "i6", "i5", "i3"]
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert len([w for w in workers if "spawn_main" in " ".join(w.cmdline())]) == 2
