"""Item text vectors against a real Neo4j: encoded once, re-encoded only where the text changed."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.config import Settings
from kgrec.db import Graph
from kgrec.errors import KgrecError
from kgrec.graph_schema.migrations import apply_migrations
from kgrec.model.text import TextEncoder, text_hash
from kgrec.model.text_graph import encode_items_in_graph, item_text

MODEL = "all-MiniLM-L6-v2"
ITEMS = [
    {"id": "i1", "title": "Interstellar", "text": "A space crew travels through a wormhole to save humanity"},
    {"id": "i2", "title": "Ratatouille", "text": "A rat who dreams of cooking in a Paris restaurant"},
    {"id": "i3", "title": "Twelve Angry Men"},  # no text: encoded by its title
]


def stored(graph: Graph) -> dict[str, dict]:
    rows = graph.read(
        "MATCH (i:Item) RETURN i.id AS id, i.title AS title, coalesce(i.text, '') AS text, "
        "i.text_embedding AS vector, i.text_hash AS hash, i.text_model AS model ORDER BY id"
    )
    return {row["id"]: row for row in rows}


def assert_vectors_match(graph: Graph, encoder: TextEncoder) -> None:
    for item_id, row in stored(graph).items():
        text = item_text(row["title"], row["text"])
        assert row["hash"] == text_hash(text) and row["model"] == MODEL, item_id
        expected = encoder.encode([text])[0]
        assert np.allclose(np.asarray(row["vector"], dtype=np.float32), expected, atol=1e-6), item_id


def test_encode_items_only_touches_new_or_changed_text(graph: Graph, settings: Settings) -> None:
    apply_migrations(graph, dimension=384)
    graph.write(
        "UNWIND $rows AS row CREATE (i:Item {id: row.id, title: row.title}) SET i.text = row.text", rows=ITEMS
    )
    encoder = TextEncoder(MODEL, settings.data_dir / "text_cache")

    first = encode_items_in_graph(graph, encoder, batch_size=2)  # two keyset pages
    assert (first["items"], first["encoded"], first["unchanged"]) == (3, 3, 0)
    assert_vectors_match(graph, encoder)
    assert stored(graph)["i3"]["hash"] == text_hash("Twelve Angry Men")

    second = encode_items_in_graph(graph, encoder, batch_size=2)
    assert (second["items"], second["encoded"], second["unchanged"]) == (3, 0, 3)

    before = stored(graph)
    graph.write("MATCH (i:Item {id: $id}) SET i.text = $text", id="i2", text="A chef and a rat cook soup together")
    third = encode_items_in_graph(graph, encoder, batch_size=2)
    assert (third["items"], third["encoded"], third["unchanged"]) == (3, 1, 2)
    assert encoder.last_stats.encoded == 1
    after = stored(graph)
    assert after["i1"]["vector"] == before["i1"]["vector"] and after["i3"]["vector"] == before["i3"]["vector"]
    assert after["i2"]["hash"] != before["i2"]["hash"]
    assert_vectors_match(graph, encoder)

    # a new encoder on the same cache (a later process) finds nothing to do and loads no model
    fresh = TextEncoder(MODEL, settings.data_dir / "text_cache")
    assert encode_items_in_graph(graph, fresh)["encoded"] == 0 and fresh._model is None


def test_a_text_that_is_not_a_string_is_one_error_naming_the_item(graph: Graph, settings: Settings) -> None:
    """kgrec refresh failed here with "'list' object has no attribute 'strip'"."""
    graph.write("CREATE (:Item {id: 'i1', title: 'T', text: ['a', 'list']})")
    with pytest.raises(KgrecError, match=r"^item 'i1' has a text that is not a string \(list\)"):
        encode_items_in_graph(graph, TextEncoder(MODEL, settings.data_dir / "text_cache"))
