"""The text encoder and its cache, with the real (bundled, offline) MiniLM, and the graph re-encoding logic
against a recording fake of the gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kgrec.graph_schema import queries as q
from kgrec.loaders import export
from kgrec.model.text import TextEncoder, cache_folder_name, text_hash
from kgrec.model.text_graph import encode_items_in_graph, item_text

MODEL = "all-MiniLM-L6-v2"
TEXTS = [
    "The striker scored twice as the football club won the league final.",
    "A late goal from the midfielder decided the soccer match at the stadium.",
    "Simmer the tomatoes with garlic and basil to make a rich pasta sauce.",
    "The orchestra performed a symphony by Beethoven to a full concert hall.",
    "Astronauts docked their capsule with the international space station.",
]


def shards(encoder: TextEncoder) -> list[Path]:
    assert encoder.cache_path is not None
    return sorted(encoder.cache_path.glob("*.parquet"))


def test_text_hash_is_stable() -> None:
    assert text_hash("hello") == "2cf24dba5fb0a30e26e83b2ac5b9e29e"  # sha256("hello")[:32]
    assert text_hash("héllo wörld") == text_hash("héllo wörld") != text_hash("hello world")
    assert len(text_hash("")) == 32


def test_cache_folder_names_are_safe_and_distinct() -> None:
    assert cache_folder_name("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert cache_folder_name("sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"  # same model
    a, b = cache_folder_name("BAAI/bge-small-en-v1.5"), cache_folder_name("BAAI_bge-small-en-v1.5")
    assert "/" not in a and a.startswith("BAAI_bge-small-en-v1.5-") and a != b
    assert "/" not in cache_folder_name("/models/../my model")


def test_dimension_without_loading(tmp_path: Path) -> None:
    encoder = TextEncoder(MODEL, tmp_path)
    assert encoder.dimension == 384 and encoder._model is None
    assert repr(encoder).startswith("TextEncoder('all-MiniLM-L6-v2', device='cpu'")


def test_encode_cache_and_reload(tmp_path: Path) -> None:
    encoder = TextEncoder(MODEL, tmp_path, batch_size=2)  # several batches
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sim = vectors @ vectors.T
    assert sim[0, 1] > sim[0, 2] + 0.2 and sim[0, 1] > sim[1, 2] + 0.2  # football vs football, vs cooking
    assert (encoder.last_stats.encoded, encoder.last_stats.hits) == (5, 0) and encoder.last_stats.seconds > 0
    assert len(shards(encoder)) == 1

    again = encoder.encode(TEXTS)  # from memory
    assert (encoder.last_stats.encoded, encoder.last_stats.hits) == (0, 5)
    assert np.array_equal(again, vectors)
    assert (encoder.stats.texts, encoder.stats.encoded, encoder.stats.hits) == (10, 5, 5)

    fresh = TextEncoder(MODEL, tmp_path)  # from disk, without loading the model
    assert np.array_equal(fresh.encode(TEXTS[::-1]), vectors[::-1])
    assert (fresh.last_stats.encoded, fresh.last_stats.hits) == (0, 5) and fresh._model is None

    changed = [*TEXTS[:4], "Astronauts docked their capsule with the lunar gateway."]
    out = fresh.encode(changed)
    assert (fresh.last_stats.encoded, fresh.last_stats.hits) == (1, 4)
    assert np.array_equal(out[:4], vectors[:4]) and not np.allclose(out[4], vectors[4])
    assert len(shards(fresh)) == 2 and len(TextEncoder(MODEL, tmp_path)) == 6  # append-only


def test_duplicates_are_encoded_once(tmp_path: Path) -> None:
    encoder = TextEncoder(MODEL, None)  # memory only
    texts = [TEXTS[0], TEXTS[2], TEXTS[0], TEXTS[0], TEXTS[2]]
    vectors = encoder.encode(texts)
    stats = encoder.last_stats
    assert (stats.texts, stats.encoded, stats.duplicates, stats.hits) == (5, 2, 3, 0)
    assert np.array_equal(vectors[0], vectors[2]) and np.array_equal(vectors[1], vectors[4])
    assert encoder.encode([]).shape == (0, 384)


@pytest.mark.parametrize("bad, index", [(["ok", ""], 1), (["  \n\t"], 0), (["a", "b", " "], 2)])
def test_empty_text_is_refused(tmp_path: Path, bad: list[str], index: int) -> None:
    encoder = TextEncoder(MODEL, tmp_path)
    with pytest.raises(ValueError, match=f"text {index} .*empty"):
        encoder.encode(bad)
    assert encoder._model is None and not (tmp_path / MODEL).exists()  # refused before any work


def test_a_broken_shard_is_ignored_and_temps_never_count(tmp_path: Path) -> None:
    encoder = TextEncoder(MODEL, tmp_path)
    vectors = encoder.encode(TEXTS[:2])
    assert encoder.cache_path is not None
    (encoder.cache_path / "zz-broken.parquet").write_bytes(b"not parquet")  # say, a copy cut short
    (encoder.cache_path / ".half-written.parquet.tmp").write_bytes(b"PAR1")
    fresh = TextEncoder(MODEL, tmp_path)
    assert np.array_equal(fresh.encode(TEXTS[:2]), vectors) and fresh.last_stats.encoded == 0


def test_compact_merges_shards(tmp_path: Path) -> None:
    encoder = TextEncoder(MODEL, tmp_path)
    for text in TEXTS[:3]:
        encoder.encode([text])
    assert len(shards(encoder)) == 3
    assert encoder.compact() == 3 and len(shards(encoder)) == 1
    fresh = TextEncoder(MODEL, tmp_path)
    assert np.array_equal(fresh.encode(TEXTS[:3]), encoder.encode(TEXTS[:3])) and fresh.last_stats.encoded == 0


def test_item_text_is_the_exports() -> None:
    assert item_text is export.item_text  # one definition, so the graph's vectors and the export share the cache
    cases = {("Heat", "A heist film"): "Heat. A heist film", ("  Heat ", ""): "Heat", ("", "only text"): "only text",
             ("Heat", "   "): "Heat", ("", ""): ""}
    assert {case: item_text(*case) for case in cases} == cases


class FakeGraph:
    """Items in memory; answers the keyset page query and records the vector writes."""

    def __init__(self, items: dict[str, dict[str, Any]]) -> None:
        self.items = items
        self.writes: list[dict[str, Any]] = []

    def read(self, query: str, **params: Any) -> list[dict[str, Any]]:
        assert query == q.ITEM_TEXT_PAGE and set(params) == {"after", "page"}
        ids = sorted(i for i in self.items if i > params["after"])[: params["page"]]
        rows = [self.items[i] for i in ids]
        return [{
            "id": ids,
            "title": [r.get("title", "") for r in rows],
            "text": [r.get("text", "") for r in rows],
            "text_hash": [r.get("text_hash", "") for r in rows],
            "text_model": [r.get("text_model", "") for r in rows],
            "has_embedding": ["text_embedding" in r for r in rows],
        }]

    def write(self, query: str, **params: Any) -> dict[str, int]:
        assert query == q.SET_ITEM_TEXT_EMBEDDINGS and set(params) == {"rows", "model"}
        self.writes.append(params)
        for row in params["rows"]:
            self.items[row["id"]].update(text_embedding=row["vector"], text_hash=row["hash"], text_model=params["model"])
        return {}


def test_encode_items_touches_only_changed_text(tmp_path: Path) -> None:
    items = {f"i{k}": {"title": f"Item {k}", "text": text} for k, text in enumerate(TEXTS)}
    items["i5"] = {"title": "Untitled"}  # no text: its title alone
    items["i6"] = {"title": " ", "text": ""}  # nothing to encode
    graph, encoder = FakeGraph(items), TextEncoder(MODEL, tmp_path)
    first = encode_items_in_graph(graph, encoder, batch_size=2)  # pages of 2: keyset paging
    assert {k: first[k] for k in ("items", "encoded", "unchanged", "skipped")} == {"items": 7, "encoded": 6, "unchanged": 0, "skipped": 1}
    assert len(graph.writes) == 3 and all(w["model"] == MODEL for w in graph.writes)
    assert items["i5"]["text_hash"] == text_hash("Untitled") and "text_embedding" not in items["i6"]
    assert np.allclose(items["i0"]["text_embedding"], encoder.encode([f"Item 0. {TEXTS[0]}"])[0])

    assert encode_items_in_graph(graph, encoder, batch_size=2)["encoded"] == 0
    items["i3"]["text"] = "A jazz quartet improvised late into the night."
    del items["i4"]["text_embedding"]  # removed by hand
    items["i1"]["text_model"] = "all-mpnet-base-v2"  # made by another model
    again = encode_items_in_graph(graph, encoder, batch_size=1000)
    assert (again["encoded"], again["unchanged"]) == (3, 3)
    assert encoder.last_stats.encoded == 1  # only the new text ran through the model
    assert [r["id"] for r in graph.writes[-1]["rows"]] == ["i1", "i3", "i4"]
