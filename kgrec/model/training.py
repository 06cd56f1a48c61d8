r"""Pieces every BPR-trained model shares: negative sampling, the BPR loss, early stopping and one loop.

BPR (Rendle et al., `"BPR: Bayesian Personalized Ranking from Implicit Feedback"
<https://arxiv.org/abs/1205.2618>`_) trains on triples :math:`(u, i, j)` of a user, an item :math:`i` the
user interacted with in training and an item :math:`j` the user did not:

.. math::
    \mathcal{L} = -\frac{1}{|B|} \sum_{(u,i,j) \in B} \ln \sigma(\hat{y}_{ui} - \hat{y}_{uj})
    + \frac{\lambda}{|B|} \lVert \Theta_B \rVert_2^2,

where :math:`\Theta_B` are the (layer-0) embeddings the batch touches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from kgrec.errors import KgrecError
from kgrec.model.data import RecData
from kgrec.model.evaluate import evaluate

if TYPE_CHECKING:
    from kgrec.model.baselines import Recommender


@dataclass(frozen=True)
class TrainConfig:
    """How a BPR model trains.

    Args:
        epochs (int): passes over the training interactions at most. (default: ``100``)
        lr (float): Adam's learning rate. (default: ``1e-3``)
        weight_decay (float): :math:`\\lambda`, the L2 penalty on the batch's embeddings in the BPR loss
            (not Adam's decay of every parameter). (default: ``1e-4``)
        batch_size (int): training triples per step. (default: ``2048``)
        patience (int): validations without improvement before stopping. (default: ``5``)
        eval_every (int): epochs between validations (and the last epoch). (default: ``5``)
        val_k (int): early stopping follows validation ``ndcg@val_k``. (default: ``20``)
        seed (int): seeds the initialisation, the shuffling and the negatives. (default: ``0``)
        device (str): the torch device training runs on, for example ``"cuda"``; the trained model is
            moved back to the CPU at the end. (default: ``"cpu"``)
    """

    epochs: int = 100
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 2048
    patience: int = 5
    eval_every: int = 5
    val_k: int = 20
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience", "eval_every", "val_k"):
            if getattr(self, name) < 1:
                raise KgrecError(f"'{name}' (got {getattr(self, name)}) must be at least 1")
        if self.lr <= 0:
            raise KgrecError(f"'lr' (got {self.lr}) must be positive")
        if self.weight_decay < 0:
            raise KgrecError(f"'weight_decay' (got {self.weight_decay}) must not be negative")
        try:
            torch.device(self.device)
        except RuntimeError as err:
            raise KgrecError(f"'device' (got {self.device!r}) is not a torch device: {err}") from None

    @property
    def torch_device(self) -> torch.device:
        """:attr:`device` as a :class:`torch.device`; a :class:`KgrecError` when it is not available here."""
        device = torch.device(self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise KgrecError(f"'device' is {self.device!r} but torch sees no CUDA device on this machine")
        return device

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class EpochRecord(NamedTuple):
    """One line of a training history: the epoch, its mean loss, the validation metrics (``{}`` for
    epochs that were not validated) and the seconds since training began, at the epoch's end."""

    epoch: int
    loss: float
    val: dict[str, float]
    seconds: float = float("nan")


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's global generator seeded, restoring its previous state afterwards (so
    module initialisation is reproducible without touching the caller's random stream)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class BPRSampler:
    r"""Training triples :math:`(u, i, j)` with :math:`j` uniform among the items :math:`u` has **not**
    seen in training.

    Sampling is exact and vectorised, with no rejection rounds: with the seen items of :math:`u` sorted,
    :math:`s_0 < s_1 < \dots`, the :math:`r`-th unseen item (0-based) is
    :math:`r + |\{k : s_k - k \le r\}|`, since :math:`s_k - k` items before :math:`s_k` are unseen. So a
    uniform :math:`r \in [0, I - \deg(u))` and one binary search give the negative. A user who has seen
    every item gets a uniform (seen) item. Validation and test items may be drawn as negatives, as in any
    training that must not look at them.

    Args:
        train (scipy.sparse matrix): the ``num_users × num_items`` training matrix (its stored entries).
        generator (torch.Generator, optional): the random source. (default: :obj:`None`, torch's global)
    """

    def __init__(self, train: sp.spmatrix, generator: torch.Generator | None = None) -> None:
        csr = sp.csr_matrix(train, copy=True)
        csr.sum_duplicates()  # sorted, unique column indices per row
        csr.eliminate_zeros()
        self.num_users, self.num_items = csr.shape
        self.generator = generator
        self.indptr = torch.from_numpy(csr.indptr.astype(np.int64))
        self.degree = self.indptr[1:] - self.indptr[:-1]
        self.users = torch.repeat_interleave(torch.arange(self.num_users), self.degree)  # the training pairs
        self.items = torch.from_numpy(csr.indices.astype(np.int64))
        position = torch.arange(self.items.numel()) - self.indptr[:-1].repeat_interleave(self.degree)
        # (u, s_k - k) as one key, sorted: s_k - k <= I - deg(u) < I + 1
        self._keys = self.users * (self.num_items + 1) + (self.items - position)

    def sample(self, users: Tensor) -> Tensor:
        """One negative item per entry of ``users``."""
        users = users.long()
        unseen = self.num_items - self.degree[users]  # [B]
        uniform = torch.rand(users.shape, generator=self.generator, dtype=torch.float64)
        full = unseen == 0
        r = (uniform * torch.where(full, self.num_items, unseen)).long()
        r = torch.minimum(r, torch.where(full, self.num_items, unseen) - 1)
        before = torch.searchsorted(self._keys, users * (self.num_items + 1) + r, right=True) - self.indptr[users]
        return torch.where(full, r, r + before)

    def batches(self, batch_size: int, negatives: int = 1) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """One epoch: every training pair once, shuffled, as ``(users, positives, negatives)`` batches;
        ``negatives`` are ``[B]`` items, or ``[B, negatives]`` independent draws when ``negatives > 1``."""
        if negatives < 1:
            raise KgrecError(f"'negatives' (got {negatives}) must be at least 1")
        order = torch.randperm(self.users.numel(), generator=self.generator)
        for start in range(0, order.numel(), batch_size):
            index = order[start : start + batch_size]
            users = self.users[index]
            if negatives == 1:
                yield users, self.items[index], self.sample(users)
            else:
                yield users, self.items[index], self.sample(users.repeat_interleave(negatives)).view(-1, negatives)

    def __len__(self) -> int:
        return self.users.numel()

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.num_users}, {self.num_items}, pairs={len(self)})"


def bpr_loss(pos: Tensor, neg: Tensor, params: Iterable[Tensor] = (), lambda_reg: float = 0.0) -> Tensor:
    r"""The mean BPR loss :math:`-\ln\sigma(\hat{y}_{ui} - \hat{y}_{uj})` plus
    :math:`\lambda \sum_p \lVert p \rVert_2^2 / |B|` over the tensors ``params`` (the batch's embeddings).

    Args:
        pos (torch.Tensor): ``[B]`` scores of the positive pairs.
        neg (torch.Tensor): ``[B]`` scores of the negative pairs of the same users.
        params (iterable of torch.Tensor): what the L2 penalty applies to. (default: ``()``)
        lambda_reg (float): :math:`\lambda`. (default: ``0.0``)
    """
    if pos.shape != neg.shape:
        raise KgrecError(f"'pos' (shape {tuple(pos.shape)}) and 'neg' (shape {tuple(neg.shape)}) must match")
    loss = -F.logsigmoid(pos - neg).mean()
    if lambda_reg:
        loss = loss + lambda_reg * sum(p.pow(2).sum() for p in params) / pos.numel()
    return loss


class EarlyStopping:
    """Keeps the best weights seen at validations and says when ``patience`` validations in a row did not
    improve on them.

    Args:
        patience (int): validations without improvement before :attr:`should_stop`.
        mode (str): ``"max"`` (higher is better) or ``"min"``. (default: ``"max"``)
        min_delta (float): the smallest change that counts as an improvement. (default: ``0.0``)
    """

    def __init__(self, patience: int, mode: str = "max", min_delta: float = 0.0) -> None:
        if patience < 1:
            raise KgrecError(f"'patience' (got {patience}) must be at least 1")
        if mode not in ("max", "min"):
            raise KgrecError(f"'mode' (got {mode!r}) must be 'max' or 'min'")
        self.patience, self.mode, self.min_delta = patience, mode, min_delta
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, Tensor] | None = None
        self.bad_steps = 0

    def step(self, value: float, module: torch.nn.Module, epoch: int) -> bool:
        """Record a validation; returns whether it is the best so far (then ``module``'s weights are kept)."""
        better = value == value and (  # NaN never improves
            self.best is None
            or (value > self.best + self.min_delta if self.mode == "max" else value < self.best - self.min_delta)
        )
        if better:
            self.best, self.best_epoch, self.bad_steps = float(value), epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            self.bad_steps += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.bad_steps >= self.patience

    def restore(self, module: torch.nn.Module) -> None:
        """Load the best weights back into ``module``."""
        if self.best_state is None:
            raise KgrecError("EarlyStopping has recorded no validation yet: there are no best weights to restore")
        module.load_state_dict(self.best_state)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(patience={self.patience}, mode={self.mode!r}, best={self.best})"


def fit_bpr(
    recommender: Recommender,
    module: torch.nn.Module,
    data: RecData,
    config: TrainConfig,
    batch_loss: Callable[..., Tensor],
    progress: bool = False,
    negatives: int = 1,
    batches: Callable[[], Iterable[tuple[int, tuple[Any, ...]]]] | None = None,
) -> tuple[list[EpochRecord], int | None]:
    """Train ``module`` with Adam on BPR triples, validating and early-stopping on ``ndcg@val_k``.

    Every ``config.eval_every`` epochs (and at the last) ``recommender`` is evaluated on the validation split
    (:func:`~kgrec.model.evaluate.evaluate`, training items excluded); training stops after
    ``config.patience`` validations without improvement and the best weights are loaded back. Without
    validation interactions it trains all epochs and keeps the last weights. Training runs on
    ``config.device`` (``module`` is moved there, and each batch's indices; ``recommender.score`` must accept
    CPU user indices and may answer on that device); at the end ``module`` is back on the CPU.

    Args:
        recommender: what is evaluated (its ``score`` reads ``module``).
        module (torch.nn.Module): the parameters to train.
        data (RecData): the interactions.
        config (TrainConfig): the schedule.
        batch_loss (callable): ``(users, positives, negatives) -> loss`` of one batch.
        progress (bool): show a tqdm bar with the loss and the last validation nDCG. (default: ``False``)
        negatives (int): negative candidates drawn per training pair; above 1, ``batch_loss`` gets them as a
            ``[B, negatives]`` tensor (see :meth:`BPRSampler.batches`). (default: ``1``)
        batches (callable, optional): one epoch's batches as ``(training pairs in it, arguments of
            batch_loss)``, each argument moved to the device (tensors, or a neighbour-sampled HeteroData,
            :mod:`kgrec.model.sampled`); instead of :class:`BPRSampler`'s triples. (default: :obj:`None`)

    Returns:
        The history (one :class:`EpochRecord` per epoch) and the epoch whose weights were kept (None
        without validation).
    """
    device = config.torch_device
    generator = torch.Generator().manual_seed(config.seed)
    sampler = BPRSampler(data.train_matrix, generator=generator)
    if len(sampler) == 0:
        raise KgrecError("there are no training interactions to fit on")
    module.to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=config.lr)
    stopper = EarlyStopping(config.patience)
    monitor = f"ndcg@{config.val_k}"
    validate = data.val.numel() > 0
    history: list[EpochRecord] = []
    last: float | None = None
    name = getattr(recommender, "name", type(recommender).__name__)
    began = time.perf_counter()
    with tqdm(range(1, config.epochs + 1), desc=name, unit="epoch", disable=not progress, leave=False) as bar:
        for epoch in bar:
            module.train()
            total = 0.0
            epoch_batches = (
                ((users.numel(), (users, pos, neg)) for users, pos, neg in sampler.batches(config.batch_size, negatives))
                if batches is None else batches()
            )
            for size, arguments in epoch_batches:
                loss = batch_loss(*(argument.to(device) for argument in arguments))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * size
            val: dict[str, float] = {}
            if validate and (epoch % config.eval_every == 0 or epoch == config.epochs):
                module.eval()
                val = evaluate(recommender, data, "val", ks=(config.val_k,))
                last = val[monitor]
                stopper.step(last, module, epoch)
            history.append(EpochRecord(epoch, total / len(sampler), val, time.perf_counter() - began))
            postfix = {"loss": f"{total / len(sampler):.4f}"}
            if last is not None:  # the latest validation score, once there is one
                postfix[monitor] = f"{last:.4f}"
            bar.set_postfix(postfix)
            if stopper.should_stop:
                break
    if stopper.best_state is not None:
        stopper.restore(module)
    module.to("cpu")
    module.eval()
    return history, stopper.best_epoch
