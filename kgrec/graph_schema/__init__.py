"""The graph schema as code: vocabulary, named Cypher, migrations and the read-only check."""

from kgrec.graph_schema.vocabulary import EMBEDDING_SLOTS, NODE_PROPS, REL_SPECS, Label, RelType, quote

__all__ = ["EMBEDDING_SLOTS", "NODE_PROPS", "REL_SPECS", "Label", "RelType", "quote"]
