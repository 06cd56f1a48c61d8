"""The whole loop against a real Neo4j: `kgrec run`, an interrupted write-back under a serving API, the
knowledge-engineer loop (`kgrec refresh`) and every query of docs/cypher.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from kgrec.api.app import create_app
from kgrec.config import Settings
from kgrec.db import Graph
from kgrec.errors import KgrecError
from kgrec.graph_schema.migrations import apply_migrations
from kgrec.loaders import writeback
from kgrec.loaders.ingest import LoadOptions, load_dataset
from kgrec.loaders.synth import SynthConfig, make_synthetic
from kgrec.model.kgrec_net import KGRecConfig
from kgrec.model.training import TrainConfig
from kgrec.pipeline import PipelineConfig, run_pipeline
from kgrec.refresh import refresh

ROOT = Path(__file__).resolve().parents[2]
TOP_K = 8
FAST = TrainConfig(epochs=6, lr=1e-2, batch_size=4096, eval_every=2, patience=3)


def config(run_id: str, **overrides) -> PipelineConfig:
    return PipelineConfig(**{"run_id": run_id, "top_k": TOP_K, "model": KGRecConfig(dim=16, num_layers=2), "train": FAST,
                             **overrides})


@pytest.fixture
def loaded(graph: Graph) -> Graph:
    apply_migrations(graph, dimension=384)
    dataset = make_synthetic(SynthConfig(users=40, items=60, entities=15, interactions=900, topics=4, seed=1))
    load_dataset(graph, dataset, LoadOptions(progress=False))
    return graph


def lists(graph: Graph, run_id: str) -> dict[str, list[tuple[str, float, int]]]:
    rows = graph.read(
        "MATCH (u:User)-[r:RECOMMENDED]->(i:Item) WHERE r.run = $run "
        "RETURN u.id AS user, i.id AS item, r.score AS score, r.rank AS rank ORDER BY user, rank", run=run_id)
    out: dict[str, list] = {}
    for row in rows:
        out.setdefault(row["user"], []).append((row["item"], row["score"], row["rank"]))
    return out


def test_run_writes_a_complete_active_run(loaded: Graph, settings: Settings) -> None:
    result = run_pipeline(loaded, settings, config("a"))
    run = loaded.read("MATCH (r:ModelRun {id: 'a'}) RETURN r.active AS active, r.status AS status, "
                      "r.checkpoint AS checkpoint, r.metrics AS metrics, r.embedding_slot AS slot")[0]
    assert run["active"] and run["status"] == "complete" and Path(run["checkpoint"], "kgrec.pt").is_file()
    assert json.loads(run["metrics"])["ndcg@20"] == pytest.approx(result.metrics["ndcg@20"])
    users = [r["id"] for r in loaded.read("MATCH (u:User) RETURN u.id AS id")]
    got = lists(loaded, "a")
    assert sorted(got) == sorted(users) and all(len(v) == TOP_K for v in got.values())
    seen = loaded.read("MATCH (u:User)-[:INTERACTED]->(i) RETURN u.id AS user, collect(i.id) AS items")
    for row in seen:
        recs = got[row["user"]]
        assert not set(row["items"]) & {item for item, _, _ in recs}  # nothing the user already has
        assert [rank for _, _, rank in recs] == list(range(1, TOP_K + 1))
        assert [s for _, s, _ in recs] == sorted((s for _, s, _ in recs), reverse=True)
    explanation = json.loads(loaded.read("MATCH ()-[r:RECOMMENDED {run: 'a', rank: 1}]->() RETURN r.explanation AS e LIMIT 1")[0]["e"])
    assert set(explanation) == {"text", "fusion", "channel_share", "paths"} and explanation["text"]
    assert explanation["channel_share"] == pytest.approx(json.loads(run["metrics"])["channel_share"], abs=1e-4)
    assert all(0 <= p["weight"] <= 1 for p in explanation["paths"])
    assert sum(explanation["fusion"].values()) == pytest.approx(1.0, abs=1e-3)
    # the stored embeddings: one per node; with the neighbourhood channel off they score as the lists say
    slot = run["slot"]
    assert loaded.read(f"MATCH (n) WHERE (n:User OR n:Item) AND size(n.{slot}) = 16 RETURN count(n) AS n")[0]["n"] == \
        loaded.read("MATCH (n) WHERE n:User OR n:Item RETURN count(n) AS n")[0]["n"]
    if json.loads(run["metrics"])["channel_share"] == 0:
        user, (item, score, _) = next(iter(got.items()))[0], next(iter(got.values()))[0]
        vectors = loaded.read(f"MATCH (u:User {{id: $u}}), (i:Item {{id: $i}}) RETURN u.{slot} AS u, i.{slot} AS i", u=user, i=item)[0]
        assert float(np.dot(vectors["u"], vectors["i"])) == pytest.approx(score, rel=1e-4)

    again = run_pipeline(loaded, settings, config("b", checkpoint=result.checkpoint))  # load, do not train
    reloaded = lists(loaded, "b")  # the same model on the same graph: the same lists
    assert {u: [i for i, _, _ in v] for u, v in reloaded.items()} == {u: [i for i, _, _ in v] for u, v in got.items()}
    assert [s for v in reloaded.values() for _, s, _ in v] == pytest.approx([s for v in got.values() for _, s, _ in v], rel=1e-4)
    assert again.previous == "a"
    # a run id names the run's folder: one that is not a plain name is refused before any work
    for bad in ("../../escaped", "runs/x"):
        with pytest.raises(writeback.WriteBackError, match="not a plain name"):
            run_pipeline(loaded, settings, config(bad))
        with pytest.raises(writeback.WriteBackError, match="not a plain name"):
            refresh(loaded, settings, run_id=bad)
    assert not (settings.data_dir.parent / "escaped").exists() and not (settings.data_dir / "runs" / "runs").exists()


def test_a_run_trained_on_neighbour_sampled_batches(loaded: Graph, settings: Settings) -> None:
    import torch

    model = KGRecConfig(dim=16, num_layers=2, num_neighbors=4)
    train = TrainConfig(epochs=4, lr=1e-2, batch_size=256, eval_every=2, patience=3)
    result = run_pipeline(loaded, settings, config("s", model=model, train=train))
    run = loaded.read("MATCH (r:ModelRun {id: 's'}) RETURN r.active AS active, r.status AS status")[0]
    assert run["active"] and run["status"] == "complete"
    users = loaded.read("MATCH (u:User) RETURN count(u) AS n")[0]["n"]
    got = lists(loaded, "s")
    assert len(got) == users and all(len(v) == TOP_K for v in got.values())
    saved = torch.load(result.checkpoint, weights_only=False)  # the run's kgrec.pt
    assert saved["config"]["num_neighbors"] == 4 and 0 < result.metrics["ndcg@20"] <= 1


def test_an_interrupted_write_back_leaves_the_previous_run_served(loaded: Graph, settings: Settings, monkeypatch) -> None:
    run_pipeline(loaded, settings, config("a"))
    served = lists(loaded, "a")
    original = writeback.write_recommendations

    def dies_half_way(graph, run, recommendations, batch_users=500):
        first = recommendations[recommendations["user_id"].isin(sorted(set(recommendations["user_id"]))[:10])]
        original(graph, run, first, batch_users=5)
        raise KeyboardInterrupt("killed during write-back")

    monkeypatch.setattr(writeback, "write_recommendations", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(loaded, settings, config("b"))
    runs = {r["id"]: r for r in loaded.read("MATCH (r:ModelRun) RETURN r.id AS id, r.active AS active, r.status AS status")}
    assert runs["a"]["active"] and not runs["b"]["active"] and runs["b"]["status"] == "writing"
    assert 0 < len(lists(loaded, "b")) < len(served)  # b's lists exist half-way ...
    with TestClient(create_app(settings)) as client:  # ... and the API serves a, whole
        for user, recs in served.items():
            body = client.get(f"/users/{user}/recommendations", params={"k": TOP_K}).json()
            assert body["run_id"] == "a" and body["source"] == "precomputed"
            assert [x["item_id"] for x in body["items"]] == [item for item, _, _ in recs]
        assert client.get("/ready").status_code == 200


def test_refresh_picks_up_an_added_and_a_removed_link(loaded: Graph, settings: Settings) -> None:
    loaded.write("CREATE (:User {id: 'ucold'})")  # no interactions: its row is never trained
    run_pipeline(loaded, settings, PipelineConfig(run_id="a", top_k=40, model=KGRecConfig(dim=16, num_layers=2), train=FAST))
    checkpoint = (settings.data_dir / "runs" / "a" / "kgrec.pt").read_bytes()
    with pytest.raises(KgrecError, match="a ModelRun 'a' exists already"):
        refresh(loaded, settings, run_id="a")
    assert (settings.data_dir / "runs" / "a" / "kgrec.pt").read_bytes() == checkpoint  # refused before any work
    nothing = refresh(loaded, settings, run_id="r0")
    assert nothing.changes["links_added"] == nothing.changes["links_removed"] == nothing.changes["links_ignored"] == 0
    assert nothing.changes["items_changed"] == 0 and nothing.changes["users_changed"] == 0
    for run in ("a", "r0"):  # neither a list nor an embedding: the API serves the user popular items
        assert not lists(loaded, run).get("ucold")
    assert loaded.read("MATCH (u:User {id: 'ucold'}) RETURN u.embedding_a IS NULL AND u.embedding_b IS NULL AS none")[0]["none"]
    with TestClient(create_app(settings)) as client:
        assert client.get("/users/ucold/recommendations").json()["source"] == "popular"

    # a user's top item, and an entity of one of the user's items that the top item lacks
    user, item = "u0", lists(loaded, "r0")["u0"][0][0]
    entity, relation = next(
        (r["entity"], r["relation"]) for r in loaded.read(
            "MATCH (:User {id: $u})-[:INTERACTED]->(:Item)-[k:RELATES_TO]->(e:Entity) "
            "WHERE NOT (:Item {id: $i})-[:RELATES_TO]->(e) RETURN e.id AS entity, k.relation AS relation ORDER BY entity",
            u=user, i=item))
    def live_paths() -> tuple[int, set[str]] | None:
        with TestClient(create_app(settings)) as client:
            response = client.get(f"/users/{user}/recommendations/{item}/explanation")
        if response.status_code == 404:  # the item left the user's stored list
            return None
        paths = response.json()["live"]["entity"]
        return paths["count"], {p["entity"] for p in paths["paths"]}

    def stored(run: str) -> dict | None:
        rows = loaded.read("MATCH (:User {id: $u})-[r:RECOMMENDED {run: $run}]->(:Item {id: $i}) RETURN r.explanation AS e",
                           u=user, i=item, run=run)
        return json.loads(rows[0]["e"]) if rows else None

    before_paths = live_paths()
    loaded.write("MATCH (i:Item {id: $i}), (e:Entity {id: $e}) CREATE (i)-[:RELATES_TO {relation: $r}]->(e)",
                 i=item, e=entity, r=relation)
    added = refresh(loaded, settings, run_id="r1")
    assert added.changes["links_added"] == 1 and added.changes["links_removed"] == 0
    assert item in added.changed_items
    before, after = dict((i, s) for i, s, _ in lists(loaded, "r0")[user]), dict((i, s) for i, s, _ in lists(loaded, "r1")[user])
    assert after.get(item) != before[item]  # its score moved (or it left the list)
    if item in after:  # the stored explanation was recomputed: its knowledge paths or fusion weights moved
        assert stored("r1") != stored("r0")
    now = live_paths()
    if now is not None:  # the new link is a new path from the user's history to the item
        assert now[0] > before_paths[0] and (entity in now[1] or now[0] > 5)

    loaded.write("MATCH (:Item {id: $i})-[k:RELATES_TO {relation: $r}]->(:Entity {id: $e}) DELETE k", i=item, e=entity, r=relation)
    removed = refresh(loaded, settings, run_id="r2")
    assert removed.changes["links_removed"] == 1 and item in removed.changed_items
    restored = dict((i, s) for i, s, _ in lists(loaded, "r2")[user])
    assert restored[item] == pytest.approx(before[item], rel=1e-5)  # back where it was

    # a link of a relation the model never learnt is left out, and counted apart, not as added on every refresh
    loaded.write("MATCH (i:Item {id: $i}), (e:Entity {id: $e}) CREATE (i)-[:RELATES_TO {relation: 'never_learnt'}]->(e)",
                 i=item, e=entity)
    for run_id in ("r3", "r4"):
        ignored = refresh(loaded, settings, run_id=run_id)
        assert (ignored.changes["links_added"], ignored.changes["links_removed"], ignored.changes["links_ignored"]) == (0, 0, 1)


# -- docs/cypher.md -----------------------------------------------------------------------------------------
def cookbook() -> list[tuple[str, dict, str]]:
    text = (ROOT / "docs" / "cypher.md").read_text()
    blocks = re.findall(r"```cypher\n(.*?)```", text, flags=re.S)
    out = []
    for block in blocks:
        first, _, query = block.partition("\n")
        match = re.fullmatch(r"// params: (\{.*\})", first.strip())
        assert match, f"a cookbook block lacks its '// params:' line: {first!r}"
        out.append((first, json.loads(match.group(1)), query))
    return out


def test_every_cookbook_query_runs_and_answers(loaded: Graph, settings: Settings) -> None:
    queries = cookbook()
    assert len(queries) >= 10
    run_pipeline(loaded, settings, config("a"))
    run_pipeline(loaded, settings, config("b", train=TrainConfig(**{**FAST.as_dict(), "seed": 1})))
    ids = {"<older run id>": "a", "<newer run id>": "b"}
    entity = loaded.read("MATCH (:User {id: 'u1'})-[r:RECOMMENDED {run: 'b'}]->(:Item)-[:RELATES_TO]->(e:Entity) "
                         "RETURN e.id AS e ORDER BY r.rank LIMIT 1")[0]["e"]
    expected_top = [i for i, _, _ in lists(loaded, "b")["u1"]]
    for first, params, query in queries:
        params = {k: ids.get(v, entity if k == "entity" else v) for k, v in params.items()}
        if "rank" in params:  # path queries: some recommendation of some user has such paths
            tries = [{**params, "user": f"u{u}", "rank": r} for u in range(40) for r in range(1, TOP_K + 1)]
            rows = next((rows for p in tries if (rows := loaded.read(query, **p))), [])
        else:
            rows = loaded.read(query, **params)
        assert rows, f"no rows for {first}\n{query}"
        if "r.score AS score, r.rank AS rank\nORDER BY r.rank" in query and "entity" not in params:
            assert [r["item"] for r in rows] == expected_top[: params["k"]]
