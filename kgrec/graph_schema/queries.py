"""Every Cypher statement kgrec runs, as named constants or small builders.

Values always travel as ``$parameters``. Labels, relationship types and property names, which cannot be
parameters, come from :mod:`kgrec.graph_schema.vocabulary` through :func:`quote`.
"""

from __future__ import annotations

from collections.abc import Iterable

from kgrec.errors import SchemaError
from kgrec.graph_schema.vocabulary import EMBEDDING_SLOTS, Label, RelType, quote

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
DROP_CONSTRAINT = "DROP CONSTRAINT $name IF EXISTS"
CONSTRAINT_NAMES = "SHOW CONSTRAINTS YIELD name RETURN name"
INDEX_NAMES = "SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP' RETURN name"
# relationships first, in bounded batches: DETACH DELETE of 10k dense nodes at once overflows the
# transaction memory pool
DELETE_ALL_RELATIONSHIPS = "MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 50000 ROWS"
DELETE_ALL_NODES = "MATCH (n) CALL (n) { DELETE n } IN TRANSACTIONS OF 50000 ROWS"

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


def count_all(labels: Iterable[Label], rel_types: Iterable[RelType],
              out: Iterable[tuple[Label, RelType]] = ()) -> str:
    """One query, one row: the count-store total of each label (``n0``, ``n1``, ...), relationship type
    (``r0``, ``r1``, ...) and, for each ``(label, type)`` of ``out``, relationship of that type leaving a node
    of that label (``d0``, ``d1``, ...), in the given order — one round trip instead of one per name."""
    labels, rel_types, out = list(labels), list(rel_types), list(out)
    parts = [f"CALL () {{ MATCH (n:{quote(label)}) RETURN count(n) AS n{k} }}" for k, label in enumerate(labels)]
    parts += [f"CALL () {{ MATCH ()-[r:{quote(rel)}]->() RETURN count(r) AS r{k} }}" for k, rel in enumerate(rel_types)]
    parts += [f"CALL () {{ MATCH (:{quote(label)})-[r:{quote(rel)}]->() RETURN count(r) AS d{k} }}"
              for k, (label, rel) in enumerate(out)]
    columns = [f"n{k}" for k in range(len(labels))] + [f"r{k}" for k in range(len(rel_types))]
    columns += [f"d{k}" for k in range(len(out))]
    return " ".join(parts) + " RETURN " + ", ".join(columns)


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


ITEMS_WITHOUT_TEXT = (  # a text that is not a string is the wrong-type check's finding (trim() would fail on it)
    f"MATCH (i:{quote(Label.ITEM)}) WHERE i.text IS NULL OR (valueType(i.text) STARTS WITH 'STRING' AND trim(i.text) = '') "
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


def _shown(node: str) -> str:
    """A node in a finding: its id where that is a string, else its element id."""
    return f"CASE WHEN valueType({node}.id) STARTS WITH 'STRING' THEN {node}.id ELSE elementId({node}) END"


def wrong_types(target: Label | RelType) -> str:
    """Per property of ``$props`` (``[{name, types}]``), the nodes of label ``target`` (or relationships of
    type ``target``) whose value's ``valueType()`` starts with none of its ``types``: an id that is a number,
    a text that is a list, a time that is a string."""
    if isinstance(target, Label):
        match, element, shown = f"MATCH (n:{quote(target)})", "n", _shown("n")
    else:
        match, element, shown = f"MATCH (a)-[r:{quote(target)}]->(b)", "r", f"{_shown('a')} + ' -> ' + {_shown('b')}"
    return (
        f"{match} UNWIND $props AS p WITH *, {element}[p.name] AS value "
        "WHERE value IS NOT NULL AND NOT any(t IN p.types WHERE valueType(value) STARTS WITH t) "
        f"WITH p.name AS prop, count(*) AS count, collect({shown} + ': ' + valueType(value))[..$sample] AS sample "
        "RETURN prop, count, sample"
    )


def duplicate_links(rel_type: RelType) -> str:
    """Pairs of nodes joined twice by the same link, where kgrec keeps one: loaded interactions of one kind
    (events recorded through the API, with an event_id, are their own), knowledge links of one relation, follows."""
    key = {RelType.INTERACTED: "r.kind", RelType.RELATES_TO: "r.relation"}.get(rel_type, "''")
    where = " WHERE r.event_id IS NULL" if rel_type is RelType.INTERACTED else ""
    return (
        f"MATCH (a)-[r:{quote(rel_type)}]->(b){where} WITH a, b, {key} AS key, count(r) AS copies WHERE copies > 1 "
        "WITH count(*) AS count, collect(coalesce(a.id, elementId(a)) + ' -> ' + coalesce(b.id, elementId(b)) "
        "+ CASE WHEN key = '' THEN '' ELSE ' (' + coalesce(toString(key), 'no ' + $what) + ')' END)[..$sample] AS sample "
        "RETURN count, sample"
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
# Interactions MERGE on (user, item, kind). A batch is one statement of three parts: its distinct users are
# MERGEd once each ($users); rows that cannot match an existing relationship ($fresh: rows of a user with
# no interaction in the graph nor in an earlier batch of the load — looked up per batch with
# USERS_WITH_INTERACTIONS; validation has rejected repeated keys) are CREATEd, skipping MERGE's check; the
# other rows ($known) are MERGEd.
_SET_INTERACTION = (
    "SET r += row.props, r.ts = CASE WHEN row.ts_ms IS NULL THEN r.ts ELSE datetime({epochMillis: row.ts_ms}) END "
)
MERGE_INTERACTIONS = (
    f"CALL () {{ UNWIND $users AS uid MERGE (:{quote(Label.USER)} {{id: uid}}) RETURN count(*) AS users }} "
    "CALL () { UNWIND $fresh AS row "
    f"  MATCH (u:{quote(Label.USER)} {{id: row.user_id}}) MATCH (i:{quote(Label.ITEM)} {{id: row.item_id}}) "
    f"  CREATE (u)-[r:{quote(RelType.INTERACTED)} {{kind: row.kind}}]->(i) {_SET_INTERACTION}"
    "  RETURN count(r) AS created } "
    # a loaded interaction is the one of its kind without an event_id: an event recorded through the API is a
    # relationship of its own, which a load neither merges into nor overwrites
    "CALL () { UNWIND $known AS row "
    f"  MATCH (u:{quote(Label.USER)} {{id: row.user_id}}) MATCH (i:{quote(Label.ITEM)} {{id: row.item_id}}) "
    f"  OPTIONAL MATCH (u)-[old:{quote(RelType.INTERACTED)} {{kind: row.kind}}]->(i) WHERE old.event_id IS NULL "
    "  OPTIONAL CALL (u, i, row, old) { WITH * WHERE old IS NULL "
    f"    CREATE (u)-[new:{quote(RelType.INTERACTED)} {{kind: row.kind}}]->(i) RETURN new }} "
    f"  WITH row, coalesce(old, new) AS r {_SET_INTERACTION}"
    "  RETURN count(r) AS merged } "
    "RETURN created + merged AS written"
)
USERS_WITH_INTERACTIONS = (
    f"UNWIND $ids AS id MATCH (u:{quote(Label.USER)} {{id: id}}) "
    f"WHERE EXISTS {{ MATCH (u)-[:{quote(RelType.INTERACTED)}]->() }} RETURN collect(id) AS ids"
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


# -- export (kgrec.loaders.export): keyset pages over the unique id indexes ----------------------------
# Each page comes back as ONE record of parallel lists (decoding a few long lists is several times faster
# than many small records). collect() skips nulls, so missing values become $nan (a NaN passed in: a
# parameter costs the server less per row than computing 0.0/0.0) or ''.


def _node_page(label: Label, columns: str, where: str = "") -> str:
    return (
        f"MATCH (n:{quote(label)}) WHERE n.id > $after{where} WITH n ORDER BY n.id LIMIT $page "
        f"RETURN {columns}"
    )


def _edge_page(head: Label, rel: RelType, tail: Label, columns: str) -> str:
    """The edges leaving the nodes ``$ids`` (a run of the export's ids, in index order): the column ``head``
    is each edge's position in ``$ids`` (an integer is cheaper to send and to map than the id again)."""
    return (
        f"UNWIND range(0, size($ids) - 1) AS k "
        f"MATCH (:{quote(head)} {{id: $ids[k]}})-[r:{quote(rel)}]->(t:{quote(tail)}) "
        f"RETURN collect(k) AS head, {columns}"
    )


_ID = "collect(n.id) AS id"
_TEXT = "collect(coalesce(n.text, '')) AS text"
EXPORT_USER_IDS = _node_page(Label.USER, _ID)
EXPORT_ACTIVE_USER_IDS = _node_page(
    Label.USER, _ID,
    f" AND EXISTS {{ MATCH (n)-[r:{quote(RelType.INTERACTED)}]->() WHERE r.ts >= datetime({{epochMillis: $since_ms}}) }}",
)
_ITEM_COLUMNS = f"{_ID}, collect(coalesce(n.title, '')) AS title, {_TEXT}"
EXPORT_ITEMS = _node_page(Label.ITEM, _ITEM_COLUMNS)
EXPORT_ITEMS_OF_ENTITY = _node_page(
    Label.ITEM, _ITEM_COLUMNS,
    f" AND EXISTS {{ MATCH (n)-[:{quote(RelType.RELATES_TO)}]->(:{quote(Label.ENTITY)} {{id: $entity}}) }}",
)
_ENTITY_COLUMNS = f"{_ID}, collect(coalesce(n.name, '')) AS name, collect(coalesce(n.type, '')) AS type, {_TEXT}"
EXPORT_ENTITIES = _node_page(Label.ENTITY, _ENTITY_COLUMNS)
EXPORT_ENTITIES_BY_ID = (
    f"UNWIND $ids AS id MATCH (n:{quote(Label.ENTITY)} {{id: id}}) RETURN {_ENTITY_COLUMNS}"
)
EXPORT_INTERACTIONS = _edge_page(
    Label.USER, RelType.INTERACTED, Label.ITEM,
    "collect(t.id) AS tail, collect(coalesce(r.weight, $nan)) AS weight, collect(coalesce(r.rating, $nan)) AS rating, "
    # a ts that is not a zoned datetime (a hand-set string, say) comes back as $bad, for the export to name it
    "collect(CASE WHEN r.ts IS NULL THEN $nan WHEN valueType(r.ts) STARTS WITH 'ZONED DATETIME' "
    "THEN toFloat(r.ts.epochMillis) ELSE $bad END) AS ts_ms, collect(coalesce(r.kind, '')) AS kind",
)
_LINK_COLUMNS = "collect(coalesce(r.relation, '')) AS relation, collect(t.id) AS tail"
EXPORT_ITEM_ENTITY = _edge_page(Label.ITEM, RelType.RELATES_TO, Label.ENTITY, _LINK_COLUMNS)
EXPORT_ENTITY_ENTITY = _edge_page(Label.ENTITY, RelType.RELATES_TO, Label.ENTITY, _LINK_COLUMNS)
EXPORT_FOLLOWS = _edge_page(Label.USER, RelType.FOLLOWS, Label.USER, "collect(t.id) AS tail")


# -- write-back (kgrec.loaders.writeback): runs, embedding slots, top-K lists ---------------------------
ACTIVE_RUN = (
    f"MATCH (r:{quote(Label.MODEL_RUN)} {{active: true}}) "
    "RETURN r.id AS id, r.embedding_slot AS slot, r.status AS status, toString(r.created_at) AS created_at"
)
ENTITY_EXISTS = f"MATCH (e:{quote(Label.ENTITY)} {{id: $entity}}) RETURN count(e) > 0 AS found"
GET_RUN = (
    f"MATCH (r:{quote(Label.MODEL_RUN)} {{id: $run}}) "
    "RETURN r.id AS id, r.embedding_slot AS slot, r.status AS status, r.active AS active"
)
LIST_RUNS = (
    f"MATCH (r:{quote(Label.MODEL_RUN)}) RETURN r.id AS id, r.active AS active, r.status AS status, "
    "r.embedding_slot AS slot, toString(r.created_at) AS created_at, r.params AS params, r.metrics AS metrics, "
    "r.counts AS counts ORDER BY r.created_at DESC"
)
CREATE_RUN = (
    f"CREATE (r:{quote(Label.MODEL_RUN)} {{id: $run, created_at: datetime(), params: $params, active: false, "
    "status: 'writing', embedding_slot: $slot}) "
    # a run that is not active and used this slot loses its embeddings: say so on it
    f"WITH r MATCH (old:{quote(Label.MODEL_RUN)} {{embedding_slot: $slot}}) WHERE old <> r AND NOT old.active "
    "SET old.embedding_slot = null, old.status = CASE old.status WHEN 'complete' THEN 'superseded' ELSE old.status END"
)
COMPLETE_RUN = (
    f"MATCH (r:{quote(Label.MODEL_RUN)} {{id: $run}}) WHERE r.status = 'writing' "
    "SET r.status = 'complete', r.metrics = $metrics, r.counts = $counts RETURN r.id AS id"
)
# One transaction: the old active run and the new one swap, so readers see one or the other, never none.
ACTIVATE_RUN = (
    f"MATCH (r:{quote(Label.MODEL_RUN)} {{id: $run}}) WHERE r.status = 'complete' "
    f"OPTIONAL MATCH (old:{quote(Label.MODEL_RUN)} {{active: true}}) WHERE old <> r "
    "SET old.active = false SET r.active = true, r.activated_at = datetime() "
    "RETURN r.id AS id, old.id AS previous"
)
def set_embeddings(label: Label, slot: str) -> str:
    """Write vectors into an embedding slot (``embedding_a`` or ``embedding_b``) and tag them with the run."""
    return (
        f"UNWIND $rows AS row MATCH (n:{quote(label)} {{id: row.id}}) "
        f"CALL db.create.setNodeVectorProperty(n, '{slot}', row.vector) "
        f"SET n.{quote(slot + '_run')} = $run RETURN count(n) AS written"
    ) if slot in EMBEDDING_SLOTS else _refuse_slot(slot)


def embedding_index(label: Label, slot: str) -> str:
    """The vector index name of a slot: ``item_embedding_a``, ``user_embedding_b``."""
    return f"{label.value.lower()}_{slot}" if slot in EMBEDDING_SLOTS else _refuse_slot(slot)


def create_embedding_index(label: Label, slot: str, dimension: int) -> str:
    if not isinstance(dimension, int) or dimension < 1:
        raise SchemaError(f"an embedding dimension must be a positive integer (got {dimension!r})")
    return (
        f"CREATE VECTOR INDEX {embedding_index(label, slot)} IF NOT EXISTS FOR (n:{quote(label)}) ON (n.{quote(slot)}) "
        f"OPTIONS {{indexConfig: {{`vector.dimensions`: {dimension}, `vector.similarity_function`: 'cosine'}}}}"
    )


def _refuse_slot(slot: str) -> str:
    raise SchemaError(f"{slot!r} is not an embedding slot (use one of {EMBEDDING_SLOTS})")
# Idempotent per (user, run): a retried batch replaces that user's list for the run.
_CREATE_LISTS = (
    "WITH u, user UNWIND user.recs AS rec "
    f"MATCH (i:{quote(Label.ITEM)} {{id: rec.item}}) "
    f"CREATE (u)-[r:{quote(RelType.RECOMMENDED)} {{run: $run, score: rec.score, rank: rec.rank, explanation: rec.explanation}}]->(i) "
    "RETURN count(r) AS written"
)
# A batch of lists; a retried batch first deletes the users' lists of the run, so nothing is doubled.
WRITE_RECOMMENDATIONS = (
    "UNWIND $users AS user "
    f"MATCH (u:{quote(Label.USER)} {{id: user.id}}) "
    "CALL (u) { "
    f"  MATCH (u)-[old:{quote(RelType.RECOMMENDED)}]->() WHERE old.run = $run DELETE old "
    "} "
    + _CREATE_LISTS
)
# The same for a run that has no list yet: no delete, so the plan needs no Eager operators.
CREATE_RECOMMENDATIONS = f"UNWIND $users AS user MATCH (u:{quote(Label.USER)} {{id: user.id}}) " + _CREATE_LISTS
RUN_HAS_LISTS = f"RETURN EXISTS {{ MATCH ()-[rec:{quote(RelType.RECOMMENDED)}]->() WHERE rec.run = $run }} AS has"
# inactive finished runs beyond the $keep newest, and runs left 'writing' (interrupted) before the active run was
# made: those are never servable and do not count towards $keep. A run still writing after it may be in progress.
PRUNABLE_RUNS = (
    f"OPTIONAL MATCH (a:{quote(Label.MODEL_RUN)} {{active: true}}) "
    f"MATCH (r:{quote(Label.MODEL_RUN)}) WHERE NOT r.active WITH a, r ORDER BY r.created_at DESC "
    "WITH a, collect(r) AS runs "
    "UNWIND [x IN runs WHERE x.status <> 'writing'][$keep..] + "
    "[x IN runs WHERE x.status = 'writing' AND x.created_at < a.created_at] AS r RETURN r.id AS id"
)
DELETE_RUN_RECOMMENDATIONS = (
    f"MATCH ()-[rec:{quote(RelType.RECOMMENDED)}]->() WHERE rec.run = $run "
    "CALL (rec) { DELETE rec } IN TRANSACTIONS OF 10000 ROWS"
)
DELETE_RUN = f"MATCH (r:{quote(Label.MODEL_RUN)} {{id: $run}}) WHERE NOT r.active DELETE r"
RUN_LISTS = (  # kgrec refresh: the lists of a run for a page of users, ids in rank order
    f"UNWIND $ids AS uid MATCH (:{quote(Label.USER)} {{id: uid}})-[r:{quote(RelType.RECOMMENDED)}]->(i:{quote(Label.ITEM)}) "
    "WHERE r.run = $run WITH uid, r.rank AS rank, i.id AS item ORDER BY uid, rank "
    "RETURN uid AS user, collect(item) AS items"
)
SAMPLE_USER_ACTIVE = (  # kgrec recommend without a user: the first user, by id, that the active run serves
    f"MATCH (run:{quote(Label.MODEL_RUN)} {{active: true}}) "
    f"MATCH (u:{quote(Label.USER)}) WHERE EXISTS {{ MATCH (u)-[r:{quote(RelType.RECOMMENDED)}]->() WHERE r.run = run.id }} "
    "RETURN u.id AS id ORDER BY u.id LIMIT 1"
)
AWAIT_INDEX = "CALL db.awaitIndex($name, $seconds)"
SET_RUN_CHECKPOINT = (
    f"MATCH (r:{quote(Label.MODEL_RUN)} {{id: $run}}) WHERE r.status = 'writing' "
    "SET r.checkpoint = $checkpoint, r.top_k = $top_k"
)
# A user's list in the active run without the items they have interacted with (as the API's default list,
# API_RECOMMENDATIONS with $exclude_seen): the Cypher kgrec recommend prints for the list it reads, in lines.
TOP_K_ACTIVE = (
    f"MATCH (run:{quote(Label.MODEL_RUN)} {{active: true}})\n"
    f"MATCH (u:{quote(Label.USER)} {{id: $user}})-[r:{quote(RelType.RECOMMENDED)}]->(i:{quote(Label.ITEM)})\n"
    f"WHERE r.run = run.id AND NOT EXISTS {{ (u)-[:{quote(RelType.INTERACTED)}]->(i) }}\n"
    "RETURN i.id AS item, i.title AS title, r.score AS score, r.rank AS rank, r.explanation AS explanation\n"
    "ORDER BY r.rank, i.id\n"
    "LIMIT $k"
)


# -- text encoding (kgrec.model.text_graph): keyset pages of items' text and the tags of their vectors ----
# One record of parallel lists per page, like the export. has_embedding: a vector removed by hand is
# written again even when the hash and model still match.
ITEM_TEXT_PAGE = _node_page(
    Label.ITEM,
    f"{_ID}, collect(coalesce(n.title, '')) AS title, {_TEXT}, collect(coalesce(n.text_hash, '')) AS text_hash, "
    "collect(coalesce(n.text_model, '')) AS text_model, collect(n.text_embedding IS NOT NULL) AS has_embedding",
)


# -- API (kgrec.api) ---------------------------------------------------------------------------------
# Every request starts from the active run; activated_at stays a DATETIME inside Cypher (compared with
# INTERACTED.ts there) and leaves as ISO text.
_USER, _ITEM, _ENTITY, _RUN = (quote(label) for label in (Label.USER, Label.ITEM, Label.ENTITY, Label.MODEL_RUN))
_INTERACTED, _FOLLOWS, _RELATES_TO, _RECOMMENDED = (
    quote(t) for t in (RelType.INTERACTED, RelType.FOLLOWS, RelType.RELATES_TO, RelType.RECOMMENDED)
)
API_ACTIVE_RUN = (
    f"MATCH (r:{_RUN} {{active: true}}) "
    "RETURN r.id AS id, r.embedding_slot AS slot, toString(r.activated_at) AS activated_at, "
    "r.checkpoint AS checkpoint, r.top_k AS top_k"
)
API_LIST_RUNS = (
    f"MATCH (r:{_RUN}) RETURN r.id AS id, r.active AS active, r.status AS status, r.embedding_slot AS slot, "
    "r.created_at AS created_at, r.activated_at AS activated_at, r.params AS params, "
    "r.metrics AS metrics, r.counts AS counts, r.checkpoint AS checkpoint, r.top_k AS top_k "
    "ORDER BY r.created_at DESC, r.id DESC"
)


def _slot_props(slot: str) -> tuple[str, str]:
    """The quoted slot property and its run tag (``embedding_a``, ``embedding_a_run``); only known slots."""
    if slot not in EMBEDDING_SLOTS:
        _refuse_slot(slot)
    return quote(slot), quote(f"{slot}_run")


def api_user_state(slot: str) -> str:
    """What serving a user needs: their vector in the run's slot (only if that run wrote it), the items they
    interacted with (all, and since the run was activated) and whether the run holds a list for them."""
    vector, tag = _slot_props(slot)
    return (
        f"MATCH (u:{_USER} {{id: $user}}) MATCH (run:{_RUN} {{id: $run}}) "
        f"RETURN CASE WHEN u.{tag} = run.id THEN u.{vector} END AS vector, "
        f"[(u)-[:{_INTERACTED}]->(i:{_ITEM}) | i.id] AS seen, "
        f"[(u)-[r:{_INTERACTED}]->(i:{_ITEM}) WHERE r.ts > run.activated_at | i.id] AS recent, "
        f"EXISTS {{ MATCH (u)-[rec:{_RECOMMENDED}]->() WHERE rec.run = run.id }} AS has_list"
    )


# The active runs (one expected; the caller refuses others) with what ActiveRun holds, as a list of maps.
_ACTIVE_RUNS = f"CALL () {{ MATCH (r:{_RUN} {{active: true}}) RETURN collect(r) AS runs }} "
_RUN_MAPS = (
    "[r IN runs | r {.id, slot: r.embedding_slot, activated_at: toString(r.activated_at), .checkpoint, .top_k}] AS runs"
)
# GET /users/{id}/recommendations in one read: whether the user and the entity ($entity may be null) exist,
# the active runs, whether the user interacted since the run was activated, whether the run holds a list for
# them, and that list in rank order without the items the filters drop (seen, when $exclude_seen; not
# related to the entity), cut at $k. The run and its list come from one transaction. The user's
# relationships are read as pattern comprehensions, which expand from the user: as EXISTS or COUNT the
# planner may instead scan the RECOMMENDED.run or INTERACTED.ts index over all users.
def _user_list(*, details: bool) -> str:
    """The query above; with ``details`` each item also carries its stored ``rank`` and ``explanation``."""
    extra, fields = (", explanation: rec.explanation", ", .rank, .explanation") if details else ("", "")
    return (
        f"OPTIONAL MATCH (u:{_USER} {{id: $user}}) OPTIONAL MATCH (e:{_ENTITY} {{id: $entity}}) "
        f"{_ACTIVE_RUNS}"
        "WITH u, e, runs, CASE WHEN size(runs) = 1 THEN runs[0] END AS run "
        f"WITH u, e, runs, run, [(u)-[rec:{_RECOMMENDED}]->(i:{_ITEM}) WHERE rec.run = run.id | "
        f"{{rank: rec.rank, item_id: i.id, title: i.title, score: rec.score{extra}, "
        f"keep: NOT ($exclude_seen AND EXISTS {{ (u)-[:{_INTERACTED}]->(i) }}) "
        f"AND ($entity IS NULL OR EXISTS {{ (i)-[:{_RELATES_TO}]->(e) }})}}] AS stored "
        f"RETURN u IS NOT NULL AS user_found, $entity IS NULL OR e IS NOT NULL AS entity_found, {_RUN_MAPS}, "
        f"coalesce(any(ts IN [(u)-[x:{_INTERACTED}]->(:{_ITEM}) | x.ts] WHERE ts > run.activated_at), false) AS recent, "
        "stored <> [] AS has_list, "
        "COLLECT { UNWIND stored AS s WITH s WHERE s.keep ORDER BY s.rank, s.item_id LIMIT $k "
        f"RETURN s {{.item_id, .title, .score{fields}}} }} AS items"
    )


API_RECOMMENDATIONS = _user_list(details=False)
# kgrec recommend: the same read with the stored ranks and explanations (and $exclude_seen true, $entity null,
# as the API's default list). It prints TOP_K_ACTIVE as the Cypher of that list.
API_RECOMMENDATIONS_EXPLAINED = _user_list(details=True)


def api_item_vector_page(slot: str) -> str:
    """One keyset page of the items the run wrote into its slot, as one record of parallel lists."""
    vector, tag = _slot_props(slot)
    return (
        f"MATCH (n:{_ITEM}) WHERE n.id > $after AND n.{tag} = $run WITH n ORDER BY n.id LIMIT $page "
        f"RETURN collect(n.id) AS id, collect(n.{vector}) AS vector"
    )


API_ITEM_TITLES = f"UNWIND $ids AS id MATCH (i:{_ITEM} {{id: id}}) RETURN i.id AS id, i.title AS title"
API_ENTITY_ITEMS = (
    f"OPTIONAL MATCH (e:{_ENTITY} {{id: $entity}}) "
    f"RETURN e IS NOT NULL AS found, CASE WHEN e IS NULL THEN [] ELSE [(e)<-[:{_RELATES_TO}]-(i:{_ITEM}) | i.id] END AS ids"
)
# popularity = INTERACTED in-degree (a degree count, no scan of the relationships)
API_POPULAR_ITEMS = (
    f"MATCH (i:{_ITEM}) WITH i, COUNT {{ (i)<-[:{_INTERACTED}]-() }} AS interactions WHERE interactions > 0 "
    "RETURN i.id AS item_id, i.title AS title, interactions ORDER BY interactions DESC, item_id LIMIT $limit"
)

# explanations: the stored one of the active run, and live paths counted in full, the first $limit returned
API_STORED_RECOMMENDATION = (
    f"MATCH (:{_USER} {{id: $user}})-[rec:{_RECOMMENDED}]->(:{_ITEM} {{id: $item}}) WHERE rec.run = $run "
    "RETURN rec.score AS score, rec.rank AS rank, rec.explanation AS explanation ORDER BY rec.rank LIMIT 1"
)


def api_item_vector(slot: str) -> str:
    """The item's vector in the run's slot, if that run wrote it."""
    vector, tag = _slot_props(slot)
    return f"MATCH (i:{_ITEM} {{id: $item}}) RETURN CASE WHEN i.{tag} = $run THEN i.{vector} END AS vector"


# user → interacted item → entity ← the item; rarer entities (fewer items) first: they say more. One path per
# (via item, entity), named by its first relation, and entities count distinct items: an item linked to an
# entity by two relations (genre and tag) is one path and one item, not two.
API_ENTITY_PATHS = (
    f"MATCH (:{_USER} {{id: $user}})-[:{_INTERACTED}]->(via:{_ITEM}) WHERE via.id <> $item "
    "WITH DISTINCT via "
    f"MATCH (via)-[r:{_RELATES_TO}]->(e:{_ENTITY})<-[:{_RELATES_TO}]-(:{_ITEM} {{id: $item}}) "
    "WITH via, e, min(r.relation) AS relation "
    f"WITH via, relation, e, COUNT {{ MATCH (e)<-[:{_RELATES_TO}]-(other:{_ITEM}) RETURN DISTINCT other }} "
    "AS entity_items "
    "ORDER BY entity_items, via.id, e.id, relation "
    "WITH collect({via_item: via.id, via_item_title: via.title, relation: relation, entity: e.id, "
    "entity_name: e.name, entity_items: entity_items}) AS paths "
    "RETURN size(paths) AS count, paths[..$limit] AS paths"
)
# user → followed user → the item; followers who interacted with it most often first
API_SOCIAL_PATHS = (
    f"MATCH (u:{_USER} {{id: $user}})-[:{_FOLLOWS}]->(f:{_USER}) WHERE f <> u "
    "WITH DISTINCT f "
    f"WITH f, COUNT {{ (f)-[:{_INTERACTED}]->(:{_ITEM} {{id: $item}}) }} AS interactions WHERE interactions > 0 "
    "ORDER BY interactions DESC, f.id "
    "WITH collect({via_user: f.id, interactions: interactions}) AS paths "
    "RETURN size(paths) AS count, paths[..$limit] AS paths"
)


# similar items: the index is asked for one more than wanted, since the item finds itself
def _slot_value(node: str, *, tag: bool = False) -> str:
    """``node``'s vector in the slot of ``run`` (only if that run wrote it), or with ``tag`` the run that wrote
    that slot: a CASE over the fixed slots, null without a run."""
    branches = []
    for slot in EMBEDDING_SLOTS:
        vector, run_tag = _slot_props(slot)
        value = f"{node}.{run_tag}" if tag else f"CASE WHEN {node}.{run_tag} = run.id THEN {node}.{vector} END"
        branches.append(f"WHEN '{slot}' THEN {value}")
    return f"CASE run.embedding_slot {' '.join(branches)} END"


def _nearest(vector: str, index: str, keep: str, column: str) -> str:
    """A subquery that collects, as ``column``, the ``$k`` items nearest to the variable ``vector`` in
    ``index`` (not the item itself), best first; nothing when ``vector`` is null."""
    return (
        f"CALL (i, run, {vector}) {{ WITH * WHERE {vector} IS NOT NULL "
        f"CALL db.index.vector.queryNodes({index}, $k + 1, {vector}) YIELD node, score "
        f"WITH i, run, node, score WHERE node <> i{keep} "
        "WITH node, score ORDER BY score DESC, node.id LIMIT $k "
        f"RETURN collect({{item_id: node.id, title: node.title, score: score}}) AS {column} }} "
    )


# GET /items/{id}/similar in one read: whether the item exists, the active runs, which vectors the item has
# (the run's slot, if that run wrote it; text), and its nearest items: by the run's slot vector index
# ($indexes: slot -> index name), without items whose slot another run wrote; else by the text vector index
# ($text_index).
API_SIMILAR_ITEMS = (
    f"OPTIONAL MATCH (i:{_ITEM} {{id: $item}}) "
    f"{_ACTIVE_RUNS}"
    "WITH i, runs, CASE WHEN size(runs) = 1 THEN runs[0] END AS run "
    f"WITH i, runs, run, {_slot_value('i')} AS vector "
    "WITH i, runs, run, vector, CASE WHEN vector IS NULL THEN i.text_embedding END AS text_vector "
    + _nearest("vector", "$indexes[run.embedding_slot]", f" AND {_slot_value('node', tag=True)} = run.id", "by_model")
    + _nearest("text_vector", "$text_index", "", "by_text")
    + f"RETURN i IS NOT NULL AS item_found, {_RUN_MAPS}, vector IS NOT NULL AS model, "
    "i.text_embedding IS NOT NULL AS text, CASE WHEN vector IS NULL THEN by_text ELSE by_model END AS items"
)

# writes: an interaction is one relationship per client event_id (unique: migration 5); the user is
# created if new, the item must exist (no row comes back otherwise)
API_RECORD_INTERACTION = (
    f"MATCH (i:{_ITEM} {{id: $item}}) MERGE (u:{_USER} {{id: $user}}) "
    f"MERGE (u)-[r:{_INTERACTED} {{event_id: $event_id}}]->(i) "
    "ON CREATE SET r.kind = $kind, r.weight = $weight, r.rating = $rating, "
    "r.ts = CASE WHEN $ts_ms IS NULL THEN datetime() ELSE datetime({epochMillis: $ts_ms}) END "
    "RETURN r.event_id AS event_id"
)
API_INTERACTION_BY_EVENT = (
    f"MATCH (u:{_USER})-[r:{_INTERACTED} {{event_id: $event_id}}]->(i:{_ITEM}) RETURN u.id AS user_id, i.id AS item_id"
)
# the item and its links in one transaction; the caller has checked that the entities and relations exist
API_CREATE_ITEM = (
    f"CREATE (i:{_ITEM} {{id: $id}}) SET i += $attributes SET i.title = $title, i.text = $text "
    "WITH i CALL (i) { "
    f"  UNWIND $links AS link MATCH (e:{_ENTITY} {{id: link.entity_id}}) "
    f"  CREATE (i)-[:{_RELATES_TO} {{relation: link.relation}}]->(e) RETURN count(*) AS linked "
    "} RETURN linked"
)
