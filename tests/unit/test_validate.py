"""Validation is pure logic when no graph is given: every bad row gets its table, row and reason."""

import pandas as pd
import pytest

from kgrec.loaders.dataset import Dataset
from kgrec.loaders.ingest import ROW, DataFormatError, LoadOptions, validate


def bad_dataset() -> Dataset:
    return Dataset(
        "bad",
        interactions=pd.DataFrame({
            "user_id": ["u1", "", "u2", "u3", "u4", "u1", " u5 "],
            "item_id": ["i1", "i1", "i1", "nope", "i1", "i1", "i1"],
            "rating": ["4", "4", "five", "3", "2", "1", "inf"],
            "timestamp": [None, None, None, None, "yesterday", None, "2020-01-01"],
        }),
        items=pd.DataFrame({"item_id": ["i1", "i2", "  "], "title": ["One", "", "Blank id"]}),
        entities=pd.DataFrame({"entity_id": ["e1"], "name": ["E"]}),
        item_entity=pd.DataFrame({"item_id": ["i1", "i1"], "relation": ["genre", "gnre"], "entity_id": ["e1", "e1"]}),
        relations=pd.DataFrame({"relation": ["genre"]}),
    )


def test_every_bad_row_has_its_reason() -> None:
    clean, rejected = validate(bad_dataset(), None, LoadOptions(unknown_relations="reject"))
    assert {(r.table, r.row): r.reason for r in rejected.itertuples()} == {
        ("interactions", 2): "empty user_id",
        ("interactions", 3): "rating 'five' is not a finite number",
        ("interactions", 7): "rating 'inf' is not a finite number",
        ("interactions", 5): "timestamp 'yesterday' is neither ISO-8601 nor Unix seconds",
        ("interactions", 6): "duplicate of row 1",
        ("interactions", 4): "unknown item 'nope' (item_id)",
        ("items", 3): "empty item_id",
        ("items", 2): "empty title",
        ("item_entity", 2): "unknown relation 'gnre'",
    }
    assert list(clean.interactions[ROW]) == [1]
    assert clean.interactions["rating"].tolist() == [4.0] and clean.interactions["kind"].tolist() == ["interaction"]
    assert '"rating":"five"' in rejected.set_index(["table", "row"]).loc[("interactions", 3), "record"]


def test_ids_are_stripped_and_new_relations_registered() -> None:
    dataset = Dataset(
        "ok",
        interactions=pd.DataFrame({"user_id": [" u1 "], "item_id": ["i1"], "timestamp": ["1600000000"]}),
        items=pd.DataFrame({"item_id": ["i1"], "title": ["One"]}),
        entities=pd.DataFrame({"entity_id": ["e1"], "name": ["E"]}),
        item_entity=pd.DataFrame({"item_id": ["i1"], "relation": ["mood"], "entity_id": ["e1"]}),
    )
    clean, rejected = validate(dataset)
    assert rejected.empty
    assert clean.interactions["user_id"].tolist() == ["u1"]
    assert clean.interactions["timestamp"].iloc[0] == pd.Timestamp("2020-09-13T12:26:40Z")
    assert clean.relations["relation"].tolist() == ["mood"]


def test_timestamps_outside_the_years_python_holds_are_rejected_rows() -> None:
    """Unix seconds past the year 9999 (1e12: the year 33658) parse in pandas but not in Python's datetime,
    which the driver, the API and the exports use: such a row is rejected with its reason, not loaded."""
    times = ["1e12", "253402300799", "-62135596800", "-62135596801", "1600000000", "9999-12-31T23:59:59Z", "yesterday"]
    dataset = Dataset("t", interactions=pd.DataFrame({"user_id": [f"u{k}" for k in range(len(times))],
                                                      "item_id": ["i1"] * len(times), "timestamp": times}),
                      items=pd.DataFrame({"item_id": ["i1"], "title": ["One"]}))
    clean, rejected = validate(dataset)
    assert {r.row: r.reason for r in rejected.itertuples()} == {
        1: "timestamp '1e12' is outside the years 1 to 9999",
        4: "timestamp '-62135596801' is outside the years 1 to 9999",
        7: "timestamp 'yesterday' is neither ISO-8601 nor Unix seconds",
    }
    assert list(clean.interactions[ROW]) == [2, 3, 5, 6]
    assert [t.year for t in clean.interactions["timestamp"]] == [9999, 1, 2020, 9999]


def test_create_policy_adds_bare_nodes() -> None:
    dataset = Dataset("c", interactions=pd.DataFrame({"user_id": ["u1"], "item_id": ["new"]}))
    clean, rejected = validate(dataset, None, LoadOptions(unknown_refs="create"))
    assert rejected.empty and clean.items[["item_id", "title"]].values.tolist() == [["new", "new"]]


def test_missing_column_stops_everything() -> None:
    with pytest.raises(DataFormatError, match=r"item_entity lacks column\(s\) \['relation'\]"):
        validate(Dataset("x", interactions=pd.DataFrame({"user_id": [], "item_id": []}),
                         item_entity=pd.DataFrame({"item_id": ["i"], "entity_id": ["e"]})))


@pytest.mark.parametrize("kwargs", [{"unknown_refs": "ignore"}, {"unknown_relations": "drop"}, {"batch_size": 0}])
def test_bad_options(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LoadOptions(**kwargs)
