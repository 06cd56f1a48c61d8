"""Explicit ratings: RecData's rating columns, RMSE/MAE evaluation, the bias baseline and KGRec's rating head."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kgrec.errors import KgrecError
from kgrec.model.baselines import BiasRating, Popularity
from kgrec.model.data import RecData
from kgrec.model.evaluate import evaluate_ratings
from kgrec.model.harness import build, rating_metrics, run
from kgrec.model.kgrec_net import KGRec, KGRecConfig
from kgrec.model.training import TrainConfig

NAN = float("nan")


def rated(train, train_r, test=(), test_r=(), num_users=3, num_items=3) -> RecData:
    t = lambda pairs: torch.tensor(list(pairs), dtype=torch.long).t().reshape(2, -1)  # noqa: E731
    return RecData(num_users, num_items, 0, t(train), t(()), t(test), torch.ones(len(train)),
                   train_rating=torch.tensor(train_r, dtype=torch.float32), val_rating=torch.empty(0),
                   test_rating=torch.tensor(test_r, dtype=torch.float32))


def test_ratings_keep_only_rated_pairs_and_must_match_the_split() -> None:
    data = rated([(0, 0), (0, 1), (1, 1)], [4.0, NAN, 2.0])
    pairs, values = data.ratings("train")
    assert pairs.tolist() == [[0, 1], [0, 1]] and values.tolist() == [4.0, 2.0]
    assert data.has_ratings
    assert data.ratings("val")[1].numel() == 0
    with pytest.raises(KgrecError, match="'train_rating' .* one value per train pair \\(3\\)"):
        rated([(0, 0), (0, 1), (1, 1)], [4.0, 2.0])
    unrated = RecData(1, 1, 0, torch.tensor([[0], [0]]), torch.empty(2, 0, dtype=torch.long),
                      torch.empty(2, 0, dtype=torch.long), torch.ones(1))
    assert not unrated.has_ratings and unrated.ratings("train")[1].numel() == 0


def test_bias_baseline_against_hand_computed_values() -> None:
    # ratings: u0: i0=5, i1=3; u1: i0=4; u2: i1=1, i2=2 -> mu = 3
    data = rated([(0, 0), (0, 1), (1, 0), (2, 1), (2, 2)], [5, 3, 4, 1, 2], test=[(1, 2)], test_r=[3])
    model = BiasRating(lambda_item=1.0, lambda_user=0.0).fit(data)
    assert model.mean == pytest.approx(3.0)
    # b_i = sum(r - mu) / (1 + n_i): i0 (2 + 1) / 3 = 1, i1 (0 - 2) / 3 = -2/3, i2 (-1) / 2 = -1/2
    assert model.item_bias.tolist() == pytest.approx([1.0, -2 / 3, -0.5])
    # b_u = mean(r - mu - b_i): u0 ((5-3-1) + (3-3+2/3)) / 2 = 5/6, u1 (4-3-1) = 0, u2 ((1-3+2/3) + (2-3+1/2)) / 2 = -11/12
    assert model.user_bias.tolist() == pytest.approx([5 / 6, 0.0, -11 / 12])
    assert model.predict(torch.tensor([1]), torch.tensor([2])).item() == pytest.approx(3 + 0 - 0.5)
    result = evaluate_ratings(model, data)
    assert result == pytest.approx({"rmse": 0.5, "mae": 0.5, "rated": 1})
    mean = BiasRating(biases=False).fit(data)
    assert mean.predict(torch.tensor([0, 2]), torch.tensor([0, 1])).tolist() == [3.0, 3.0]
    assert mean.name == "Global mean"


def test_rmse_and_mae_of_several_pairs_and_the_errors() -> None:
    data = rated([(0, 0), (1, 1)], [4, 2], test=[(0, 1), (1, 0), (2, 2)], test_r=[5, NAN, 1])

    class Fixed:
        def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
            return torch.full((users.numel(),), 3.0)

    # rated test pairs: (0, 1) = 5 and (2, 2) = 1; errors 2 and 2
    assert evaluate_ratings(Fixed(), data) == pytest.approx({"rmse": 2.0, "mae": 2.0, "rated": 2})
    with pytest.raises(KgrecError, match="no rated interactions"):
        evaluate_ratings(Fixed(), data, "val")
    with pytest.raises(KgrecError, match="Popularity predicts no ratings"):
        evaluate_ratings(Popularity().fit(data), data)
    with pytest.raises(KgrecError, match="split 'dev'"):
        evaluate_ratings(Fixed(), data, "dev")


def planted_ratings(seed: int = 0) -> RecData:
    """40 users, 30 items; a rating is 3 + 2·(taste of the user's group · the item's group) + noise, so
    biases alone cannot explain it; 80 % of each user's pairs train, the rest test."""
    rng = np.random.default_rng(seed)
    user_group, item_group = rng.integers(0, 2, 40), rng.integers(0, 2, 30)
    train, train_r, test, test_r = [], [], [], []
    for u in range(40):
        items = rng.choice(30, size=12, replace=False)
        for k, i in enumerate(items):
            r = 3 + 2 * (1 if user_group[u] == item_group[i] else -1) * 0.8 + rng.normal(0, 0.3)
            (train if k < 10 else test).append((u, int(i)))
            (train_r if k < 10 else test_r).append(r)
    return rated(train, train_r, test, test_r, num_users=40, num_items=30)


def test_kgrec_rating_head_learns_what_biases_cannot() -> None:
    data = planted_ratings()
    schedule = TrainConfig(epochs=60, lr=2e-2, batch_size=128, eval_every=60, patience=1)
    model = KGRec(config=KGRecConfig(dim=8, num_layers=1, rating_weight=5.0, neighbourhood=False),
                  train_config=schedule).fit(data)
    ours = evaluate_ratings(model, data)
    bias = evaluate_ratings(BiasRating().fit(data), data)
    assert ours["rmse"] < 0.6 * bias["rmse"], (ours, bias)  # measured: 0.79 vs 1.63
    assert model.net.rating_mean.item() == pytest.approx(float(data.train_rating.mean()), rel=1e-5)
    assert model.net.user_bias.weight.abs().sum() > 0  # the biases were trained
    assert set(rating_metrics(model, data)) == {"rmse", "mae"}


def test_rating_head_is_optional_and_needs_ratings() -> None:
    data = planted_ratings()
    quick = TrainConfig(epochs=1, batch_size=256, eval_every=1, patience=1)
    plain = KGRec(config=KGRecConfig(dim=4, num_layers=1, neighbourhood=False), train_config=quick).fit(data)
    assert not hasattr(plain.net, "user_bias") and rating_metrics(plain, data) == {}
    with pytest.raises(KgrecError, match="no rating head"):
        plain.predict(torch.tensor([0]), torch.tensor([0]))
    unrated = RecData(**{**{f: getattr(data, f) for f in data.__dataclass_fields__},
                         "train_rating": None, "val_rating": None, "test_rating": None})
    with pytest.raises(KgrecError, match="rating_weight > 0 needs explicit ratings"):
        KGRec(config=KGRecConfig(dim=4, rating_weight=0.5), train_config=quick).fit(unrated)
    with pytest.raises(KgrecError, match="'rating_weight' \\(got -1\\)"):
        KGRecConfig(rating_weight=-1)
    with pytest.raises(KgrecError, match="'rating_weight' \\(got nan\\)"):
        KGRecConfig(rating_weight=math.nan)


def test_harness_reports_rmse_for_rating_models_only() -> None:
    data = planted_ratings()
    quick = TrainConfig(epochs=2, batch_size=256, eval_every=1, patience=1)
    config = KGRecConfig(dim=4, num_layers=1)
    result = run("kgrec-rating", build("kgrec-rating", None, None, config, quick, False), data)
    assert {"rmse", "mae", "ndcg@20"} <= set(result.metrics) and result.model == "KGRec + rating loss"
    assert "rmse" in run("bias", build("bias", None, None, config, quick, False), data).metrics
    assert "rmse" not in run("popularity", build("popularity", None, None, config, quick, False), data).metrics
