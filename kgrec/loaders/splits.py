"""Evaluation splits of the interactions, recorded with an export so every model compares on the same one.

A split assigns each distinct (user, item) **pair** to ``TRAIN`` (0), ``VAL`` (1) or ``TEST`` (2), and every
interaction edge of the pair (a user can have one interaction of each kind with an item) goes with it, so a
held-out item never also appears in training under another kind:

- ``random``: per user, a seeded random ``val``/``test`` share of that user's pairs (rounded down, so a
  user with few pairs keeps them in training; at least one stays in training).
- ``leave_last_out``: per user, the pair with the latest interaction is test and the one before it
  validation (users with fewer than 3 pairs keep all in training); needs timestamps.
- ``temporal``: one global cut: pairs whose latest interaction is after the ``1 - test`` quantile of the
  pairs' latest times are test, the ``val`` share before them validation; needs timestamps.

With one interaction per pair, each pair is one interaction and these are splits of the interactions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from kgrec.errors import KgrecError

TRAIN, VAL, TEST = 0, 1, 2


@dataclass(frozen=True)
class SplitSpec:
    """Which split: ``kind``, the validation and test shares, and the seed (for ``random``)."""

    kind: Literal["random", "leave_last_out", "temporal"] = "random"
    val: float = 0.1
    test: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("random", "leave_last_out", "temporal"):
            raise KgrecError(f"split kind {self.kind!r} must be random, leave_last_out or temporal")
        if not (0 <= self.val < 1 and 0 < self.test < 1 and self.val + self.test < 1):
            raise KgrecError(f"split shares val={self.val}, test={self.test} must be in [0, 1) and sum below 1")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def make_split(spec: SplitSpec, users: np.ndarray, ts: np.ndarray | None = None,
               items: np.ndarray | None = None) -> np.ndarray:
    """Assign each interaction (``users[k]``: the user index of edge k; ``ts[k]``: its time, NaN if unknown;
    ``items[k]``: its item index) to TRAIN, VAL or TEST; returns an ``int8`` array like ``users``.

    With ``items``, the edges of one (user, item) pair are split together (a pair's time is its latest
    edge's), and the split does not depend on the order of the edges (the order a graph database returns a
    node's relationships in is its storage order, which differs between two loads of the same data): the
    random keys are drawn in (user, item) order, and ties in time are broken by item. Without ``items``,
    each edge is a pair of its own, in the given order."""
    users = np.asarray(users)
    if items is None:
        pair, pair_users = np.arange(len(users)), users
    else:
        pair, pair_users = _pairs(users, np.asarray(items))
    if spec.kind == "random":
        key = np.random.default_rng(spec.seed).random(len(pair_users))  # in (user, item) order
        return _per_user(pair_users, key, lambda n: _counts(n, spec))[pair]
    if ts is None or np.isnan(np.asarray(ts, dtype=np.float64)).any():
        raise KgrecError(f"the {spec.kind} split needs a timestamp on every interaction")
    latest = np.full(len(pair_users), -np.inf)
    np.maximum.at(latest, pair, np.asarray(ts, dtype=np.float64))  # each pair's latest time
    if spec.kind == "leave_last_out":
        # later first: rank 0 is the latest pair of each user (equal times: by (user, item) position)
        return _per_user(pair_users, -latest, _last_two, np.arange(len(pair_users)))[pair]
    cut_test = np.quantile(latest, 1 - spec.test)
    cut_val = np.quantile(latest, 1 - spec.test - spec.val)
    split = np.full(len(latest), TRAIN, dtype=np.int8)
    split[latest > cut_val] = VAL
    split[latest > cut_test] = TEST
    return split[pair]


def _pairs(users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each edge's pair (its position among the distinct (user, item) pairs in (user, item) order) and
    each pair's user."""
    order = _by_user_and_item(users, items)
    sorted_users, sorted_items = users[order], items[order]
    first = np.ones(len(users), dtype=bool)  # the first edge of each pair in that order
    first[1:] = (sorted_users[1:] != sorted_users[:-1]) | (sorted_items[1:] != sorted_items[:-1])
    pair = np.empty(len(users), dtype=np.int64)
    pair[order] = np.cumsum(first) - 1
    return pair, sorted_users[first]


def _by_user_and_item(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``np.lexsort((items, users))``; for small non-negative integer indices, the same order from one stable
    sort of ``user * (items.max() + 1) + item`` (several times faster)."""
    if len(users) and users.dtype.kind in "iu" and items.dtype.kind in "iu" and users.min() >= 0 and items.min() >= 0:
        width = int(items.max()) + 1
        if int(users.max()) < np.iinfo(np.int64).max // width:
            return np.argsort(users.astype(np.int64) * width + items, kind="stable")
    return np.lexsort((items, users))


def _counts(n: np.ndarray, spec: SplitSpec) -> tuple[np.ndarray, np.ndarray]:
    test = np.floor(n * spec.test).astype(np.int64)
    val = np.floor(n * spec.val).astype(np.int64)
    overflow = np.maximum(test + val - (n - 1), 0)  # keep at least one interaction in training
    val = np.maximum(val - overflow, 0)
    test = np.minimum(test, n - 1 - val)
    return test, val


def _last_two(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One test and one validation pair for each user with at least 3, none otherwise."""
    one = np.where(n >= 3, 1, 0)
    return one, one


def _per_user(users: np.ndarray, key: np.ndarray, counts, tie: np.ndarray | None = None) -> np.ndarray:
    """Within each user (``users[k]``: the user of row k, a pair or an edge), order the rows by ``key``
    (then ``tie``); the first ``test`` go to TEST, the next ``val`` to VAL."""
    order = np.lexsort((key, users)) if tie is None else np.lexsort((tie, key, users))
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(sorted_users[1:] != sorted_users[:-1]) + 1]
    sizes = np.diff(np.r_[starts, len(users)])
    rank = np.arange(len(users)) - np.repeat(starts, sizes)
    test, val = counts(sizes)
    test, val = np.repeat(test, sizes), np.repeat(val, sizes)
    split_sorted = np.where(rank < test, TEST, np.where(rank < test + val, VAL, TRAIN)).astype(np.int8)
    split = np.empty(len(users), dtype=np.int8)
    split[order] = split_sorted
    return split
