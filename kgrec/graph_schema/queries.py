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


# -- ingest (kgrec.loaders.ingest): one UNWIND batch per transaction, MERGE on ids ----------------------
# Each returns how many rows it wrote, so that a row that matched nothing cannot vanish silently.
MERGE_RELATIONS = (
    "UNWIND $rows AS row "
    f"MERGE (r:{quote(Label.RELATION)} {{name: row.relation}}) "
    "SET r += row.props RETURN count(r) AS written"
)
MERGE_ENTITIES = (
    "UNWIND $rows AS row "
    f"MERGE (e:{quote(Label.ENTITY)} {{id: row.id}}) "
    "SET e += row.props RETURN count(e) AS written"
)
MERGE_ITEMS = (
    "UNWIND $rows AS row "
    f"MERGE (i:{quote(Label.ITEM)} {{id: row.id}}) "
    "SET i += row.props RETURN count(i) AS written"
)
# Relationships: MERGE on a (head, tail) pair checks the relationships of both nodes, and inside one
# transaction a node that gains thousands of new relationships (a popular tag, a hit item) makes that check
# quadratic in the batch size. These queries test existence by expanding from the head, whose degree is
# small (an item's facts, a user's history), and CREATE what is missing: same result as MERGE for a batch
# without duplicate keys, which validation guarantees. Two loads of the same rows must not run at once.
# Interactions keep MERGE, which measured faster on them (see benchmarks/ingest_export.py).
MERGE_INTERACTIONS = (  # measured: plain MERGE is fastest here (users' and items' degrees stay moderate)
    "UNWIND $rows AS row "
    f"MERGE (u:{quote(Label.USER)} {{id: row.user_id}}) "
    f"WITH u, row MATCH (i:{quote(Label.ITEM)} {{id: row.item_id}}) "
    f"MERGE (u)-[r:{quote(RelType.INTERACTED)} {{kind: row.kind}}]->(i) "
    "SET r += row.props, r.ts = CASE WHEN row.ts_ms IS NULL THEN r.ts ELSE datetime({epochMillis: row.ts_ms}) END "
    "RETURN count(r) AS written"
)


def _link(head: Label, head_key: str, tail: Label, tail_key: str, rel: RelType, with_relation: bool, find: str = "MATCH") -> str:
    relation = " AND old.relation = row.relation" if with_relation else ""
    props = " {relation: row.relation}" if with_relation else ""
    return (
        "UNWIND $rows AS row "
        f"{find} (h:{quote(head)} {{id: row.{head_key}}}) {find} (t:{quote(tail)} {{id: row.{tail_key}}}) "
        "WITH h, t, row CALL (h, t, row) { "
        f"  WITH * WHERE NOT EXISTS {{ MATCH (h)-[old:{quote(rel)}]->(x:{quote(tail)}) WHERE x.id = row.{tail_key}{relation} }} "
        f"  CREATE (h)-[:{quote(rel)}{props}]->(t) "
        "} RETURN count(*) AS written"
    )


MERGE_ITEM_ENTITY = _link(Label.ITEM, "item_id", Label.ENTITY, "entity_id", RelType.RELATES_TO, True)
MERGE_ENTITY_ENTITY = _link(Label.ENTITY, "head_id", Label.ENTITY, "tail_id", RelType.RELATES_TO, True)
# user links may name users who have no interactions (users have no table of their own): MERGE them
MERGE_FOLLOWS = _link(Label.USER, "user_id", Label.USER, "other_id", RelType.FOLLOWS, False, find="MERGE")


def existing_ids(label: Label) -> str:
    """Which of ``$ids`` exist as nodes of ``label`` (by ``id``, or ``name`` for relations)."""
    key = "name" if label is Label.RELATION else "id"
    return f"UNWIND $ids AS id MATCH (n:{quote(label)} {{{key}: id}}) RETURN id"


# -- export (kgrec.loaders.export): keyset pages over the unique id indexes, scalars only --------------
EXPORT_USER_IDS = (
    f"MATCH (u:{quote(Label.USER)}) WHERE u.id > $after RETURN u.id AS id ORDER BY u.id LIMIT $page"
)
EXPORT_ACTIVE_USER_IDS = (
    f"MATCH (u:{quote(Label.USER)}) WHERE u.id > $after "
    f"AND EXISTS {{ MATCH (u)-[r:{quote(RelType.INTERACTED)}]->() WHERE r.ts >= datetime({{epochMillis: $since_ms}}) }} "
    "RETURN u.id AS id ORDER BY u.id LIMIT $page"
)
EXPORT_ITEMS = (
    f"MATCH (i:{quote(Label.ITEM)}) WHERE i.id > $after "
    "RETURN i.id AS id, i.title AS title, i.text AS text ORDER BY i.id LIMIT $page"
)
EXPORT_ITEMS_OF_ENTITY = (
    f"MATCH (i:{quote(Label.ITEM)}) WHERE i.id > $after "
    f"AND EXISTS {{ MATCH (i)-[:{quote(RelType.RELATES_TO)}]->(:{quote(Label.ENTITY)} {{id: $entity}}) }} "
    "RETURN i.id AS id, i.title AS title, i.text AS text ORDER BY i.id LIMIT $page"
)
EXPORT_ENTITIES = (
    f"MATCH (e:{quote(Label.ENTITY)}) WHERE e.id > $after "
    "RETURN e.id AS id, e.name AS name, e.type AS type, e.text AS text ORDER BY e.id LIMIT $page"
)
EXPORT_ENTITIES_BY_ID = (
    f"UNWIND $ids AS id MATCH (e:{quote(Label.ENTITY)} {{id: id}}) "
    "RETURN e.id AS id, e.name AS name, e.type AS type, e.text AS text"
)
EXPORT_INTERACTIONS = (
    f"UNWIND $ids AS uid MATCH (:{quote(Label.USER)} {{id: uid}})-[r:{quote(RelType.INTERACTED)}]->(i:{quote(Label.ITEM)}) "
    "RETURN uid AS head, i.id AS tail, r.weight AS weight, r.rating AS rating, "
    "r.ts.epochMillis AS ts_ms, r.kind AS kind"
)
EXPORT_ITEM_ENTITY = (
    f"UNWIND $ids AS iid MATCH (:{quote(Label.ITEM)} {{id: iid}})-[r:{quote(RelType.RELATES_TO)}]->(e:{quote(Label.ENTITY)}) "
    "RETURN iid AS head, r.relation AS relation, e.id AS tail"
)
EXPORT_ENTITY_ENTITY = (
    f"UNWIND $ids AS eid MATCH (:{quote(Label.ENTITY)} {{id: eid}})-[r:{quote(RelType.RELATES_TO)}]->(t:{quote(Label.ENTITY)}) "
    "RETURN eid AS head, r.relation AS relation, t.id AS tail"
)
EXPORT_FOLLOWS = (
    f"UNWIND $ids AS uid MATCH (:{quote(Label.USER)} {{id: uid}})-[:{quote(RelType.FOLLOWS)}]->(o:{quote(Label.USER)}) "
    "RETURN uid AS head, o.id AS tail"
)
