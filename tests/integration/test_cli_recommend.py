"""``kgrec recommend USER`` against a real Neo4j (the graph of ``test_api``): the stored list without the
items the user has interacted with, as the API serves it; the Cypher it prints returns what it shows; an
empty answer says why."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kgrec.config import Settings
from kgrec.db import Graph
from tests.conftest import assert_one_line_error, cli_env, run_cli
from tests.integration.test_api import build_graph


@pytest.fixture
def served(graph: Graph) -> Graph:
    build_graph(graph)  # u1: list i2, i6, i1, i5, i3 in run R1, interacted with i1; u3: no list
    graph.write("CREATE (:User {id: 'ucold'})")  # no interactions: no list either
    return graph


def recommend(settings: Settings, tmp_path: Path, *args: str):
    return run_cli("recommend", *args, env=cli_env(settings), cwd=tmp_path)


def shown(stdout: str) -> list[str]:
    return re.findall(r"\((i\d+)\)", stdout.split("The same from Cypher:")[0])


def printed_cypher(stdout: str) -> tuple[str, dict]:
    lines = stdout.split("The same from Cypher:\n", 1)[1].rstrip("\n").splitlines()
    assert lines[0].startswith("  // params: ")
    return "\n".join(line[2:] for line in lines[1:]), json.loads(lines[0].removeprefix("  // params: "))


def test_seen_items_are_left_out_and_the_printed_cypher_returns_the_list(settings: Settings, served: Graph, tmp_path: Path) -> None:
    result = recommend(settings, tmp_path, "u1", "--k", "3")
    assert result.returncode == 0, result.stderr
    assert shown(result.stdout) == ["i2", "i6", "i5"]  # i1: seen before the run
    query, params = printed_cypher(result.stdout)
    assert params == {"user": "u1", "k": 3}
    assert [row["item"] for row in served.read(query, **params)] == ["i2", "i6", "i5"]

    served.write(  # an interaction after the run, as POST /interactions records it
        "MATCH (u:User {id: 'u1'}), (i:Item {id: 'i6'}) CREATE (u)-[:INTERACTED {kind: 'listen', event_id: 'ev-1', ts: datetime()}]->(i)"
    )
    result = recommend(settings, tmp_path, "u1", "--k", "3")
    assert result.returncode == 0, result.stderr
    assert shown(result.stdout) == ["i2", "i5", "i3"]
    assert "has interacted since run 'R1' was activated" in " ".join(result.stdout.split())
    query, params = printed_cypher(result.stdout)
    assert [row["item"] for row in served.read(query, **params)] == ["i2", "i5", "i3"]


def test_an_empty_answer_says_why(settings: Settings, served: Graph, tmp_path: Path) -> None:
    for user in ("ucold", "u3"):
        assert_one_line_error(recommend(settings, tmp_path, user), f"run 'R1' holds no list for user {user!r}",
                              "the most popular items")
    assert_one_line_error(recommend(settings, tmp_path, "nobody"), "unknown user 'nobody'")
    served.write("MATCH (r:ModelRun) SET r.active = false")
    assert_one_line_error(recommend(settings, tmp_path, "ucold"), "there is no active run: run `kgrec run` first")
