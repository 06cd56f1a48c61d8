"""Write-back: model runs, their embeddings and top-K lists, into the graph — versioned and atomic to readers.

A run goes through four steps, each safe to retry:

1. :func:`start_run` creates ``(:ModelRun {id, status: 'writing', active: false})`` and gives it the
   embedding slot (``embedding_a`` / ``embedding_b``) that the active run does *not* use.
2. :func:`write_embeddings` and :func:`write_recommendations` write in batches, one transaction each:
   vectors into the run's slot (tagged ``embedding_<slot>_run``, served by the slot's vector index), and
   ``(:User)-[:RECOMMENDED {run, score, rank, explanation}]->(:Item)`` per user — a write-back retried
   after an interruption replaces each user's list for the run, so nothing is doubled (a batch is one
   transaction: it commits whole or not at all).
3. :func:`complete_run` waits until the slot's vector indexes are online (Neo4j populates an index in the
   background, so it can fill while the lists are written: ``write_embeddings(..., wait=False)``), then
   marks the run ``complete`` with its metrics and counts.
4. :func:`activate_run` swaps the active flag in one transaction.

Readers always start from ``(:ModelRun {active: true})`` and read only that run's slot and
``RECOMMENDED {run}`` relationships, so while run B is being written they see run A complete; if B fails
or is interrupted, A stays active and whole. :func:`prune_runs` deletes old inactive runs and their lists.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kgrec.db import Graph
from kgrec.errors import KgrecError
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.vocabulary import EMBEDDING_SLOTS, Label


class WriteBackError(KgrecError):
    """A run could not be written, completed or activated as asked."""


@dataclass(frozen=True)
class Run:
    id: str
    slot: str


def active_run(graph: Graph) -> Run | None:
    rows = graph.read(q.ACTIVE_RUN)
    if len(rows) > 1:  # the activation query keeps one; a hand edit may not
        raise WriteBackError(f"{len(rows)} ModelRuns are marked active ({[r['id'] for r in rows]}); keep one")
    return Run(rows[0]["id"], rows[0]["slot"]) if rows else None


#: A run id: it names the run's folder of checkpoints too, so a plain file name — letters, digits, ``.``,
#: ``_``, ``-``, starting with a letter or digit, at most 128 characters.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_run_id(run_id: str) -> str:
    """``run_id`` if it matches :data:`RUN_ID`, else a :class:`WriteBackError` naming it."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise WriteBackError(f"run id {run_id!r} is not a plain name: use 1-128 letters, digits, '.', '_' or '-', "
                             "starting with a letter or digit")
    return run_id


def check_new_run_id(graph: Graph, run_id: str) -> str:
    """``run_id`` if it is a plain name (:func:`check_run_id`) that no ModelRun has yet, else a
    :class:`WriteBackError`. The pipeline and refresh call it before any work, since the run's folder of
    checkpoints would be overwritten; :func:`start_run` calls it again."""
    check_run_id(run_id)
    if graph.read(q.GET_RUN, run=run_id):
        raise WriteBackError(f"a ModelRun {run_id!r} exists already; choose a new run id")
    return run_id


def start_run(graph: Graph, run_id: str, params: dict[str, Any] | None = None) -> Run:
    """Create the run in the slot the active run does not use."""
    check_new_run_id(graph, run_id)
    current = active_run(graph)
    slot = EMBEDDING_SLOTS[1] if current is not None and current.slot == EMBEDDING_SLOTS[0] else EMBEDDING_SLOTS[0]
    graph.write(q.CREATE_RUN, run=run_id, params=json.dumps(params or {}, sort_keys=True, default=str), slot=slot)
    return Run(run_id, slot)


def write_embeddings(
    graph: Graph, run: Run, label: Label, ids: Sequence[str], vectors: np.ndarray, *, batch_size: int = 2000,
    wait: bool = True,
) -> int:
    """Write one vector per node into the run's slot, then (re)build the slot's vector index for them.

    When the slot is not the active run's (the normal case: :func:`start_run` gives a new run the other
    slot), its index is dropped before the writes and created after them, so Neo4j populates it once in
    bulk instead of updating it vector by vector; the active run's slot keeps its index throughout. With
    ``wait`` the call returns once the index is online; without, Neo4j populates it in the background
    and :func:`complete_run` waits for it (queries on a populating index fail, so no run is completed,
    and none activated, before its indexes are online).
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(ids):
        raise WriteBackError(f"{label.value} embeddings: expected {len(ids)} rows of vectors, got shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise WriteBackError(f"{label.value} embeddings hold NaN or infinite values; nothing written")
    name = q.embedding_index(label, run.slot)
    existing = next((i for i in graph.read(q.SHOW_INDEXES) if i["name"] == name), None)
    current = active_run(graph)
    if existing is not None and (current is None or current.slot != run.slot or existing["dimensions"] != vectors.shape[1]):
        graph.run_autocommit(q.DROP_INDEX, name=name)  # not being served: rebuilt below
    query = q.set_embeddings(label, run.slot)
    written = 0
    for start in range(0, len(ids), batch_size):
        rows = [{"id": i, "vector": v.tolist()} for i, v in zip(ids[start : start + batch_size], vectors[start : start + batch_size])]
        records, _ = graph.write_returning(query, rows=rows, run=run.id)
        got = records[0]["written"] if records else 0
        if got != len(rows):
            raise WriteBackError(f"{label.value} embeddings: {len(rows) - got} of a batch's ids are not in the graph")
        written += got
    graph.run_autocommit(q.create_embedding_index(label, run.slot, vectors.shape[1]))
    if wait:
        _await_index(graph, name)
    return written


def _await_index(graph: Graph, name: str, seconds: int = 300) -> None:
    graph.run_autocommit(q.AWAIT_INDEX, name=name, seconds=seconds)  # queries on a populating index fail


def write_recommendations(graph: Graph, run: Run, recommendations: pd.DataFrame, *, batch_users: int = 500) -> int:
    """Write top-K lists: ``recommendations`` has ``user_id, item_id, score, rank`` and optionally
    ``explanation`` (a dict or JSON text per row). Returns the number of relationships written."""
    missing = {"user_id", "item_id", "score", "rank"} - set(recommendations.columns)
    if missing:
        raise WriteBackError(f"recommendations lack column(s) {sorted(missing)}")
    # a run that has no list yet (the normal case) takes plain CREATEs; one written before (an interrupted
    # write-back, retried) replaces each batch's users' lists
    query = q.WRITE_RECOMMENDATIONS if graph.read_columns(q.RUN_HAS_LISTS, run=run.id)["has"] else q.CREATE_RECOMMENDATIONS
    written = 0
    for users in _user_batches(recommendations, batch_users):
        records, _ = graph.write_returning(query, users=users, run=run.id)
        expected = sum(len(u["recs"]) for u in users)
        got = records[0]["written"] if records else 0
        if got != expected:
            raise WriteBackError(f"recommendations: {expected - got} of a batch's rows name users or items not in the graph")
        written += got
    return written


def _user_batches(frame: pd.DataFrame, batch_users: int) -> Iterable[list[dict[str, Any]]]:
    frame = frame.sort_values(["user_id", "rank"])
    explanations = frame["explanation"] if "explanation" in frame.columns else pd.Series([None] * len(frame), index=frame.index)
    recs = [
        {"item": str(i), "score": float(s), "rank": int(r), "explanation": _explanation(e)}
        for i, s, r, e in zip(frame["item_id"], frame["score"], frame["rank"], explanations)
    ]
    users = frame["user_id"].astype(str).to_numpy()
    bounds = np.r_[0, np.flatnonzero(users[1:] != users[:-1]) + 1, len(users)]
    batch: list[dict[str, Any]] = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        batch.append({"id": users[a], "recs": recs[a:b]})
        if len(batch) >= batch_users:
            yield batch
            batch = []
    if batch:
        yield batch


def _explanation(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def complete_run(graph: Graph, run: Run, *, metrics: dict[str, Any] | None = None, counts: dict[str, int] | None = None) -> None:
    """Wait until the run's slot has its vector indexes online (those :func:`write_embeddings` created),
    then mark the run ``complete`` with ``metrics`` and ``counts``."""
    names = {q.embedding_index(label, run.slot) for label in (Label.USER, Label.ITEM)}
    for index in graph.read(q.SHOW_INDEXES):
        if index["name"] in names:
            _await_index(graph, index["name"])
    rows = graph.write_returning(
        q.COMPLETE_RUN, run=run.id, metrics=json.dumps(metrics or {}, sort_keys=True), counts=json.dumps(counts or {}, sort_keys=True)
    )[0]
    if not rows:
        raise WriteBackError(f"run {run.id!r} is not being written (unknown, or completed already)")


def activate_run(graph: Graph, run_id: str) -> str | None:
    """Make ``run_id`` the one run readers see; returns the previously active run's id."""
    rows = graph.write_returning(q.ACTIVATE_RUN, run=run_id)[0]
    if not rows:
        state = graph.read(q.GET_RUN, run=run_id)
        why = "does not exist" if not state else f"is {state[0]['status']!r}, not 'complete'"
        raise WriteBackError(f"cannot activate run {run_id!r}: it {why}")
    return rows[0]["previous"]


def prune_runs(graph: Graph, *, keep: int = 2) -> list[str]:
    """Delete inactive runs beyond the ``keep`` newest complete ones, with their recommendations, and runs left
    ``writing`` (interrupted) before the active run was made; the active run stays."""
    if keep < 0:
        raise WriteBackError(f"'keep' (got {keep}) must be >= 0")
    pruned = [row["id"] for row in graph.read(q.PRUNABLE_RUNS, keep=keep)]
    for run_id in pruned:
        graph.run_autocommit(q.DELETE_RUN_RECOMMENDATIONS, run=run_id)  # in batches of its own transactions
        graph.write(q.DELETE_RUN, run=run_id)
    return pruned
