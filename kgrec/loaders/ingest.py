"""Ingest: any :class:`~kgrec.loaders.dataset.Dataset` into Neo4j, validated, batched and idempotent.

The path is the same for the generic files and for every dataset adapter:

1. :func:`read_table` reads CSV, TSV or Parquet (ids as text, exactly as written) and renames columns.
2. :func:`validate` checks every table without touching the database except to look up ids that the load
   refers to but does not bring. A missing column, an item column kgrec writes itself or a column of
   values Neo4j cannot store is an error for the whole load (:class:`DataFormatError`); a bad row (empty
   id, a rating that is not a number, an unparseable timestamp, an unknown relation, a reference to an
   unknown item or user, a duplicate key) is *rejected* with its table, row number and reason. Nothing is
   dropped silently: rejected rows go to a CSV file, and the report counts them.
3. :func:`write_dataset` writes relations, entities, items, knowledge triples, interactions and social
   links in that order, ``UNWIND``-ing one batch per transaction and ``MERGE``-ing on ids. Every query
   returns how many rows it wrote, and a shortfall is an error, not a silent skip.

Failure and re-runs: a batch is one transaction, so a failure leaves no half-written batch — the batches
before it are committed, the rest are not, and the failing one is not either unless the failure came while
it was being committed (a lost connection, Ctrl-C), which the error then says. Because every write is a
``MERGE`` on the node ids (and on ``(user, item, kind)`` / ``(head, relation, tail)`` for relationships)
followed by ``SET``, re-running the same load writes the missing batches and rewrites the committed ones
to the same values: the graph ends up exactly as after an uninterrupted load.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from neo4j.exceptions import Neo4jError
from tqdm.auto import tqdm

from kgrec.db import Graph
from kgrec.errors import KgrecError
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.vocabulary import NEO4J_INTEGER, NODE_PROPS, Label
from kgrec.loaders.dataset import DEFAULT_KIND, ID_COLUMNS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS, TIME_RANGE, Dataset
from kgrec.paths import nearest_existing

log = logging.getLogger(__name__)

ROW = "_row"  # the 1-based data row in the source (header excluded), carried for reject reports
# item columns a file may not bring: those kgrec writes itself, and the id (the item_id column is the id)
RESERVED_ITEM_PROPS = frozenset(p.name for p in NODE_PROPS[Label.ITEM]) - {"title", "text"}
LOOKUP_BATCH = 10_000
EPOCH = pd.Timestamp(0, tz="UTC")
SOURCE = "kgrec_source"  # DataFrame.attrs key: where a table was read from ("items file movies.csv"), for errors


class DataFormatError(KgrecError):
    """Input that cannot be loaded at all: a missing file or column, an unreadable format."""


class LoadError(KgrecError):
    """A load that stopped part-way (the committed batches stay; re-running completes it)."""


@dataclass(frozen=True)
class LoadOptions:
    """How a load treats what it cannot take as it is.

    Args:
        unknown_refs: a row that refers to an item, user or entity that is neither in this load nor in the
            graph: ``"reject"`` it (default) or ``"create"`` a bare node for it (an item's title is its id).
        unknown_relations: a relation name that is neither in the load's ``relations`` table nor registered
            in the graph: ``"register"`` it (default) or ``"reject"`` the row.
        batch_size: rows per transaction.
        progress: show progress bars.
    """

    unknown_refs: Literal["reject", "create"] = "reject"
    unknown_relations: Literal["register", "reject"] = "register"
    batch_size: int = 5000
    progress: bool = True

    def __post_init__(self) -> None:
        if self.unknown_refs not in ("reject", "create"):
            raise ValueError(f"'unknown_refs' (got {self.unknown_refs!r}) must be 'reject' or 'create'")
        if self.unknown_relations not in ("register", "reject"):
            raise ValueError(f"'unknown_relations' (got {self.unknown_relations!r}) must be 'register' or 'reject'")
        if self.batch_size < 1:
            raise ValueError(f"'batch_size' (got {self.batch_size}) must be >= 1")


@dataclass
class LoadReport:
    """What a load did: rows in, rows written and rows rejected per table, and what the graph counted."""

    dataset: str
    rows_in: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)
    rejected: pd.DataFrame = field(default_factory=lambda: _rejects_frame([]))
    rejects_file: Path | None = None
    seconds: float = 0.0

    def rejected_counts(self) -> dict[str, int]:
        return self.rejected.groupby("table").size().to_dict() if len(self.rejected) else {}


# -- reading -------------------------------------------------------------------------------------------
def read_table(source: str | Path | pd.DataFrame, table: str, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Read one table of the generic format and rename ``columns`` (``{generic name: name in the file}``).

    Files: ``.csv``; ``.tsv``, ``.tab`` or ``.txt`` (tab-separated); ``.parquet``. Text files are read with
    every column as text, so ids stay exactly as written (``007`` stays ``007``); empty cells are missing.
    """
    if table not in REQUIRED_COLUMNS:
        raise DataFormatError(f"unknown table {table!r}: choose one of {', '.join(REQUIRED_COLUMNS)}")
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
        where = f"{table} (DataFrame)"
    else:
        path = Path(source)
        where = f"{table} file {path}"
        if path.is_dir():
            raise DataFormatError(f"{where} is a directory, not a file")
        if not path.is_file():
            raise DataFormatError(f"{where} does not exist")
        frame = _read_file(path, where)
    rename = {file_name: generic for generic, file_name in (columns or {}).items()}
    missing_mapped = [name for name in rename if name not in frame.columns]
    if missing_mapped:
        raise DataFormatError(f"{where}: mapped column(s) {missing_mapped} not found (columns: {list(frame.columns)})")
    frame = frame.rename(columns=rename)
    twice = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if twice:
        raise DataFormatError(
            f"{where}: column(s) {twice} appear twice once mapped (the file has its own column of the name a --map "
            "gives another); rename or drop the file's own column"
        )
    missing = [c for c in REQUIRED_COLUMNS[table] if c not in frame.columns]
    if missing:
        raise DataFormatError(
            f"{where} lacks column(s) {missing} (it has {list(frame.columns)}); "
            f"rename them or map yours, e.g. --map {table}.{missing[0]}=YOUR_COLUMN"
        )
    frame = frame.reset_index(drop=True)
    frame.attrs[SOURCE] = where
    return frame


def _read_file(path: Path, where: str) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            # integer columns as pandas' nullable integers: with a missing value, read_parquet makes them floats,
            # and the id 10 would become the text "10.0" (and ids beyond 2**53 would lose digits)
            return pq.read_table(path).to_pandas(types_mapper=_NULLABLE_INTEGERS.get)
        if suffix in (".csv", ".tsv", ".tab", ".txt"):
            return _read_text(path, "," if suffix == ".csv" else "\t", where)
    except (ValueError, UnicodeDecodeError, OSError) as e:
        raise DataFormatError(f"{where} cannot be read: {e}") from e
    raise DataFormatError(f"{where}: unknown format {suffix!r}; use .csv, .tsv, .txt or .parquet")


_NULLABLE_INTEGERS = {
    pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(), pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(),
}


def _read_text(path: Path, sep: str, where: str) -> pd.DataFrame:
    """A delimited text file, every column as text. A data row with more fields than the header is an error
    (pandas would take the extra leading field as the index, shifting every column, or drop the extra one
    with only a warning); a row with fewer fields gets missing values, which validation rejects per row."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(
                path, sep=sep, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8", index_col=False
            )
        except pd.errors.ParserError:  # the C parser's "Expected 2 fields in line 3, saw 3": find the data row
            _check_field_counts(path, sep, where)
            raise
    for warning in caught:
        if issubclass(warning.category, pd.errors.ParserWarning):  # "... a loss of data with index_col=False"
            _check_field_counts(path, sep, where)
            raise DataFormatError(f"{where} cannot be read: {warning.message}")
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    _check_quoting(path, sep, where)
    return frame


def _check_quoting(path: Path, sep: str, where: str) -> None:
    """Raise naming the line of the first badly quoted value. pandas reads ``"Heroes" (album)`` as
    ``Heroes (album)``, and a value that opens a quote it never closes swallows the rows after it into
    one text, silently; Python's strict CSV reader refuses both. Files without a quote are not re-read."""
    with open(path, "rb") as f:
        if not any(b'"' in chunk for chunk in iter(lambda: f.read(1 << 20), b"")):
            return
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=sep, strict=True)
        start = 1  # the line the record being read starts on
        try:
            for _ in reader:
                start = reader.line_num + 1
        except csv.Error as e:
            raise DataFormatError(
                f"{where}: line {start}: a badly quoted value ({e}); a value that starts with a quote "
                'must end with one, and quotes inside it are doubled ("He said ""hi"""): quote the whole value. '
                "Nothing was written"
            ) from None


def _check_field_counts(path: Path, sep: str, where: str) -> None:
    """Raise naming the first data row (1 = first row after the header) with more fields than the header."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            records = (fields for fields in csv.reader(f, delimiter=sep) if fields)  # pandas skips blank lines
            header = next(records, [])
            for row, fields in enumerate(records, start=1):
                if len(fields) > len(header):
                    raise DataFormatError(
                        f"{where}: data row {row} has {len(fields)} fields, the header has {len(header)} "
                        "(quote values that contain the separator)"
                    )
    except (csv.Error, UnicodeDecodeError, OSError):
        return  # the caller reports what the parser said


# -- validation ----------------------------------------------------------------------------------------
@dataclass
class _Rejects:
    rows: list[pd.DataFrame] = field(default_factory=list)

    def add(
        self, table: str, frame: pd.DataFrame, mask: pd.Series | np.ndarray, reason: str | Callable[[pd.DataFrame], Any]
    ) -> pd.DataFrame:
        """Move the rows under ``mask`` out of ``frame`` into the rejects, with their reason: a text, or a
        function of the rejected rows (called only when there are some) giving one text per row."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return frame
        bad = frame[mask]
        reasons = reason if isinstance(reason, str) else list(reason(bad))
        record = bad.drop(columns=[ROW]).to_json(orient="records", lines=True, date_format="iso").splitlines()
        self.rows.append(pd.DataFrame({"table": table, "row": bad[ROW].to_numpy(), "reason": reasons, "record": record}))
        return frame[~mask]

    def frame(self) -> pd.DataFrame:
        return _rejects_frame(self.rows)


def _rejects_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame({"table": [], "row": [], "reason": [], "record": []}).astype({"row": int})
    return pd.concat(parts, ignore_index=True)


def validate(dataset: Dataset, graph: Graph | None = None, options: LoadOptions = LoadOptions()) -> tuple[Dataset, pd.DataFrame]:
    """Return ``(clean dataset, rejected rows)``; ``graph`` answers which referenced ids already exist.

    Raises:
        DataFormatError: a table lacks a required column, an item column collides with a property kgrec
            writes itself, or a column that becomes a property holds a value Neo4j cannot store.
    """
    rejects = _Rejects()
    tables = {name: _prepare(name, frame) for name, frame in dataset.tables().items()}
    for name, frame in tables.items():
        if name == "items":
            _check_item_columns(frame)
        for column in _property_columns(name, frame):
            _check_property_values(name, frame, column)

    for name, frame in tables.items():
        for column in _id_columns(name):
            text = frame[column].astype("string").str.strip()
            frame[column] = text
            frame = rejects.add(name, frame, text.isna() | (text == ""), f"empty {column}")
        tables[name] = frame

    if "interactions" in tables:
        tables["interactions"] = _clean_interactions(tables["interactions"], rejects)
    if "items" in tables:
        items = tables["items"]
        items["title"] = items["title"].astype("string").str.strip()
        items = rejects.add("items", items, items["title"].isna() | (items["title"] == ""), "empty title")
        tables["items"] = items
    if "entities" in tables:
        entities = tables["entities"]
        entities["name"] = entities["name"].astype("string").str.strip()
        tables["entities"] = rejects.add("entities", entities, entities["name"].isna() | (entities["name"] == ""), "empty name")

    keys = {
        "items": ["item_id"], "entities": ["entity_id"], "relations": ["relation"],
        "interactions": ["user_id", "item_id", "kind"], "item_entity": ["item_id", "relation", "entity_id"],
        "entity_entity": ["head_id", "relation", "tail_id"], "user_links": ["user_id", "other_id"],
    }
    for name, frame in tables.items():
        duplicated = frame.duplicated(keys[name], keep="first")
        if duplicated.any():
            first = frame.drop_duplicates(keys[name])[[*keys[name], ROW]].rename(columns={ROW: "_first"})
            tables[name] = rejects.add(
                name, frame, duplicated,
                lambda bad, key=keys[name], first=first: [
                    f"duplicate of row {r}" for r in bad[key].merge(first, on=key, how="left")["_first"]
                ],
            )

    _check_references(tables, rejects, graph, options)
    _check_relations(tables, rejects, graph, options)
    clean = Dataset(name=dataset.name, **{name: frame for name, frame in tables.items()})
    return clean, rejects.frame()


def _prepare(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{name} lacks column(s) {missing} (it has {list(frame.columns)})")
    frame = frame.reset_index(drop=True).copy()
    if ROW not in frame.columns:
        frame[ROW] = np.arange(1, len(frame) + 1)
    return frame


def _where(name: str, frame: pd.DataFrame) -> str:
    return str(frame.attrs.get(SOURCE, name))


def _check_item_columns(frame: pd.DataFrame) -> None:
    reserved = sorted(set(_item_attributes(frame)) & RESERVED_ITEM_PROPS)
    if reserved:
        raise DataFormatError(f"{_where('items', frame)}: column(s) {reserved} are written by kgrec itself; rename them")


def _item_attributes(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in ("item_id", ROW)]


def _property_columns(table: str, frame: pd.DataFrame) -> list[str]:
    """The columns of ``table`` that the writers store as node properties as they are."""
    if table == "items":
        return _item_attributes(frame)
    if table == "entities":
        return [c for c in ("name", *OPTIONAL_COLUMNS["entities"]) if c in frame.columns]
    if table == "relations":
        return [c for c in ("description",) if c in frame.columns]
    return []  # ids, numbers and timestamps are converted by validation; relationship rows carry only those


def _check_property_values(table: str, frame: pd.DataFrame, column: str) -> None:
    """Refuse the whole column if one of its values is not a Neo4j property value: a text, a number (an
    integer within 64 bits), a boolean, a date or time, bytes, or a list of one of these kinds without
    missing values (Neo4j stores no maps, no nested lists, no mixed lists)."""
    series = frame[column]
    dtype = series.dtype
    if (
        isinstance(dtype, pd.StringDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_float_dtype(dtype)
        or pd.api.types.is_signed_integer_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
    ):
        return
    present = series.notna().to_numpy()
    for value, row in zip(series[present].astype(object), frame.loc[present, ROW]):
        problem = _property_problem(value)
        if problem:
            shown = repr(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise DataFormatError(
                f"{_where(table, frame)}: column {column!r} cannot be stored in Neo4j: data row {int(row)} holds "
                f"{shown} ({problem}); property values are text, numbers, booleans, dates or lists of one of these "
                "kinds. Nothing was written: convert, drop or rename the column"
            )


def _scalar_kind(value: Any) -> str | None:
    """The Neo4j property kind of one value ('string', 'integer', ...), or ``None`` if it has none."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer" if NEO4J_INTEGER[0] <= value <= NEO4J_INTEGER[1] else None
    for kind, types in (
        ("string", str), ("float", float), ("bytes", (bytes, bytearray)), ("datetime", dt.datetime), ("date", dt.date),
        ("time", dt.time), ("duration", dt.timedelta),
    ):
        if isinstance(value, types):
            return kind
    return None


def _property_problem(value: Any) -> str | None:
    """Why Neo4j cannot store ``value`` as a property; ``None`` if it can."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (list, tuple, np.ndarray)):
        kinds = set()
        for element in value.tolist() if isinstance(value, np.ndarray) else value:
            element = element.item() if isinstance(element, np.generic) else element
            if isinstance(element, (list, tuple, np.ndarray, dict)):
                return "a nested list"
            if element is None or element is pd.NA or element is pd.NaT:
                return "a list with a missing value"
            kind = _scalar_kind(element)
            if kind is None or kind == "bytes":
                return f"a list holding {_kind_of(element)}"
            kinds.add(kind)
        if len(kinds) > 1 and kinds != {"integer", "float"}:  # Neo4j stores integers among floats as floats
            return f"a list mixing {' and '.join(sorted(kinds))} values"
        return None
    return None if _scalar_kind(value) else _kind_of(value)


def _kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, int) and not isinstance(value, bool):
        return "an integer beyond 64 bits"
    return f"a {type(value).__name__}"


def _id_columns(table: str) -> tuple[str, ...]:
    return ID_COLUMNS[table] + (("relation",) if "relation" in REQUIRED_COLUMNS[table] and table != "relations" else ())


def _clean_interactions(frame: pd.DataFrame, rejects: _Rejects) -> pd.DataFrame:
    for column in ("rating", "weight"):
        if column in frame.columns:
            raw = frame[column]
            number = pd.to_numeric(raw, errors="coerce")
            bad = raw.notna() & (number.isna() | ~np.isfinite(number.astype(float)))
            frame = rejects.add(
                "interactions", frame, bad, lambda rows, c=column: [f"{c} {v!r} is not a finite number" for v in rows[c]]
            )
            frame[column] = number[~bad].astype(float)
    if "timestamp" in frame.columns:
        raw = frame["timestamp"]
        parsed = _parse_timestamps(raw)
        unparsed = raw.notna() & parsed.isna()
        outside = parsed.notna() & ~parsed.between(*TIME_RANGE)
        frame = rejects.add(
            "interactions", frame, unparsed | outside,
            lambda rows: [f"timestamp {v!r} is outside the years 1 to 9999" if out else
                          f"timestamp {v!r} is neither ISO-8601 nor Unix seconds"
                          for v, out in zip(rows["timestamp"], outside[rows.index])],
        )
        frame["timestamp"] = parsed[~(unparsed | outside)]
    if "kind" in frame.columns:
        kind = frame["kind"].astype("string").str.strip()
        frame["kind"] = kind.mask(kind.isna() | (kind == ""), DEFAULT_KIND)
    else:
        frame["kind"] = DEFAULT_KIND
    return frame


def _parse_timestamps(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(raw):
        return raw.dt.tz_localize("UTC") if raw.dt.tz is None else raw.dt.tz_convert("UTC")
    numeric = pd.to_numeric(raw, errors="coerce")
    from_numbers = pd.to_datetime(numeric, unit="s", utc=True, errors="coerce")
    text = raw.where(numeric.isna())
    from_text = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    return from_numbers.fillna(from_text)


def _check_relations(tables: dict[str, pd.DataFrame], rejects: _Rejects, graph: Graph | None, options: LoadOptions) -> None:
    declared = set(tables["relations"]["relation"]) if "relations" in tables else set()
    used = set()
    for name in ("item_entity", "entity_entity"):
        if name in tables:
            used |= set(tables[name]["relation"])
    unknown = used - declared - _existing(graph, Label.RELATION, used - declared)
    if not unknown:
        return
    if options.unknown_relations == "reject":
        for name in ("item_entity", "entity_entity"):
            if name in tables:
                frame = tables[name]
                tables[name] = rejects.add(
                    name, frame, frame["relation"].isin(unknown), lambda rows: [f"unknown relation {v!r}" for v in rows["relation"]]
                )
        return
    new = pd.DataFrame({"relation": sorted(unknown)})
    new[ROW] = 0  # not from a file: registered by this load
    tables["relations"] = pd.concat([tables.get("relations", new.iloc[:0]), new], ignore_index=True)


def _check_references(tables: dict[str, pd.DataFrame], rejects: _Rejects, graph: Graph | None, options: LoadOptions) -> None:
    """Reject (or plan to create) rows that point at items, users or entities nobody brings."""
    items = set(tables["items"]["item_id"]) if "items" in tables else set()
    entities = set(tables["entities"]["entity_id"]) if "entities" in tables else set()
    users = set(tables["interactions"]["user_id"]) if "interactions" in tables else set()
    references = [
        ("interactions", "item_id", Label.ITEM, items),
        ("item_entity", "item_id", Label.ITEM, items),
        ("item_entity", "entity_id", Label.ENTITY, entities),
        ("entity_entity", "head_id", Label.ENTITY, entities),
        ("entity_entity", "tail_id", Label.ENTITY, entities),
        ("user_links", "user_id", Label.USER, users),
        ("user_links", "other_id", Label.USER, users),
    ]
    created: dict[Label, set[str]] = {Label.ITEM: set(), Label.ENTITY: set(), Label.USER: set()}
    for table, column, label, known in references:
        if table not in tables:
            continue
        frame = tables[table]
        candidates = set(frame[column]) - known
        unknown = candidates - _existing(graph, label, candidates)
        if not unknown:
            continue
        mask = frame[column].isin(unknown)
        if options.unknown_refs == "create":
            created[label] |= unknown
            continue
        noun = {Label.ITEM: "item", Label.ENTITY: "entity", Label.USER: "user"}[label]
        tables[table] = rejects.add(
            table, frame, mask, lambda rows, c=column, n=noun: [f"unknown {n} {v!r} ({c})" for v in rows[c]]
        )
    if created[Label.ITEM]:
        ids = sorted(created[Label.ITEM])
        new = pd.DataFrame({"item_id": ids, "title": ids, ROW: 0})
        tables["items"] = pd.concat([tables["items"], new], ignore_index=True) if "items" in tables else new
    if created[Label.ENTITY]:
        ids = sorted(created[Label.ENTITY])
        new = pd.DataFrame({"entity_id": ids, "name": ids, ROW: 0})
        tables["entities"] = pd.concat([tables["entities"], new], ignore_index=True) if "entities" in tables else new
    # users have no table: user_links MERGE their users, so created users need nothing more here


def _existing(graph: Graph | None, label: Label, ids: set[str]) -> set[str]:
    """Which ``ids`` exist in the graph (none without a graph)."""
    if graph is None or not ids:
        return set()
    found: set[str] = set()
    ordered = sorted(ids)
    for start in range(0, len(ordered), LOOKUP_BATCH):
        found |= {row["id"] for row in graph.read(q.existing_ids(label), ids=ordered[start : start + LOOKUP_BATCH])}
    return found


# -- writing -------------------------------------------------------------------------------------------
def load_dataset(
    graph: Graph,
    dataset: Dataset,
    options: LoadOptions = LoadOptions(),
    *,
    rejects_path: Path | None = None,
) -> LoadReport:
    """Validate ``dataset`` and write it; rejected rows go to ``rejects_path`` (CSV) when there are any."""
    began = time.perf_counter()
    if rejects_path is not None:
        check_rejects_path(rejects_path)
    report = LoadReport(dataset=dataset.name, rows_in=dataset.summary())
    clean, rejected = validate(dataset, graph, options)
    report.rejected = rejected
    if len(rejected) and rejects_path is not None:
        try:
            rejects_path.parent.mkdir(parents=True, exist_ok=True)
            rejected.to_csv(rejects_path, index=False)
        except OSError as e:
            raise KgrecError(f"cannot write the rejects file {rejects_path} (nothing was written to the graph): {e}") from e
        report.rejects_file = rejects_path
    write_dataset(graph, clean, options, report)
    report.seconds = time.perf_counter() - began
    return report


def check_rejects_path(path: Path) -> None:
    """Raise unless a rejects CSV can be written at ``path`` (checked before a load writes anything)."""
    path = Path(path)
    if path.is_dir():
        raise KgrecError(f"rejects file {path} is a directory, not a file: name a file, e.g. {path / 'rejects.csv'}")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise KgrecError(f"rejects file {path} is not writable")
        return
    folder = nearest_existing(path.parent)
    if not folder.is_dir():
        raise KgrecError(f"rejects file {path} cannot be created: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise KgrecError(f"rejects file {path} cannot be created: the folder {folder} is not writable")


def write_dataset(graph: Graph, dataset: Dataset, options: LoadOptions, report: LoadReport) -> None:
    """Write a validated dataset, table by table, one batch per transaction.

    The rows of batch k+1 are prepared in a second thread while batch k is being written — Neo4j works on
    one core, Python on the other. Batches are still written one after another, in order.
    """
    tables = dataset.tables()
    loaded_users: set[str] = set()  # users whose interactions earlier batches of this load wrote
    plan: list[tuple[str, str, Callable[[pd.DataFrame], list[dict[str, Any]] | dict[str, Any]]]] = [  # in dependency order
        ("relations", q.MERGE_RELATIONS, _relation_rows),
        ("entities", q.MERGE_ENTITIES, _entity_rows),
        ("items", q.MERGE_ITEMS, _item_rows),
        ("item_entity", q.MERGE_ITEM_ENTITY, lambda f: _plain_rows(f, ["item_id", "relation", "entity_id"])),
        ("entity_entity", q.MERGE_ENTITY_ENTITY, lambda f: _plain_rows(f, ["head_id", "relation", "tail_id"])),
        ("interactions", q.MERGE_INTERACTIONS, lambda f: _interaction_rows(f, graph, loaded_users)),
        ("user_links", q.MERGE_FOLLOWS, lambda f: _plain_rows(f, ["user_id", "other_id"])),
    ]
    for table, query, to_rows in plan:
        if table not in tables or tables[table].empty:
            continue
        frame = tables[table]
        written = 0
        created: dict[str, int] = {}
        bar = tqdm(total=len(frame), desc=f"{dataset.name}: {table}", unit="row", disable=not options.progress, leave=False)
        starts = range(0, len(frame), options.batch_size)
        with bar, ThreadPoolExecutor(max_workers=1) as prepare:
            upcoming = prepare.submit(to_rows, frame.iloc[0 : options.batch_size])
            for start in starts:
                batch = frame.iloc[start : start + options.batch_size]
                rows = upcoming.result()
                if start + options.batch_size < len(frame):
                    upcoming = prepare.submit(to_rows, frame.iloc[start + options.batch_size : start + 2 * options.batch_size])
                params = rows if isinstance(rows, dict) else {"rows": rows}
                expected = len(batch)
                try:
                    records, counters = graph.write_returning(query, **params)
                except Exception as e:  # a driver or database error inside this batch's transaction
                    interrupt = _interrupt(e)
                    if interrupt is not None:  # Ctrl-C inside the driver, which failed to clean up after it
                        raise interrupt from None
                    if isinstance(e, KgrecError):
                        raise
                    span = f"source rows {int(batch[ROW].min())}-{int(batch[ROW].max())}"
                    if isinstance(e, Neo4jError):  # the database refused the batch: its transaction rolled back
                        raise LoadError(
                            f"loading {table} stopped at {span}: {e}. Earlier batches are committed and this one "
                            "is not; once the cause is fixed, running the same load again completes it"
                        ) from e
                    raise LoadError(
                        f"loading {table} stopped at {span}: {e}. Earlier batches are committed; this one may or "
                        "may not be. Every write is idempotent: running the same load again completes it"
                    ) from e
                got = records[0]["written"] if records else 0
                if got < expected:
                    raise LoadError(
                        f"loading {table}: a batch of {expected} rows wrote {got} — rows referring to nodes that "
                        "vanished during the load (deleted concurrently?); run the load again"
                    )
                if got > expected:  # one row updated several relationships: duplicates made by hand
                    raise LoadError(
                        f"loading {table}: a batch of {expected} rows updated {got} relationships, so the graph holds "
                        "duplicates of the same link (made by hand?), and this batch, committed, updated each of them; "
                        "`kgrec schema check` lists them: delete the extra ones and run the load again"
                    )
                written += got
                for key, value in counters.items():
                    created[key] = created.get(key, 0) + value
                bar.update(len(batch))
        report.written[table] = written
        report.created[table] = created.get("nodes_created", 0) + created.get("relationships_created", 0)
        log.info("%s: wrote %d %s rows", dataset.name, written, table)


def _interrupt(error: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt behind ``error`` (its cause or context, at any depth), if there is one."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        if isinstance(current, KeyboardInterrupt):
            return current
        seen.add(id(current))
        pending += [current.__cause__, current.__context__]
    return None


def _props(frame: pd.DataFrame, columns: Iterable[str]) -> list[dict[str, Any]]:
    """Per row, a map of the non-missing values of ``columns`` (missing values do not erase properties)."""
    columns = [c for c in columns if c in frame.columns]
    if not columns:
        return [{} for _ in range(len(frame))]
    sub = frame[columns].astype(object).where(frame[columns].notna(), None)
    return [{k: _plain(v) for k, v in zip(columns, values) if v is not None} for values in sub.itertuples(index=False)]


def _plain(value: Any) -> Any:
    """numpy scalars to Python values the driver accepts."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _relation_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    props = _props(frame, ["description"])
    return [{"relation": r, "props": p} for r, p in zip(frame["relation"], props)]


def _entity_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    props = _props(frame, ["name", *OPTIONAL_COLUMNS["entities"]])
    return [{"id": i, "props": p} for i, p in zip(frame["entity_id"], props)]


def _item_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    _check_item_columns(frame)  # validate() has checked already; write_dataset may be called without it
    props = _props(frame, _item_attributes(frame))
    return [{"id": i, "props": p} for i, p in zip(frame["item_id"], props)]


def _interaction_rows(frame: pd.DataFrame, graph: Graph, loaded_users: set[str]) -> dict[str, Any]:
    """Parameters of MERGE_INTERACTIONS for one batch: its distinct ``users``, and its rows split into
    ``fresh`` (CREATE: the relationship cannot exist yet — the user has no interaction in the graph nor in
    an earlier batch of this load, ``loaded_users``, updated here since batches are prepared in order) and
    ``known`` (MERGE)."""
    users = frame["user_id"].unique().tolist()
    seen = set(graph.read_columns(q.USERS_WITH_INTERACTIONS, ids=users)["ids"]) | loaded_users
    first = ~frame["user_id"].isin(seen).to_numpy()  # validation has rejected repeated (user, item, kind) keys
    loaded_users.update(users)
    props = _props(frame, ["rating", "weight"])
    if "timestamp" in frame.columns:
        millis = (frame["timestamp"] - EPOCH) // pd.Timedelta(milliseconds=1)  # any datetime resolution
        ts_ms = [None if pd.isna(m) else int(m) for m in millis]
    else:
        ts_ms = [None] * len(frame)
    fresh, known = [], []
    for u, i, k, p, t, f in zip(frame["user_id"], frame["item_id"], frame["kind"], props, ts_ms, first):
        (fresh if f else known).append({"user_id": u, "item_id": i, "kind": k, "props": p, "ts_ms": t})
    return {"users": users, "fresh": fresh, "known": known}


def _plain_rows(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    return frame[columns].astype(object).to_dict("records")
