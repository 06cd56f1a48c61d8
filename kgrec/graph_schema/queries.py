"""Every Cypher statement kgrec runs, as named constants or small builders.

Values always travel as ``$parameters``. Labels, relationship types and property names, which cannot be
parameters, come from :mod:`kgrec.graph_schema.vocabulary` through :func:`quote`.
"""

from __future__ import annotations

from kgrec.graph_schema.vocabulary import Label, RelType, quote

# -- introspection -----------------------------------------------------------------------------------
SHOW_CONSTRAINTS = (
    "SHOW CONSTRAINTS YIELD name, type, entityType, labelsOrTypes, properties "
    "RETURN name, type, entityType, labelsOrTypes, properties ORDER BY name"
)
SHOW_INDEXES = (
    "SHOW INDEXES YIELD name, type, entityType, labelsOrTypes, properties, state, options "
    "WHERE type <> 'LOOKUP' "
    "RETURN name, type, entityType, labelsOrTypes, properties, state, "
    "options.indexConfig['vector.dimensions'] AS dimensions ORDER BY name"
)
AWAIT_INDEXES = "CALL db.awaitIndexes($timeout_seconds)"
LABELS_IN_USE = "CALL db.labels() YIELD label RETURN label ORDER BY label"
REL_TYPES_IN_USE = "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType AS type ORDER BY type"

# -- migrations ----------------------------------------------------------------------------------------
APPLIED_MIGRATIONS = (
    f"MATCH (m:{quote(Label.MIGRATION)}) "
    "RETURN m.version AS version, m.name AS name, m.checksum AS checksum, toString(m.applied_at) AS applied_at "
    "ORDER BY version"
)
RECORD_MIGRATION = (
    f"MERGE (m:{quote(Label.MIGRATION)} {{version: $version}}) "
    "ON CREATE SET m.applied_at = datetime() "
    "SET m.name = $name, m.checksum = $checksum"
)
DROP_INDEX = "DROP INDEX $name IF EXISTS"

# -- text embeddings and the vector index ------------------------------------------------------------
ITEM_TEXT_INDEX = "item_text_embedding"
SET_ITEM_TEXT_EMBEDDINGS = (
    "UNWIND $rows AS row "
    f"MATCH (i:{quote(Label.ITEM)} {{id: row.id}}) "
    "CALL db.create.setNodeVectorProperty(i, 'text_embedding', row.vector) "
    "SET i.text_model = $model, i.text_hash = row.hash"
)
QUERY_SIMILAR_ITEMS = (
    "CALL db.index.vector.queryNodes($index, $k, $vector) YIELD node, score "
    "RETURN node.id AS id, node.title AS title, score ORDER BY score DESC"
)


def count_label(label: Label) -> str:
    return f"MATCH (n:{quote(label)}) RETURN count(n) AS count"


def count_rel_type(rel_type: RelType) -> str:
    return f"MATCH ()-[r:{quote(rel_type)}]->() RETURN count(r) AS count"


# -- schema check (read-only) --------------------------------------------------------------------------
def missing_property(label: Label, prop: str) -> str:
    return (
        f"MATCH (n:{quote(label)}) WHERE n.{quote(prop)} IS NULL "
        "WITH count(n) AS count, collect(elementId(n))[..$sample] AS sample RETURN count, sample"
    )


def duplicate_ids(label: Label, prop: str) -> str:
    return (
        f"MATCH (n:{quote(label)}) WHERE n.{quote(prop)} IS NOT NULL "
        f"WITH n.{quote(prop)} AS id, count(*) AS copies WHERE copies > 1 "
        "WITH count(id) AS count, collect(toString(id))[..$sample] AS sample RETURN count, sample"
    )


ITEMS_WITHOUT_TEXT = (
    f"MATCH (i:{quote(Label.ITEM)}) WHERE i.text IS NULL OR trim(i.text) = '' "
    "WITH count(i) AS count, collect(i.id)[..$sample] AS sample RETURN count, sample"
)
UNLINKED_ENTITIES = (
    f"MATCH (e:{quote(Label.ENTITY)}) WHERE NOT (e)--() "
    "WITH count(e) AS count, collect(e.id)[..$sample] AS sample RETURN count, sample"
)
UNREGISTERED_RELATIONS = (
    f"MATCH ()-[r:{quote(RelType.RELATES_TO)}]->() WHERE r.relation IS NOT NULL "
    "WITH DISTINCT r.relation AS relation "
    f"WHERE NOT EXISTS {{ MATCH (:{quote(Label.RELATION)} {{name: relation}}) }} "
    "WITH count(relation) AS count, collect(relation)[..$sample] AS sample RETURN count, sample"
)


def missing_rel_property(rel_type: RelType, prop: str) -> str:
    return (
        f"MATCH (a)-[r:{quote(rel_type)}]->(b) WHERE r.{quote(prop)} IS NULL "
        "WITH count(r) AS count, collect(coalesce(a.id, elementId(a)) + ' -> ' + coalesce(b.id, elementId(b)))"
        "[..$sample] AS sample RETURN count, sample"
    )


def wrong_endpoints(rel_type: RelType, heads: tuple[Label, ...], tails: tuple[Label, ...]) -> str:
    """Relationships of a type whose head or tail carries none of the allowed labels."""
    head_ok = " OR ".join(f"a:{quote(label)}" for label in heads)
    tail_ok = " OR ".join(f"b:{quote(label)}" for label in tails)
    return (
        f"MATCH (a)-[r:{quote(rel_type)}]->(b) WHERE NOT ({head_ok}) OR NOT ({tail_ok}) "
        "WITH count(r) AS count, collect(coalesce(a.id, elementId(a)) + ' -> ' + coalesce(b.id, elementId(b)))"
        "[..$sample] AS sample RETURN count, sample"
    )


# Labels and types outside the vocabulary go in as parameters, never into the query text.
NODES_WITH_LABEL = (
    "MATCH (n) WHERE $label IN labels(n) "
    "WITH count(n) AS count, collect(coalesce(n.id, elementId(n)))[..$sample] AS sample RETURN count, sample"
)
RELS_WITH_TYPE = (
    "MATCH (a)-[r]->(b) WHERE type(r) = $type "
    "WITH count(r) AS count, collect(coalesce(a.id, elementId(a)) + ' -> ' + coalesce(b.id, elementId(b)))"
    "[..$sample] AS sample RETURN count, sample"
)
