import re

import pytest

from kgrec.errors import SchemaError
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.vocabulary import NODE_PROPS, REL_SPECS, Label, RelType, quote


def test_quote_backquotes_vocabulary() -> None:
    assert quote(Label.ITEM) == "`Item`"
    assert quote(RelType.RELATES_TO) == "`RELATES_TO`"
    assert quote("text_embedding") == "`text_embedding`"


@pytest.mark.parametrize("bad", ["Item`) DETACH DELETE n //", "password", "", "ID"])
def test_quote_refuses_what_is_not_vocabulary(bad: str) -> None:
    with pytest.raises(SchemaError, match="not in kgrec's graph vocabulary"):
        quote(bad)


def test_every_relationship_spec_is_complete() -> None:
    assert set(REL_SPECS) == set(RelType)
    for spec in REL_SPECS.values():
        assert spec.heads and spec.tails and spec.doc


def test_every_label_has_a_required_key() -> None:
    assert set(NODE_PROPS) == set(Label)
    for props in NODE_PROPS.values():
        assert any(p.required for p in props)


def _backquoted(query: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", query))


def test_builders_only_splice_vocabulary() -> None:
    vocabulary = {label.value for label in Label} | {rel.value for rel in RelType}
    vocabulary |= {p.name for props in NODE_PROPS.values() for p in props}
    vocabulary |= {p.name for spec in REL_SPECS.values() for p in spec.props}
    built = [q.count_label(label) for label in Label] + [q.count_rel_type(rel) for rel in RelType]
    built += [q.count_all(Label, RelType)]
    built += [q.missing_property(Label.ITEM, "title"), q.duplicate_ids(Label.USER, "id")]
    built += [q.wrong_endpoints(s.type, s.heads, s.tails) for s in REL_SPECS.values()]
    for query in built:
        assert _backquoted(query) <= vocabulary, query


def test_outside_vocabulary_queries_take_parameters() -> None:
    assert "$label" in q.NODES_WITH_LABEL and "$type" in q.RELS_WITH_TYPE
