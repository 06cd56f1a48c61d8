r"""Full-ranking top-:math:`K` metrics, and the rating errors RMSE and MAE.

Every metric ranks *all* items for a user; items the user has already seen (in training, and for the
test split also in validation) are taken out of the ranking by the caller, who sets their scores to
:math:`-\infty` with :func:`exclude_`. For a user :math:`u` with relevant (held-out) items :math:`T_u`,
a ranked list :math:`L_u` and :math:`\mathrm{rel}_r = [L_u[r] \in T_u]` (ranks :math:`r = 1, 2, \dots`):

.. math::
    \mathrm{hits}@K &= \textstyle\sum_{r \le K} \mathrm{rel}_r, \qquad
    \mathrm{recall}@K = \frac{\mathrm{hits}@K}{|T_u|}, \qquad
    \mathrm{precision}@K = \frac{\mathrm{hits}@K}{K}, \qquad
    \mathrm{hit}@K = [\mathrm{hits}@K > 0],

    \mathrm{nDCG}@K &= \frac{\sum_{r \le K} \mathrm{rel}_r / \log_2(r + 1)}
                          {\sum_{r \le \min(|T_u|, K)} 1 / \log_2(r + 1)}, \qquad
    \mathrm{MRR} = \frac{1}{\min\{r \le K_{\max} : \mathrm{rel}_r = 1\}} \ (0 \text{ if none}),

    \mathrm{coverage}@K &= \frac{|\bigcup_u L_u[1..K]|}{|\mathcal{I}|}.

Recall is the standard :math:`\mathrm{hits}/|T_u|` (not :math:`\mathrm{hits}/\min(|T_u|, K)`), so a
user with more relevant items than :math:`K` cannot reach 1. Relevance is binary (see Järvelin &
Kekäläinen, `"Cumulated gain-based evaluation of IR techniques" <https://doi.org/10.1145/582415.582418>`_
for nDCG). MRR only looks at the first :math:`K_{\max} = \max(\text{ks})` ranks — a first relevant item
further down counts 0 — so it is MRR@:math:`K_{\max}`. Users without relevant items are skipped; every
mean is over the users with at least one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import Tensor

from kgrec.errors import KgrecError

#: What a ``truth`` argument may be: one set (or any iterable) of relevant item indices per user, or a
#: CSR matrix whose row ``b`` holds user ``b``'s relevant items as its stored entries.
Truth = Sequence[Iterable[int]] | sp.csr_matrix | sp.csr_array


def exclude_(scores: Tensor, users: Tensor, matrix: sp.spmatrix) -> Tensor:
    r"""Set to :math:`-\infty`, in place, the scores of the items each user has in ``matrix``.

    Args:
        scores (torch.Tensor): ``[B, num_items]`` scores of the users in ``users``.
        users (torch.Tensor): ``[B]`` user indices, the rows of ``matrix`` to read.
        matrix (scipy.sparse matrix): ``num_users × num_items``; its stored entries are the items to
            exclude (for example :attr:`RecData.train_matrix`).

    Returns:
        ``scores``, modified.
    """
    if scores.dim() != 2 or scores.shape[0] != users.numel():
        raise KgrecError(f"'scores' (got shape {tuple(scores.shape)}) must be [len(users)={users.numel()}, num_items]")
    if scores.shape[1] != matrix.shape[1]:
        raise KgrecError(f"'scores' has {scores.shape[1]} items but the exclusion matrix has {matrix.shape[1]}")
    rows_of = sp.csr_matrix(matrix)[users.cpu().numpy()]  # [B, I], the batch's rows
    rows = np.repeat(np.arange(users.numel()), np.diff(rows_of.indptr))
    cols = rows_of.indices.astype(np.int64)
    scores[torch.from_numpy(rows).to(scores.device), torch.from_numpy(cols).to(scores.device)] = float("-inf")
    return scores


def rank_metrics(scores: Tensor, truth: Truth, ks: Sequence[int] = (10, 20)) -> dict[str, float]:
    r"""Ranking metrics of one batch of users from their full score rows, as **sums** over the users.

    Items scored :math:`-\infty` (excluded with :func:`exclude_`) are never counted as recommended. Divide
    by ``out['users']`` for means, or use :class:`RankingMetrics`, which also gives ``coverage@K``.

    Args:
        scores (torch.Tensor): ``[B, num_items]`` scores.
        truth: the relevant items of each of the ``B`` users (see :data:`Truth`).
        ks (sequence of int): the cut-offs :math:`K`. (default: ``(10, 20)``)

    Returns:
        ``recall@K``, ``ndcg@K``, ``precision@K``, ``hit@K`` for each :math:`K`, ``mrr``, summed over the
        users with at least one relevant item, and ``users``, how many those are.
    """
    ks = _check_ks(ks)
    if scores.dim() != 2:
        raise KgrecError(f"'scores' (got shape {tuple(scores.shape)}) must be [num_users, num_items]")
    topk = top_k(scores, max(ks))
    return _sums(topk, truth, ks)


class RankingMetrics:
    r"""Streams top-:math:`K` lists of user batches and averages the metrics of the module docstring.

    .. code-block:: python

        metrics = RankingMetrics(ks=(10, 20), num_items=data.num_items)
        for users in batches:
            scores = exclude_(model.score(users), users, seen)  # [B, I], seen items at -inf
            metrics.update(top_k(scores, metrics.kmax), truth[users.numpy()])
        metrics.compute()  # {'recall@10': ..., 'ndcg@10': ..., ..., 'mrr': ..., 'users': ...}

    With ``per_user=True`` it also keeps every user's values, for :meth:`per_user_table` (paired
    comparisons of two models over the same users, e.g. :func:`paired_ratio_interval`).

    Args:
        ks (sequence of int): the cut-offs :math:`K`. (default: ``(10, 20)``)
        num_items (int): the size of the catalogue, for ``coverage@K``.
        per_user (bool): keep each user's metrics. (default: :obj:`False`)
    """

    def __init__(self, ks: Sequence[int] = (10, 20), num_items: int = 0, per_user: bool = False) -> None:
        self.ks = _check_ks(ks)
        if num_items <= 0:
            raise KgrecError(f"'num_items' (got {num_items}) must be positive")
        self.num_items = int(num_items)
        self.per_user = per_user
        self.reset()

    @property
    def kmax(self) -> int:
        return max(self.ks)

    def reset(self) -> None:
        """Forget every update."""
        self._sums: dict[str, float] = {}
        self._users: list[Tensor] = []
        self._values: list[dict[str, Tensor]] = []
        self._rows = 0  # rows of all updates so far
        self._recommended = {k: torch.zeros(self.num_items, dtype=torch.bool) for k in self.ks}

    def update(self, topk_indices: Tensor, truth: Truth, users: Tensor | None = None) -> None:
        """Add one batch of users.

        Args:
            topk_indices (torch.Tensor): ``[B, W]`` item indices, best first. Only the first
                :attr:`kmax` columns are read; fewer columns (a catalogue smaller than :math:`K`) and
                entries ``-1`` (an empty slot, e.g. an excluded item that reached the list) are
                positions with no item, which count as not relevant.
            truth: the relevant items of each of the ``B`` users (see :data:`Truth`); users with none are
                skipped, also for coverage.
            users (torch.Tensor, optional): ``[B]`` the users' ids, for :meth:`per_user_table` (by default
                their running position among all updates' rows).
        """
        topk = _pad(topk_indices.detach().cpu().long(), self.kmax)
        if topk.numel() and int(topk.max()) >= self.num_items:
            raise KgrecError(f"'topk_indices' holds item {int(topk.max())}, outside num_items={self.num_items}")
        if users is not None and users.numel() != topk.shape[0]:
            raise KgrecError(f"'users' has {users.numel()} ids for {topk.shape[0]} ranked lists")
        values, has_truth = _per_user(topk, truth, self.ks)
        for key, value in _summed(values, has_truth).items():
            self._sums[key] = self._sums.get(key, 0.0) + value
        if self.per_user:
            ids = torch.arange(self._rows, self._rows + topk.shape[0]) if users is None else users.detach().cpu().long()
            self._users.append(ids[has_truth])
            self._values.append(values)
        self._rows += topk.shape[0]
        for k in self.ks:
            items = topk[has_truth, :k]
            self._recommended[k][items[items >= 0]] = True

    def compute(self) -> dict[str, float]:
        """Means over the users with at least one relevant item (NaN if there were none), ``coverage@K``,
        and ``users``, the number of users averaged over."""
        users = self._sums.get("users", 0.0)
        out: dict[str, float] = {}
        for key in _metric_names(self.ks):
            out[key] = self._sums[key] / users if users else float("nan")
        for k in self.ks:
            out[f"coverage@{k}"] = int(self._recommended[k].sum()) / self.num_items
        out["users"] = users
        return out

    def per_user_table(self) -> pd.DataFrame:
        """One row per user with at least one relevant item: ``user`` and each metric (``rr``: the
        reciprocal rank, whose mean is ``mrr``), in the order of the updates."""
        if not self.per_user:
            raise KgrecError("per-user values were not kept: build RankingMetrics(..., per_user=True)")
        names = [*_metric_names(self.ks)[:-1], "rr"]
        if not self._users:
            return pd.DataFrame({"user": pd.Series(dtype="int64"), **{n: pd.Series(dtype="float64") for n in names}})
        table = {"user": torch.cat(self._users).numpy()}
        table |= {n: torch.cat([v[n] for v in self._values]).numpy() for n in names}
        return pd.DataFrame(table)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(ks={self.ks}, num_items={self.num_items})"


def paired_ratio_interval(ours: np.ndarray, theirs: np.ndarray, confidence: float = 0.95,
                          n_resamples: int = 5000, seed: int = 0) -> tuple[float, float]:
    r"""A paired bootstrap confidence interval of :math:`\bar{a} / \bar{b}`, the ratio of two models' mean
    metric over the same users (``ours[u]`` and ``theirs[u]``: user ``u``'s values, e.g. nDCG@20).

    Users are resampled with replacement, both models' values together, ``n_resamples`` times (seeded),
    and the interval is the percentile one (:func:`scipy.stats.bootstrap`, ``paired=True``). It says how
    much of a difference between two models could come from which users happened to be in the test split;
    not how much comes from training seeds.

    Returns:
        ``(low, high)``; ``(nan, nan)`` when ``theirs`` sums to 0.
    """
    from scipy.stats import bootstrap

    a, b = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise KgrecError(f"'ours' (shape {a.shape}) and 'theirs' (shape {b.shape}) must be two equal 1-D "
                         "arrays of at least 2 users' values")
    if not 0 < confidence < 1:
        raise KgrecError(f"'confidence' (got {confidence}) must be in (0, 1)")
    if not b.sum():
        return float("nan"), float("nan")

    def ratio(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        below = y.mean(axis=axis)
        return x.mean(axis=axis) / np.where(below == 0, np.nan, below)

    result = bootstrap((a, b), ratio, paired=True, vectorized=True, n_resamples=n_resamples,
                       confidence_level=confidence, method="percentile", random_state=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return float(low), float(high)


def rmse(pred: Tensor, target: Tensor) -> float:
    r"""Root mean squared error :math:`\sqrt{\frac{1}{n}\sum_i (\hat{y}_i - y_i)^2}`."""
    diff = _diff(pred, target)
    return float(diff.pow(2).mean().sqrt())


def mae(pred: Tensor, target: Tensor) -> float:
    r"""Mean absolute error :math:`\frac{1}{n}\sum_i |\hat{y}_i - y_i|`."""
    return float(_diff(pred, target).abs().mean())


def top_k(scores: Tensor, kmax: int) -> Tensor:
    """The ``[B, min(kmax, I)]`` best items of each row of ``scores``, best first, on the CPU, with ``-1``
    where the score is -inf (an excluded item): the input :meth:`RankingMetrics.update` expects."""
    values, indices = scores.detach().float().topk(min(kmax, scores.shape[1]), dim=1)
    indices[values == float("-inf")] = -1
    return indices.cpu()


# ---------------------------------------------------------------------------------------------------------


def _check_ks(ks: Sequence[int] | int) -> tuple[int, ...]:
    ks = (ks,) if isinstance(ks, int) else tuple(ks)
    if not ks or any(int(k) != k or k < 1 for k in ks):
        raise KgrecError(f"'ks' (got {ks}) must be one or more positive integers")
    return tuple(sorted({int(k) for k in ks}))


def _metric_names(ks: tuple[int, ...]) -> list[str]:
    names = [f"{m}@{k}" for k in ks for m in ("recall", "ndcg", "precision", "hit")]
    return [*names, "mrr"]


def _pad(topk: Tensor, kmax: int) -> Tensor:
    """Cut or pad (with -1, no item) the lists to exactly ``kmax`` columns."""
    if topk.dim() != 2:
        raise KgrecError(f"'topk_indices' (got shape {tuple(topk.shape)}) must be [num_users, K]")
    if topk.shape[1] >= kmax:
        return topk[:, :kmax]
    return torch.cat([topk, topk.new_full((topk.shape[0], kmax - topk.shape[1]), -1)], dim=1)


def _truth_pairs(truth: Truth, num_users: int) -> tuple[Tensor, Tensor, Tensor]:
    """(row, item) of every relevant pair, and the number of relevant items per row."""
    if sp.issparse(truth):
        csr = sp.csr_matrix(truth, copy=True)
        csr.sum_duplicates()
        csr.eliminate_zeros()
        if csr.shape[0] != num_users:
            raise KgrecError(f"'truth' has {csr.shape[0]} rows but there are {num_users} ranked lists")
        counts = torch.from_numpy(np.diff(csr.indptr).astype(np.int64))
        cols = torch.from_numpy(csr.indices.astype(np.int64))
    else:
        sets = [set(int(i) for i in row) for row in truth]
        if len(sets) != num_users:
            raise KgrecError(f"'truth' has {len(sets)} rows but there are {num_users} ranked lists")
        counts = torch.tensor([len(s) for s in sets], dtype=torch.long)
        cols = torch.tensor([i for s in sets for i in sorted(s)], dtype=torch.long)
    rows = torch.repeat_interleave(torch.arange(num_users), counts)
    return rows, cols, counts


def _per_user(topk: Tensor, truth: Truth, ks: tuple[int, ...]) -> tuple[dict[str, Tensor], Tensor]:
    """Each metric of each user with at least one relevant item (``rr``: the reciprocal rank MRR averages),
    and the mask of those users among the rows."""
    kmax = max(ks)
    topk = _pad(topk, kmax)  # [B, Kmax]
    num_users = topk.shape[0]
    rows, cols, counts = _truth_pairs(truth, num_users)
    # a pair (row, item) as one integer, to test membership of all top-k entries at once
    width = int(max(int(cols.max()) if cols.numel() else 0, int(topk.max()) if topk.numel() else 0)) + 1
    relevant_keys = rows * width + cols
    keys = torch.arange(num_users).unsqueeze(1) * width + topk.clamp(min=0)
    hits = (torch.isin(keys, relevant_keys) & (topk >= 0)).double()  # [B, Kmax]

    has_truth = counts > 0
    hits, n = hits[has_truth], counts[has_truth].double()
    discount = 1.0 / torch.log2(torch.arange(kmax, dtype=torch.double) + 2.0)  # rank r (0-based) -> 1/log2(r+2)
    cum_hits = hits.cumsum(1)
    cum_dcg = (hits * discount).cumsum(1)
    cum_ideal = discount.cumsum(0)

    out: dict[str, Tensor] = {}
    for k in ks:
        h = cum_hits[:, k - 1]
        ideal = cum_ideal[torch.clamp(n.long(), max=k) - 1]
        out[f"recall@{k}"] = h / n
        out[f"ndcg@{k}"] = cum_dcg[:, k - 1] / ideal
        out[f"precision@{k}"] = h / k
        out[f"hit@{k}"] = (h > 0).double()
    first = torch.where(hits.any(1), hits.argmax(1).double() + 1.0, torch.full_like(n, float("inf")))
    out["rr"] = 1.0 / first
    return out, has_truth


def _sums(topk: Tensor, truth: Truth, ks: tuple[int, ...]) -> dict[str, float]:
    return _summed(*_per_user(topk, truth, ks))


def _summed(values: dict[str, Tensor], has_truth: Tensor) -> dict[str, float]:
    """:func:`_per_user`'s values summed over the users (``rr`` as ``mrr``), and ``users``, how many."""
    out = {("mrr" if key == "rr" else key): float(v.sum()) for key, v in values.items()}
    out["users"] = float(has_truth.sum())
    return out


def _diff(pred: Tensor, target: Tensor) -> Tensor:
    if pred.shape != target.shape:
        raise KgrecError(f"'pred' (shape {tuple(pred.shape)}) and 'target' (shape {tuple(target.shape)}) must match")
    if pred.numel() == 0:
        raise KgrecError("'pred' is empty: there is no error to compute")
    return pred.double() - target.double()
