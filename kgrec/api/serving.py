"""Reading recommendations: the active run's stored lists, on-the-fly scores, popular items, explanations
and similar items. No HTTP here: errors are :mod:`kgrec.api.errors`.

Which list a user gets (:func:`recommend`):

* ``precomputed`` — the run holds a list for the user and they have not interacted since the run was
  activated (``INTERACTED.ts > ModelRun.activated_at``).
* ``on_the_fly`` — otherwise, if a user vector can be formed: the user's stored slot embedding plus the
  mean slot embedding of the items they interacted with since activation; without a stored embedding, the
  mean slot embedding of all the items they interacted with. Scores are dot products with every item the
  run embedded (the cached :class:`ItemMatrix`).
* ``popular`` — no vector can be formed (no history, no embedding): the items with most ``INTERACTED``.

Both caches (the matrix, popular items) may hold items deleted since they were read: the two last sources
look their items up before answering and drop those that no longer exist (:func:`first_existing`). A
stored list, and the vector index behind similar items, lose a deleted item with the item itself.

A precomputed list costs one query (:data:`~kgrec.graph_schema.queries.API_RECOMMENDATIONS`: the user, the
active run, the user's state and the filtered list, read in one transaction); the other sources read more.
Similar items are one query too. The active run is read for every request, never cached.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from kgrec.api.errors import NoActiveRun, NotFound
from kgrec.db import Graph
from kgrec.errors import KgrecError
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.vocabulary import EMBEDDING_SLOTS, Label
from kgrec.loaders.writeback import WriteBackError

LIVE_PATHS = 5  # live explanation paths returned per kind (all are counted)


@dataclass(frozen=True)
class ActiveRun:
    id: str
    slot: str  # embedding_a | embedding_b
    activated_at: str | None = None
    checkpoint: str | None = None
    top_k: int | None = None


def read_active_run(graph: Graph) -> ActiveRun | None:
    return active_run(graph.read(q.API_ACTIVE_RUN))


def active_run(rows: list[dict[str, Any]]) -> ActiveRun | None:
    """The one active run among ``rows`` (``ActiveRun`` fields), ``None`` without one.

    Raises:
        WriteBackError: several runs are active, or the active run has no embedding slot.
    """
    if len(rows) > 1:  # the activation query keeps one; a hand edit may not
        raise WriteBackError(f"{len(rows)} ModelRuns are marked active ({sorted(r['id'] for r in rows)}); keep one")
    if not rows:
        return None
    if rows[0]["slot"] not in EMBEDDING_SLOTS:
        raise WriteBackError(f"the active run {rows[0]['id']!r} has no embedding slot (got {rows[0]['slot']!r})")
    return ActiveRun(**rows[0])


@dataclass(frozen=True)
class Scored:
    item_id: str
    title: str | None
    score: float


@dataclass(frozen=True)
class Recommendations:
    run_id: str
    source: str  # precomputed | on_the_fly | popular
    items: list[Scored]


# -- caches ------------------------------------------------------------------------------------------------
class ItemMatrix:
    """The item embeddings one run wrote into its slot: ``ids`` (sorted) and ``vectors`` ``(n, d)``."""

    def __init__(self, run_id: str, ids: list[str], vectors: np.ndarray) -> None:
        self.run_id = run_id
        self.ids = ids
        self.vectors = vectors  # (n, d) float32
        self.position = {item_id: n for n, item_id in enumerate(ids)}

    def __repr__(self) -> str:
        return f"ItemMatrix(run={self.run_id!r}, items={len(self.ids)}, dim={self.vectors.shape[1]})"

    def positions(self, ids: Iterable[str]) -> np.ndarray:
        """Row numbers of the given ids that the run embedded, each once, in first-seen order."""
        rows = (self.position.get(item_id) for item_id in dict.fromkeys(ids))
        return np.fromiter((r for r in rows if r is not None), dtype=np.int64)

    @classmethod
    def load(cls, graph: Graph, run: ActiveRun, *, page: int = 10_000) -> ItemMatrix:
        """Read the run's item vectors in keyset pages of ``page`` ids."""
        ids: list[str] = []
        chunks: list[np.ndarray] = []
        query = q.api_item_vector_page(run.slot)
        after = ""
        while True:
            columns = graph.read_columns(query, after=after, run=run.id, page=page)
            if columns["id"]:
                ids.extend(columns["id"])
                chunks.append(np.asarray(columns["vector"], dtype=np.float32))
            if len(columns["id"]) < page:
                break
            after = columns["id"][-1]
        dims = {c.shape[1] for c in chunks}
        if len(dims) > 1:
            raise KgrecError(f"run {run.id!r} has item embeddings of several sizes {sorted(dims)}")
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)
        return cls(run.id, ids, vectors)


class ItemMatrixCache:
    """The active run's :class:`ItemMatrix`, loaded on first use and again when the active run changes."""

    def __init__(self, page: int = 10_000) -> None:
        self.page = page
        self._matrix: ItemMatrix | None = None
        self._lock = threading.Lock()

    def get(self, graph: Graph, run: ActiveRun) -> ItemMatrix:
        with self._lock:  # one load at a time; an invalidation waits for a load under way
            if self._matrix is None or self._matrix.run_id != run.id:
                self._matrix = None  # never keep a stale run's matrix if this load fails
                self._matrix = ItemMatrix.load(graph, run, page=self.page)
            return self._matrix

    def invalidate(self) -> None:
        with self._lock:
            self._matrix = None


class PopularCache:
    """The most interacted items (``size`` of them), per run, for ``ttl`` seconds."""

    def __init__(self, ttl: float = 300.0, size: int = 1000) -> None:
        self.ttl = ttl
        self.size = size
        self._entry: tuple[str, float, list[Scored]] | None = None  # run id, loaded at, items
        self._lock = threading.Lock()

    def get(self, graph: Graph, run_id: str) -> list[Scored]:
        with self._lock:
            entry = self._entry
            if entry is None or entry[0] != run_id or time.monotonic() - entry[1] > self.ttl:
                rows = graph.read(q.API_POPULAR_ITEMS, limit=self.size)
                items = [Scored(r["item_id"], r["title"], float(r["interactions"])) for r in rows]
                self._entry = entry = (run_id, time.monotonic(), items)
            return entry[2]


# -- recommendations -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UserState:
    vector: np.ndarray | None  # (d,) the run's embedding of the user
    seen: list[str]  # items interacted with, ever
    recent: list[str]  # items interacted with since the run was activated
    has_list: bool  # the run holds a precomputed list for the user


def read_user_state(graph: Graph, run: ActiveRun, user_id: str) -> UserState:
    rows = graph.read(q.api_user_state(run.slot), user=user_id, run=run.id)
    if not rows:
        raise NotFound(f"unknown user {user_id!r}")
    row = rows[0]
    vector = None if row["vector"] is None else np.asarray(row["vector"], dtype=np.float32)
    return UserState(vector, row["seen"], row["recent"], row["has_list"])


def user_vector(state: UserState, matrix: ItemMatrix) -> np.ndarray | None:
    """The stored user vector plus the mean of the items interacted with since the run (or, without a stored
    vector, the mean of all interacted items); ``None`` when neither exists."""
    if not matrix.ids:
        return None
    if state.vector is not None:
        if state.vector.shape != matrix.vectors.shape[1:]:
            raise KgrecError(
                f"run {matrix.run_id!r} stores user vectors of size {state.vector.shape[0]} "
                f"but item vectors of size {matrix.vectors.shape[1]}"
            )
        recent = matrix.positions(state.recent)
        return state.vector + matrix.vectors[recent].mean(axis=0) if len(recent) else state.vector
    history = matrix.positions(state.seen)
    return matrix.vectors[history].mean(axis=0) if len(history) else None


def entity_items(graph: Graph, entity_id: str) -> set[str]:
    row = graph.read(q.API_ENTITY_ITEMS, entity=entity_id)[0]
    if not row["found"]:
        raise NotFound(f"unknown entity {entity_id!r}")
    return set(row["ids"])


def recommend(
    graph: Graph,
    user_id: str,
    *,
    k: int,
    exclude_seen: bool,
    entity: str | None,
    matrices: ItemMatrixCache,
    popular: PopularCache,
) -> Recommendations:
    """The user's top ``k`` from the active run (see the module docstring for which source serves them).

    Raises:
        NotFound: unknown user, then unknown entity (after the run is checked).
        NoActiveRun: no run is active.
    """
    row = graph.read_columns(q.API_RECOMMENDATIONS, user=user_id, entity=entity, exclude_seen=exclude_seen, k=k)
    if not row["user_found"]:
        raise NotFound(f"unknown user {user_id!r}")
    run = active_run(row["runs"])
    if run is None:
        raise NoActiveRun()
    if not row["entity_found"]:
        raise NotFound(f"unknown entity {entity!r}")
    if row["has_list"] and not row["recent"]:
        return Recommendations(run.id, "precomputed", [Scored(**r) for r in row["items"]])
    return _recommend_from_embeddings(
        graph, run, user_id, k=k, exclude_seen=exclude_seen, entity=entity, matrices=matrices, popular=popular
    )


def _recommend_from_embeddings(
    graph: Graph,
    run: ActiveRun,
    user_id: str,
    *,
    k: int,
    exclude_seen: bool,
    entity: str | None,
    matrices: ItemMatrixCache,
    popular: PopularCache,
) -> Recommendations:
    """On-the-fly scores, or popular items when no user vector can be formed."""
    allowed = None if entity is None else entity_items(graph, entity)
    state = read_user_state(graph, run, user_id)
    excluded = set(state.seen) if exclude_seen else set()

    def keep(item_id: str) -> bool:
        return item_id not in excluded and (allowed is None or item_id in allowed)

    matrix = matrices.get(graph, run)
    vector = user_vector(state, matrix)
    if vector is None:
        ranked = [(s.item_id, s.score) for s in popular.get(graph, run.id) if keep(s.item_id)]
        return Recommendations(run.id, "popular", first_existing(graph, lambda start, n: ranked[start : start + n], k))
    return Recommendations(run.id, "on_the_fly", _score(graph, matrix, vector, k, excluded, allowed))


def _score(
    graph: Graph, matrix: ItemMatrix, vector: np.ndarray, k: int, excluded: set[str], allowed: set[str] | None
) -> list[Scored]:
    scores = matrix.vectors @ vector  # (n,)
    mask = np.ones(len(matrix.ids), dtype=bool)
    if allowed is not None:
        mask[:] = False
        mask[matrix.positions(allowed)] = True
    mask[matrix.positions(excluded)] = False
    candidates = np.flatnonzero(mask)

    def ranked(start: int, n: int) -> list[tuple[str, float]]:
        return [(matrix.ids[row], float(scores[row])) for row in top_rows(scores, candidates, start + n)[start:]]

    return first_existing(graph, ranked, k)


def top_rows(scores: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` of ``rows`` with the highest ``scores``, by score descending, then row (item id, the
    matrix's order): a total order, so the best ``n`` are always the first ``n`` of the best ``n + m``."""
    if len(rows) > n:
        nth = np.partition(scores[rows], len(rows) - n)[len(rows) - n]  # the n-th highest score
        rows = rows[scores[rows] >= nth]  # every row tied with it too, so ties go by id
    return rows[np.lexsort((rows, -scores[rows]))][:n]


def first_existing(graph: Graph, ranked: Callable[[int, int], list[tuple[str, float]]], k: int) -> list[Scored]:
    """The first ``k`` of a ranking whose items still exist, with their titles now.

    ``ranked(start, n)`` gives ``(item_id, score)`` at ranks ``start`` to ``start + n - 1`` (fewer at the end).
    The cached matrix and popular items may hold items deleted since they were read (``DETACH DELETE``), so
    the ids are looked up: the first ``k`` in one read, which is all it takes while none is gone; while some
    are, the next ones in pages twice as large each time, until ``k`` exist or the ranking ends.
    """
    found: list[Scored] = []
    start, n = 0, k
    while len(found) < k:
        page = ranked(start, n)
        if not page:
            break
        titles = {r["id"]: r["title"] for r in graph.read(q.API_ITEM_TITLES, ids=[item_id for item_id, _ in page])}
        found.extend(Scored(item_id, titles[item_id], score) for item_id, score in page if item_id in titles)
        start, n = start + len(page), 2 * n
    return found[:k]


# -- explanations ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExplanationResult:
    source: str
    score: float | None
    rank: int | None
    stored: dict[str, Any] | None
    entity: dict[str, Any]  # {"count", "paths"}
    social: dict[str, Any]


def explain(graph: Graph, run: ActiveRun, user_id: str, item_id: str, matrices: ItemMatrixCache) -> ExplanationResult:
    """The run's stored explanation of recommending ``item_id`` to ``user_id`` and the live graph paths.

    A user served from the run's list gets explanations of the items in it only; a user served on the fly
    (or with popular items) gets the live paths of any item, with its on-the-fly score when computable.

    Raises:
        NotFound: the item is not in the list the user is served from.
    """
    stored = graph.read(q.API_STORED_RECOMMENDATION, user=user_id, item=item_id, run=run.id)
    if stored:
        source, score, rank = "precomputed", stored[0]["score"], stored[0]["rank"]
        explanation = parse_explanation(stored[0]["explanation"])
    else:
        state = read_user_state(graph, run, user_id)
        if state.has_list and not state.recent:
            raise NotFound(f"item {item_id!r} is not among the recommendations of user {user_id!r} in run {run.id!r}")
        source, score, rank, explanation = "popular", None, None, None
        matrix = matrices.get(graph, run)
        vector = user_vector(state, matrix)
        if vector is not None:
            source = "on_the_fly"
            row = matrix.positions([item_id])
            score = float(matrix.vectors[row[0]] @ vector) if len(row) else None
    entity = graph.read(q.API_ENTITY_PATHS, user=user_id, item=item_id, limit=LIVE_PATHS)[0]
    social = graph.read(q.API_SOCIAL_PATHS, user=user_id, item=item_id, limit=LIVE_PATHS)[0]
    return ExplanationResult(source, score, rank, explanation, entity, social)


def parse_explanation(text: str | None) -> dict[str, Any] | None:
    """``RECOMMENDED.explanation`` as a dict; text that is not a JSON object becomes ``{"text": ...}``."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"text": text}


# -- similar items ---------------------------------------------------------------------------------------
def similar_items(graph: Graph, item_id: str, k: int) -> tuple[ActiveRun | None, str, list[Scored]]:
    """The active run (or ``None``) and the item's nearest items: by the run's slot vector index (source
    ``"model"``), or by the text vector index when the run did not embed the item (``"text"``); ``"none"``
    and no items when the item has neither vector. One query.

    Raises:
        NotFound: unknown item.
    """
    indexes = {slot: q.embedding_index(Label.ITEM, slot) for slot in EMBEDDING_SLOTS}
    row = graph.read_columns(q.API_SIMILAR_ITEMS, item=item_id, k=k, indexes=indexes, text_index=q.ITEM_TEXT_INDEX)
    if not row["item_found"]:
        raise NotFound(f"unknown item {item_id!r}")
    run = active_run(row["runs"])
    source = "model" if run is not None and row["model"] else "text" if row["text"] else "none"
    return run, source, [Scored(**r) for r in row["items"]]
