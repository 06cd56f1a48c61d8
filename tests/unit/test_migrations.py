"""Migrations against a recording fake of the gateway: the exact statements and parameters."""

from __future__ import annotations

from typing import Any

import pytest

from kgrec.errors import SchemaError
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.migrations import MIGRATIONS, apply_migrations, pending


class RecordingGraph:
    """Records every call; answers reads from canned results keyed by query."""

    def __init__(self, applied: dict[int, str] | None = None, vector_dimensions: int | None = None) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.applied = dict(applied or {})
        self.vector_dimensions = vector_dimensions

    def read(self, query: str, **params: Any) -> list[dict[str, Any]]:
        self.calls.append(("read", query, params))
        if query == q.APPLIED_MIGRATIONS:
            return [{"version": v, "checksum": c} for v, c in sorted(self.applied.items())]
        if query == q.SHOW_INDEXES:
            if self.vector_dimensions is None:
                return []
            return [{"name": q.ITEM_TEXT_INDEX, "dimensions": self.vector_dimensions}]
        raise AssertionError(f"unexpected read {query}")

    def write(self, query: str, **params: Any) -> dict[str, int]:
        self.calls.append(("write", query, params))
        if query == q.RECORD_MIGRATION:
            self.applied[params["version"]] = params["checksum"]
        return {}

    def run_autocommit(self, statement: str, **params: Any) -> None:
        self.calls.append(("schema", statement, params))

    def statements(self) -> list[str]:
        return [s for kind, s, _ in self.calls if kind == "schema"]


def test_versions_are_unique_and_increasing() -> None:
    versions = [m.version for m in MIGRATIONS]
    assert versions == sorted(set(versions)) and versions[0] == 1


def test_every_statement_is_idempotent() -> None:
    for migration in MIGRATIONS:
        for statement in migration.statements:
            # a DROP (of an index a later constraint replaces) is idempotent with IF EXISTS
            assert "IF NOT EXISTS" in statement or (statement.startswith("DROP ") and "IF EXISTS" in statement), statement


def test_apply_on_empty_database_runs_all_in_order_and_records_each() -> None:
    graph = RecordingGraph()
    applied = apply_migrations(graph, dimension=384)  # type: ignore[arg-type]
    assert [m.version for m in applied] == [1, 2, 3, 4, 5]
    expected = [s for m in MIGRATIONS for s in m.render(384)]
    assert graph.statements() == [*expected, q.AWAIT_INDEXES]
    assert "`vector.dimensions`: 384" in next(s for s in expected if q.ITEM_TEXT_INDEX in s)
    records = [p for kind, query, p in graph.calls if kind == "write"]
    assert records == [{"version": m.version, "name": m.name, "checksum": m.checksum} for m in MIGRATIONS]


def test_apply_twice_runs_nothing_the_second_time() -> None:
    graph = RecordingGraph()
    apply_migrations(graph, dimension=384)  # type: ignore[arg-type]
    graph.calls.clear()
    graph.vector_dimensions = 384
    assert apply_migrations(graph, dimension=384) == []  # type: ignore[arg-type]
    assert graph.statements() == [q.AWAIT_INDEXES]


def test_changed_migration_is_refused() -> None:
    with pytest.raises(SchemaError, match="migration 2 .* checksum deadbeef"):
        pending({1: MIGRATIONS[0].checksum, 2: "deadbeef"})


def test_dimension_is_not_part_of_the_checksum() -> None:
    vector = next(m for m in MIGRATIONS if m.version == 4)
    assert "{dimension}" in vector.statements[0]  # the checksum covers the template, not a number
    assert vector.render(384) != vector.render(768)


def test_vector_dimension_mismatch_is_named() -> None:
    graph = RecordingGraph({m.version: m.checksum for m in MIGRATIONS}, vector_dimensions=384)
    with pytest.raises(SchemaError, match="has 384 dimensions, but the text encoder .* makes 768"):
        apply_migrations(graph, dimension=768)  # type: ignore[arg-type]
    assert graph.statements() == []


def test_recreate_vector_index_drops_and_creates_with_new_dimension() -> None:
    graph = RecordingGraph({m.version: m.checksum for m in MIGRATIONS}, vector_dimensions=384)
    apply_migrations(graph, dimension=768, recreate_vector_index=True)  # type: ignore[arg-type]
    schema = [(s, p) for kind, s, p in graph.calls if kind == "schema"]
    assert schema[0] == (q.DROP_INDEX, {"name": q.ITEM_TEXT_INDEX})
    assert "`vector.dimensions`: 768" in schema[1][0]


@pytest.mark.parametrize("dimension", [0, -5])
def test_bad_dimension(dimension: int) -> None:
    with pytest.raises(SchemaError, match="must be positive"):
        apply_migrations(RecordingGraph(), dimension=dimension)  # type: ignore[arg-type]
