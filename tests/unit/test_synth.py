import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kgrec.errors import KgrecError
from kgrec.loaders.dataset import ID_COLUMNS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from kgrec.loaders.synth import (FILLER_WORDS, SynthConfig, _sample_distinct, make_synthetic, topic_vocabulary,
                                 write_dataset)

TINY = SynthConfig(users=5, items=4, entities=3, interactions=10, topics=3, entity_links_per_item=3,
                   entity_entity_links=6, follows_per_user=4)  # every link table saturated
CONFIGS = {
    "default": SynthConfig(),
    "tiny-saturated": TINY,
    "many-topics": SynthConfig(users=200, items=300, entities=60, interactions=3000, topics=20, seed=7),
    "dense": SynthConfig(users=50, items=20, entities=10, interactions=500, topics=2, entity_entity_links=40,
                         seed=3),
}


@pytest.fixture(scope="module")
def default():
    return make_synthetic(SynthConfig())


@pytest.fixture(scope="module")
def planted(default):
    """Topics recovered from the data alone: entity ← its text, item ← its entities, user ← their items."""
    config = SynthConfig()
    word_topic = {w: t for t, (_, words) in enumerate(topic_vocabulary(config.topics)) for w in words}

    def text_topic(text: str) -> int:
        hits = [word_topic[w] for w in re.findall(r"[a-z]+", text) if w in word_topic]
        return int(np.bincount(hits, minlength=config.topics).argmax())

    entity_topic = pd.Series([text_topic(t) for t in default.entities["text"]], index=default.entities["entity_id"])
    links = default.item_entity.assign(topic=default.item_entity["entity_id"].map(entity_topic).to_numpy())
    item_topic = links.groupby("item_id")["topic"].agg(lambda s: s.value_counts().index[0])
    inter = default.interactions.assign(topic=default.interactions["item_id"].map(item_topic).to_numpy())
    user_main = inter.groupby("user_id")["topic"].agg(lambda s: s.value_counts().index[0])
    return entity_topic, item_topic, user_main, inter


def main_topic_share(inter: pd.DataFrame) -> float:
    counts = inter.groupby(["user_id", "topic"]).size()
    return float((counts.groupby(level=0).max() / counts.groupby(level=0).sum()).mean())


# --- configuration -------------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides, message", [
    ({"items": 0}, "'items' (got 0) must be >= 2"),
    ({"users": 0}, "'users' (got 0) must be >= 1"),
    ({"entities": -1}, "'entities' (got -1) must be >= 1"),
    ({"seed": -3}, "'seed' (got -3) must be >= 0"),
    ({"items": 2.5}, "'items' (got 2.5) must be an integer"),
    ({"topics": True}, "'topics' (got True) must be an integer"),
    ({"with_ratings": "yes"}, "'with_ratings' (got 'yes') must be True or False"),
    ({"topics": 9, "items": 8}, "'topics' (got 9) must be <= 'items' (got 8)"),
    ({"topics": 9, "entities": 8}, "'topics' (got 9) must be <= 'entities' (got 8)"),
    ({"entity_links_per_item": 101}, "'entity_links_per_item' (got 101) must be <= 'entities' (got 100)"),
    ({"entity_entity_links": 9901}, "'entity_entity_links' (got 9901) must be <= entities * (entities - 1)"),
    ({"follows_per_user": 1000}, "'follows_per_user' (got 1000) must be <= users - 1 (got 999)"),
    ({"interactions": 1999}, "'interactions' (got 1999) must be >= 2 * users (got 2000)"),
    ({"interactions": 250_001}, "'interactions' (got 250001) must be <= users * max(2, items // 2) (got 250000)"),
])
def test_config_validation_names_the_value(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        SynthConfig(**overrides)


def test_config_is_frozen_with_documented_defaults() -> None:
    config = SynthConfig()
    sizes = (config.users, config.items, config.entities, config.interactions, config.topics)
    assert sizes == (1000, 500, 100, 20000, 8)
    with pytest.raises(AttributeError):
        config.users = 5  # type: ignore[misc]


def test_topic_vocabulary_is_fixed_and_distinct() -> None:
    vocab = topic_vocabulary(20)
    assert vocab[:8] == topic_vocabulary(8) and vocab[0][0] == "jazz"
    words = [w for name, ws in vocab for w in (name, *ws)]
    assert all(len(ws) == 12 for _, ws in vocab)
    assert len(set(words)) == len(words) and not set(words) & set(FILLER_WORDS)


# --- determinism ---------------------------------------------------------------------------------------


def test_same_seed_same_frames_different_seed_different() -> None:
    config = CONFIGS["many-topics"]
    a, b = make_synthetic(config), make_synthetic(config)
    assert a.tables().keys() == b.tables().keys()
    for name, table in a.tables().items():
        pd.testing.assert_frame_equal(table, b.tables()[name])
    c = make_synthetic(SynthConfig(**{**config.__dict__, "seed": 8}))
    assert not c.interactions.equals(a.interactions)
    assert not c.item_entity.equals(a.item_entity)


def test_switching_columns_off_leaves_the_rest_unchanged() -> None:
    config = CONFIGS["many-topics"]
    full = make_synthetic(config)
    bare = make_synthetic(SynthConfig(**{**config.__dict__, "with_ratings": False, "with_timestamps": False,
                                         "follows_per_user": 0}))
    assert list(bare.interactions.columns) == ["user_id", "item_id"] and bare.user_links is None
    key = ["user_id", "item_id"]
    pd.testing.assert_frame_equal(bare.interactions.sort_values(key, ignore_index=True),
                                  full.interactions[key].sort_values(key, ignore_index=True))
    pd.testing.assert_frame_equal(bare.item_entity, full.item_entity)


@pytest.mark.parametrize("max_rounds", [0, 1, 40])
@pytest.mark.parametrize("forbid_self", [False, True])
def test_sample_distinct_fills_exact_counts_even_when_saturated(max_rounds: int, forbid_self: bool) -> None:
    gen = np.random.default_rng(0)
    counts = np.array([0, 1, 5, 6, 6, 3]) - np.array([0, 0, 0, 1, 1, 0]) * forbid_self
    rows, cols = _sample_distinct(counts, 6, lambda r: np.zeros(r.size, np.int64), gen,
                                  forbid_self=forbid_self, max_rounds=max_rounds)
    assert np.array_equal(np.bincount(rows, minlength=6), counts)
    assert len(set(zip(rows.tolist(), cols.tolist()))) == rows.size and cols.max() < 6
    assert not forbid_self or (rows != cols).all()


# --- sizes and integrity -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
def test_sizes_and_referential_integrity(name: str) -> None:
    config = CONFIGS[name]
    data = make_synthetic(config)
    assert data.name == "synthetic"
    for table_name, table in data.tables().items():
        assert set(REQUIRED_COLUMNS[table_name]) <= set(table.columns)
        assert set(table.columns) <= set(REQUIRED_COLUMNS[table_name] + OPTIONAL_COLUMNS[table_name])
        for column in ID_COLUMNS[table_name]:
            assert table[column].map(type).eq(str).all(), (table_name, column)

    inter, items, entities = data.interactions, data.items, data.entities
    assert len(items) == items["item_id"].nunique() == config.items
    assert len(entities) == entities["entity_id"].nunique() == config.entities
    assert inter["user_id"].nunique() == config.users
    assert abs(len(inter) - config.interactions) <= 0.05 * config.interactions
    assert len(inter) == config.interactions  # exact, as documented
    assert not inter.duplicated(["user_id", "item_id"]).any()
    assert inter.groupby("user_id").size().min() >= 2
    assert set(inter["user_id"]) == {f"u{i}" for i in range(config.users)}
    assert set(items["item_id"]) == {f"i{i}" for i in range(config.items)}
    assert set(entities["entity_id"]) == {f"e{i}" for i in range(config.entities)}
    assert set(entities["type"]) <= {"genre", "tag", "person"}
    assert items["title"].str.len().gt(0).all() and items["text"].str.split().str.len().ge(10).all()

    item_set, entity_set, user_set = set(items["item_id"]), set(entities["entity_id"]), set(inter["user_id"])
    assert set(inter["item_id"]) <= item_set
    links = data.item_entity
    assert len(links) == config.items * config.entity_links_per_item and not links.duplicated().any()
    assert set(links["item_id"]) <= item_set and set(links["entity_id"]) <= entity_set
    kg = data.entity_entity
    assert len(kg) == config.entity_entity_links and not kg.duplicated(["head_id", "tail_id"]).any()
    assert (kg["head_id"] != kg["tail_id"]).all()
    assert set(kg["head_id"]) | set(kg["tail_id"]) <= entity_set
    follows = data.user_links
    assert len(follows) == config.users * config.follows_per_user and not follows.duplicated().any()
    assert (follows["user_id"] != follows["other_id"]).all()
    assert set(follows["user_id"]) | set(follows["other_id"]) <= user_set
    used = set(links["relation"]) | set(kg["relation"])
    assert used == set(data.relations["relation"]) and data.relations["description"].str.len().gt(0).all()


def test_ratings_and_timestamps(default) -> None:
    ratings = default.interactions["rating"]
    assert ratings.between(1, 5).all() and (ratings * 2 == (ratings * 2).round()).all()
    ts = default.interactions["timestamp"]
    assert isinstance(ts.dtype, pd.DatetimeTZDtype) and str(ts.dt.tz) == "UTC"
    assert ts.min() >= pd.Timestamp("2023-01-01", tz="UTC") and ts.max() < pd.Timestamp("2024-01-01", tz="UTC")
    assert ts.max() - ts.min() > pd.Timedelta(days=300)


# --- planted structure ---------------------------------------------------------------------------------


def test_users_concentrate_on_one_topic(planted) -> None:
    _, _, _, inter = planted
    shuffled = inter.assign(topic=np.random.default_rng(1).permutation(inter["topic"].to_numpy()))
    share, chance = main_topic_share(inter), main_topic_share(shuffled)
    assert share > 0.6 and share > chance + 0.3, (share, chance)


def test_items_link_mostly_to_one_topic_and_their_text_agrees(default, planted) -> None:
    entity_topic, item_topic, _, _ = planted
    links = default.item_entity
    dominant = links["entity_id"].map(entity_topic).to_numpy() == links["item_id"].map(item_topic).to_numpy()
    assert dominant.mean() > 0.75
    word_topic = {w: t for t, (_, words) in enumerate(topic_vocabulary(8)) for w in words}
    title_topic = default.items["title"].str.split().str[0].str.lower().map(word_topic).to_numpy()
    assert (title_topic == default.items["item_id"].map(item_topic).to_numpy()).mean() > 0.85


def test_same_topic_items_share_more_words(default, planted) -> None:
    _, item_topic, _, _ = planted
    words = dict(zip(default.items["item_id"], (set(t.split()) for t in default.items["text"])))
    ids, topics = item_topic.index.to_numpy(), item_topic.to_numpy()
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, len(ids), (2, 5000))
    keep = a != b
    a, b = a[keep], b[keep]
    jaccard = np.array([len(words[ids[x]] & words[ids[y]]) / len(words[ids[x]] | words[ids[y]])
                        for x, y in zip(a, b)])
    same = topics[a] == topics[b]
    assert jaccard[same].mean() > 3 * jaccard[~same].mean(), (jaccard[same].mean(), jaccard[~same].mean())


def test_ratings_are_higher_on_topic(planted) -> None:
    _, _, user_main, inter = planted
    on = inter["topic"].to_numpy() == inter["user_id"].map(user_main).to_numpy()
    assert inter["rating"][on].mean() > inter["rating"][~on].mean() + 0.5


def test_knowledge_and_follows_stay_within_topic(default, planted) -> None:
    entity_topic, _, user_main, _ = planted
    kg = default.entity_entity
    assert (kg["head_id"].map(entity_topic) == kg["tail_id"].map(entity_topic)).mean() > 0.8
    follows = default.user_links
    same = (follows["user_id"].map(user_main).to_numpy() == follows["other_id"].map(user_main).to_numpy()).mean()
    main = user_main.to_numpy()
    chance = (main[:, None] == main[None, :]).mean()
    assert same > 0.6 and same > chance + 0.3, (same, chance)


# --- writing -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet"])
def test_write_dataset_round_trip(fmt: str, tmp_path: Path) -> None:
    data = make_synthetic(CONFIGS["many-topics"])
    paths = write_dataset(data, tmp_path / "out", fmt=fmt)
    assert paths == {name: tmp_path / "out" / f"{name}.{fmt}" for name in data.tables()}
    for name, table in data.tables().items():
        if fmt == "parquet":
            back = pd.read_parquet(paths[name])
        else:
            ids = {c: str for c in ID_COLUMNS[name]}
            back = pd.read_csv(paths[name], sep="," if fmt == "csv" else "\t", dtype=ids)
            if "timestamp" in back:
                assert back["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
                back["timestamp"] = pd.to_datetime(back["timestamp"], utc=True).dt.as_unit("us")
        pd.testing.assert_frame_equal(back, table, check_dtype=fmt == "parquet")


def test_write_dataset_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(KgrecError, match=re.escape("format (got 'xlsx') must be one of 'csv', 'tsv', 'parquet'")):
        write_dataset(make_synthetic(TINY), tmp_path / "out", fmt="xlsx")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("out, message", [("taken", "/taken is a file, not a folder"),
                                          ("taken/sub", "cannot create the folder .*/taken/sub")])
def test_write_dataset_refuses_an_out_dir_that_is_or_is_under_a_file(tmp_path: Path, out: str, message: str) -> None:
    (tmp_path / "taken").write_text("mine")
    with pytest.raises(KgrecError, match=message):
        write_dataset(make_synthetic(TINY), tmp_path / out)
    assert (tmp_path / "taken").read_text() == "mine"


def test_write_dataset_timestamps_keep_fractions_and_missing_values(tmp_path: Path) -> None:
    data = make_synthetic(TINY)
    stamps = pd.Series(pd.to_datetime(["2023-05-01T10:00:00.250+02:00"] * len(data.interactions)))
    stamps[0] = pd.NaT
    data.interactions["timestamp"] = stamps
    text = pd.read_csv(write_dataset(data, tmp_path)["interactions"], dtype=str, keep_default_na=False)
    assert text["timestamp"][0] == "" and text["timestamp"][1] == "2023-05-01T08:00:00.250Z"


# --- scale ---------------------------------------------------------------------------------------------


def test_scale_sanity_bound() -> None:
    config = SynthConfig(users=3000, items=2000, entities=200, interactions=300_000, seed=1)
    start = time.perf_counter()
    data = make_synthetic(config)
    elapsed = time.perf_counter() - start
    assert elapsed < 10, elapsed
    assert len(data.interactions) == 300_000
    assert not data.interactions.duplicated(["user_id", "item_id"]).any()
