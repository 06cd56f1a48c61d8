"""Full-ranking evaluation of a recommender on a split of :class:`~kgrec.model.data.RecData`.

Every user with interactions in the evaluated split gets a score for every item (``model.score``, in
batches of users, so memory stays at ``batch_size × num_items`` scores); the items the user met in the
*earlier* splits are excluded from the ranking, and the top :math:`K_{\\max}` items are compared with the
held-out ones by :class:`~kgrec.model.metrics.RankingMetrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import Tensor

from kgrec.errors import KgrecError
from kgrec.model.data import RecData
from kgrec.model.metrics import RankingMetrics, exclude_, mae, rmse, top_k

if TYPE_CHECKING:
    from kgrec.model.baselines import Recommender

SPLITS = ("train", "val", "test")

#: What is excluded from the ranking by default: the items of the splits before the evaluated one.
DEFAULT_EXCLUDE: dict[str, tuple[str, ...]] = {"train": (), "val": ("train",), "test": ("train", "val")}


def evaluate(
    model: Recommender,
    data: RecData,
    split: str = "test",
    ks: Sequence[int] = (10, 20),
    batch_size: int = 1024,
    exclude: Sequence[str] | None = None,
) -> dict[str, float]:
    """Rank all items for each user with interactions in ``split`` and average the top-K metrics.

    Args:
        model: anything with ``score(users: LongTensor) -> FloatTensor [B, num_items]``.
        data (RecData): the interactions and their split.
        split (str): ``"test"``, ``"val"`` or ``"train"``: whose interactions are the relevant items.
            (default: ``"test"``)
        ks (sequence of int): the cut-offs :math:`K`. (default: ``(10, 20)``)
        batch_size (int): users scored at once. (default: ``1024``)
        exclude (sequence of str, optional): the splits whose items are removed from each user's ranking.
            By default the splits before ``split``: ``("train", "val")`` for ``"test"``, ``("train",)``
            for ``"val"``, nothing for ``"train"``. (default: :obj:`None`)

    Returns:
        The means of :class:`~kgrec.model.metrics.RankingMetrics` (``recall@K``, ``ndcg@K``,
        ``precision@K``, ``hit@K``, ``coverage@K``, ``mrr``) and ``users``, how many were evaluated.
    """
    return _evaluate(model, data, split, ks, batch_size, exclude).compute()


def evaluate_per_user(
    model: Recommender,
    data: RecData,
    split: str = "test",
    ks: Sequence[int] = (10, 20),
    batch_size: int = 1024,
    exclude: Sequence[str] | None = None,
) -> tuple[dict[str, float], pd.DataFrame]:
    """:func:`evaluate`'s means, and each evaluated user's values: one row per user, ``user`` (the user's
    index) and the metrics (``rr``: the reciprocal rank; see
    :meth:`~kgrec.model.metrics.RankingMetrics.per_user_table`). Two models evaluated on the same data
    rank the same users, so their rows pair up, e.g. for
    :func:`~kgrec.model.metrics.paired_ratio_interval`. Arguments as for :func:`evaluate`."""
    metrics = _evaluate(model, data, split, ks, batch_size, exclude, per_user=True)
    return metrics.compute(), metrics.per_user_table()


def _evaluate(model: Recommender, data: RecData, split: str, ks: Sequence[int], batch_size: int,
              exclude: Sequence[str] | None, per_user: bool = False) -> RankingMetrics:
    truth = data.matrix(_pairs(data, split))
    exclude = DEFAULT_EXCLUDE[split] if exclude is None else tuple(exclude)
    if split in exclude:
        raise KgrecError(f"'exclude' (got {exclude}) must not hold the evaluated split {split!r}")
    users = torch.from_numpy(np.flatnonzero(np.diff(truth.indptr)))
    if users.numel() == 0:
        raise KgrecError(f"split {split!r} has no interactions to evaluate")
    return _rank(model, data, users, truth, _union(data, exclude), ks, batch_size, per_user=per_user)


def evaluate_cold_start(
    model: Recommender,
    data: RecData,
    cold_items: Tensor,
    ks: Sequence[int] = (10, 20),
    batch_size: int = 1024,
    exclude: Sequence[str] = ("train", "val"),
    candidates: str = "cold",
) -> dict[str, float]:
    """Evaluate the recommendation of ``cold_items`` (for example items with no training interactions).

    The users are those with at least one **test** interaction on a cold item, and the relevant items are
    only their test items that are cold. What each user's ranking holds depends on ``candidates``:

    - ``"cold"`` — the cold items alone (less the items of ``exclude``): the usual item cold-start protocol,
      where a new item must be put in front of the users who will want it, among the other new items;
    - ``"catalogue"`` — **all** items less the items of ``exclude`` (as in :func:`evaluate`): a cold item must
      also beat the items with interaction history, and a recommended test item that is not cold is neither a
      hit nor removed, it simply takes a place in the list.

    ``recall@K`` is the share of a user's cold test items found in the top :math:`K`, and ``ndcg@K``
    normalises by those cold items.

    Args:
        model: anything with ``score(users: LongTensor) -> FloatTensor [B, num_items]``.
        data (RecData): the interactions and their split.
        cold_items (torch.Tensor): item indices.
        ks (sequence of int): the cut-offs :math:`K`. (default: ``(10, 20)``)
        batch_size (int): users scored at once. (default: ``1024``)
        exclude (sequence of str): the splits whose items are removed from the ranking.
            (default: ``("train", "val")``)
        candidates (str): ``"cold"`` or ``"catalogue"``, see above. (default: ``"cold"``)
    """
    if candidates not in ("cold", "catalogue"):
        raise KgrecError(f"'candidates' (got {candidates!r}) must be 'cold' or 'catalogue'")
    cold_items = torch.as_tensor(cold_items, dtype=torch.long).flatten()
    if cold_items.numel() and (int(cold_items.min()) < 0 or int(cold_items.max()) >= data.num_items):
        bad = int(cold_items.min()) if int(cold_items.min()) < 0 else int(cold_items.max())
        raise KgrecError(f"'cold_items' holds item {bad}, outside [0, {data.num_items})")
    if "test" in exclude:
        raise KgrecError(f"'exclude' (got {tuple(exclude)}) must not hold the evaluated split 'test'")
    test = data.test
    truth = data.matrix(test[:, torch.isin(test[1], cold_items)])
    users = torch.from_numpy(np.flatnonzero(np.diff(truth.indptr)))
    if users.numel() == 0:
        raise KgrecError(f"no test interaction is on one of the {cold_items.numel()} cold items")
    only = None
    if candidates == "cold":
        only = torch.zeros(data.num_items, dtype=torch.bool)
        only[cold_items] = True
    return _rank(model, data, users, truth, _union(data, exclude), ks, batch_size, only).compute()


@torch.no_grad()
def evaluate_ratings(model, data: RecData, split: str = "test", batch_size: int = 65536) -> dict[str, float]:
    """RMSE and MAE of ``model.predict(users, items)`` on the pairs of ``split`` that have a rating.

    Returns ``{"rmse", "mae", "rated"}`` (``rated``: how many pairs were compared).
    """
    if not callable(getattr(model, "predict", None)):
        raise KgrecError(f"{type(model).__name__} predicts no ratings (it has no predict(users, items))")
    _pairs(data, split)  # a clear error for an unknown split
    pairs, target = data.ratings(split)
    if target.numel() == 0:
        raise KgrecError(f"split {split!r} has no rated interactions: RMSE and MAE need explicit ratings")
    pred = torch.cat([model.predict(pairs[0, s : s + batch_size], pairs[1, s : s + batch_size]).float().cpu()
                      for s in range(0, target.numel(), batch_size)])
    return {"rmse": rmse(pred, target), "mae": mae(pred, target), "rated": int(target.numel())}


def _pairs(data: RecData, split: str) -> Tensor:
    if split not in SPLITS:
        raise KgrecError(f"split {split!r} must be one of {', '.join(SPLITS)}")
    return getattr(data, split)


def _union(data: RecData, splits: Sequence[str]) -> sp.csr_matrix | None:
    """One CSR of the items of all ``splits`` (None when there are none)."""
    if not splits:
        return None
    return data.matrix(torch.cat([_pairs(data, s) for s in splits], dim=1))


@torch.no_grad()
def _rank(
    model: Recommender,
    data: RecData,
    users: Tensor,
    truth: sp.csr_matrix,
    seen: sp.csr_matrix | None,
    ks: Sequence[int],
    batch_size: int,
    only: Tensor | None = None,
    per_user: bool = False,
) -> RankingMetrics:
    """Rank for ``users``: every item less their ``seen`` ones (and, with ``only``, a boolean item mask,
    less the items outside it)."""
    if batch_size < 1:
        raise KgrecError(f"'batch_size' (got {batch_size}) must be positive")
    metrics = RankingMetrics(ks, data.num_items, per_user=per_user)
    for start in range(0, users.numel(), batch_size):
        batch = users[start : start + batch_size]
        scores = model.score(batch)  # [B, I]
        if tuple(scores.shape) != (batch.numel(), data.num_items):
            raise KgrecError(
                f"{type(model).__name__}.score returned shape {tuple(scores.shape)}, "
                f"expected ({batch.numel()}, {data.num_items})"
            )
        if seen is not None:
            exclude_(scores, batch, seen)
        if only is not None:
            scores[:, ~only.to(scores.device)] = float("-inf")
        metrics.update(top_k(scores, metrics.kmax), truth[batch.numpy()], users=batch)
    return metrics
