r"""The baselines kgrec's model is compared with, all behind one small :class:`Recommender` protocol.

- :class:`Popularity`: how many users interacted with an item in training.
- :class:`ItemKNN`: item-item cosine neighbours of the training matrix.
- :class:`EASE`: the closed-form linear item-item model of Steck (2019), its L2 weight chosen on validation.
- :class:`MFBPR`: matrix factorisation trained with BPR.
- :class:`LightGCNRec`: PyG's :class:`~torch_geometric.nn.models.LightGCN` on the user-item graph.
- :class:`TextSimilarity`: content-based, the cosine of item text vectors to a user's profile.
- :class:`BiasRating`: for explicit ratings, the global mean plus regularised user and item biases.

Each is fitted on the training split of a :class:`~kgrec.model.data.RecData` and scores every item for
a batch of users; :func:`~kgrec.model.evaluate.evaluate` excludes seen items and ranks.
"""

from __future__ import annotations

import warnings
from typing import Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn.models import LightGCN

from kgrec.errors import KgrecError
from kgrec.model.data import RecData
from kgrec.model.training import EpochRecord, TrainConfig, bpr_loss, fit_bpr, seeded

_DEFAULT = TrainConfig()


@runtime_checkable
class Recommender(Protocol):
    """What :func:`~kgrec.model.evaluate.evaluate` needs of a model.

    ``score`` returns a new ``[len(users), num_items]`` float tensor that the caller may modify in place
    (the evaluation sets seen items to -inf); higher is better.
    """

    name: str

    def fit(self, data: RecData) -> Recommender: ...

    def score(self, users: Tensor) -> Tensor: ...


class Popularity:
    r"""Scores an item by its number of training users, the same for everyone:
    :math:`\hat{y}_{ui} = |\{v : (v, i) \in \mathcal{R}_{\text{train}}\}|`."""

    name = "Popularity"

    def __init__(self) -> None:
        self.counts: Tensor | None = None
        self.num_users = 0

    def fit(self, data: RecData) -> Popularity:
        self.num_users = data.num_users
        self.counts = torch.from_numpy(_binary(data.train_matrix).sum(axis=0).A1.astype(np.float32))
        return self

    def score(self, users: Tensor) -> Tensor:
        counts = _fitted(self, self.counts)
        return counts.unsqueeze(0).repeat(_check_users(users, self.num_users).numel(), 1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}()"


class BiasRating:
    r"""The baseline predictor of explicit ratings (Koren, `"Factor in the neighbors: scalable and accurate
    collaborative filtering" <https://doi.org/10.1145/1644873.1644874>`_, section 2.1):

    .. math::
        \hat{r}_{ui} = \mu + b_u + b_i, \qquad
        b_i = \frac{\sum_{u \in R(i)} (r_{ui} - \mu)}{\lambda_i + |R(i)|}, \qquad
        b_u = \frac{\sum_{i \in R(u)} (r_{ui} - \mu - b_i)}{\lambda_u + |R(u)|},

    over the rated training pairs. As a ranker it scores items by :math:`b_i` (the same order for every
    user). ``lambda_item = lambda_user = 0`` gives plain means; ``BiasRating(0, 0, biases=False)`` predicts
    the global mean :math:`\mu`.

    Args:
        lambda_item (float): :math:`\lambda_i`. (default: ``25.0``)
        lambda_user (float): :math:`\lambda_u`. (default: ``10.0``)
        biases (bool): learn :math:`b_u, b_i` (else :math:`\mu` alone). (default: ``True``)
    """

    def __init__(self, lambda_item: float = 25.0, lambda_user: float = 10.0, biases: bool = True) -> None:
        if lambda_item < 0 or lambda_user < 0:
            raise KgrecError(f"'lambda_item' ({lambda_item}) and 'lambda_user' ({lambda_user}) must not be negative")
        self.lambda_item, self.lambda_user, self.biases = lambda_item, lambda_user, biases
        self.name = "Bias (μ + b_u + b_i)" if biases else "Global mean"
        self.mean = 0.0
        self.user_bias: Tensor | None = None
        self.item_bias: Tensor | None = None

    def fit(self, data: RecData) -> BiasRating:
        pairs, r = data.ratings("train")
        if r.numel() == 0:
            raise KgrecError(f"{self.name} needs explicit ratings, and the training split has none")
        r = r.double()
        self.mean = float(r.mean())
        self.item_bias = torch.zeros(data.num_items, dtype=torch.float64)
        self.user_bias = torch.zeros(data.num_users, dtype=torch.float64)
        if self.biases:
            def shrunk(index: Tensor, residual: Tensor, size: int, lam: float) -> Tensor:
                total = torch.zeros(size, dtype=torch.float64).index_add_(0, index, residual)
                count = torch.zeros(size, dtype=torch.float64).index_add_(0, index, torch.ones_like(residual))
                return total / (lam + count).clamp(min=1e-12)

            self.item_bias = shrunk(pairs[1], r - self.mean, data.num_items, self.lambda_item)
            self.user_bias = shrunk(pairs[0], r - self.mean - self.item_bias[pairs[1]], data.num_users, self.lambda_user)
        return self

    def predict(self, users: Tensor, items: Tensor) -> Tensor:
        item_bias = _fitted(self, self.item_bias)
        return (self.mean + self.user_bias[users.long()] + item_bias[items.long()]).float()

    def score(self, users: Tensor) -> Tensor:
        item_bias = _fitted(self, self.item_bias).float()
        return item_bias.unsqueeze(0).repeat(_check_users(users, self.user_bias.numel()).numel(), 1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(lambda_item={self.lambda_item}, lambda_user={self.lambda_user}, biases={self.biases})"


class ItemKNN:
    r"""Item-based collaborative filtering (Sarwar et al., `"Item-based collaborative filtering recommendation
    algorithms" <https://doi.org/10.1145/371920.372071>`_) with shrunk cosine similarity on the binary
    training matrix :math:`X \in \{0, 1\}^{U \times I}`:

    .. math::
        s_{ij} = \frac{\mathbf{x}_i^\top \mathbf{x}_j}{\lVert \mathbf{x}_i \rVert \lVert \mathbf{x}_j \rVert
        + \text{shrink}} \quad (i \neq j), \qquad
        \hat{y}_{uj} = \sum_{i \in N_k(j)} x_{ui}\, s_{ij},

    where :math:`N_k(j)` are the :math:`k` items most similar to :math:`j`. All sparse: fitting costs one
    sparse product :math:`X^\top X` and a sort of its entries.

    Args:
        k (int): neighbours kept per item. (default: ``100``)
        shrink (float): added to the denominator, damping similarities built on few users. (default: ``10``)
    """

    name = "ItemKNN"

    def __init__(self, k: int = 100, shrink: float = 10.0) -> None:
        if k < 1:
            raise KgrecError(f"'k' (got {k}) must be at least 1")
        if shrink < 0:
            raise KgrecError(f"'shrink' (got {shrink}) must not be negative")
        self.k, self.shrink = k, float(shrink)
        self.weights: sp.csr_matrix | None = None  # W[i, j] = s_ij for i in N_k(j)
        self._train: sp.csr_matrix | None = None

    def fit(self, data: RecData) -> ItemKNN:
        x = _binary(data.train_matrix)
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())  # [I]
        co = (x.T @ x).tocoo()  # [I, I] co-occurrence counts
        off = co.row != co.col
        target, neighbour, count = co.row[off], co.col[off], co.data[off]
        sim = count / (norms[target] * norms[neighbour] + self.shrink)
        # the k largest per target item: sort by (target, -sim), rank within target
        order = np.lexsort((-sim, target))
        target, neighbour, sim = target[order], neighbour[order], sim[order]
        starts = np.searchsorted(target, target, side="left")
        keep = (np.arange(target.size) - starts) < self.k
        n = data.num_items
        self.weights = sp.csr_matrix(
            (sim[keep].astype(np.float32), (neighbour[keep], target[keep])), shape=(n, n)
        )
        self._train = x
        return self

    def score(self, users: Tensor) -> Tensor:
        weights = _fitted(self, self.weights)
        rows = self._train[_check_users(users, self._train.shape[0]).numpy()]  # [B, I]
        return torch.from_numpy((rows @ weights).toarray())

    def contributions(self, user: int, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What each item of ``user``'s training row adds to the user's score of each of ``items``: the items
        :math:`i` with :math:`x_{ui} = 1` and ``[len(i), len(items)]`` float64 :math:`s_{ij}` (0 outside
        :math:`N_k(j)`), whose columns sum to :meth:`score`."""
        weights = _fitted(self, self.weights)
        history = _row_items(self._train, user)
        return history, weights[history][:, np.asarray(items, dtype=np.int64)].toarray().astype(np.float64)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(k={self.k}, shrink={self.shrink:g})"


EASE_LAMBDAS = (100.0, 200.0, 500.0, 1000.0, 2000.0)  # L2 weights EASE tries on validation
EASE_MAX_SIDE = 40_000  # EASE inverts a dense min(rows, items)-square matrix: 12.8 GB in float64 at this size
KNOWLEDGE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)  # weights of the knowledge rows KGRec's EASE channel tries
TIME_WEIGHTS = (0.0, 1.0, 2.0, 4.0)  # weights of the time kernel KGRec's EASE channel tries
TIME_SCALE = 300.0  # seconds: tau of the time kernel, the scale of one sitting
TIME_TAIL = 1e-4  # pairs further apart than tau * ln(1 / TIME_TAIL) in time are left out of the time kernel


class EASE:
    r"""Embarrassingly Shallow Autoencoder (Steck, `"Embarrassingly Shallow Autoencoders for Sparse Data"
    <https://arxiv.org/abs/1905.03375>`_): the item-item weights :math:`B` that best reconstruct the binary
    training matrix :math:`X \in \{0, 1\}^{U \times I}` from the other items, in closed form,

    .. math::
        \min_B \lVert X - XB \rVert_F^2 + \lambda \lVert B \rVert_F^2 \ \text{s.t.}\ \operatorname{diag}(B) = 0
        \quad\Rightarrow\quad P = (X^\top X + \lambda I)^{-1}, \quad B = I - P \operatorname{diag}(P)^{-1},

    scored :math:`\hat{y}_u = \mathbf{x}_u B`. A strong, simple baseline on dense data.

    **Knowledge rows** (off by default; KGRec's channel uses them): with ``knowledge_weights`` other than
    ``(0,)``, the reconstructed matrix gains one row per entity linked to two or more items, with weight
    :math:`\alpha` on the items it is linked to (any relation), :math:`X_a = [X; \alpha S]` — entities as
    pseudo-users, side information in the Gram matrix only (Jeunen, Van Balen and Goethals,
    `"Closed-Form Models for Collaborative Filtering with Side-Information"
    <https://doi.org/10.1145/3383313.3418480>`_). Users are still scored from their own rows. :math:`\alpha`
    is chosen on validation after :math:`\lambda` (at the first weight), with :math:`\alpha = 0` among
    the candidates, so the knowledge is used only where validation says it helps.

    **Time kernel** (off by default; KGRec's channel uses it): with ``time_weights`` other than ``(0,)`` and
    training interactions with known times, the Gram matrix gains :math:`\alpha_t G_\tau`, the
    co-occurrences of each user's items weighted by how close in time they were,

    .. math::
        G_\tau = \sum_u X_u^\top W_u X_u, \qquad (W_u)_{ij} = \exp\bigl(-\lvert t_{ui} - t_{uj} \rvert / \tau\bigr),

    (:func:`time_gram`; :math:`\tau` = ``time_scale``), so items consumed in one sitting explain each other
    more than items a user consumed years apart — the time-decayed within-session similarity of SLIST (Choi
    et al., `"Session-aware Linear Item-Item Models for Session-based Recommendation"
    <https://arxiv.org/abs/2103.16104>`_), added to EASE's whole-history co-occurrence. The users are still
    scored from their binary rows, without times. :math:`\alpha_t` is chosen on validation last (after
    :math:`\lambda` and :math:`\alpha`), ``0`` among the candidates; a fit with it solves over the items,
    which ``EASE_MAX_SIDE`` must allow (else only ``0`` is tried, and :attr:`time_basis` says why).

    With fewer items than rows it inverts the items × items matrix and keeps :math:`B`. With fewer rows
    than items (HetRec Last.FM-2k: 1,892 users, 17,632 artists) it never forms :math:`B`: by the Woodbury
    identity, with :math:`K = X_a X_a^\top + \lambda I` (rows × rows),

    .. math::
        X_a P = K^{-1} X_a, \qquad P_{jj} = \bigl(1 - \mathbf{a}_j^\top K^{-1} \mathbf{a}_j\bigr) / \lambda,
        \qquad \mathbf{x}_u B = \mathbf{x}_u - (K^{-1} X_a)_u \operatorname{diag}(P)^{-1},

    (:math:`\mathbf{a}_j` the :math:`j`-th column of :math:`X_a`), so it keeps :math:`K^{-1}` and
    :math:`\operatorname{diag}(P)` (and, for :meth:`contributions`, :math:`B_{ji} = \mathbf{a}_j^\top K^{-1}
    \mathbf{a}_i / (\lambda P_{ii})` for :math:`j \ne i`). Either way one dense inversion of the smaller side
    (:math:`O(\min(R, I)^2)` memory, :math:`O(\min(R, I)^3)` time for :math:`R` rows; it refuses when both
    sides exceed ``EASE_MAX_SIDE``) and the same scores. :math:`\lambda` is chosen among ``lambdas`` by
    validation nDCG@``val_k`` (the first, without validation interactions), one inversion each.

    Args:
        lambdas (tuple of float): the L2 weights tried. (default: ``EASE_LAMBDAS``)
        val_k (int): the cut-off of the validation nDCG. (default: ``20``)
        knowledge_weights (tuple of float): the weights :math:`\alpha \ge 0` of the knowledge rows tried
            (the first without validation interactions). (default: ``(0.0,)``, no knowledge)
        time_weights (tuple of float): the weights :math:`\alpha_t \ge 0` of the time kernel tried (the
            first without validation interactions). (default: ``(0.0,)``, no time)
        time_scale (float): :math:`\tau`, seconds. (default: ``TIME_SCALE``)
    """

    name = "EASE"

    def __init__(self, lambdas: tuple[float, ...] = EASE_LAMBDAS, val_k: int = 20,
                 knowledge_weights: tuple[float, ...] = (0.0,), time_weights: tuple[float, ...] = (0.0,),
                 time_scale: float = TIME_SCALE) -> None:
        if not lambdas or min(lambdas) <= 0:
            raise KgrecError(f"'lambdas' (got {lambdas}) must be one or more positive weights")
        for name, weights in (("knowledge_weights", knowledge_weights), ("time_weights", time_weights)):
            if not weights or min(weights) < 0:
                raise KgrecError(f"'{name}' (got {weights}) must be one or more weights >= 0")
        if not time_scale > 0:
            raise KgrecError(f"'time_scale' (got {time_scale}) must be a positive number of seconds")
        self.lambdas, self.val_k = tuple(float(v) for v in lambdas), val_k
        self.knowledge_weights = tuple(float(v) for v in knowledge_weights)
        self.time_weights, self.time_scale = tuple(float(v) for v in time_weights), float(time_scale)
        self.lam: float | None = None
        self.knowledge_weight: float | None = None  # the alpha chosen (0: no knowledge rows)
        self.time_weight: float | None = None  # the alpha_t chosen (0: no time kernel)
        self.time_basis: str = ""  # why the time kernel was or was not tried (ease_time)
        self.weights: Tensor | None = None  # B, [I, I] float32 (fewer items than rows)
        self._kinv: np.ndarray | None = None  # K^-1, [R, R] float64 (fewer rows than items)
        self._scale: np.ndarray | None = None  # 1 / P_jj, [I] float64, beside K^-1
        self._columns: sp.csr_matrix | None = None  # X_a^T as CSR (a_j as rows), beside K^-1
        self._train: sp.csr_matrix | None = None

    @property
    def dual(self) -> bool:
        """Whether the fit went over rows (fewer rows than items) rather than items."""
        return self._kinv is not None

    def fit(self, data: RecData) -> EASE:
        from kgrec.model.evaluate import evaluate

        side, alphas = ease_knowledge(data, self.knowledge_weights)
        times, alphas_t, self.time_basis = ease_time(data, self.time_weights, self.time_scale)
        x = _binary(data.train_matrix)
        self._train = x
        validate = bool(data.val.numel())
        lams = self.lambdas if validate else self.lambdas[:1]
        search = validate and len(lams) * len(alphas) * len(alphas_t) > 1
        scores: dict[tuple[float, float, float], float] = {}
        grams: dict[tuple[float, float], tuple[sp.csr_matrix, Tensor]] = {}  # X_a and its Gram, one at a time

        def solve(lam: float, alpha: float, alpha_t: float) -> None:
            if (alpha, alpha_t) not in grams:
                grams.clear()
                rows = sp.vstack([x, side * alpha]).tocsr() if alpha else x
                grams[alpha, alpha_t] = rows, _gram(rows, times * alpha_t if alpha_t else None)
            self._solve(*grams[alpha, alpha_t], lam, alpha, alpha_t)

        def trial(lam: float, alpha: float, alpha_t: float) -> None:
            solve(lam, alpha, alpha_t)
            if search:
                scores[lam, alpha, alpha_t] = evaluate(self, data, "val", ks=(self.val_k,))[f"ndcg@{self.val_k}"]

        def best() -> tuple[float, float, float]:  # ties: less knowledge, less time, smaller lambda
            return max(scores, key=lambda key: (scores[key], -key[1], -key[2], -key[0]))

        for lam in lams:
            trial(lam, alphas[0], alphas_t[0])
        for alpha in alphas[1:]:
            trial(best()[0], alpha, alphas_t[0])
        for alpha_t in alphas_t[1:]:
            trial(*best()[:2], alpha_t)
        if scores and best() != (self.lam, self.knowledge_weight, self.time_weight):
            solve(*best())
        return self

    def _solve(self, rows: sp.csr_matrix, gram: Tensor, lam: float, alpha: float, alpha_t: float) -> None:
        r"""Fit for one :math:`\lambda`, knowledge weight :math:`\alpha` and time weight :math:`\alpha_t` from
        :math:`X_a` (``rows``) and its Gram matrix over the smaller side, or over the items with the time
        kernel (:func:`_gram`)."""
        self.lam, self.knowledge_weight, self.time_weight = lam, alpha, alpha_t
        self.weights = self._kinv = self._scale = self._columns = None
        if gram.shape[0] != rows.shape[1]:  # over the rows
            self._kinv, self._scale, self._columns = _ease_dual(rows, gram, lam)
        else:
            self.weights = _ease_weights(gram, lam)

    def score(self, users: Tensor) -> Tensor:
        x = _fitted(self, self._train)
        users = _check_users(users, x.shape[0]).numpy()
        if not self.dual:
            return torch.from_numpy(np.asarray(x[users] @ self.weights.numpy()))
        xp = np.asarray(self._columns @ self._kinv[users].T).T  # the users' rows of K^-1 X_a = X_a P, [B, I]
        return torch.from_numpy((x[users].toarray() - xp * self._scale).astype(np.float32))

    def contributions(self, user: int, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""What each item of ``user``'s training row adds to the user's score of each of ``items``: the items
        :math:`j` with :math:`x_{uj} = 1` and ``[len(j), len(items)]`` float64 :math:`B_{ji}`, whose columns sum
        to :meth:`score` (the score is linear in the row: :math:`\hat{y}_{ui} = \sum_j x_{uj} B_{ji}`)."""
        history = _row_items(_fitted(self, self._train), user)
        items = np.asarray(items, dtype=np.int64)
        if not self.dual:
            return history, self.weights[torch.from_numpy(history)[:, None], torch.from_numpy(items)[None, :]].double().numpy()
        reach = np.asarray(self._columns[items] @ self._kinv)  # (K^-1 a_i)^T (K^-1 is symmetric), [n, R]
        weights = np.asarray(self._columns[history] @ reach.T) * (self._scale[items] / self.lam)
        weights[history[:, None] == items[None, :]] = 0.0  # B_ii = 0
        return history, weights

    def __repr__(self) -> str:
        knowledge = f", knowledge_weight={self.knowledge_weight}" if self.knowledge_weights != (0.0,) else ""
        time = f", time_weight={self.time_weight}, time_scale={self.time_scale:g}" if self.time_weights != (0.0,) else ""
        return f"{self.__class__.__name__}(lambdas={self.lambdas}, lam={self.lam}{knowledge}{time})"


def ease_knowledge(data: RecData, knowledge_weights: tuple[float, ...]) -> tuple[sp.csr_matrix | None, tuple[float, ...]]:
    """The knowledge rows :meth:`EASE.fit` adds to ``data`` and the weights it tries there (``None, (0.0,)``:
    none); a :class:`~kgrec.errors.KgrecError` when neither side of the matrix it would invert (users plus
    knowledge rows, items) fits ``EASE_MAX_SIDE``, so callers can check before other work."""
    alphas = knowledge_weights if data.val.numel() else knowledge_weights[:1]
    side = knowledge_rows(data) if max(alphas) > 0 else None
    if side is None or side.shape[0] == 0:
        side, alphas = None, (0.0,)
    rows, items = data.num_users + (side.shape[0] if side is not None else 0), data.num_items
    if min(rows, items) > EASE_MAX_SIDE:
        raise KgrecError(f"EASE inverts a dense {min(rows, items):,}-square matrix ({rows:,} rows, {items:,} "
                         f"items); it refuses more than {EASE_MAX_SIDE:,} on both sides")
    return side, tuple(alphas)


def ease_time(data: RecData, time_weights: tuple[float, ...],
              scale: float) -> tuple[sp.csr_matrix | None, tuple[float, ...], str]:
    """The time kernel :meth:`EASE.fit` adds to ``data``'s Gram matrix (:func:`time_gram`), the weights it
    tries there and why: ``None, (0.0,)`` when no weight above 0 is asked for, the training interactions
    have no times, or the items are too many to solve over (``EASE_MAX_SIDE``)."""
    weights = time_weights if data.val.numel() else time_weights[:1]
    if max(weights) <= 0:
        return None, (0.0,), "not asked for"
    if not data.has_times:
        return None, (0.0,), "the training interactions have no times"
    if data.num_items > EASE_MAX_SIDE:
        return None, (0.0,), (f"{data.num_items:,} items: more than EASE_MAX_SIDE ({EASE_MAX_SIDE:,}) to solve "
                              "over, which the time kernel needs")
    basis = "chosen on validation" if len(weights) > 1 else "given"
    return time_gram(data, scale), tuple(weights), basis


def time_gram(data: RecData, scale: float, tail: float = TIME_TAIL, chunk: int = 2**24) -> sp.csr_matrix:
    r"""``[I, I]`` float64: :math:`G_\tau = \sum_u X_u^\top W_u X_u` (:class:`EASE`) of the training pairs,
    :math:`\tau` = ``scale`` seconds. A pair's time is its latest interaction's; a pair without one counts
    on the diagonal only (as if far from every other). Pairs further apart than :math:`\tau \ln(1/\text{tail})`
    are left out: walking each user's items in time order, each item is paired with the next ones until the
    first beyond that window, so the cost is the number of pairs within it (not every pair of a user's
    items), and at most about ``chunk`` of them are held before they are summed."""
    x = _binary(data.train_matrix)
    n = data.num_items
    gram = sp.diags(np.asarray(x.sum(axis=0)).ravel().astype(np.float64)).tocsr()
    users, items = data.train.numpy()
    times = data.train_time.numpy() if data.train_time is not None else np.full(users.size, np.nan)
    key = users.astype(np.int64) * n + items
    pairs, inverse = np.unique(key, return_inverse=True)
    latest = np.full(pairs.size, -np.inf)
    np.fmax.at(latest, inverse, times)  # fmax skips NaN: -inf where the pair has no time at all
    timed = np.isfinite(latest)
    pairs, latest = pairs[timed], latest[timed]
    order = np.lexsort((latest, pairs // n))  # by user, then time
    user, item, when = pairs[order] // n, pairs[order] % n, latest[order]
    window = scale * np.log(1.0 / tail)
    held: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    count = 0  # pairs held

    def add_held() -> None:
        nonlocal gram, count
        rows, cols, values = (np.concatenate(part) for part in zip(*held))
        half = sp.csr_matrix((values, (rows, cols)), shape=(n, n))
        gram = gram + half + half.T
        held.clear()
        count = 0

    start, offset = np.arange(user.size - 1), 1  # the items still paired with the one `offset` later
    while start.size:
        start = start[start + offset < user.size]
        later = start + offset
        gap = when[later] - when[start]
        near = (user[later] == user[start]) & (gap <= window)  # beyond: so are all later ones of the user
        start, later, gap = start[near], later[near], gap[near]
        held.append((item[start], item[later], np.exp(-gap / scale)))
        count += start.size
        if count >= chunk:
            add_held()
        offset += 1
    if held:
        add_held()
    return gram.tocsr()


def knowledge_rows(data: RecData) -> sp.csr_matrix:
    """``[E', I]`` binary: one row per entity linked (by any relation) to two or more items, ones on its items.
    An entity with one item says nothing about pairs of items and is left out."""
    pairs = [p for p in data.item_entity.values() if p.numel()]
    if not pairs:
        return sp.csr_matrix((0, data.num_items), dtype=np.float32)
    items, entities = torch.cat(pairs, dim=1).numpy()
    s = sp.csr_matrix((np.ones(items.size, dtype=np.float32), (entities, items)),
                      shape=(data.num_entities, data.num_items))
    s.sum_duplicates()
    s.data[:] = 1.0
    return s[np.flatnonzero(np.diff(s.indptr) >= 2)]


def _over_rows(rows: sp.csr_matrix) -> bool:
    """Whether EASE inverts over the rows of :math:`X_a` (fewer than its items) rather than the items."""
    return rows.shape[0] < rows.shape[1]


def _gram(rows: sp.csr_matrix, time: sp.csr_matrix | None = None) -> Tensor:
    r"""The Gram matrix of :math:`X_a` over its smaller side, dense float64: :math:`X_a X_a^\top` or
    :math:`X_a^\top X_a`; with ``time`` (:math:`\alpha_t G_\tau`, items × items) over the items,
    :math:`X_a^\top X_a + \alpha_t G_\tau`."""
    if time is None and _over_rows(rows):
        return torch.from_numpy((rows @ rows.T).toarray()).double()
    gram = (rows.T @ rows).astype(np.float64)
    return torch.from_numpy((gram + time if time is not None else gram).toarray())


def _ease_weights(gram: Tensor, lam: float) -> Tensor:
    r"""EASE's :math:`B` for one :math:`\lambda` from :math:`X^\top X` (float64; a Cholesky inverse)."""
    regularised = gram.clone()
    regularised.diagonal().add_(lam)
    p = torch.cholesky_inverse(torch.linalg.cholesky(regularised))
    del regularised
    b = p.div_(-torch.diagonal(p).clone())
    b.fill_diagonal_(0.0)
    return b.float()


def _ease_dual(rows: sp.csr_matrix, gram: Tensor, lam: float,
               chunk: int = 2**24) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    r"""EASE over rows for one :math:`\lambda` from :math:`X_a X_a^\top`: :math:`K^{-1}` (C-ordered, so that
    products with it read rows), :math:`1 / P_{jj}` (float64) and :math:`X_a^\top` as CSR (the columns
    :math:`\mathbf{a}_j` as rows, which :meth:`EASE.contributions` reads). :math:`\mathbf{a}_j^\top K^{-1} \mathbf{a}_j`
    goes over item blocks of about ``chunk`` numbers, so no rows × items matrix is held at once."""
    regularised = gram.clone()
    regularised.diagonal().add_(lam)
    kinv = np.ascontiguousarray(torch.cholesky_inverse(torch.linalg.cholesky(regularised)).numpy())
    del regularised
    columns = sp.csr_matrix(rows.T, dtype=np.float64)  # [I, R]
    quad = np.empty(columns.shape[0])
    step = max(1, chunk // max(1, columns.shape[1]))
    for start in range(0, columns.shape[0], step):
        block = columns[start:start + step]
        quad[start:start + step] = np.asarray(block.multiply(block @ kinv).sum(axis=1)).ravel()
    # 1 - a^T K^-1 a = lambda P_jj > 0; the clip only guards rounding
    return kinv, lam / np.clip(1.0 - quad, np.finfo(np.float64).tiny, None), columns


class MatrixFactorization(torch.nn.Module):
    r"""Matrix factorisation scored by the inner product, as in BPR-MF (`"BPR: Bayesian Personalized Ranking
    from Implicit Feedback" <https://arxiv.org/abs/1205.2618>`_): :math:`\hat{y}_{ui} = \mathbf{p}_u^\top
    \mathbf{q}_i`.

    Args:
        num_users (int): users, the rows of :math:`P`.
        num_items (int): items, the rows of :math:`Q`.
        embedding_dim (int): the size of :math:`\mathbf{p}_u` and :math:`\mathbf{q}_i`.
    """

    def __init__(self, num_users: int, num_items: int, embedding_dim: int) -> None:
        super().__init__()
        if embedding_dim < 1:
            raise KgrecError(f"'embedding_dim' (got {embedding_dim}) must be at least 1")
        self.num_users, self.num_items, self.embedding_dim = num_users, num_items, embedding_dim
        self.user_emb = torch.nn.Embedding(num_users, embedding_dim)
        self.item_emb = torch.nn.Embedding(num_items, embedding_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        torch.nn.init.normal_(self.user_emb.weight, std=0.1)
        torch.nn.init.normal_(self.item_emb.weight, std=0.1)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """``[B]`` scores of the pairs ``(users[b], items[b])``."""
        return (self.user_emb(users) * self.item_emb(items)).sum(dim=-1)

    def score_all(self, users: Tensor) -> Tensor:
        """``[B, num_items]`` scores of every item for ``users``."""
        return self.user_emb(users) @ self.item_emb.weight.t()

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.num_users}, {self.num_items}, {self.embedding_dim})"


class MFBPR:
    r""":class:`MatrixFactorization` trained with the BPR loss on uniformly sampled unseen negatives, Adam,
    and early stopping on validation nDCG@20 (see :func:`~kgrec.model.training.fit_bpr`).

    Args:
        dim (int): embedding size. (default: ``64``)
        epochs, lr, weight_decay, batch_size, patience, eval_every, seed, device: the schedule, as in
            :class:`~kgrec.model.training.TrainConfig` (same defaults; ``weight_decay`` is the BPR L2
            :math:`\lambda` on the batch's embeddings).
        progress (bool): show a tqdm bar with the loss and the last validation nDCG@20. (default: ``False``)

    After :meth:`fit`: ``module``, ``history`` (one :class:`~kgrec.model.training.EpochRecord` per epoch)
    and ``best_epoch``.
    """

    name = "MF-BPR"

    def __init__(
        self,
        dim: int = 64,
        *,
        epochs: int = _DEFAULT.epochs,
        lr: float = _DEFAULT.lr,
        weight_decay: float = _DEFAULT.weight_decay,
        batch_size: int = _DEFAULT.batch_size,
        patience: int = _DEFAULT.patience,
        eval_every: int = _DEFAULT.eval_every,
        seed: int = _DEFAULT.seed,
        device: str = _DEFAULT.device,
        progress: bool = False,
    ) -> None:
        if dim < 1:
            raise KgrecError(f"'dim' (got {dim}) must be at least 1")
        self.dim, self.progress = dim, progress
        self.config = TrainConfig(epochs, lr, weight_decay, batch_size, patience, eval_every, seed=seed, device=device)
        self.module: MatrixFactorization | None = None
        self.history: list[EpochRecord] = []
        self.best_epoch: int | None = None

    def fit(self, data: RecData) -> MFBPR:
        with seeded(self.config.seed):
            self.module = module = MatrixFactorization(data.num_users, data.num_items, self.dim)

        def batch_loss(users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
            p, q_pos, q_neg = module.user_emb(users), module.item_emb(pos), module.item_emb(neg)  # [B, d]
            return bpr_loss((p * q_pos).sum(-1), (p * q_neg).sum(-1), (p, q_pos, q_neg), self.config.weight_decay)

        self.history, self.best_epoch = fit_bpr(self, module, data, self.config, batch_loss, self.progress)
        return self

    @torch.no_grad()
    def score(self, users: Tensor) -> Tensor:
        module = _fitted(self, self.module)
        return module.score_all(_check_users(users, module.num_users).to(module.item_emb.weight.device))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(dim={self.dim}, {_config_repr(self.config)})"


class LightGCNRec:
    r"""PyG's :class:`~torch_geometric.nn.models.LightGCN` (`"LightGCN: Simplifying and Powering Graph
    Convolution Network for Recommendation" <https://arxiv.org/abs/2002.02126>`_) on the training graph.

    Users are nodes :math:`0..U-1` and items :math:`U..U+I-1`, with each training interaction in both
    directions. Embeddings propagate as

    .. math::
        \mathbf{e}^{(l+1)}_v = \sum_{w \in \mathcal{N}(v)} \frac{1}{\sqrt{|\mathcal{N}(v)||\mathcal{N}(w)|}}
        \mathbf{e}^{(l)}_w, \qquad \mathbf{e}_v = \frac{1}{L+1} \sum_{l=0}^{L} \mathbf{e}^{(l)}_v,
        \qquad \hat{y}_{ui} = \mathbf{e}_u^\top \mathbf{e}_i,

    over the whole graph at every step (the normalised adjacency is built once, as a sparse CSR tensor that
    the :class:`~torch_geometric.nn.conv.LGConv` layers multiply with; it is symmetric, so it is its own
    transpose), and train with BPR through ``LightGCN.recommendation_loss`` (L2 on
    the batch's layer-0 embeddings, :math:`\lambda` = ``weight_decay``), Adam and early stopping on
    validation nDCG@20 (see :func:`~kgrec.model.training.fit_bpr`).

    Args:
        dim (int): embedding size. (default: ``64``)
        num_layers (int): propagation layers :math:`L`. (default: ``3``)
        epochs, lr, weight_decay, batch_size, patience, eval_every, seed, device: the schedule, as in
            :class:`~kgrec.model.training.TrainConfig` (same defaults).
        progress (bool): show a tqdm bar with the loss and the last validation nDCG@20. (default: ``False``)

    After :meth:`fit`: ``module``, ``history`` and ``best_epoch``.
    """

    name = "LightGCN"

    def __init__(
        self,
        dim: int = 64,
        num_layers: int = 3,
        *,
        epochs: int = _DEFAULT.epochs,
        lr: float = _DEFAULT.lr,
        weight_decay: float = _DEFAULT.weight_decay,
        batch_size: int = _DEFAULT.batch_size,
        patience: int = _DEFAULT.patience,
        eval_every: int = _DEFAULT.eval_every,
        seed: int = _DEFAULT.seed,
        device: str = _DEFAULT.device,
        progress: bool = False,
    ) -> None:
        if dim < 1:
            raise KgrecError(f"'dim' (got {dim}) must be at least 1")
        if num_layers < 0:
            raise KgrecError(f"'num_layers' (got {num_layers}) must not be negative")
        self.dim, self.num_layers, self.progress = dim, num_layers, progress
        self.config = TrainConfig(epochs, lr, weight_decay, batch_size, patience, eval_every, seed=seed, device=device)
        self.module: LightGCN | None = None
        self.history: list[EpochRecord] = []
        self.best_epoch: int | None = None
        self.num_users = 0
        self.adj: Tensor | None = None  # the normalised [U + I, U + I] adjacency, sparse CSR

    def fit(self, data: RecData) -> LightGCNRec:
        self.num_users = data.num_users
        self.adj = _normalized_adjacency(_binary(data.train_matrix))
        with seeded(self.config.seed):
            self.module = module = LightGCN(data.num_users + data.num_items, self.dim, self.num_layers, normalize=False)
        offset = data.num_users

        def batch_loss(users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
            emb = module.get_embedding(self.adj)  # [U + I, d]
            e_u = emb[users]
            pos_rank = (e_u * emb[pos + offset]).sum(-1)
            neg_rank = (e_u * emb[neg + offset]).sum(-1)
            node_id = torch.cat([users, pos + offset, neg + offset])
            return module.recommendation_loss(pos_rank, neg_rank, node_id=node_id, lambda_reg=self.config.weight_decay)

        self.adj = self.adj.to(self.config.torch_device)  # fit_bpr moves the module there
        try:
            self.history, self.best_epoch = fit_bpr(self, module, data, self.config, batch_loss, self.progress)
        finally:
            self.adj = self.adj.cpu()
        return self

    @torch.no_grad()
    def score(self, users: Tensor) -> Tensor:
        module = _fitted(self, self.module)
        emb = module.get_embedding(self.adj)
        return emb[_check_users(users, self.num_users).to(emb.device)] @ emb[self.num_users :].t()

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(dim={self.dim}, num_layers={self.num_layers}, "
            f"{_config_repr(self.config)})"
        )


class TextSimilarity:
    r"""Content-based: the cosine of each item's text vector to the user's profile, the normalised mean of
    the (normalised) vectors of the user's training items:

    .. math::
        \mathbf{m}_u = \frac{1}{|\mathcal{I}_u|} \sum_{i \in \mathcal{I}_u}
        \frac{\mathbf{v}_i}{\lVert \mathbf{v}_i \rVert}, \qquad
        \hat{y}_{uj} = \frac{\mathbf{m}_u^\top \mathbf{v}_j}{\lVert \mathbf{m}_u \rVert \lVert \mathbf{v}_j \rVert}.

    A user without training items scores 0 everywhere. The vectors come from the caller (for example the
    text encoder of :mod:`kgrec.model.text`); nothing is loaded here.

    Args:
        encoder_vectors (torch.Tensor): ``[num_items, d]`` item text vectors.
    """

    name = "TextSimilarity"

    def __init__(self, encoder_vectors: Tensor) -> None:
        if encoder_vectors.dim() != 2:
            raise KgrecError(f"'encoder_vectors' (got shape {tuple(encoder_vectors.shape)}) must be [num_items, d]")
        self.item_vectors = F.normalize(encoder_vectors.detach().float().cpu(), dim=1)  # [I, d]
        self.profiles: Tensor | None = None  # [U, d]

    def fit(self, data: RecData) -> TextSimilarity:
        if self.item_vectors.shape[0] != data.num_items:
            raise KgrecError(
                f"'encoder_vectors' has {self.item_vectors.shape[0]} rows but the data has {data.num_items} items"
            )
        x = _binary(data.train_matrix)
        degree = np.asarray(x.sum(axis=1)).ravel()
        mean = sp.diags(1.0 / np.maximum(degree, 1)) @ x  # row-normalised [U, I]
        profiles = torch.from_numpy(np.asarray(mean @ self.item_vectors.numpy(), dtype=np.float32))
        self.profiles = F.normalize(profiles, dim=1)
        return self

    def score(self, users: Tensor) -> Tensor:
        profiles = _fitted(self, self.profiles)
        return profiles[_check_users(users, profiles.shape[0])] @ self.item_vectors.t()

    def __repr__(self) -> str:
        num_items, dim = self.item_vectors.shape
        return f"{self.__class__.__name__}({num_items}, {dim})"


# ---------------------------------------------------------------------------------------------------------


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """The pattern of ``matrix`` as float32 ones."""
    x = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    x.eliminate_zeros()
    x.data[:] = 1.0
    return x


def _normalized_adjacency(x: sp.csr_matrix) -> Tensor:
    r"""The user-item graph :math:`\begin{pmatrix} 0 & X \\ X^\top & 0 \end{pmatrix}` of a binary
    ``[U, I]`` matrix, normalised as :math:`D^{-1/2} A D^{-1/2}`, as a torch sparse CSR tensor."""
    a = sp.bmat([[None, x], [x.T, None]], format="csr", dtype=np.float32)
    degree = np.asarray(a.sum(axis=1)).ravel()
    inv_sqrt = np.divide(1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0)
    a = (sp.diags(inv_sqrt) @ a @ sp.diags(inv_sqrt)).tocsr().astype(np.float32)
    a.sort_indices()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(a.indptr.astype(np.int64)),
            torch.from_numpy(a.indices.astype(np.int64)),
            torch.from_numpy(a.data),
            size=a.shape,
            check_invariants=True,
        )


def _fitted(model: object, attribute):
    if attribute is None:
        raise KgrecError(f"{type(model).__name__} is not fitted: call fit(data) first")
    return attribute


def _row_items(x: sp.csr_matrix, user: int) -> np.ndarray:
    """The items of ``user``'s row of the training matrix ``x`` (its column indices)."""
    return x[_check_users(torch.tensor([user]), x.shape[0]).numpy()].indices


def _check_users(users: Tensor, num_users: int) -> Tensor:
    users = torch.as_tensor(users, dtype=torch.long)
    if users.numel() and (int(users.min()) < 0 or int(users.max()) >= num_users):
        bad = int(users.min()) if int(users.min()) < 0 else int(users.max())
        raise KgrecError(f"user index {bad} is outside [0, {num_users})")
    return users


def _config_repr(config: TrainConfig) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.as_dict().items())
