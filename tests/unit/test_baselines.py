"""Baselines and the shared BPR training pieces, on hand-made matrices and a tiny planted-cluster dataset."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.errors import KgrecError
from kgrec.model import baselines
from kgrec.model.baselines import (
    EASE,
    ItemKNN,
    LightGCNRec,
    MatrixFactorization,
    MFBPR,
    Popularity,
    Recommender,
    TextSimilarity,
    knowledge_rows,
    time_gram,
)
from kgrec.model.data import RecData
from kgrec.model.evaluate import evaluate
from kgrec.model.training import BPRSampler, EarlyStopping, EpochRecord, TrainConfig, bpr_loss


def rec_data(num_users: int, num_items: int, train, val=(), test=()) -> RecData:
    def t(pairs) -> torch.Tensor:
        return torch.tensor(list(pairs), dtype=torch.long).t().reshape(2, -1)

    return RecData(num_users, num_items, 0, t(train), t(val), t(test), torch.ones(len(train)))


def planted(seed: int = 0) -> RecData:
    """30 users in 3 clusters of 10; items in blocks 0-12, 13-25, 26-39. Each user has 8 items of its
    cluster's block: 5 train, 1 val, 2 test. Popularity is nearly flat over the blocks; the clusters are
    the whole signal."""
    rng = np.random.default_rng(seed)
    blocks = [range(0, 13), range(13, 26), range(26, 40)]
    train, val, test = [], [], []
    for u in range(30):
        items = rng.choice(list(blocks[u // 10]), size=8, replace=False).tolist()
        train += [(u, i) for i in items[:5]]
        val += [(u, items[5])]
        test += [(u, i) for i in items[6:]]
    return rec_data(30, 40, train, val, test)


# --- protocol, shapes, errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [Popularity(), ItemKNN(k=5), EASE(), TextSimilarity(torch.randn(40, 8)), MFBPR(8, epochs=2), LightGCNRec(8, 2, epochs=2)],
    ids=lambda m: m.name,
)
def test_score_shape(model: Recommender) -> None:
    data = planted()
    assert isinstance(model, Recommender)
    with pytest.raises(KgrecError, match="is not fitted"):
        model.score(torch.tensor([0]))
    assert model.fit(data) is model
    scores = model.score(torch.tensor([0, 29, 3]))
    assert scores.shape == (3, 40) and scores.dtype == torch.float32 and torch.isfinite(scores).all()
    with pytest.raises(KgrecError, match=r"user index 30 is outside \[0, 30\)"):
        model.score(torch.tensor([30]))


def test_reprs() -> None:
    assert repr(ItemKNN(k=50, shrink=2)) == "ItemKNN(k=50, shrink=2)"
    assert repr(MatrixFactorization(30, 40, 16)) == "MatrixFactorization(30, 40, 16)"
    assert repr(MFBPR(16, epochs=3)).startswith("MFBPR(dim=16, epochs=3, lr=0.001,")
    assert repr(LightGCNRec(16, 2)).startswith("LightGCNRec(dim=16, num_layers=2, epochs=100,")
    assert repr(TextSimilarity(torch.zeros(7, 3))) == "TextSimilarity(7, 3)"


def test_bad_arguments_are_named() -> None:
    with pytest.raises(KgrecError, match=r"'k' \(got 0\)"):
        ItemKNN(k=0)
    with pytest.raises(KgrecError, match=r"'lr' \(got -1\)"):
        MFBPR(lr=-1)
    with pytest.raises(KgrecError, match=r"'patience' \(got 0\)"):
        TrainConfig(patience=0)
    with pytest.raises(KgrecError, match="'encoder_vectors' has 7 rows but the data has 40 items"):
        TextSimilarity(torch.zeros(7, 3)).fit(planted())


# --- hand-computed baselines ---------------------------------------------------------------------------


def test_popularity_by_hand() -> None:
    # item 0: users 0, 1, 2 (user 0 twice: counted once); item 2: users 1, 2; item 3: user 0; item 1: nobody
    data = rec_data(3, 4, [(0, 0), (1, 0), (2, 0), (1, 2), (2, 2), (0, 3), (0, 0)])
    model = Popularity().fit(data)
    scores = model.score(torch.tensor([0, 2]))
    assert scores.tolist() == [[3, 0, 2, 1], [3, 0, 2, 1]]
    assert scores[0].argsort(descending=True).tolist() == [0, 2, 3, 1]


# users x items          co-occurrence (off-diagonal)    |x_i|^2 = [2, 3, 2, 1]
#   u0: 1 1 1 0            (0,1)=2 (0,2)=1 (0,3)=0
#   u1: 1 1 0 0            (1,2)=2 (1,3)=1
#   u2: 0 1 1 1            (2,3)=1
# cosine (shrink 0): s01 = 2/sqrt(6) = 0.8165, s02 = 1/2, s12 = 2/sqrt(6) = 0.8165,
#                    s13 = 1/sqrt(3) = 0.5774, s23 = 1/sqrt(2) = 0.7071, s03 = 0
KNN_TRAIN = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 1), (2, 2), (2, 3)]
S01, S02, S12, S13, S23 = 2 / math.sqrt(6), 0.5, 2 / math.sqrt(6), 1 / math.sqrt(3), 1 / math.sqrt(2)


def test_item_knn_cosine_by_hand() -> None:
    model = ItemKNN(k=100, shrink=0).fit(rec_data(3, 4, KNN_TRAIN))
    # u1 has items {0, 1}: score_j = s_0j + s_1j
    expected = [S01, S01, S02 + S12, S13]
    assert model.score(torch.tensor([1]))[0].tolist() == pytest.approx(expected, abs=1e-6)


def test_item_knn_keeps_k_neighbours_per_item() -> None:
    # k = 2, u1 = {0, 1}: item 2's top two are 1 (0.8165) and 3 (0.7071), so 0 (0.5) is dropped and u1's
    # score of item 2 loses s_02. Item 0 keeps {1, 2}, item 1 keeps {0, 2} (dropping 3), item 3 keeps
    # {1, 2}: u1's other scores are unchanged.
    model = ItemKNN(k=2, shrink=0).fit(rec_data(3, 4, KNN_TRAIN))
    expected = [S01, S01, S12, S13]
    assert model.score(torch.tensor([1]))[0].tolist() == pytest.approx(expected, abs=1e-6)
    # what each of u1's items adds: item 2 keeps 1 as a neighbour, not 0
    history, weights = model.contributions(1, np.array([2, 3]))
    assert history.tolist() == [0, 1]
    assert np.allclose(weights, [[0.0, 0.0], [S12, S13]], atol=1e-6)


def test_item_knn_shrink() -> None:
    # s01 with shrink 1: 2 / (sqrt(2) sqrt(3) + 1) = 2 / 3.449490 = 0.579796; u2 = {1, 2, 3} scores item 0
    # with s10 + s20 + s30 = 0.579796 + 1 / (2 + 1) + 0
    model = ItemKNN(k=100, shrink=1).fit(rec_data(3, 4, KNN_TRAIN))
    assert float(model.score(torch.tensor([2]))[0, 0]) == pytest.approx(2 / (math.sqrt(6) + 1) + 1 / 3, abs=1e-6)


def test_ease_by_hand() -> None:
    # two items, X^T X = [[a, c], [c, b]] with a = 3, b = 2, c = 2 (u0, u1 have both, u2 item 0 only):
    # P = (G + lambda I)^-1 and B_ij = -P_ij / P_jj give B_01 = c / (a + lambda), B_10 = c / (b + lambda)
    model = EASE(lambdas=(1.0,)).fit(rec_data(3, 2, [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]))
    assert model.score(torch.tensor([2]))[0].tolist() == pytest.approx([0.0, 2 / (3 + 1)], abs=1e-6)
    assert model.score(torch.tensor([0]))[0].tolist() == pytest.approx([2 / (2 + 1), 2 / (3 + 1)], abs=1e-6)


def test_ease_matches_the_closed_form_and_has_a_zero_diagonal() -> None:
    model = EASE(lambdas=(0.5,)).fit(rec_data(5, 4, KNN_TRAIN + [(3, 3), (4, 0), (4, 2)]))
    x = np.zeros((5, 4))
    for u, i in KNN_TRAIN + [(3, 3), (4, 0), (4, 2)]:
        x[u, i] = 1
    p = np.linalg.inv(x.T @ x + 0.5 * np.eye(4))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0)
    assert not model.dual
    assert np.allclose(model.weights.numpy(), b, atol=1e-5) and not np.diag(model.weights.numpy()).any()
    assert np.allclose(model.score(torch.arange(5)).numpy(), x @ b, atol=1e-5)


@pytest.mark.parametrize("lam", [0.5, 3.0, 200.0])
def test_ease_over_users_scores_as_the_closed_form(lam: float) -> None:
    # fewer users than items: EASE goes through K = X X^T + lambda I and never forms B; an item nobody has
    # (the last) scores 0 and leaves the others alone
    rng = np.random.default_rng(1)
    x = (rng.random((7, 12)) < 0.4).astype(float)
    x[:, -1] = 0
    pairs = [(int(u), int(i)) for u, i in zip(*np.nonzero(x))]
    model = EASE(lambdas=(lam,)).fit(rec_data(7, 12, pairs))
    p = np.linalg.inv(x.T @ x + lam * np.eye(12))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0)
    assert model.dual and model.weights is None and model._kinv.shape == (7, 7)
    users = torch.tensor([6, 0, 3, 3])
    assert np.allclose(model.score(users).numpy(), (x @ b)[users.numpy()], atol=1e-5)
    history, weights = model.contributions(3, np.arange(12))
    assert np.allclose(weights, b[np.nonzero(x[3])[0]], atol=1e-6)
    assert np.allclose(weights.sum(0), model.score(torch.tensor([3]))[0].numpy(), atol=1e-5)
    assert not model.score(users)[:, -1].any()


@pytest.mark.parametrize(("num_users", "num_items"), [(7, 14), (12, 6)], ids=["over-rows", "over-items"])
def test_ease_with_knowledge_rows_scores_as_the_closed_form(num_users: int, num_items: int) -> None:
    # X_a = [X; alpha S]: entities as pseudo-users in the Gram only; users are scored from their own rows
    rng = np.random.default_rng(2)
    x = (rng.random((num_users, num_items)) < 0.4).astype(float)
    links = [(0, 0), (1, 0), (2, 0), (1, 1), (3, 1), (4, 2)]  # (item, entity); entity 2 has one item
    item_entity = {"A": torch.tensor(links[:4]).t(), "B": torch.tensor(links[4:] + [(0, 0)]).t()}
    pairs = torch.tensor(np.argwhere(x)).t()
    data = RecData(num_users, num_items, 3, pairs, torch.empty(2, 0, dtype=torch.long),
                   torch.empty(2, 0, dtype=torch.long), torch.ones(pairs.shape[1]), item_entity=item_entity)
    s = np.zeros((2, num_items))  # entity 2 (one item) is left out; the duplicate (0, 0) counts once
    s[0, [0, 1, 2]] = 1
    s[1, [1, 3]] = 1
    assert np.array_equal(knowledge_rows(data).toarray(), s)
    lam, alpha = 3.0, 2.0
    model = EASE(lambdas=(lam,), knowledge_weights=(alpha, 0.0)).fit(data)  # no validation: the first weight
    xa = np.vstack([x, alpha * s])
    p = np.linalg.inv(xa.T @ xa + lam * np.eye(num_items))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0)
    assert model.knowledge_weight == alpha and model.dual == (num_users + 2 < num_items)
    assert np.allclose(model.score(torch.arange(num_users)).numpy(), x @ b, atol=1e-5)
    # what each history item adds to each score (explanations): B's rows of the user's items, over either side
    items = np.array([num_items - 1, 0, 2])
    for u in range(num_users):
        history, weights = model.contributions(u, items)
        assert np.array_equal(history, np.nonzero(x[u])[0])
        assert np.allclose(weights, b[history][:, items], atol=1e-6)
    plain = EASE(lambdas=(lam,)).fit(data)
    assert plain.knowledge_weight == 0.0 and not np.allclose(plain.score(torch.arange(num_users)).numpy(), x @ b, atol=1e-3)


def timed(num_users: int = 5, num_items: int = 8, seed: int = 3) -> RecData:
    """Random pairs with times in one of two sittings a day apart; one pair twice (the later time is the
    pair's), one pair with no time, one with a time only on its second edge."""
    rng = np.random.default_rng(seed)
    x = rng.random((num_users, num_items)) < 0.5
    x[:, 0] = x[0, 1] = x[1, 2] = True
    pairs = np.argwhere(x)
    times = rng.integers(0, 1200, len(pairs)) + 86400.0 * rng.integers(0, 2, len(pairs))
    row = {tuple(p): k for k, p in enumerate(pairs)}
    times[row[(1, 0)]] = np.nan  # no time at all
    extra = np.array([[0, 0], [1, 2]])  # second edges: (0, 0) earlier than its first, (1, 2) the only time
    times[row[(1, 2)]] = np.nan
    extra_times = np.array([times[row[(0, 0)]] - 50.0, 700.0])
    train = torch.from_numpy(np.vstack([pairs, extra]).T.copy())
    data = RecData(num_users, num_items, 0, train, torch.empty(2, 0, dtype=torch.long),
                   torch.empty(2, 0, dtype=torch.long), torch.ones(train.shape[1]),
                   train_time=torch.from_numpy(np.r_[times, extra_times]))
    return data


def brute_time_gram(data: RecData, scale: float, window: float = np.inf) -> np.ndarray:
    """sum_u X_u^T W_u X_u by its definition: every pair of a user's items, the latest time of each."""
    latest: dict[tuple[int, int], float] = {}
    for (u, i), t in zip(data.train.t().tolist(), data.train_time.tolist()):
        before = latest.get((u, i), np.nan)
        latest[u, i] = t if np.isnan(before) else before if np.isnan(t) else max(before, t)
    g = np.zeros((data.num_items, data.num_items))
    for (u, i), ti in latest.items():
        g[i, i] += 1
        for (v, j), tj in latest.items():
            if v == u and j != i and np.isfinite(ti) and np.isfinite(tj) and abs(ti - tj) <= window:
                g[i, j] += np.exp(-abs(ti - tj) / scale)
    return g


def test_time_gram_is_each_users_kernel_summed() -> None:
    data = timed()
    assert data.has_times
    assert np.allclose(time_gram(data, 300.0, tail=1e-300).toarray(), brute_time_gram(data, 300.0))
    # summed a few pairs at a time, as it does when there are many
    assert np.allclose(time_gram(data, 300.0, tail=1e-300, chunk=3).toarray(), brute_time_gram(data, 300.0))
    # the tail: pairs further apart than tau ln(1 / tail) (here 2 tau = 600 s) are left out
    g = time_gram(data, 300.0, tail=np.exp(-2.0)).toarray()
    assert np.allclose(g, brute_time_gram(data, 300.0, window=600.0))
    assert not np.allclose(g, brute_time_gram(data, 300.0))  # some pairs were that far apart
    untimed = RecData(**{**{f: getattr(data, f) for f in data.__dataclass_fields__}, "train_time": None})
    x = untimed.train_matrix.toarray()
    assert not untimed.has_times and np.array_equal(time_gram(untimed, 300.0).toarray(), np.diag(x.sum(0)))


@pytest.mark.parametrize(("num_users", "num_items"), [(5, 8), (9, 4)], ids=["few-users", "few-items"])
def test_ease_with_the_time_kernel_scores_as_the_closed_form(num_users: int, num_items: int) -> None:
    data = timed(num_users, num_items)
    x = data.train_matrix.toarray()
    lam, alpha_t, scale = 2.0, 3.0, 400.0
    model = EASE(lambdas=(lam,), time_weights=(alpha_t, 0.0), time_scale=scale).fit(data)  # no validation: the first
    p = np.linalg.inv(x.T @ x + alpha_t * brute_time_gram(data, scale) + lam * np.eye(num_items))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0)
    assert model.time_weight == alpha_t and not model.dual  # the kernel is over items: solved over items
    assert np.allclose(model.score(torch.arange(num_users)).numpy(), x @ b, atol=1e-5)
    assert "time_weight=3.0, time_scale=400" in repr(model) and model.time_basis == "given"
    plain = EASE(lambdas=(lam,)).fit(data)
    assert plain.time_weight == 0.0 and plain.time_basis == "not asked for"
    assert not np.allclose(plain.score(torch.arange(num_users)).numpy(), x @ b, atol=1e-3)
    with pytest.raises(KgrecError, match="'time_weights'"):
        EASE(time_weights=(-1.0,))
    with pytest.raises(KgrecError, match="'time_scale' \\(got 0\\)"):
        EASE(time_scale=0)


def test_ease_chooses_the_time_weight_last_and_says_when_it_cannot(monkeypatch: pytest.MonkeyPatch) -> None:
    data = planted()  # 30 users, 40 items; the times: each user's items a minute apart in the order given
    data.train_time = torch.arange(data.train.shape[1], dtype=torch.float64) * 60.0
    weights = (0.0, 1.0, 8.0)
    model = EASE(lambdas=(1.0, 10.0), knowledge_weights=(0.0,), time_weights=weights).fit(data)
    lam = EASE(lambdas=(1.0, 10.0)).fit(data).lam  # lambda is chosen without the kernel, as plain EASE does
    val = {w: evaluate(EASE(lambdas=(lam,), time_weights=(w,)).fit(data), data, "val", ks=(20,))["ndcg@20"]
           for w in weights}
    assert model.lam == lam and model.time_weight == max(weights, key=lambda w: (val[w], -w))
    assert model.time_basis == "chosen on validation"
    untimed = RecData(**{**{f: getattr(data, f) for f in data.__dataclass_fields__}, "train_time": None})
    model = EASE(lambdas=(10.0,), time_weights=weights).fit(untimed)
    assert model.time_weight == 0.0 and model.time_basis == "the training interactions have no times"
    monkeypatch.setattr("kgrec.model.baselines.EASE_MAX_SIDE", 39)  # 40 items: the users' side still fits
    model = EASE(lambdas=(10.0,), time_weights=weights).fit(data)
    assert model.time_weight == 0.0 and model.dual and model.time_basis.startswith("40 items: more than EASE_MAX_SIDE (39)")


def test_ease_chooses_the_knowledge_weight_after_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    data = planted()
    # entities that each hold one cluster's block: knowledge that agrees with the interactions
    blocks = [range(0, 13), range(13, 26), range(26, 40)]
    data.item_entity = {"IN": torch.tensor([(i, e) for e, block in enumerate(blocks) for i in block]).t()}
    data.num_entities = 3
    tried: list[tuple[float, int]] = []
    real = baselines._ease_dual
    monkeypatch.setattr("kgrec.model.baselines._ease_dual",
                        lambda rows, gram, lam: tried.append((lam, rows.shape[0])) or real(rows, gram, lam))
    model = EASE(lambdas=(1.0, 10.0), knowledge_weights=(0.0, 1.0, 3.0)).fit(data)
    lam = max((1.0, 10.0), key=lambda v: (evaluate(EASE(lambdas=(v,)).fit(data), data, "val", ks=(20,))["ndcg@20"], -v))
    # lambda at alpha = 0 (30 rows), then alpha at that lambda (30 + 3 rows), then the refit of the best
    assert tried[:4] == [(1.0, 30), (10.0, 30), (lam, 33), (lam, 33)] and model.lam == lam
    assert model.knowledge_weight in (0.0, 1.0, 3.0) and "knowledge_weight=" in repr(model)
    with pytest.raises(KgrecError, match="'knowledge_weights'"):
        EASE(knowledge_weights=(-1.0,))


def test_ease_chooses_its_weight_on_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    data = planted()  # 30 users, 40 items: over users
    tried: list[float] = []
    monkeypatch.setattr("kgrec.model.baselines._ease_dual", _recording(tried))
    model = EASE(lambdas=(1.0, 10.0, 1e6)).fit(data)
    chosen = {lam: evaluate(EASE(lambdas=(lam,)).fit(data), data, "val", ks=(20,))["ndcg@20"] for lam in (1.0, 10.0, 1e6)}
    assert tried[:3] == [1.0, 10.0, 1e6] and model.lam == max(chosen, key=lambda v: (chosen[v], -v))
    assert evaluate(model, data, "test", ks=(10,))["ndcg@10"] > 0.5  # the clusters are found
    with pytest.raises(KgrecError, match="refuses more than 29 on both sides"):
        monkeypatch.setattr("kgrec.model.baselines.EASE_MAX_SIDE", 29)
        EASE().fit(data)
    monkeypatch.setattr("kgrec.model.baselines.EASE_MAX_SIDE", 30)  # only the users side fits: over users
    assert EASE(lambdas=(10.0,)).fit(data).dual
    with pytest.raises(KgrecError, match="'lambdas'"):
        EASE(lambdas=(0.0,))


def _recording(tried: list[float]):
    from kgrec.model import baselines

    real = baselines._ease_dual

    def record(rows, gram, lam):
        tried.append(lam)
        return real(rows, gram, lam)

    return record


def test_text_similarity_by_hand() -> None:
    # v0 = (1, 0), v1 = (0, 2), v2 = (1, 1); u0 = {0, 1}: mean of the unit vectors (0.5, 0.5) -> (1, 1)/sqrt 2
    # cosines: item 0 -> 1/sqrt 2, item 1 -> 1/sqrt 2, item 2 -> 1. u1 has no training items: zeros.
    model = TextSimilarity(torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])).fit(rec_data(2, 3, [(0, 0), (0, 1)]))
    scores = model.score(torch.tensor([0, 1]))
    assert scores[0].tolist() == pytest.approx([1 / math.sqrt(2), 1 / math.sqrt(2), 1.0], abs=1e-6)
    assert scores[1].tolist() == [0, 0, 0]


# --- training pieces -----------------------------------------------------------------------------------


def test_sampler_never_returns_a_seen_item_when_an_unseen_exists() -> None:
    seen = {0: [i for i in range(40) if i != 17], 1: [], 2: list(range(40)), 3: list(range(0, 40, 2))}
    rows = [(u, i) for u, items in seen.items() for i in items]
    train = sp.csr_matrix((np.ones(len(rows)), tuple(zip(*rows))), shape=(4, 40))
    sampler = BPRSampler(train, generator=torch.Generator().manual_seed(0))
    for user in (0, 1, 3):
        negatives = sampler.sample(torch.full((2000,), user)).tolist()
        assert not set(negatives) & set(seen[user])
        assert set(negatives) == set(range(40)) - set(seen[user])  # every unseen item is drawn
    everything_seen = sampler.sample(torch.full((50,), 2))  # no unseen item: any item, in range
    assert ((everything_seen >= 0) & (everything_seen < 40)).all()


def test_sampler_epoch_covers_every_training_pair_once() -> None:
    data = planted()
    sampler = BPRSampler(data.train_matrix, generator=torch.Generator().manual_seed(0))
    batches = list(sampler.batches(32))
    users, pos, neg = (torch.cat(parts) for parts in zip(*batches))
    assert len(batches) == math.ceil(150 / 32) and len(users) == 150
    assert sorted(zip(users.tolist(), pos.tolist())) == sorted(map(tuple, data.train.t().tolist()))
    assert (data.train_matrix.toarray()[users.numpy(), neg.numpy()] == 0).all()  # negatives are unseen


def test_sampler_draws_several_unseen_candidates_per_pair() -> None:
    data = planted()
    sampler = BPRSampler(data.train_matrix, generator=torch.Generator().manual_seed(0))
    batches = list(sampler.batches(32, negatives=5))
    users, pos, neg = (torch.cat(parts) for parts in zip(*batches))
    assert neg.shape == (150, 5) and len(users) == 150
    assert (data.train_matrix.toarray()[users.numpy()[:, None], neg.numpy()] == 0).all()
    assert (neg[:, 0] != neg[:, 1]).any()  # independent draws, not one repeated
    with pytest.raises(KgrecError, match="'negatives'"):
        next(sampler.batches(32, negatives=0))


def test_bpr_loss() -> None:
    zeros = torch.zeros(4)
    assert float(bpr_loss(zeros, zeros)) == pytest.approx(math.log(2))
    # L2: lambda * (|p|^2 = 4 * 1) / B = 0.5 * 4 / 4
    assert float(bpr_loss(zeros, zeros, [torch.ones(4)], lambda_reg=0.5)) == pytest.approx(math.log(2) + 0.5)


def test_early_stopping_restores_the_best_weights() -> None:
    module = torch.nn.Linear(2, 1)
    stopper = EarlyStopping(patience=2)
    with torch.no_grad():
        module.weight.fill_(1.0)
    assert stopper.step(0.5, module, epoch=5)
    with torch.no_grad():
        module.weight.fill_(2.0)
    assert not stopper.step(0.3, module, epoch=10) and not stopper.should_stop
    assert not stopper.step(float("nan"), module, epoch=15) and stopper.should_stop
    stopper.restore(module)
    assert module.weight.tolist() == [[1.0, 1.0]] and stopper.best_epoch == 5 and stopper.best == 0.5
    with pytest.raises(KgrecError, match="no best weights"):
        EarlyStopping(patience=1).restore(module)


# --- learning on planted clusters ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def popularity_ndcg() -> float:
    return evaluate(Popularity().fit(planted()), planted(), "test", ks=(10,))["ndcg@10"]


@pytest.mark.parametrize(
    "make",
    [
        lambda: MFBPR(16, epochs=40, lr=0.05, batch_size=32, eval_every=2, patience=5, weight_decay=1e-4),
        lambda: LightGCNRec(16, 2, epochs=40, lr=0.05, batch_size=32, eval_every=2, patience=5),
    ],
    ids=["MF-BPR", "LightGCN"],
)
def test_trained_models_beat_popularity(make, popularity_ndcg: float) -> None:
    data = planted()
    model = make().fit(data)  # well under a second on an idle CPU
    ndcg = evaluate(model, data, "test", ks=(10,))["ndcg@10"]
    assert ndcg > popularity_ndcg + 0.2, (ndcg, popularity_ndcg)

    # history: one record per epoch, validations every 2 epochs, and the kept weights are the best ones
    history = model.history
    assert all(isinstance(r, EpochRecord) for r in history)
    assert [r.epoch for r in history] == list(range(1, len(history) + 1))
    seconds = [r.seconds for r in history]  # wall time since training began, at each epoch's end
    assert seconds[0] > 0 and all(b > a for a, b in zip(seconds, seconds[1:]))
    validated = {r.epoch: r.val["ndcg@20"] for r in history if r.val}
    assert set(validated) == {e for e in range(1, len(history) + 1) if e % 2 == 0 or e == 40}
    assert validated[model.best_epoch] == max(validated.values())
    assert evaluate(model, data, "val", ks=(20,))["ndcg@20"] == pytest.approx(validated[model.best_epoch])


def test_training_is_seeded() -> None:
    data = planted()
    a = MFBPR(8, epochs=3, lr=0.05, batch_size=32, seed=1).fit(data)
    b = MFBPR(8, epochs=3, lr=0.05, batch_size=32, seed=1).fit(data)
    c = MFBPR(8, epochs=3, lr=0.05, batch_size=32, seed=2).fit(data)
    users = torch.arange(30)
    assert torch.equal(a.score(users), b.score(users)) and not torch.equal(a.score(users), c.score(users))


def test_item_knn_beats_popularity(popularity_ndcg: float) -> None:
    data = planted()
    assert evaluate(ItemKNN(k=20).fit(data), data, "test", ks=(10,))["ndcg@10"] > popularity_ndcg + 0.2


def test_a_pair_with_two_kinds_is_one_interaction_in_the_matrices() -> None:
    """A user who rated and tagged an item (two INTERACTED of two kinds) interacted with it once: 2.0 in the
    train matrix weighed that item double in ItemKNN's and EASE's item–item statistics."""
    data = rec_data(2, 3, train=[(0, 1), (0, 1), (1, 2)], test=[(0, 0), (0, 0)])
    assert data.train_matrix.toarray().tolist() == [[0, 1, 0], [0, 0, 1]]
    assert data.seen_matrix.toarray().tolist() == [[1, 1, 0], [0, 0, 1]]
    weighted = data.matrix(data.train, torch.tensor([2.0, 3.0, 1.0]))
    assert weighted.toarray().tolist() == [[0, 5, 0], [0, 0, 1]]  # weights are summed
