import numpy as np
import pytest

from kgrec.errors import KgrecError
from kgrec.loaders.splits import TEST, TRAIN, VAL, SplitSpec, _by_user_and_item, make_split


def test_random_split_is_per_user_and_seeded() -> None:
    users = np.repeat(np.arange(50), 10)  # 50 users x 10 interactions
    a = make_split(SplitSpec("random", val=0.1, test=0.2, seed=0), users)
    b = make_split(SplitSpec("random", val=0.1, test=0.2, seed=0), users)
    c = make_split(SplitSpec("random", val=0.1, test=0.2, seed=1), users)
    assert (a == b).all() and (a != c).any()
    for u in range(50):
        counts = np.bincount(a[users == u], minlength=3)
        assert counts.tolist() == [7, 1, 2]


# shares are rounded down per user, and at least one interaction stays in training
@pytest.mark.parametrize("n, expected", [(1, [1, 0, 0]), (2, [2, 0, 0]), (4, [4, 0, 0]), (5, [4, 0, 1]), (10, [7, 1, 2])])
def test_random_split_rounds_down_per_user(n: int, expected: list[int]) -> None:
    split = make_split(SplitSpec("random", val=0.1, test=0.2), np.zeros(n, dtype=int))
    assert np.bincount(split, minlength=3).tolist() == expected


def test_leave_last_out() -> None:
    users = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    ts = np.array([5, 1, 9, 3, 1, 2, 10, 30, 20], dtype=float)
    split = make_split(SplitSpec("leave_last_out"), users, ts)
    assert split.tolist() == [VAL, TRAIN, TEST, TRAIN, TRAIN, TRAIN, TRAIN, TEST, VAL]


def test_temporal_split_cuts_globally() -> None:
    ts = np.arange(100, dtype=float)
    split = make_split(SplitSpec("temporal", val=0.1, test=0.2), np.zeros(100, dtype=int), ts)
    assert (split[:70] == TRAIN).all() and (split[70:80] == VAL).all() and (split[80:] == TEST).all()


def test_time_splits_need_timestamps() -> None:
    with pytest.raises(KgrecError, match="needs a timestamp on every interaction"):
        make_split(SplitSpec("temporal"), np.zeros(3, dtype=int), np.array([1.0, np.nan, 2.0]))


@pytest.mark.parametrize("kwargs", [{"kind": "kfold"}, {"test": 0.0}, {"val": 0.5, "test": 0.5}])
def test_bad_specs(kwargs: dict) -> None:
    with pytest.raises(KgrecError):
        SplitSpec(**kwargs)


@pytest.mark.parametrize("kind", ["random", "leave_last_out", "temporal"])
def test_split_with_items_does_not_depend_on_the_order_of_the_edges(kind: str) -> None:
    """Two loads of the same data can return a user's relationships in another order: with the items
    given, each (user, item) lands in the same split whatever the order."""
    rng = np.random.default_rng(3)
    users = np.repeat(np.arange(40), 12)
    items = np.concatenate([rng.choice(100, size=12, replace=False) for _ in range(40)])
    ts = rng.integers(0, 5, size=len(users)).astype(float)  # many equal times
    spec = SplitSpec(kind, val=0.1, test=0.2, seed=0)
    split = make_split(spec, users, ts, items)
    shuffled = rng.permutation(len(users))
    again = make_split(spec, users[shuffled], ts[shuffled], items[shuffled])
    assert dict(zip(zip(users[shuffled], items[shuffled]), again)) == dict(zip(zip(users, items), split))
    if kind == "random":  # without the items, the order decides
        plain = make_split(spec, users[shuffled])
        assert dict(zip(zip(users[shuffled], items[shuffled]), plain)) != dict(zip(zip(users, items), split))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint16, np.float64])
def test_user_item_order_is_lexsorts(dtype) -> None:
    """The fast (user, item) order is exactly ``np.lexsort``'s, duplicate pairs included (stable)."""
    rng = np.random.default_rng(5)
    users = rng.integers(0, 30, size=2000).astype(dtype)
    items = rng.integers(0, 50, size=2000).astype(dtype)
    assert np.array_equal(_by_user_and_item(users, items), np.lexsort((items, users)))
    huge = np.array([2**40, 1, 2**40, 0], dtype=np.int64)  # user * width would overflow: the plain lexsort
    assert np.array_equal(_by_user_and_item(huge, huge[::-1].copy() * 2**22), np.lexsort((huge[::-1] * 2**22, huge)))
