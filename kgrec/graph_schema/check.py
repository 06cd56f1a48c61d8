"""``kgrec schema check``: a read-only audit of a graph that people also edit by hand.

It reports nodes missing required properties, properties of the wrong type (an id that is a number, a text
that is a list, a time that is a string), labels and relationship types outside the vocabulary,
relationships between the wrong labels, duplicate ids (only where no uniqueness constraint already rules
them out), the same link made twice between two nodes (a load of that interaction updates both and stops;
the export counts a knowledge link or follow twice), items without text, entities linked to nothing, and
knowledge relations that were never registered. Each finding has a severity: ``error`` breaks kgrec
(export, training, write-back), ``warning`` weakens it (an item without text has no text features).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kgrec.db import Graph
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.vocabulary import NODE_PROPS, REL_SPECS, Label, RelType


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" or "warning"
    check: str
    subject: str
    count: int
    sample: list[str] = field(default_factory=list)


def check_graph(graph: Graph, *, sample: int = 5) -> list[Finding]:
    """Run every check; return the findings (empty when the graph is clean). Never writes."""
    findings: list[Finding] = []

    def run(severity: str, check: str, subject: str, query: str, **params: object) -> None:
        row = graph.read(query, sample=sample, **params)[0]
        if row["count"]:
            findings.append(Finding(severity, check, subject, row["count"], [str(s) for s in row["sample"]]))

    known_labels = {label.value for label in Label}
    for label in (row["label"] for row in graph.read(q.LABELS_IN_USE)):
        if label not in known_labels:
            run("warning", "unknown label", label, q.NODES_WITH_LABEL, label=label)
    known_types = {rel.value for rel in RelType}
    for rel_type in (row["type"] for row in graph.read(q.REL_TYPES_IN_USE)):
        if rel_type not in known_types:
            run("error", "unknown relationship type", rel_type, q.RELS_WITH_TYPE, type=rel_type)

    unique = _unique_constraints(graph)
    for label, props in NODE_PROPS.items():
        for prop in props:
            if prop.required:
                run("error", "missing required property", f"{label.value}.{prop.name}", q.missing_property(label, prop.name))
        key = "version" if label is Label.MIGRATION else "name" if label is Label.RELATION else "id"
        if (label.value, key) not in unique:
            run("error", "duplicate id", f"{label.value}.{key}", q.duplicate_ids(label, key))

    typed = list(NODE_PROPS.items())
    typed += [(spec.type, spec.props) for spec in REL_SPECS.values() if spec.props]
    for target, props in typed:
        for row in graph.read(q.wrong_types(target), props=_typed(props), sample=sample):
            findings.append(Finding("error", "wrong property type", f"{target.value}.{row['prop']}", row["count"],
                                    [str(s) for s in row["sample"]]))

    for spec in REL_SPECS.values():
        run("error", "wrong endpoints", spec.type.value, q.wrong_endpoints(spec.type, spec.heads, spec.tails))
        for prop in spec.props:
            if prop.required:
                run("error", "missing required property", f"{spec.type.value}.{prop.name}", q.missing_rel_property(spec.type, prop.name))

    for severity, rel_type, what in (
        ("error", RelType.INTERACTED, "kind"), ("warning", RelType.RELATES_TO, "relation"), ("warning", RelType.FOLLOWS, ""),
    ):
        run(severity, "duplicate link", rel_type.value, q.duplicate_links(rel_type), what=what)
    run("warning", "unregistered relation", "RELATES_TO.relation", q.UNREGISTERED_RELATIONS)
    run("warning", "item without text", "Item.text", q.ITEMS_WITHOUT_TEXT)
    run("warning", "entity linked to nothing", "Entity", q.UNLINKED_ENTITIES)
    return findings


# what Neo4j's valueType() calls the values each vocabulary type admits (an integer where a float is expected is fine)
VALUE_TYPES = {
    "STRING": ["STRING"], "FLOAT": ["FLOAT", "INTEGER"], "INTEGER": ["INTEGER"], "BOOLEAN": ["BOOLEAN"],
    "DATE TIME": ["ZONED DATETIME"], "LIST<FLOAT>": ["LIST<FLOAT"],
}


def _typed(props) -> list[dict[str, object]]:
    return [{"name": p.name, "types": VALUE_TYPES[p.type]} for p in props]


def _unique_constraints(graph: Graph) -> set[tuple[str, str]]:
    return {
        (row["labelsOrTypes"][0], row["properties"][0])
        for row in graph.read(q.SHOW_CONSTRAINTS)
        if row["type"] == "UNIQUENESS" and len(row["labelsOrTypes"]) == 1 and len(row["properties"]) == 1
    }
