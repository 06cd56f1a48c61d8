"""Keep the graph's item text vectors (``Item.text_embedding``) up to date with a :class:`TextEncoder`.

Each item is encoded as ``title. text`` (the title alone when it has no text), the same string the PyG
export puts in ``data['item'].text``, so a model that encodes the export's text reuses the same cache. An
item is encoded again only when the hash of that string (``Item.text_hash``) or the encoder
(``Item.text_model``) differs from what its stored vector was made with, or when it has no vector.
"""

from __future__ import annotations

import logging
import time

from kgrec.db import Graph
from kgrec.errors import KgrecError
from kgrec.graph_schema import queries as q
from kgrec.loaders.export import item_text  # the export's item text, so both share the encoder's cache
from kgrec.model.text import TextEncoder, text_hash

__all__ = ["encode_items_in_graph", "item_text"]

log = logging.getLogger(__name__)


def encode_items_in_graph(graph: Graph, encoder: TextEncoder, *, batch_size: int = 1000) -> dict[str, int | float]:
    """Encode the items whose text or encoder changed and write their vectors back, page by page.

    Items are read in keyset pages of ``batch_size`` ids (:data:`~kgrec.graph_schema.queries.ITEM_TEXT_PAGE`);
    each page's changed items are encoded and written in one transaction
    (:data:`~kgrec.graph_schema.queries.SET_ITEM_TEXT_EMBEDDINGS`), so an interrupted run keeps the pages it
    finished and the next run picks up the rest.

    Args:
        graph: the database.
        encoder: the text encoder; its ``model_name`` is stored as ``Item.text_model``.
        batch_size: items per page and per write transaction (default 1000).

    Returns:
        ``{"items": n, "encoded": k, "unchanged": n - k - skipped, "skipped": items with neither title nor
        text (left as they are, with a warning), "seconds": wall time}``. ``encoded`` counts items given a
        new vector (several items with the same text are run through the model once: ``encoder.stats``).
    """
    if batch_size < 1:
        raise ValueError(f"'batch_size' (got {batch_size}) must be at least 1")
    start = time.perf_counter()
    counts = {"items": 0, "encoded": 0, "unchanged": 0, "skipped": 0}
    blank: list[str] = []
    after = ""
    while True:
        page = graph.read(q.ITEM_TEXT_PAGE, after=after, page=batch_size)[0]
        ids = page["id"]
        rows = []
        for item_id, title, text, old_hash, old_model, has_embedding in zip(
            ids, page["title"], page["text"], page["text_hash"], page["text_model"], page["has_embedding"]
        ):
            if not isinstance(title, str) or not isinstance(text, str):
                wrong = title if not isinstance(title, str) else text
                raise KgrecError(
                    f"item {item_id!r} has a {'title' if wrong is title else 'text'} that is not a string "
                    f"({type(wrong).__name__}): make it a string (`kgrec schema check` lists every value of the wrong type)"
                )
            full = item_text(title, text)
            if not full:
                blank.append(item_id)
                continue
            h = text_hash(full)
            if h != old_hash or old_model != encoder.model_name or not has_embedding:
                rows.append({"id": item_id, "text": full, "hash": h})
        if rows:
            vectors = encoder.encode([row["text"] for row in rows])  # (k, d)
            graph.write(
                q.SET_ITEM_TEXT_EMBEDDINGS,
                rows=[{"id": r["id"], "vector": v.tolist(), "hash": r["hash"]} for r, v in zip(rows, vectors)],
                model=encoder.model_name,
            )
        counts["items"] += len(ids)
        counts["encoded"] += len(rows)
        if len(ids) < batch_size:
            break
        after = ids[-1]
    counts["skipped"] = len(blank)
    counts["unchanged"] = counts["items"] - counts["encoded"] - counts["skipped"]
    if blank:
        log.warning("%d items have neither title nor text and were not encoded (for example %s)", len(blank), blank[:5])
    return {**counts, "seconds": time.perf_counter() - start}
