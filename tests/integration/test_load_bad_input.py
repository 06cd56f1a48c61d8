"""Bad input against a real Neo4j: a load that refuses its input writes nothing at all, and what validation
refuses as a property value is what Neo4j refuses too."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from neo4j.exceptions import Neo4jError
from typer.testing import CliRunner

from kgrec.config import get_settings
from kgrec.db import Graph
from kgrec.graph_schema import queries as q
from kgrec.loaders.dataset import Dataset
from kgrec.loaders.ingest import DataFormatError, LoadError, LoadOptions, load_dataset, read_table
from tests.conftest import assert_one_line_error, cli_env, run_cli
from tests.integration.test_ingest import generic, graph_counts, write_files

QUIET = LoadOptions(progress=False)
EMPTY = {"users": 0, "items": 0, "entities": 0, "relations": 0, "interactions": 0,
         "item_entity": 0, "entity_entity": 0, "follows": 0}


def test_reserved_item_column_writes_nothing(graph: Graph, tmp_path: Path) -> None:
    paths = write_files(tmp_path)
    paths["items"].write_text("item_id,title,embedding_a\ni1,Blue Train,x\ni2,Kind of Blue,y\ni3,Nevermind,z\n")
    with pytest.raises(DataFormatError, match=r"items\.csv: column\(s\) \['embedding_a'\] are written by kgrec itself"):
        load_dataset(graph, generic(paths), QUIET)
    assert graph_counts(graph) == EMPTY  # relations and entities come first in the write order


def test_unstorable_parquet_column_writes_nothing(graph: Graph, tmp_path: Path) -> None:
    paths = write_files(tmp_path)
    paths["items"] = tmp_path / "items.parquet"
    pd.DataFrame({"item_id": ["i1", "i2", "i3"], "title": ["Blue Train", "Kind of Blue", "Nevermind"],
                  "meta": [{"label": "Blue Note"}, None, {"label": "DGC"}]}).to_parquet(paths["items"], index=False)
    with pytest.raises(DataFormatError, match=rf"^items file {paths['items']}: column 'meta' cannot be stored in Neo4j: "
                                              r"data row 1 holds \{'label': 'Blue Note'\} \(a map\)"):
        load_dataset(graph, generic(paths), QUIET)
    assert graph_counts(graph) == EMPTY


@pytest.mark.parametrize(
    "value",
    [{"k": 1}, ["a", ["b"]], ["a", 1], [True, 1], ["a", None], 2**63],
    ids=["map", "nested", "mixed", "bool-int", "null-inside", "int-65-bits"],
)
def test_what_validation_refuses_neo4j_refuses(graph: Graph, value: object) -> None:
    items = pd.DataFrame({"item_id": ["a"], "title": ["A"], "extra": [value]})
    with pytest.raises(DataFormatError, match="column 'extra' cannot be stored in Neo4j"):
        load_dataset(graph, Dataset("v", interactions=pd.DataFrame({"user_id": [], "item_id": []}), items=items), QUIET)
    with pytest.raises((Neo4jError, TypeError, ValueError, OverflowError)):
        graph.write_returning(q.MERGE_ITEMS, rows=[{"id": "a", "props": {"title": "A", "extra": value}}])
    assert graph_counts(graph)["items"] == 0


def test_storable_parquet_attributes_load(graph: Graph, tmp_path: Path) -> None:
    path = tmp_path / "items.parquet"
    pd.DataFrame({
        "item_id": ["a", "b"], "title": ["A", "B"], "tags": [["x", "y"], []], "years": [[1990, 1991], None],
        "scores": [[0.5, 1.0], None], "count": np.array([1, 2**63 - 1], dtype=np.uint64), "flag": [True, None],
        "day": [dt.date(2020, 1, 2), None], "raw": [b"x", None], "when": pd.to_datetime(["2020-01-01T10:00:00Z", None]),
    }).to_parquet(path, index=False)
    items = read_table(path, "items")
    items["mixed"] = [[1, 2.5], None]  # not from Parquet, whose lists have one type
    dataset = Dataset("ok", interactions=pd.DataFrame({"user_id": [], "item_id": []}), items=items)
    report = load_dataset(graph, dataset, QUIET)
    assert report.written == {"items": 2}
    a = graph.read("MATCH (i:Item {id: 'a'}) RETURN i.tags AS tags, i.years AS years, i.count AS count, i.flag AS flag, "
                   "i.day.year AS year, i.raw AS raw, i.scores AS scores, i.mixed AS mixed")[0]
    assert a == {"tags": ["x", "y"], "years": [1990, 1991], "count": 1, "flag": True, "year": 2020, "raw": b"x",
                 "scores": [0.5, 1.0], "mixed": [1.0, 2.5]}  # Neo4j stores integers among floats as floats
    assert graph.read("MATCH (i:Item {id: 'b'}) RETURN i.count AS count, i.tags AS tags")[0] == {
        "count": 2**63 - 1, "tags": []}


def test_cli_shifted_csv_is_one_line_and_writes_nothing(settings, graph: Graph, tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text("user_id,item_id\nu1,i1\n")
    (tmp_path / "items.csv").write_text("item_id,title\ni1,Heat,1995\n")
    result = run_cli("load", "generic", "--interactions", "ratings.csv", "--items", "items.csv", "--no-progress",
                     env=cli_env(settings), cwd=tmp_path)
    assert_one_line_error(result, "items file items.csv: data row 1 has 3 fields, the header has 2")
    assert graph_counts(graph) == EMPTY


@pytest.mark.parametrize("fail_on_reject", [[], ["--fail-on-reject"]])  # that flag writes the rejects file itself
def test_cli_rejects_directory_is_one_line_and_writes_nothing(settings, graph: Graph, tmp_path: Path,
                                                              fail_on_reject: list[str]) -> None:
    (tmp_path / "ratings.csv").write_text("user_id,item_id\nu1,i1\n,i1\n")
    (tmp_path / "items.csv").write_text("item_id,title\ni1,Heat\n")
    (tmp_path / "out").mkdir()
    result = run_cli("load", "generic", "--interactions", "ratings.csv", "--items", "items.csv", "--rejects", "out",
                     *fail_on_reject, "--no-progress", env=cli_env(settings), cwd=tmp_path)
    assert_one_line_error(result, "rejects file out is a directory, not a file")
    assert graph_counts(graph) == EMPTY


def test_cli_ctrl_c_in_the_driver_exits_130(settings, graph: Graph, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Ctrl-C that lands inside the driver, whose cleanup then fails, is still a Ctrl-C: exit 130, not a
    database error."""
    (tmp_path / "ratings.csv").write_text("user_id,item_id\nu1,i1\n")
    (tmp_path / "items.csv").write_text("item_id,title\ni1,Heat\n")

    def interrupted(self, query, **params):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise BufferError("Existing exports of data: object cannot be re-sized")

    monkeypatch.setattr(Graph, "write_returning", interrupted)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    try:
        from kgrec.cli import app

        result = CliRunner().invoke(app, ["load", "generic", "--interactions", "ratings.csv", "--items", "items.csv",
                                          "--no-progress"], env=cli_env(settings))
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 130, (result.exit_code, result.output, result.exception)
    assert "BufferError" not in result.output and "stopped at source rows" not in result.output


def test_an_item_id_column_is_refused_and_writes_nothing(graph: Graph, tmp_path: Path) -> None:
    """`SET i += props` with an `id` attribute would rename the item (the load then failed half-way, forever)."""
    paths = write_files(tmp_path)
    paths["items"].write_text("item_id,title,id\ni1,Blue Train,tt1\ni2,Kind of Blue,tt2\ni3,Nevermind,tt3\n")
    with pytest.raises(DataFormatError, match=r"column\(s\) \['id'\] are written by kgrec itself"):
        load_dataset(graph, generic(paths), QUIET)
    assert graph_counts(graph) == EMPTY


def test_a_load_leaves_the_apis_events_alone(graph: Graph) -> None:
    """An event posted through the API is its own relationship: a load neither merges into it nor changes it."""
    graph.write("CREATE (:Item {id: 'i1', title: 'T'})")
    for event in ("e1", "e2"):
        graph.write(q.API_RECORD_INTERACTION, item="i1", user="u1", event_id=event, kind="interaction",
                    weight=1.0, rating=2.0, ts_ms=None)
    interactions = pd.DataFrame({"user_id": ["u1"], "item_id": ["i1"], "rating": ["5"]})
    for _ in range(2):  # a second load updates its own relationship
        report = load_dataset(graph, Dataset("after-api", interactions=interactions), QUIET)
        assert report.written == {"interactions": 1}
    rows = graph.read("MATCH (:User {id: 'u1'})-[r:INTERACTED]->(:Item {id: 'i1'}) "
                      "RETURN r.event_id AS event, r.rating AS rating ORDER BY event")
    assert rows == [{"event": "e1", "rating": 2.0}, {"event": "e2", "rating": 2.0}, {"event": None, "rating": 5.0}]


def test_duplicate_loaded_interactions_stop_the_load_naming_them(graph: Graph) -> None:
    graph.write("CREATE (u:User {id: 'u1'}), (i:Item {id: 'i1', title: 'T'}), "
                "(u)-[:INTERACTED {kind: 'interaction'}]->(i), (u)-[:INTERACTED {kind: 'interaction'}]->(i)")
    interactions = pd.DataFrame({"user_id": ["u1"], "item_id": ["i1"], "rating": ["5"]})
    with pytest.raises(LoadError, match=r"a batch of 1 rows updated 2 relationships.*`kgrec schema check` lists them"):
        load_dataset(graph, Dataset("dups", interactions=interactions), QUIET)
