"""``kgrec recommend USER`` against a recording fake of the gateway: it reads the list as the API does
(``API_RECOMMENDATIONS_EXPLAINED``, seen items left out), says why a list is empty, and prints the Cypher of
what it shows."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

import kgrec.cli
from kgrec.cli import app
from kgrec.errors import KgrecError
from kgrec.graph_schema import queries as q

runner = CliRunner()
R1 = {"id": "R1", "slot": "embedding_a", "activated_at": "2026-01-01T00:00:00Z", "checkpoint": None, "top_k": 5}
ITEMS = [
    {"item_id": "i2", "title": "T2", "score": 0.9, "rank": 1, "explanation": '{"text": "because of i2"}'},
    {"item_id": "i5", "title": "T5", "score": 0.6, "rank": 4, "explanation": "not JSON"},
]


class RecordingGraph:
    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __enter__(self) -> RecordingGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read_columns(self, query: str, **params: Any) -> dict[str, Any]:
        self.calls.append((query, params))
        return self.row

    def read(self, query: str, **params: Any) -> list[dict[str, Any]]:
        raise AssertionError(f"unexpected read {query[:60]}")


def run_recommend(monkeypatch: pytest.MonkeyPatch, *args: str, **overrides: Any):
    row = {"user_found": True, "entity_found": True, "runs": [R1], "recent": False, "has_list": True, "items": ITEMS}
    graph = RecordingGraph({**row, **overrides})
    monkeypatch.setattr(kgrec.cli, "_graph", lambda: graph)
    return graph, runner.invoke(app, ["recommend", *args])


def test_the_list_is_the_apis_read_without_seen_items_and_the_printed_cypher_is_the_query(monkeypatch) -> None:
    graph, result = run_recommend(monkeypatch, "u1", "--k", "3")
    assert result.exit_code == 0, result.output
    assert graph.calls == [(q.API_RECOMMENDATIONS_EXPLAINED, {"user": "u1", "entity": None, "exclude_seen": True, "k": 3})]
    assert "T2 (i2)" in result.output and "because of i2" in result.output and "not JSON" in result.output
    assert "interacted since" not in result.output
    printed = result.output.split("The same from Cypher:\n", 1)[1].splitlines()
    assert printed[0] == '  // params: {"user": "u1", "k": 3}'
    assert printed[1:] == ["  " + line for line in q.TOP_K_ACTIVE.splitlines()]
    assert "NOT EXISTS { (u)-[:`INTERACTED`]->(i) }" in q.TOP_K_ACTIVE and "$user" in q.TOP_K_ACTIVE


def test_a_user_who_interacted_since_the_run_is_told_the_api_serves_them_otherwise(monkeypatch) -> None:
    _, result = run_recommend(monkeypatch, "u1", recent=True)
    assert result.exit_code == 0, result.output
    assert "User 'u1' has interacted since run 'R1' was activated" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("overrides", "says", "not_says"),
    [
        ({"user_found": False, "runs": [], "has_list": False}, "unknown user 'ucold'", "active run"),
        ({"runs": [], "has_list": False}, "there is no active run: run `kgrec run` first", "unknown user"),
        (
            {"has_list": False},
            "run 'R1' holds no list for user 'ucold' (a run lists the users who had interactions when it was made); "
            "`GET /users/ucold/recommendations` serves them scores computed now from their interactions, or the "
            "most popular items while they have none",
            "unknown user",
        ),
        ({}, "every item run 'R1' lists for user 'ucold' is one they have interacted with", "GET"),
        ({"recent": True}, "they have interacted since the run was activated, so `GET /users/ucold/", "unknown user"),
    ],
)
def test_an_empty_list_says_which_case_it_is(monkeypatch, overrides: dict[str, Any], says: str, not_says: str) -> None:
    _, result = run_recommend(monkeypatch, "ucold", **{"items": [], **overrides})
    assert isinstance(result.exception, KgrecError), result.output
    assert says in str(result.exception) and not_says not in str(result.exception)


def test_several_active_runs_are_named(monkeypatch) -> None:
    _, result = run_recommend(monkeypatch, "u1", runs=[R1, {**R1, "id": "R2"}])
    assert isinstance(result.exception, KgrecError) and "2 ModelRuns are marked active" in str(result.exception)
