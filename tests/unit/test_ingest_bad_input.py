"""Bad input that the ingest path must refuse before it writes anything (no database: a fake graph that
fails on any use stands in for it, so a test passes only if the refusal comes first)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from neo4j.exceptions import ClientError

from kgrec.errors import KgrecError
from kgrec.loaders.dataset import Dataset
from kgrec.loaders.ingest import (
    DataFormatError,
    LoadError,
    LoadOptions,
    LoadReport,
    load_dataset,
    read_table,
    validate,
    write_dataset,
)

QUIET = LoadOptions(progress=False)
NO_INTERACTIONS = pd.DataFrame({"user_id": [], "item_id": []})


class UntouchableGraph:
    """A graph that must not be used: any read or write fails the test."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the graph was used ({name}) before the bad input was refused")


class FailingGraph:
    """A graph whose writes raise ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def write_returning(self, query: str, **params):
        raise self.error


def items_dataset(**columns: list) -> Dataset:
    n = len(next(iter(columns.values())))
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(1, n + 1)], "title": [f"T{k}" for k in range(1, n + 1)],
                          **columns})
    return Dataset("bad", interactions=NO_INTERACTIONS, items=items)


# -- (1) an item column that kgrec writes itself ------------------------------------------------------
def test_reserved_item_column_is_refused_by_validation(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text("item_id,title,embedding_a\ni1,One,x\n")
    dataset = Dataset("r", interactions=NO_INTERACTIONS, items=read_table(tmp_path / "items.csv", "items"),
                      entities=pd.DataFrame({"entity_id": ["e1"], "name": ["E"]}))
    with pytest.raises(DataFormatError, match=r"items file .*items\.csv: column\(s\) \['embedding_a'\] are written by kgrec"):
        validate(dataset)
    with pytest.raises(DataFormatError, match="written by kgrec itself"):
        load_dataset(UntouchableGraph(), dataset, QUIET)


# -- (2) values Neo4j cannot store ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "values, problem",
    [
        ([1, {"nested": "map"}, 3], r"data row 2 holds \{'nested': 'map'\} \(a map\)"),
        ([["a"], ["b", ["c"]], None], r"data row 2 holds \['b', \['c'\]\] \(a nested list\)"),
        ([["a", 1], None, None], r"data row 1 holds \['a', 1\] \(a list mixing integer and string values\)"),
        ([[True, 1], None, None], r"data row 1 holds \[True, 1\] \(a list mixing boolean and integer values\)"),
        ([None, ["a", None], None], r"data row 2 holds \['a', None\] \(a list with a missing value\)"),
        ([1, 2, 2**64], r"data row 3 holds 18446744073709551616 \(an integer beyond 64 bits\)"),
        ([1.5, {1, 2}, None], r"data row 2 holds \{1, 2\} \(a set\)"),
    ],
)
def test_unstorable_attribute_column_is_refused_before_writing(values: list, problem: str) -> None:
    dataset = items_dataset(extra=values)
    with pytest.raises(DataFormatError, match=r"^items: column 'extra' cannot be stored in Neo4j: " + problem):
        validate(dataset)
    with pytest.raises(DataFormatError, match="Nothing was written"):
        load_dataset(UntouchableGraph(), dataset, QUIET)


def test_unstorable_parquet_columns_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "items.parquet"
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"], "tags": [["x", "y"], []],
                          "meta": [None, {"k": 1}]})
    items.to_parquet(path, index=False)
    dataset = Dataset("p", interactions=NO_INTERACTIONS, items=read_table(path, "items"))
    with pytest.raises(DataFormatError, match=rf"^items file {path}: column 'meta' cannot be stored in Neo4j: data row 2"):
        validate(dataset)
    items.drop(columns="meta").assign(nested=[[["x"]], None]).to_parquet(path, index=False)
    with pytest.raises(DataFormatError, match=r"column 'nested' .* data row 1 .*a nested list"):
        validate(Dataset("p", interactions=NO_INTERACTIONS, items=read_table(path, "items")))


def test_entity_and_relation_properties_are_checked_too() -> None:
    entities = pd.DataFrame({"entity_id": ["e1"], "name": ["E"], "type": [{"a": 1}]})
    with pytest.raises(DataFormatError, match=r"^entities: column 'type' cannot be stored"):
        validate(Dataset("e", interactions=NO_INTERACTIONS, entities=entities))
    relations = pd.DataFrame({"relation": ["r"], "description": [["a", 1]]})
    with pytest.raises(DataFormatError, match=r"^relations: column 'description' cannot be stored"):
        validate(Dataset("r", interactions=NO_INTERACTIONS, relations=relations))


def test_storable_attribute_types_pass(tmp_path: Path) -> None:
    path = tmp_path / "items.parquet"
    pd.DataFrame({
        "item_id": ["a", "b", "c"], "title": ["A", "B", "C"], "text": ["x", None, "z"],
        "tags": [["x", "y"], [], None], "years": [[1990, 1991], None, [2000]], "scores": [[0.5], [1, 2.5], None],
        "count": np.array([1, 2, 3], dtype=np.uint64), "year": pd.array([1999, None, 2001], dtype="Int64"),
        "score": [1.5, None, 2.5], "flag": [True, None, False], "when": pd.to_datetime(["2020-01-01", None, "2021-01-01"]),
        "day": [dt.date(2020, 1, 1), None, dt.date(2020, 1, 2)], "raw": [b"x", None, b"y"],
    }).to_parquet(path, index=False)
    dataset = Dataset("ok", interactions=NO_INTERACTIONS, items=read_table(path, "items"))
    clean, rejected = validate(dataset)
    assert rejected.empty and len(clean.items) == 3


# -- (3) rows with more fields than the header ---------------------------------------------------------
@pytest.mark.parametrize("sep, suffix", [(",", "csv"), ("\t", "tsv")])
@pytest.mark.parametrize(
    "lines, row",
    [
        (["i1{s}A{s}x", "i2{s}B{s}y"], 1),  # every row: pandas would take the first field as the index
        (["i1{s}A{s}x", "i2{s}B"], 1),  # the first row only: pandas would drop the field with a warning
        (["i1{s}A", "i2{s}B{s}y", "i3{s}C"], 2),  # a later row: the C parser's error counts file lines
        (["i1{s}A", "", "i2{s}B", "i3{s}C{s}z{s}w"], 3),  # blank lines are not data rows
    ],
)
def test_a_row_with_an_extra_field_is_an_error(tmp_path: Path, sep: str, suffix: str, lines: list[str], row: int) -> None:
    path = tmp_path / f"items.{suffix}"
    path.write_text("\n".join([f"item_id{sep}title", *(line.format(s=sep) for line in lines)]) + "\n")
    fields = max(line.count("{s}") + 1 for line in lines)
    with pytest.raises(DataFormatError, match=rf"^items file {path}: data row {row} has {fields} fields, the header has 2"):
        read_table(path, "items")


@pytest.mark.parametrize("sep, suffix", [(",", "csv"), ("\t", "tsv")])
def test_a_row_with_fewer_fields_is_rejected_alone(tmp_path: Path, sep: str, suffix: str) -> None:
    path = tmp_path / f"items.{suffix}"
    path.write_text(f"item_id{sep}title\ni1{sep}A\ni2\ni3{sep}\"C{sep} quoted\"\n")
    clean, rejected = validate(Dataset("f", interactions=NO_INTERACTIONS, items=read_table(path, "items")))
    assert clean.items["title"].tolist() == ["A", f"C{sep} quoted"]
    assert list(zip(rejected["row"], rejected["reason"])) == [(2, "empty title")]


# -- (4) Ctrl-C and errors while a batch may have been committed --------------------------------------
def write_relations(graph) -> None:
    dataset = Dataset("w", interactions=NO_INTERACTIONS, relations=pd.DataFrame({"relation": ["r1", "r2"], "_row": [1, 2]}))
    write_dataset(graph, dataset, QUIET, LoadReport("w"))


def interrupted_cleanup() -> BaseException:
    """What the driver raises when Ctrl-C lands in it and its cleanup then fails: a BufferError whose
    context is the KeyboardInterrupt."""
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise BufferError("Existing exports of data: object cannot be re-sized")
    except BufferError as e:
        return e


@pytest.mark.parametrize("error", [KeyboardInterrupt(), interrupted_cleanup()], ids=["plain", "in-driver"])
def test_ctrl_c_during_a_batch_stays_a_keyboard_interrupt(error: BaseException) -> None:
    with pytest.raises(KeyboardInterrupt):
        write_relations(FailingGraph(error))


def test_an_error_of_unknown_outcome_does_not_claim_the_batch_is_not_committed() -> None:
    with pytest.raises(LoadError) as info:
        write_relations(FailingGraph(RuntimeError("connection lost")))
    message = str(info.value)
    assert message.startswith("loading relations stopped at source rows 1-2: connection lost. ")
    assert "this one may or may not be" in message and "running the same load again" in message
    assert "this one is not" not in message


def test_a_database_refusal_says_the_batch_is_not_committed() -> None:
    with pytest.raises(LoadError, match="Earlier batches are committed and this one is not; once the cause is fixed"):
        write_relations(FailingGraph(ClientError("Property values can only be of primitive types")))


# -- (7) the rejects file --------------------------------------------------------------------------------
def rejected_dataset() -> Dataset:
    return Dataset("rj", interactions=pd.DataFrame({"user_id": ["", "u1"], "item_id": ["i1", "i1"]}),
                   items=pd.DataFrame({"item_id": ["i1"], "title": ["One"]}))


def test_rejects_path_that_is_a_directory_fails_before_anything(tmp_path: Path) -> None:
    with pytest.raises(KgrecError, match=rf"^rejects file {tmp_path} is a directory, not a file"):
        load_dataset(UntouchableGraph(), rejected_dataset(), QUIET, rejects_path=tmp_path)


def test_rejects_path_under_a_file_fails_before_anything(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("")
    path = tmp_path / "plain" / "sub" / "rejects.csv"
    with pytest.raises(KgrecError, match=rf"^rejects file {path} cannot be created: {tmp_path / 'plain'} is a file"):
        load_dataset(UntouchableGraph(), rejected_dataset(), QUIET, rejects_path=path)


# -- (19) a directory where a file is expected -----------------------------------------------------------
def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "items.csv").mkdir()
    with pytest.raises(DataFormatError, match=rf"^items file {tmp_path / 'items.csv'} is a directory, not a file$"):
        read_table(tmp_path / "items.csv", "items")


# -- (5) fidelity of valid but tricky files ------------------------------------------------------------
def test_a_mapping_onto_a_column_the_file_has_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    path.write_text("movieId,title,name\n1,Old title,Toy Story\n")
    with pytest.raises(DataFormatError, match=r"column\(s\) \['title'\] appear twice once mapped"):
        read_table(path, "items", {"item_id": "movieId", "title": "name"})


def test_parquet_integer_ids_with_a_missing_value_stay_integers_as_text(tmp_path: Path) -> None:
    """read_parquet makes an integer column with a null float64: the id 10 became '10.0', 2**53 + 1 lost a digit."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "inter.parquet"
    pq.write_table(pa.table({"user_id": pa.array([1, 2, 3]), "item_id": pa.array([10, None, 2**53 + 1], pa.int64()),
                             "rating": pa.array([4, 5, None], pa.int32())}), path)
    items = pd.DataFrame({"item_id": ["10", str(2**53 + 1)], "title": ["A", "B"]})
    clean, rejected = validate(Dataset("p", interactions=read_table(path, "interactions"), items=items))
    assert clean.interactions["item_id"].tolist() == ["10", "9007199254740993"]
    assert clean.interactions["user_id"].tolist() == ["1", "3"]
    assert clean.interactions["rating"].tolist()[0] == 4.0 and pd.isna(clean.interactions["rating"].tolist()[1])
    assert list(zip(rejected["row"], rejected["reason"])) == [(2, "empty item_id")]


@pytest.mark.parametrize("sep, suffix", [(",", "csv"), ("\t", "tsv")])
@pytest.mark.parametrize("value, line", [('"Heroes" (album)', 3), ('"Weird Al', 3)])
def test_a_badly_quoted_value_is_an_error_not_a_swallowed_row(tmp_path: Path, sep: str, suffix: str, value: str,
                                                             line: int) -> None:
    """pandas dropped the quotes of the first silently, and the second swallowed every row after it into its text."""
    path = tmp_path / f"items.{suffix}"
    path.write_text(f"item_id{sep}title\n1{sep}A\n2{sep}{value}\n3{sep}Third\n4{sep}Fourth \"q\"\n")
    if value == '"Weird Al' and sep == ",":  # pandas itself sees the unclosed quote at the end of a CSV
        with pytest.raises(DataFormatError, match="cannot be read|badly quoted"):
            read_table(path, "items")
        return
    with pytest.raises(DataFormatError, match=rf"^items file {path}: line {line}: a badly quoted value"):
        read_table(path, "items")


def test_quoted_values_and_inner_quotes_read_as_written(tmp_path: Path) -> None:
    path = tmp_path / "items.tsv"
    path.write_text('item_id\ttitle\n1\tFourth "quoted"\n2\t"He said ""hi"""\n3\t"two\nlines"\n')
    assert read_table(path, "items")["title"].tolist() == ['Fourth "quoted"', 'He said "hi"', "two\nlines"]
