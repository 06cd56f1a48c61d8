"""The ingest path against a real Neo4j: generic files, bad input, idempotency, failure and re-run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kgrec.db import Graph
from kgrec.graph_schema.migrations import apply_migrations
from kgrec.loaders.dataset import Dataset
from kgrec.loaders.ingest import DataFormatError, LoadError, LoadOptions, load_dataset, read_table
from tests.conftest import assert_one_line_error, cli_env, run_cli

QUIET = LoadOptions(progress=False)

COUNTS = (
    "CALL { MATCH (u:User) RETURN count(u) AS users } "
    "CALL { MATCH (i:Item) RETURN count(i) AS items } "
    "CALL { MATCH (e:Entity) RETURN count(e) AS entities } "
    "CALL { MATCH (r:Relation) RETURN count(r) AS relations } "
    "CALL { MATCH ()-[r:INTERACTED]->() RETURN count(r) AS interactions } "
    "CALL { MATCH (:Item)-[r:RELATES_TO]->() RETURN count(r) AS item_entity } "
    "CALL { MATCH (:Entity)-[r:RELATES_TO]->() RETURN count(r) AS entity_entity } "
    "CALL { MATCH ()-[r:FOLLOWS]->() RETURN count(r) AS follows } "
    "RETURN users, items, entities, relations, interactions, item_entity, entity_entity, follows"
)


def graph_counts(graph: Graph) -> dict[str, int]:
    return graph.read(COUNTS)[0]


def graph_state(graph: Graph) -> list[dict]:
    """Every node and relationship with its properties, in a canonical order (for exact comparisons)."""
    nodes = graph.read(
        "MATCH (n) WHERE NOT n:KgrecMigration RETURN labels(n) AS l, properties(n) AS p ORDER BY l, p.id, p.name"
    )
    rels = graph.read(
        "MATCH (a)-[r]->(b) RETURN type(r) AS t, coalesce(a.id, a.name) AS a, coalesce(b.id, b.name) AS b, "
        "properties(r) AS p ORDER BY t, a, b, p.relation, p.kind"
    )
    return nodes + rels


def write_files(tmp: Path) -> dict[str, Path]:
    files = {
        "interactions": "user_id,item_id,rating,timestamp,kind\nu1,i1,4.5,2021-03-04T05:06:07Z,rating\n"
        "u1,i2,3,1600000000,rating\nu2,i1,5,,rating\nu2,i3,,,view\nu3,i3,2,,rating\n",
        "items": "item_id,title,text,year\ni1,Blue Train,hard bop classic,1957\ni2,Kind of Blue,modal jazz,1959\n"
        "i3,Nevermind,grunge,1991\n",
        "entities": "entity_id,name,type\ng:jazz,Jazz,genre\ng:rock,Rock,genre\np:coltrane,John Coltrane,person\n",
        "item_entity": "item_id,relation,entity_id\ni1,has_genre,g:jazz\ni2,has_genre,g:jazz\ni3,has_genre,g:rock\n"
        "i1,features,p:coltrane\ni2,features,p:coltrane\n",
        "entity_entity": "head_id,relation,tail_id\np:coltrane,plays,g:jazz\n",
        "user_links": "user_id,other_id\nu1,u2\nu2,u1\nu3,u1\n",
    }
    paths = {}
    for table, text in files.items():
        paths[table] = tmp / f"{table}.csv"
        paths[table].write_text(text)
    return paths


def generic(paths: dict[str, Path]) -> Dataset:
    return Dataset("generic", **{t: read_table(p, t) for t, p in paths.items()})


def test_generic_files_load_exactly_and_twice_changes_nothing(graph: Graph, tmp_path: Path) -> None:
    apply_migrations(graph, dimension=384)
    dataset = generic(write_files(tmp_path))
    report = load_dataset(graph, dataset, QUIET)
    assert len(report.rejected) == 0
    assert graph_counts(graph) == {
        "users": 3, "items": 3, "entities": 3, "relations": 3, "interactions": 5,
        "item_entity": 5, "entity_entity": 1, "follows": 3,
    }
    row = graph.read(
        "MATCH (:User {id: 'u1'})-[r:INTERACTED]->(i:Item {id: 'i1'}) "
        "RETURN r.rating AS rating, toString(r.ts) AS ts, r.kind AS kind, i.year AS year, i.text AS text"
    )[0]
    assert row == {"rating": 4.5, "ts": "2021-03-04T05:06:07Z", "kind": "rating", "year": "1957", "text": "hard bop classic"}
    assert graph.read("MATCH (:User {id: 'u1'})-[r:INTERACTED]->(:Item {id: 'i2'}) RETURN toString(r.ts) AS ts")[0][
        "ts"] == "2020-09-13T12:26:40Z"
    state = graph_state(graph)
    again = load_dataset(graph, generic(write_files(tmp_path)), QUIET)
    assert sum(again.created.values()) == 0
    assert graph_state(graph) == state


def test_cli_load_generic_with_column_mapping(settings, graph: Graph, tmp_path: Path) -> None:
    (tmp_path / "ratings.tsv").write_text("userId\tmovieId\trating\n1\t10\t4\n2\t10\t3\n")
    (tmp_path / "movies.tsv").write_text("movieId\tname\n10\tHeat\n")
    result = run_cli(
        "load", "generic", "--interactions", "ratings.tsv", "--items", "movies.tsv",
        "--map", "interactions.user_id=userId", "--map", "interactions.item_id=movieId",
        "--map", "items.item_id=movieId", "--map", "items.title=name", "--no-progress",
        env=cli_env(settings), cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "interactions │ 2" in result.stdout.replace("  ", " ") or "interactions" in result.stdout
    assert graph_counts(graph)["interactions"] == 2
    assert graph.read("MATCH (i:Item) RETURN i.id AS id, i.title AS title") == [{"id": "10", "title": "Heat"}]


def test_cli_missing_column_is_one_line(settings, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("user,item\n1,2\n")
    result = run_cli("load", "generic", "--interactions", "bad.csv", env=cli_env(settings), cwd=tmp_path)
    assert_one_line_error(result, "interactions file bad.csv lacks column(s) ['user_id', 'item_id']", "--map")


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="does not exist"):
        read_table(tmp_path / "nope.csv", "interactions")
    with pytest.raises(DataFormatError, match="is a directory, not a file"):
        read_table(tmp_path, "interactions")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataFormatError, match="unknown format '.json'"):
        read_table(tmp_path / "x.json", "interactions")


def test_bad_rows_are_rejected_and_the_rest_loads(graph: Graph, tmp_path: Path) -> None:
    """The reasons themselves are checked in tests/unit/test_validate.py; here: the file and the graph."""
    from tests.unit.test_validate import bad_dataset

    rejects_file = tmp_path / "rejects.csv"
    report = load_dataset(graph, bad_dataset(), LoadOptions(unknown_relations="reject", progress=False),
                          rejects_path=rejects_file)
    on_disk = pd.read_csv(rejects_file)
    assert len(on_disk) == len(report.rejected) == 9 and list(on_disk.columns) == ["table", "row", "reason", "record"]
    assert report.rejected_counts() == {"interactions": 6, "items": 2, "item_entity": 1}
    assert graph_counts(graph) == {
        "users": 1, "items": 1, "entities": 1, "relations": 1, "interactions": 1,
        "item_entity": 1, "entity_entity": 0, "follows": 0,
    }


def test_unknown_references_can_create_nodes(graph: Graph) -> None:
    dataset = Dataset(
        "create",
        interactions=pd.DataFrame({"user_id": ["u1"], "item_id": ["i-new"]}),
        item_entity=pd.DataFrame({"item_id": ["i-new"], "relation": ["tag"], "entity_id": ["e-new"]}),
    )
    rejected = load_dataset(graph, dataset, QUIET).rejected
    assert sorted(zip(rejected["table"], rejected["reason"])) == [  # one reason per row: the first found
        ("interactions", "unknown item 'i-new' (item_id)"), ("item_entity", "unknown item 'i-new' (item_id)")]
    assert graph_counts(graph)["relations"] == 0  # nothing registered for rows that were rejected
    report = load_dataset(graph, dataset, LoadOptions(unknown_refs="create", progress=False))
    assert len(report.rejected) == 0
    assert graph.read("MATCH (i:Item)-[:RELATES_TO {relation: 'tag'}]->(e:Entity) RETURN i.title AS t, e.name AS n") == [
        {"t": "i-new", "n": "e-new"}]
    assert graph.read("MATCH (r:Relation) RETURN r.name AS name") == [{"name": "tag"}]  # registered


def test_references_to_nodes_already_in_the_graph_are_fine(graph: Graph) -> None:
    graph.write("CREATE (:Item {id: 'old', title: 'Old'}), (:User {id: 'u0'})")
    dataset = Dataset("more", interactions=pd.DataFrame({"user_id": ["u1"], "item_id": ["old"]}),
                      user_links=pd.DataFrame({"user_id": ["u1"], "other_id": ["u0"]}))
    report = load_dataset(graph, dataset, QUIET)
    assert len(report.rejected) == 0 and report.written == {"interactions": 1, "user_links": 1}


def test_failure_half_way_leaves_whole_batches_and_a_rerun_completes(graph: Graph, monkeypatch, tmp_path: Path) -> None:
    apply_migrations(graph, dimension=384)
    n = 1000
    dataset = Dataset(
        "big",
        interactions=pd.DataFrame({"user_id": [f"u{i % 37}" for i in range(n)], "item_id": [f"i{i}" for i in range(n)],
                                   "weight": [str(i) for i in range(n)]}),
        items=pd.DataFrame({"item_id": [f"i{i}" for i in range(n)], "title": [f"Item {i}" for i in range(n)]}),
    )
    options = LoadOptions(batch_size=100, progress=False)
    real = Graph.write_returning
    calls = {"n": 0}

    def flaky(self, query, **params):
        calls["n"] += 1
        if "INTERACTED" in query and calls["n"] > 10 + 4:  # items: 10 batches; interactions: fail on the 5th
            raise RuntimeError("connection lost")
        return real(self, query, **params)

    monkeypatch.setattr(Graph, "write_returning", flaky)
    with pytest.raises(LoadError, match=r"loading interactions stopped at source rows 401-500: connection lost\. "
                                        r"Earlier batches are committed"):
        load_dataset(graph, dataset, options)
    assert graph_counts(graph)["interactions"] == 400  # four whole batches, nothing of the fifth
    monkeypatch.setattr(Graph, "write_returning", real)
    load_dataset(graph, dataset, options)
    interrupted = graph_state(graph)

    from tests.conftest import wipe
    wipe(graph)
    apply_migrations(graph, dimension=384)
    load_dataset(graph, dataset, options)
    assert graph_state(graph) == interrupted  # the same graph as an uninterrupted load


def test_a_failing_batch_is_atomic(graph: Graph, monkeypatch) -> None:
    """The database refuses the batch after it merged some of its rows: none of them stay. (Values it cannot
    store are refused by validation before any write; here the query itself fails, on the second row.)"""
    from kgrec.graph_schema import queries as q

    failing = q.MERGE_ITEMS.replace("RETURN count(i) AS written", "WITH i, row RETURN sum(1 / (size(row.id) - 1)) AS written")
    monkeypatch.setattr(q, "MERGE_ITEMS", failing)
    items = pd.DataFrame({"item_id": ["aa", "b", "cc"], "title": ["A", "B", "C"]})
    with pytest.raises(LoadError, match="loading items stopped at source rows 1-3: .*/ by zero.*this one is not"):
        load_dataset(graph, Dataset("atomic", interactions=pd.DataFrame({"user_id": [], "item_id": []}), items=items), QUIET)
    assert graph_counts(graph)["items"] == 0


def test_reserved_item_columns_are_refused(graph: Graph) -> None:
    items = pd.DataFrame({"item_id": ["a"], "title": ["A"], "embedding_a": ["x"]})
    with pytest.raises(DataFormatError, match=r"\['embedding_a'\] are written by kgrec itself"):
        load_dataset(graph, Dataset("r", interactions=pd.DataFrame({"user_id": [], "item_id": []}), items=items), QUIET)


def test_a_new_users_interactions_across_batches_are_created_once(graph: Graph) -> None:
    """A new user's rows are CREATEd without MERGE's check only in the batch where the user first appears
    (batches are prepared ahead of the write); later batches and a second load MERGE."""
    graph.write("UNWIND range(1, 5) AS n CREATE (:Item {id: 'i' + n, title: 'T' + n})")
    interactions = pd.DataFrame({"user_id": ["new"] * 5, "item_id": [f"i{n}" for n in range(1, 6)],
                                 "weight": [1.0, 2.0, 3.0, 4.0, 5.0]})
    dataset = Dataset("spread", interactions=interactions)
    first = load_dataset(graph, dataset, LoadOptions(batch_size=2, progress=False))
    again = load_dataset(graph, dataset, LoadOptions(batch_size=2, progress=False))
    rows = graph.read("MATCH (:User {id: 'new'})-[r:INTERACTED]->(i) RETURN i.id AS item, r.weight AS w ORDER BY item")
    assert rows == [{"item": f"i{n}", "w": float(n)} for n in range(1, 6)]
    assert first.created["interactions"] == 6 and again.created["interactions"] == 0  # 5 relationships + the user
