"""Versioned, idempotent schema migrations, recorded in the graph as ``(:KgrecMigration)`` nodes.

Each migration is a list of schema statements that are safe to run again (``IF NOT EXISTS``).
:func:`apply_migrations` runs those not yet recorded, in version order, each statement in its own
transaction (Neo4j does not mix schema and data writes), records each migration once its statements ran,
and waits for the indexes to come online. A recorded migration whose statements changed since is refused
with :class:`~kgrec.errors.SchemaError`: the database and the code disagree, and guessing would be worse.

The vector index's dimension comes from the configured text encoder; it is checked separately (not part
of the checksum) so that a changed encoder gets a precise message and ``recreate_vector_index``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from kgrec.db import Graph
from kgrec.errors import SchemaError
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.vocabulary import Label, RelType, quote

DIMENSION = "{dimension}"  # placeholder in the vector index statement, filled from the text encoder


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]

    @property
    def checksum(self) -> str:
        return hashlib.sha256("\n".join(self.statements).encode()).hexdigest()[:16]

    def render(self, dimension: int) -> list[str]:
        return [s.replace(DIMENSION, str(dimension)) for s in self.statements]


def _unique(name: str, label: Label, prop: str) -> str:
    return f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{quote(label)}) REQUIRE n.{quote(prop)} IS UNIQUE"


def _node_index(name: str, label: Label, prop: str) -> str:
    return f"CREATE INDEX {name} IF NOT EXISTS FOR (n:{quote(label)}) ON (n.{quote(prop)})"


def _rel_index(name: str, rel_type: RelType, prop: str) -> str:
    return f"CREATE INDEX {name} IF NOT EXISTS FOR ()-[r:{quote(rel_type)}]-() ON (r.{quote(prop)})"


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "unique ids",
        (
            _unique("user_id", Label.USER, "id"),
            _unique("item_id", Label.ITEM, "id"),
            _unique("entity_id", Label.ENTITY, "id"),
            _unique("relation_name", Label.RELATION, "name"),
            _unique("model_run_id", Label.MODEL_RUN, "id"),
            _unique("migration_version", Label.MIGRATION, "version"),
        ),
    ),
    Migration(
        2,
        "lookup indexes",
        (
            _node_index("entity_type", Label.ENTITY, "type"),
            _node_index("entity_name", Label.ENTITY, "name"),
            _node_index("item_title", Label.ITEM, "title"),
            _node_index("model_run_active", Label.MODEL_RUN, "active"),
            _rel_index("relates_to_relation", RelType.RELATES_TO, "relation"),
            _rel_index("recommended_run", RelType.RECOMMENDED, "run"),
            _rel_index("interacted_event_id", RelType.INTERACTED, "event_id"),
            _rel_index("interacted_ts", RelType.INTERACTED, "ts"),
        ),
    ),
    Migration(
        3,
        "full-text search on item and entity text",
        (
            f"CREATE FULLTEXT INDEX item_fulltext IF NOT EXISTS FOR (n:{quote(Label.ITEM)}) "
            "ON EACH [n.`title`, n.`text`]",
            f"CREATE FULLTEXT INDEX entity_fulltext IF NOT EXISTS FOR (n:{quote(Label.ENTITY)}) "
            "ON EACH [n.`name`, n.`text`]",
        ),
    ),
    Migration(
        4,
        "vector index on item text embeddings",
        (
            f"CREATE VECTOR INDEX {q.ITEM_TEXT_INDEX} IF NOT EXISTS FOR (n:{quote(Label.ITEM)}) "
            f"ON (n.`text_embedding`) OPTIONS {{indexConfig: {{`vector.dimensions`: {DIMENSION}, "
            "`vector.similarity_function`: 'cosine'}}",
        ),
    ),
    Migration(
        5,
        "unique interaction event ids",
        # The API's POST /interactions is idempotent on event_id. MERGE locks the user and item before it
        # creates, so a retry racing its first attempt is written once even without this; but Neo4j
        # guarantees MERGE's uniqueness only with a constraint, and only a constraint turns an event_id
        # reused for another user or item into an error (409) rather than a second event. The constraint
        # brings its own index, so the plain one of migration 2 goes (a constraint cannot be created over
        # an index of the same schema).
        (
            "DROP INDEX interacted_event_id IF EXISTS",
            f"CREATE CONSTRAINT interacted_event_id_unique IF NOT EXISTS FOR ()-[r:{quote(RelType.INTERACTED)}]-() "
            f"REQUIRE r.{quote('event_id')} IS UNIQUE",
        ),
    ),
)


VECTOR_INDEX_MIGRATION = next(m for m in MIGRATIONS if m.version == 4)


def pending(applied: dict[int, str], migrations: tuple[Migration, ...] = MIGRATIONS) -> list[Migration]:
    """The migrations not yet applied, given ``{version: checksum}`` of those recorded in the graph."""
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise SchemaError(
                f"migration {migration.version} ({migration.name}) was applied with checksum {recorded}, "
                f"but this kgrec defines it as {migration.checksum}: the graph's schema and the code disagree; "
                "upgrade kgrec, or drop the schema objects of that migration and its :KgrecMigration node"
            )
    return [m for m in migrations if m.version not in applied]


def applied_migrations(graph: Graph) -> dict[int, str]:
    return {row["version"]: row["checksum"] for row in graph.read(q.APPLIED_MIGRATIONS)}


def apply_migrations(
    graph: Graph,
    *,
    dimension: int,
    recreate_vector_index: bool = False,
    await_seconds: int = 300,
    on_migration: Callable[[Migration], None] | None = None,
) -> list[Migration]:
    """Apply the pending migrations and return them (an empty list when the schema is up to date).

    Args:
        graph: the database.
        dimension: the text encoder's embedding size, for the vector index.
        recreate_vector_index: drop and recreate the vector index when its dimension differs.
        await_seconds: how long to wait for new indexes to come online.
        on_migration: called before each migration runs (progress).
    """
    if dimension < 1:
        raise SchemaError(f"the vector index dimension must be positive (got {dimension})")
    todo = pending(applied_migrations(graph))
    for migration in todo:
        if on_migration is not None:
            on_migration(migration)
        for statement in migration.render(dimension):
            graph.run_autocommit(statement)
        graph.write(q.RECORD_MIGRATION, version=migration.version, name=migration.name, checksum=migration.checksum)
    _check_vector_dimension(graph, dimension, recreate=recreate_vector_index)
    graph.run_autocommit(q.AWAIT_INDEXES, timeout_seconds=await_seconds)
    return todo


def _check_vector_dimension(graph: Graph, dimension: int, *, recreate: bool) -> None:
    index = next((i for i in graph.read(q.SHOW_INDEXES) if i["name"] == q.ITEM_TEXT_INDEX), None)
    if index is None or index["dimensions"] == dimension:
        return
    if not recreate:
        raise SchemaError(
            f"the vector index {q.ITEM_TEXT_INDEX} has {index['dimensions']} dimensions, but the text encoder "
            f"(KGREC_TEXT_MODEL) makes {dimension}: run `kgrec schema apply --recreate-vector-index`, "
            "then re-encode the item text"
        )
    graph.run_autocommit(q.DROP_INDEX, name=q.ITEM_TEXT_INDEX)
    for statement in VECTOR_INDEX_MIGRATION.render(dimension):
        graph.run_autocommit(statement)


def drop_everything(graph: Graph) -> None:
    """Delete every node and relationship, constraint and index (Neo4j's built-in lookups stay).

    For tests and benchmarks on throwaway databases; nothing in kgrec's commands calls it.
    """
    graph.run_autocommit(q.DELETE_ALL_RELATIONSHIPS)
    graph.run_autocommit(q.DELETE_ALL_NODES)
    for row in graph.read(q.CONSTRAINT_NAMES):
        graph.run_autocommit(q.DROP_CONSTRAINT, name=row["name"])
    for row in graph.read(q.INDEX_NAMES):
        graph.run_autocommit(q.DROP_INDEX, name=row["name"])
