"""Ranking metrics and the evaluation loop against values worked out by hand."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.errors import KgrecError
from kgrec.model.data import RecData
from kgrec.model.evaluate import evaluate, evaluate_cold_start, evaluate_per_user
from kgrec.model.metrics import RankingMetrics, exclude_, mae, paired_ratio_interval, rank_metrics, rmse

LOG3 = math.log2(3)  # the discount of rank 2 is 1/log2(3) = 0.63093

# Two users, five items.
#   user 0 scores [4, 2, 5, 1, 3] -> ranking [2, 0, 4, 1, 3]; relevant {0, 3} -> rel by rank [0, 1, 0, 0, 1]
#   user 1 scores [3, 5, 2, 4, 1] -> ranking [1, 3, 0, 2, 4]; relevant {1}    -> rel by rank [1, 0, 0, 0, 0]
SCORES = torch.tensor([[4.0, 2, 5, 1, 3], [3.0, 5, 2, 4, 1]])
TOPK = torch.tensor([[2, 0, 4, 1, 3], [1, 3, 0, 2, 4]])
TRUTH = [{0, 3}, {1}]
# ks = (1, 3):
#   user 0 @1: no hit -> recall 0, precision 0, hit 0, ndcg 0
#   user 0 @3: 1 hit (rank 2) -> recall 1/2, precision 1/3, hit 1,
#              ndcg = (1/log2 3) / (1 + 1/log2 3)   (IDCG over min(|T|=2, 3) = 2 ranks) = 0.386853
#   user 1 @1 and @3: hit at rank 1 -> recall 1, precision 1 and 1/3, hit 1, ndcg 1 (IDCG over 1 rank)
#   mrr (cut at Kmax = 3): user 0 -> 1/2, user 1 -> 1
NDCG3_USER0 = (1 / LOG3) / (1 + 1 / LOG3)
EXPECTED_SUMS = {
    "recall@1": 1.0,
    "ndcg@1": 1.0,
    "precision@1": 1.0,
    "hit@1": 1.0,
    "recall@3": 1.5,
    "ndcg@3": NDCG3_USER0 + 1.0,
    "precision@3": 2 / 3,
    "hit@3": 2.0,
    "mrr": 1.5,
    "users": 2.0,
}


def test_ndcg_constant_by_hand() -> None:
    assert NDCG3_USER0 == pytest.approx(0.386853, abs=1e-6)


@pytest.mark.parametrize("as_csr", [False, True])
def test_rank_metrics_sums(as_csr: bool) -> None:
    truth = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 0, 1], [0, 3, 1])), shape=(2, 5)) if as_csr else TRUTH
    out = rank_metrics(SCORES, truth, ks=(1, 3))
    assert out.keys() == EXPECTED_SUMS.keys()
    for key, value in EXPECTED_SUMS.items():
        assert out[key] == pytest.approx(value), key


def test_ranking_metrics_means_and_coverage() -> None:
    metrics = RankingMetrics(ks=(3, 1), num_items=5)
    metrics.update(TOPK, TRUTH)
    out = metrics.compute()
    assert out["recall@3"] == pytest.approx(0.75)
    assert out["ndcg@3"] == pytest.approx((NDCG3_USER0 + 1) / 2)  # 0.693426
    assert out["precision@3"] == pytest.approx(1 / 3)
    assert out["hit@1"] == pytest.approx(0.5)
    assert out["mrr"] == pytest.approx(0.75)
    # top-1 lists {2} and {1}: 2 of 5 items; top-3 lists {2, 0, 4} and {1, 3, 0}: all 5
    assert out["coverage@1"] == pytest.approx(0.4)
    assert out["coverage@3"] == pytest.approx(1.0)
    assert out["users"] == 2


def test_streaming_equals_one_batch() -> None:
    one = RankingMetrics((1, 3), 5)
    one.update(TOPK, TRUTH)
    two = RankingMetrics((1, 3), 5)
    two.update(TOPK[:1], TRUTH[:1])
    two.update(TOPK[1:], TRUTH[1:])
    assert one.compute() == pytest.approx(two.compute())
    two.reset()
    assert math.isnan(two.compute()["recall@1"]) and two.compute()["users"] == 0


def test_users_without_relevant_items_are_skipped() -> None:
    metrics = RankingMetrics((1, 3), 5)
    # a third user with nothing relevant, whose list (item 4 first) would change coverage@1
    metrics.update(torch.cat([TOPK, torch.tensor([[4, 3, 2, 1, 0]])]), [*TRUTH, set()])
    out = metrics.compute()
    assert out["users"] == 2
    assert out["recall@3"] == pytest.approx(0.75) and out["mrr"] == pytest.approx(0.75)
    assert out["coverage@1"] == pytest.approx(0.4)


def test_mrr_is_cut_at_kmax() -> None:
    # ks = (1,): user 0's first relevant item is at rank 2 > Kmax = 1, so it counts 0; user 1 counts 1
    metrics = RankingMetrics((1,), 5)
    metrics.update(TOPK, TRUTH)
    assert metrics.compute()["mrr"] == pytest.approx(0.5)


def test_k_larger_than_the_catalogue() -> None:
    # three items; scores [0.1, 0.9, 0.5] -> ranking [1, 2, 0] (only three places for K = 5)
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.1, 0.9, 0.5]])
    truth = [{1}, {0, 2}]
    # user 0: hit at rank 1 -> recall 1, precision 1/5, ndcg 1
    # user 1: hits at ranks 2 and 3 -> recall 1, precision 2/5,
    #         ndcg = (1/log2 3 + 1/log2 4) / (1 + 1/log2 3) = 1.130930 / 1.630930 = 0.693426
    out = rank_metrics(scores, truth, ks=(5,))
    assert out["recall@5"] == pytest.approx(2.0)
    assert out["precision@5"] == pytest.approx(1 / 5 + 2 / 5)
    assert out["ndcg@5"] == pytest.approx(1 + (1 / LOG3 + 0.5) / (1 + 1 / LOG3))
    assert out["mrr"] == pytest.approx(1 + 1 / 2)
    metrics = RankingMetrics((5,), 3)
    metrics.update(scores.topk(3).indices, truth)
    assert metrics.compute()["coverage@5"] == pytest.approx(1.0)


def test_excluded_items_are_never_hits() -> None:
    # item 0 is relevant but excluded (-inf): the list is [1] and an empty place
    out = rank_metrics(torch.tensor([[float("-inf"), 1.0]]), [{0}], ks=(2,))
    assert out["hit@2"] == 0 and out["recall@2"] == 0 and out["users"] == 1
    metrics = RankingMetrics((2,), 2)
    metrics.update(torch.tensor([[1, -1]]), [{0}])  # -1 marks an empty place
    assert metrics.compute()["hit@2"] == 0 and metrics.compute()["coverage@2"] == pytest.approx(0.5)


def test_exclude_sets_seen_items_to_minus_inf() -> None:
    seen = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 2, 2], [1, 0, 3])), shape=(3, 4))  # user 0: {1}; user 2: {0, 3}
    scores = torch.zeros(2, 4)
    exclude_(scores, torch.tensor([2, 0]), seen)
    inf = float("-inf")
    assert scores.tolist() == [[inf, 0, 0, inf], [0, inf, 0, 0]]


def test_metric_errors_name_the_value() -> None:
    with pytest.raises(KgrecError, match=r"'ks' \(got \(0,\)\)"):
        RankingMetrics((0,), 5)
    with pytest.raises(KgrecError, match="holds item 7"):
        RankingMetrics((1,), 5).update(torch.tensor([[7]]), [{0}])
    with pytest.raises(KgrecError, match="'truth' has 1 rows but there are 2"):
        rank_metrics(SCORES, [{0}])
    with pytest.raises(KgrecError, match="has 5 items but the exclusion matrix has 4"):
        exclude_(torch.zeros(1, 5), torch.tensor([0]), sp.csr_matrix((1, 4)))


def test_rmse_and_mae() -> None:
    pred, target = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 4.0, 0.0])
    # errors 0, -2, 3: MSE = 13/3, MAE = 5/3
    assert rmse(pred, target) == pytest.approx(math.sqrt(13 / 3))
    assert mae(pred, target) == pytest.approx(5 / 3)
    with pytest.raises(KgrecError, match="must match"):
        rmse(pred, target[:2])


def test_per_user_values_by_hand() -> None:
    metrics = RankingMetrics(ks=(1, 3), num_items=5, per_user=True)
    metrics.update(TOPK, TRUTH, users=torch.tensor([7, 4]))
    table = metrics.per_user_table()
    assert list(table["user"]) == [7, 4]
    assert list(table["ndcg@3"]) == pytest.approx([NDCG3_USER0, 1.0])
    assert list(table["recall@3"]) == pytest.approx([0.5, 1.0])
    assert list(table["precision@3"]) == pytest.approx([1 / 3, 1 / 3])
    assert list(table["hit@1"]) == [0.0, 1.0]
    assert list(table["rr"]) == pytest.approx([0.5, 1.0])
    means = metrics.compute()
    for column in ("ndcg@3", "recall@1", "hit@3"):
        assert table[column].mean() == pytest.approx(means[column]), column
    assert table["rr"].mean() == pytest.approx(means["mrr"])


def test_per_user_skips_users_without_truth_and_numbers_rows_across_updates() -> None:
    metrics = RankingMetrics(ks=(3,), num_items=5, per_user=True)
    metrics.update(TOPK, [set(), {1}])  # row 0 has no relevant item: no row in the table
    metrics.update(TOPK[:1], [{2}])  # row 2 of all updates, a hit at rank 1
    table = metrics.per_user_table()
    assert list(table["user"]) == [1, 2]
    assert list(table["ndcg@3"]) == pytest.approx([1.0, 1.0])


def test_per_user_needs_to_be_asked_for() -> None:
    metrics = RankingMetrics(ks=(3,), num_items=5)
    metrics.update(TOPK, TRUTH)
    with pytest.raises(KgrecError, match="per_user=True"):
        metrics.per_user_table()
    with pytest.raises(KgrecError, match="'users' has 1 ids for 2"):
        RankingMetrics(ks=(3,), num_items=5, per_user=True).update(TOPK, TRUTH, users=torch.tensor([0]))


def test_paired_ratio_interval() -> None:
    rng = np.random.default_rng(3)
    theirs = rng.random(800)
    ours = theirs * 1.2 + rng.normal(0, 0.05, 800)
    low, high = paired_ratio_interval(ours, theirs)
    ratio = ours.mean() / theirs.mean()
    assert low < ratio < high and low > 1.1 and high < 1.3
    assert paired_ratio_interval(ours, theirs) == (low, high)  # seeded
    # pairing matters: the same values, unpaired, give a much wider interval
    shuffled = paired_ratio_interval(rng.permutation(ours), theirs)
    assert shuffled[1] - shuffled[0] > 2 * (high - low)
    assert paired_ratio_interval(theirs, theirs) == pytest.approx((1.0, 1.0))
    # noise alone: the interval holds 1
    same = rng.random(800)
    low, high = paired_ratio_interval(same + rng.normal(0, 0.01, 800), same)
    assert low < 1 < high
    assert all(math.isnan(v) for v in paired_ratio_interval(ours[:5], np.zeros(5)))
    with pytest.raises(KgrecError, match="two equal 1-D arrays"):
        paired_ratio_interval(ours, theirs[:-1])
    with pytest.raises(KgrecError, match="'confidence'"):
        paired_ratio_interval(ours, theirs, confidence=95)


# --- evaluate ---------------------------------------------------------------------------------------------


class FixedScores:
    name = "fixed"

    def __init__(self, scores: torch.Tensor) -> None:
        self.scores = scores

    def fit(self, data: RecData) -> "FixedScores":
        return self

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.scores[users].clone()


def pairs(*uv: tuple[int, int]) -> torch.Tensor:
    return torch.tensor(uv, dtype=torch.long).t().reshape(2, -1)


def tiny() -> tuple[RecData, FixedScores]:
    # train: u0 {0}, u1 {1}; val: u0 {1}; test: u0 {2}, u1 {3}
    data = RecData(
        num_users=2,
        num_items=5,
        num_entities=0,
        train=pairs((0, 0), (1, 1)),
        val=pairs((0, 1)),
        test=pairs((0, 2), (1, 3)),
        train_weight=torch.ones(2),
    )
    # u0 ranks [0, 1, 3, 4, 2]; without train and val: [3, 4, 2]      -> test item 2 at rank 3
    # u1 ranks [1, 3, 4, 2, 0]; without train:         [3, 4, 2, 0]   -> test item 3 at rank 1
    return data, FixedScores(torch.tensor([[9.0, 8, 1, 7, 6], [0.0, 9, 1, 8, 2]]))


@pytest.mark.parametrize("batch_size", [1, 1024])
def test_evaluate_test_excludes_train_and_val(batch_size: int) -> None:
    data, model = tiny()
    out = evaluate(model, data, "test", ks=(1, 3), batch_size=batch_size)
    assert out["users"] == 2
    assert out["recall@1"] == pytest.approx(0.5) and out["recall@3"] == pytest.approx(1.0)
    assert out["ndcg@3"] == pytest.approx((1 / math.log2(4) + 1) / 2)  # rank 3 -> 1/log2(4) = 0.5
    assert out["mrr"] == pytest.approx((1 / 3 + 1) / 2)


def test_evaluate_per_user_pairs_up_with_the_means() -> None:
    data, model = tiny()
    means, table = evaluate_per_user(model, data, "test", ks=(1, 3))
    assert means == evaluate(model, data, "test", ks=(1, 3))
    assert list(table["user"]) == [0, 1]
    assert list(table["ndcg@3"]) == pytest.approx([0.5, 1.0])  # u0: rank 3, u1: rank 1
    assert list(table["rr"]) == pytest.approx([1 / 3, 1.0])


def test_evaluate_val_excludes_train_only() -> None:
    data, model = tiny()
    # only u0 has validation items ({1}); without train {0} it ranks [1, 3, 4, 2] -> rank 1
    out = evaluate(model, data, "val", ks=(1,))
    assert out["users"] == 1 and out["ndcg@1"] == pytest.approx(1.0)


def test_evaluate_without_exclusion() -> None:
    data, model = tiny()
    # u0: test item 2 at rank 5 of [0, 1, 3, 4, 2]; u1: test item 3 at rank 2 of [1, 3, 4, 2, 0]
    out = evaluate(model, data, "test", ks=(1, 3), exclude=())
    assert out["hit@3"] == pytest.approx(0.5) and out["mrr"] == pytest.approx((0 + 1 / 2) / 2)


def test_evaluate_cold_start_counts_only_cold_test_items() -> None:
    data, model = tiny()
    # cold item 2: only u0 has it in test; its ranking without train and val is [3, 4, 2] -> rank 3.
    # u1's test item 3 is not cold: u1 is not evaluated.
    out = evaluate_cold_start(model, data, torch.tensor([2]), ks=(1, 3), candidates="catalogue")
    assert out["users"] == 1
    assert out["recall@1"] == 0 and out["recall@3"] == 1 and out["mrr"] == pytest.approx(1 / 3)
    assert out["ndcg@3"] == pytest.approx(0.5)


def test_evaluate_cold_start_ranks_only_the_cold_items_by_default() -> None:
    data, model = tiny()
    # cold items 2 and 4, ranked alone: u0's list is [4, 2] (item 3 is not a candidate) -> item 2 at rank 2
    out = evaluate_cold_start(model, data, torch.tensor([2, 4]), ks=(1, 3))
    assert out["users"] == 1
    assert out["recall@1"] == 0 and out["recall@3"] == 1 and out["mrr"] == pytest.approx(1 / 2)
    assert out["ndcg@3"] == pytest.approx(1 / math.log2(3))
    assert out["coverage@3"] == pytest.approx(2 / 5)  # only candidates are ever recommended
    with pytest.raises(KgrecError, match="'candidates'"):
        evaluate_cold_start(model, data, torch.tensor([2]), candidates="warm")


def test_evaluate_errors() -> None:
    data, model = tiny()
    with pytest.raises(KgrecError, match="split 'dev' must be one of"):
        evaluate(model, data, "dev")
    with pytest.raises(KgrecError, match="must not hold the evaluated split 'test'"):
        evaluate(model, data, "test", exclude=("train", "test"))
    with pytest.raises(KgrecError, match="holds item 9"):
        evaluate_cold_start(model, data, torch.tensor([9]))
    with pytest.raises(KgrecError, match="no test interaction"):
        evaluate_cold_start(model, data, torch.tensor([0]))
    with pytest.raises(KgrecError, match=r"returned shape \(2, 4\), expected \(2, 5\)"):
        evaluate(FixedScores(torch.zeros(2, 4)), data)
