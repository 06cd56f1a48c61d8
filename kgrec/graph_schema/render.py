"""The schema as people read it: tables of the vocabulary and a Mermaid diagram."""

from __future__ import annotations

from kgrec.graph_schema.vocabulary import NODE_PROPS, REL_SPECS


def node_rows() -> list[tuple[str, str, str, str, str]]:
    """(label, property, type, required, meaning) for every node property."""
    return [
        (label.value, p.name, p.type, "yes" if p.required else "", p.doc)
        for label, props in NODE_PROPS.items()
        for p in props
    ]


def relationship_rows() -> list[tuple[str, str, str, str]]:
    """(pattern, property, type, meaning) for every relationship type and property."""
    rows = []
    for spec in REL_SPECS.values():
        pattern = f"({'|'.join(h.value for h in spec.heads)})-[:{spec.type.value}]->({'|'.join(t.value for t in spec.tails)})"
        rows.append((pattern, "", "", spec.doc))
        rows.extend((pattern, p.name, p.type + (" (required)" if p.required else ""), p.doc) for p in spec.props)
    return rows


def mermaid() -> str:
    """An ``erDiagram`` of labels (with properties) and relationship types."""
    lines = ["erDiagram"]
    for label, props in NODE_PROPS.items():
        lines.append(f"    {label.value} {{")
        lines.extend(f"        {_mermaid_type(p.type)} {p.name}{' PK' if p.name in ('id', 'version') else ''}" for p in props)
        lines.append("    }")
    for spec in REL_SPECS.values():
        for head in spec.heads:
            for tail in spec.tails:
                lines.append(f"    {head.value} }}o--o{{ {tail.value} : {spec.type.value}")
    return "\n".join(lines)


def _mermaid_type(cypher_type: str) -> str:
    return cypher_type.replace("LIST<FLOAT>", "float_list").replace("DATE TIME", "datetime").lower()
