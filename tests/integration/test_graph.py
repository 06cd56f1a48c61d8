"""Reads, writes, migrations, the vector index and the schema check against a real Neo4j."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from kgrec.api.app import create_app
from kgrec.db import Graph
from kgrec.errors import Neo4jAuthError, SchemaError
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.check import check_graph
from kgrec.graph_schema.migrations import MIGRATIONS, apply_migrations
from kgrec.model.text import resolve_model
from tests.conftest import assert_one_line_error, cli_env, free_port, make_settings, run_cli

MERGE_USERS = "UNWIND $rows AS row MERGE (u:User {id: row.id}) SET u.age = row.age"


def test_write_and_read_nodes_over_bolt(graph: Graph) -> None:
    rows = [{"id": f"u{i}", "age": 20 + i} for i in range(12)]
    counters = graph.write_rows(MERGE_USERS, rows, batch_size=5)
    assert counters["nodes_created"] == 12
    assert graph.write_rows(MERGE_USERS, rows, batch_size=5)["nodes_created"] == 0  # MERGE: same graph again
    back = graph.read("MATCH (u:User) RETURN u.id AS id, u.age AS age ORDER BY u.age")
    assert back == rows
    df = graph.read_df("MATCH (u:User) WHERE u.age > $min RETURN u.id AS id ORDER BY id", min=29)
    assert list(df.columns) == ["id"] and sorted(df["id"]) == ["u10", "u11"]


def test_migrations_are_idempotent(graph: Graph) -> None:
    first = apply_migrations(graph, dimension=384)
    assert [m.version for m in first] == [m.version for m in MIGRATIONS]
    indexes = graph.read(q.SHOW_INDEXES)
    constraints = graph.read(q.SHOW_CONSTRAINTS)
    assert apply_migrations(graph, dimension=384) == []
    assert graph.read(q.SHOW_INDEXES) == indexes and graph.read(q.SHOW_CONSTRAINTS) == constraints
    assert graph.read("MATCH (m:KgrecMigration) RETURN count(m) AS n")[0]["n"] == len(MIGRATIONS)
    assert all(i["state"] == "ONLINE" for i in indexes)
    assert {c["name"] for c in constraints} >= {"user_id", "item_id", "entity_id"}
    with pytest.raises(Exception, match="already exists"):  # the uniqueness constraint holds
        graph.write("CREATE (:Item {id: 'x'}) CREATE (:Item {id: 'x'})")


def test_vector_index_answers_a_query_with_real_text_embeddings(graph: Graph) -> None:
    from sentence_transformers import SentenceTransformer

    apply_migrations(graph, dimension=384)
    items = {
        "i1": "A space crew travels through a wormhole to save humanity",
        "i2": "A romantic comedy about two chefs in Paris",
        "i3": "Astronauts stranded on Mars grow potatoes to survive",
        "i4": "A courtroom drama about a wrongly accused man",
    }
    graph.write("UNWIND $rows AS row CREATE (:Item {id: row.id, title: row.title})",
                rows=[{"id": k, "title": v} for k, v in items.items()])
    model = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu")
    vectors = model.encode(list(items.values()), normalize_embeddings=True)
    rows = [{"id": k, "vector": v.tolist(), "hash": str(hash(t))} for (k, t), v in zip(items.items(), vectors)]
    graph.write(q.SET_ITEM_TEXT_EMBEDDINGS, rows=rows, model="all-MiniLM-L6-v2")
    graph.run_autocommit(q.AWAIT_INDEXES, timeout_seconds=60)

    for text, expected_top in [("astronauts on a spaceship", {"i1", "i3"}), ("a love story with cooking", {"i2"})]:
        query = model.encode(text, normalize_embeddings=True)
        hits = graph.read(q.QUERY_SIMILAR_ITEMS, index=q.ITEM_TEXT_INDEX, k=4, vector=query.tolist())
        assert {h["id"] for h in hits[: len(expected_top)]} == expected_top, (text, hits)
        # the index ranks and scores as exact cosine on the stored vectors does
        exact = (1 + vectors @ query) / 2  # Neo4j rescales cosine similarity to [0, 1]
        assert [h["id"] for h in hits] == [list(items)[i] for i in np.argsort(-exact)]
        for h in hits:
            assert h["score"] == pytest.approx(float(exact[list(items).index(h["id"])]), abs=5e-3)  # Lucene scores are close, not bit-exact
    stored = graph.read("MATCH (i:Item {id: 'i2'}) RETURN i.text_embedding AS v, i.text_model AS m")[0]
    assert np.allclose(stored["v"], vectors[1], atol=1e-6) and stored["m"] == "all-MiniLM-L6-v2"


def test_vector_dimension_change_needs_recreate(graph: Graph) -> None:
    apply_migrations(graph, dimension=384)
    with pytest.raises(SchemaError, match="has 384 dimensions"):
        apply_migrations(graph, dimension=768)
    apply_migrations(graph, dimension=768, recreate_vector_index=True)
    index = next(i for i in graph.read(q.SHOW_INDEXES) if i["name"] == q.ITEM_TEXT_INDEX)
    assert index["dimensions"] == 768 and index["state"] == "ONLINE"


def test_schema_check_clean_graph(graph: Graph) -> None:
    apply_migrations(graph, dimension=384)
    graph.write(
        "CREATE (u:User {id: 'u1'})-[:INTERACTED {weight: 1.0}]->(i:Item {id: 'i1', title: 'T', text: 'some text'}) "
        "CREATE (i)-[:RELATES_TO {relation: 'genre'}]->(:Entity {id: 'e1', name: 'Jazz', type: 'genre'}) "
        "CREATE (:Relation {name: 'genre'})"
    )
    assert check_graph(graph) == []


def test_schema_check_finds_hand_edited_problems_and_writes_nothing(graph: Graph) -> None:
    graph.write(
        "CREATE (u:User {id: 'u1'}), (i:Item {id: 'i1', title: 'Has text', text: 'x'}), (:Item {id: 'i2'}), "
        "(:Item {id: 'i1', title: 'dup', text: 'y'}), (e:Entity {id: 'e1', name: 'orphan'}), "
        "(e2:Entity {id: 'e2', name: 'Rock'}), (:Genre {name: 'legacy'}), "
        "(u)-[:LIKES]->(i), (i)-[:RELATES_TO]->(e2), (i)-[:RELATES_TO {relation: 'gnre'}]->(e2), "
        "(u)-[:INTERACTED]->(e2), (u)-[:INTERACTED {kind: 'view'}]->(i), (u)-[:INTERACTED {kind: 'view'}]->(i), "
        "(u)-[:INTERACTED {kind: 'view', event_id: 'e1'}]->(i), (u)-[:INTERACTED {kind: 'buy'}]->(i), "
        "(i)-[:RELATES_TO {relation: 'gnre'}]->(e2), (u)-[:FOLLOWS]->(u2:User {id: 'u2'}), (u)-[:FOLLOWS]->(u2), "
        "(:Item {id: 42, title: 'numeric id', text: 'x'}), (:Item {id: 'i3', title: 1984, text: ['a', 'list']}), "
        "(u)-[:INTERACTED {ts: '2026-12-01', weight: 3}]->(i)"
    )
    before = graph.read("MATCH (n) OPTIONAL MATCH (n)-[r]->() RETURN count(DISTINCT n) AS n, count(r) AS r")
    findings = {(f.check, f.subject): f for f in check_graph(graph)}
    assert graph.read("MATCH (n) OPTIONAL MATCH (n)-[r]->() RETURN count(DISTINCT n) AS n, count(r) AS r") == before

    assert findings[("missing required property", "Item.title")].count == 1
    assert findings[("missing required property", "RELATES_TO.relation")].count == 1
    assert findings[("unknown relationship type", "LIKES")].sample == ["u1 -> i1"]
    assert findings[("unknown label", "Genre")].count == 1
    assert findings[("duplicate id", "Item.id")].sample == ["i1"]  # no constraint yet: the check looks
    assert findings[("wrong endpoints", "INTERACTED")].sample == ["u1 -> e2"]
    assert findings[("unregistered relation", "RELATES_TO.relation")].sample == ["gnre"]
    # hand-set values of the wrong type (each made export or refresh fail with a traceback)
    assert findings[("wrong property type", "Item.id")].sample[0].endswith(": INTEGER NOT NULL")
    assert findings[("wrong property type", "Item.title")].sample == ["i3: INTEGER NOT NULL"]
    assert findings[("wrong property type", "Item.text")].sample == ["i3: LIST<STRING NOT NULL> NOT NULL"]
    assert findings[("wrong property type", "INTERACTED.ts")].sample == ["u1 -> i1: STRING NOT NULL"]
    assert ("wrong property type", "INTERACTED.weight") not in findings  # an integer where a float goes is fine
    # the API's event (event_id) and the other kind are not duplicates of the two loaded views
    assert findings[("duplicate link", "INTERACTED")].sample == ["u1 -> i1 (view)"]
    assert findings[("duplicate link", "INTERACTED")].severity == "error"
    assert findings[("duplicate link", "RELATES_TO")].sample == ["i1 -> e2 (gnre)"]
    assert findings[("duplicate link", "FOLLOWS")].sample == ["u1 -> u2"]
    assert findings[("entity linked to nothing", "Entity")].sample == ["e1"]
    assert {("item without text", "Item.text")} <= findings.keys()
    assert findings[("unknown relationship type", "LIKES")].severity == "error"


def test_cli_wrong_password_is_one_line(settings, tmp_path) -> None:
    env = cli_env(settings, NEO4J_PASSWORD="not-the-password")
    result = run_cli("schema", "check", env=env, cwd=tmp_path)
    assert_one_line_error(result, "refused the credentials of user 'neo4j'", "NEO4J_PASSWORD")


def test_graph_connect_wrong_password(settings) -> None:
    bad = make_settings(neo4j_uri=settings.neo4j_uri, neo4j_password_="not-the-password")
    with pytest.raises(Neo4jAuthError):
        Graph.connect(bad)


def test_cli_schema_apply_show_check(settings, graph: Graph, tmp_path) -> None:
    env = cli_env(settings)
    applied = run_cli("schema", "apply", env=env, cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert "Applied 5 migration(s); vector index dimension 384." in applied.stdout
    again = run_cli("schema", "apply", env=env, cwd=tmp_path)
    assert "The schema is up to date." in again.stdout
    shown = run_cli("schema", "show", env=env, cwd=tmp_path)
    assert shown.returncode == 0 and "item_text_embedding" in shown.stdout and "erDiagram" in shown.stdout
    assert "label or type" in shown.stdout and "INTERACTED" in shown.stdout  # the counts, from fingerprint()
    graph.write("CREATE (:Item {id: 'i9'})")
    checked = run_cli("schema", "check", env=env, cwd=tmp_path)
    assert checked.returncode == 1 and "Item.title" in checked.stdout


def test_api_health_and_ready(settings, graph: Graph) -> None:  # graph: a wiped database, no run
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").json() == {"status": "ok"}
        ready = client.get("/ready")  # Neo4j answers, but ready needs an active run too (tests/integration/test_api.py)
        assert ready.status_code == 503 and ready.json()["status"] == "no_active_run"
    down = make_settings(neo4j_uri=f"bolt://127.0.0.1:{free_port()}", neo4j_password_="whatever-123")
    with TestClient(create_app(down)) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503 and "cannot reach Neo4j" in ready.json()["detail"]
