"""Export a subgraph of Neo4j to PyTorch Geometric's :class:`~torch_geometric.data.HeteroData`.

Node types ``user``, ``item`` and ``entity``; edge types::

    ('user', 'interacts', 'item')   edge_attr (float32) columns: weight, rating; ts (float64): Unix seconds;
                                    NaN where unknown
    ('item', REL, 'entity')         one per knowledge relation (REL: the relation name made identifier-safe)
    ('entity', REL, 'entity')
    ('user', 'follows', 'user')

and for each of them the reverse edge type ``rev_<name>`` with swapped endpoints. Each node type keeps its
ids (``data[t].node_id``: the graph's ids, in index order) and text (``data['item'].text``: title and text;
``data['entity'].text``: name and text) for the text encoder, and the display names ``data['item'].title``
and ``data['entity'].name`` (for explanations). ``data.relations`` maps edge-type names to the relation names
in the graph. A value of the wrong type set by hand (a number as an id, a list as a text, a string as a time)
stops the export with an :class:`ExportError` naming it, rather than a node left out or a traceback.

**Paged reads.** Nodes are read in keyset pages of ``page_size`` over the unique id indexes (``WHERE n.id >
$after ORDER BY n.id LIMIT $page``; users, items and entities side by side) and edges in pages of about
``page_size`` edges (``UNWIND`` a run of source ids whose length is ``page_size`` over the mean out-degree,
which the count store gives with the fingerprint, so no page is spent measuring it), every page one short
read transaction that returns one record of parallel lists of scalars. No query touches the whole graph,
so the database never builds one huge result and the exporter's transient memory follows the page size
(the result itself is the size of the subgraph). A relation of fewer than ``PIPELINE_PAGES`` full pages
is read in that many smaller ones (of at least ``MIN_PAGE`` edges), so that the database reads the next
pages while Python converts the first: at small sizes the export is bound by the database's time per row,
not by round trips.

**Consistency.** Neo4j Community reads are read-committed, with no snapshot across transactions, so a paged
export taken while people edit the graph could mix before and after. The export therefore (1) only keeps
edges whose two endpoints are in its node pass, counting the others (``meta['outside_snapshot']``) rather
than dropping them silently — with a filter that count also holds the edges to nodes the filter left out (a
follow of a user outside the sample, a link between the category's entities and others), and (2) compares a
fingerprint of the graph — the count-store totals of every label and relationship type, read in O(1) —
before and after; if it moved, the export is taken again (``max_attempts`` times), and otherwise fails
naming the counts that changed. Edits that change only properties (a corrected text) leave the counts alone:
such an export contains each node's properties as of the moment its page was read.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from kgrec.db import Graph
from kgrec.errors import KgrecError
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.vocabulary import Label, RelType
from kgrec.loaders.splits import SplitSpec, make_split

INTERACTS = ("user", "interacts", "item")
FOLLOWS = ("user", "follows", "user")
INTERACTION_ATTRS = ("weight", "rating")  # the columns of the interactions' edge_attr (float32)
# ...and their time, data[INTERACTS].ts: Unix seconds as float64 (NaN where unknown), exact to the millisecond
# the graph stores (float32 values are 128 s apart at today's times: too coarse to order them)
BAD_TIME = -2.0**62  # what the interaction pages give for a ts that is not a datetime (milliseconds)
READ_WORKERS = 2  # concurrent page reads (the driver's pool serves one session per thread)
PIPELINE_PAGES = 16  # a small relation's pages: at least this many...
MIN_PAGE = 5_000  # ...of at least this many edges
# (head label, relationship type) of each edge query: their mean out-degrees size the edge pages
DEGREES = ((Label.USER, RelType.INTERACTED), (Label.ITEM, RelType.RELATES_TO), (Label.ENTITY, RelType.RELATES_TO),
           (Label.USER, RelType.FOLLOWS))


class ExportError(KgrecError):
    """The export could not produce a consistent subgraph."""


@dataclass(frozen=True)
class SubgraphFilter:
    """Which subgraph to export (all fields optional; they combine).

    Args:
        entity: only items linked (``RELATES_TO``) to this entity id — one category, genre or tag — with
            the users who interacted with them.
        active_since: only users with an interaction at or after this time (UTC).
        sample_users: a seeded random sample of this many users, drawn from those that the other filters
            leave (with ``entity``: the users who interacted with its items); all of them when they are
            not more.
        seed: seed of the sample.
    """

    entity: str | None = None
    active_since: datetime | None = None
    sample_users: int | None = None
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["active_since"] = self.active_since.isoformat() if self.active_since else None
        return d


@dataclass
class Export:
    """An exported subgraph: the PyG data and what describes it."""

    data: HeteroData
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: Path) -> Path:
        """Write ``graph.pt`` (the HeteroData), ``ids/<type>.parquet`` (index → graph id) and ``meta.json``,
        last: an export without it was cut off while saving, and :meth:`load` refuses it."""
        if directory.exists() and not directory.is_dir():
            raise ExportError(f"{directory} is a file, not a folder: choose a folder for the export")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "meta.json").unlink(missing_ok=True)  # an older export here is incomplete until the end
        torch.save(self.data, directory / "graph.pt")
        (directory / "ids").mkdir(exist_ok=True)
        for node_type in self.data.node_types:
            ids = self.data[node_type].node_id
            pd.DataFrame({"index": np.arange(len(ids)), "id": ids}).to_parquet(directory / "ids" / f"{node_type}.parquet")
        (directory / "meta.json").write_text(json.dumps(self.meta, indent=2, default=str))
        return directory

    @classmethod
    def load(cls, directory: Path) -> Export:
        """The export saved in ``directory``; an :class:`ExportError` naming what is wrong when it is missing,
        cut off (no ``meta.json``) or unreadable."""
        graph_file, meta_file = directory / "graph.pt", directory / "meta.json"
        if not graph_file.is_file():
            raise ExportError(f"{directory} holds no export (graph.pt): run `kgrec export --out {directory}` first")
        if not meta_file.is_file():
            raise ExportError(f"the export in {directory} is incomplete (no meta.json: saving it was cut off); "
                              f"export again with `kgrec export --out {directory}`")
        try:
            data = torch.load(graph_file, weights_only=False)
            meta = json.loads(meta_file.read_text())
        except Exception as e:  # what unpickling or parsing a damaged file happens to raise
            raise ExportError(f"the export in {directory} cannot be read ({type(e).__name__}: {e}); "
                              f"export again with `kgrec export --out {directory}`") from e
        if not isinstance(data, HeteroData):
            raise ExportError(f"{graph_file} holds a {type(data).__name__}, not an export's HeteroData")
        return cls(data=data, meta=meta)


def export_subgraph(
    graph: Graph,
    subgraph: SubgraphFilter = SubgraphFilter(),
    *,
    split: SplitSpec | None = SplitSpec(),
    page_size: int = 50_000,
    max_attempts: int = 3,
    progress: bool = False,
) -> Export:
    """Export the chosen subgraph as HeteroData, with an evaluation split of the interactions."""
    if page_size < 1:
        raise ValueError(f"'page_size' (got {page_size}) must be >= 1")
    if subgraph.entity is not None and not graph.read(q.ENTITY_EXISTS, entity=subgraph.entity)[0]["found"]:
        raise ExportError(f"no entity {subgraph.entity!r} in the graph: the subgraph of its items would be empty")
    moved: dict[str, tuple[int, int]] = {}
    for attempt in range(1, max_attempts + 1):
        before, degrees = _counts(graph)
        began = time.perf_counter()
        export = _export_once(graph, subgraph, page_size, progress, degrees)
        after = fingerprint(graph)
        moved = {k: (before.get(k, 0), after.get(k, 0)) for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        if not moved:
            _check_ids(export.meta.pop("nodes_read"), before)
            export.meta.update(
                filter=subgraph.as_dict(),
                fingerprint=before,
                attempts=attempt,
                seconds=round(time.perf_counter() - began, 3),
                exported_at=datetime.now(timezone.utc).isoformat(),
                page_size=page_size,
            )
            if split is not None:
                add_split(export, split)
            return export
    changes = ", ".join(f"{k} {a}→{b}" for k, (a, b) in sorted(moved.items()))
    raise ExportError(f"the graph kept changing during {max_attempts} export attempts ({changes}); try again later")


def _check_ids(read: dict[str, int | None], counts: dict[str, int]) -> None:
    """Raise when an unfiltered read of a label gave fewer nodes than the count store holds: the pages go by
    string id (``n.id > $after``), so a node whose id is a number, or missing, would be left out unsaid."""
    for label, got in read.items():
        if got is not None and got < counts.get(label, 0):
            raise ExportError(
                f"{counts[label] - got} {label} node(s) have an id that is not a string (or none), and would be left "
                f"out of the export: make their ids strings (`kgrec schema check` lists them)"
            )


def fingerprint(graph: Graph) -> dict[str, int]:
    """Count-store totals of every kgrec label and relationship type (constant time each)."""
    return _counts(graph)[0]


def _counts(graph: Graph) -> tuple[dict[str, int], dict[tuple[Label, RelType], float]]:
    """The fingerprint and, from the same query, the mean out-degree of each ``DEGREES`` pair (its count-store
    total over the label's): what sizes the edge pages, without a first page to measure it."""
    labels, rel_types = list(Label), list(RelType)
    row = graph.read(q.count_all(labels, rel_types, DEGREES))[0]  # one round trip
    counts = {label.value: row[f"n{k}"] for k, label in enumerate(labels)} | {
        rel.value: row[f"r{k}"] for k, rel in enumerate(rel_types)}
    degrees = {(label, rel): row[f"d{k}"] / max(counts[label.value], 1) for k, (label, rel) in enumerate(DEGREES)}
    return counts, degrees


def add_split(export: Export, spec: SplitSpec) -> None:
    """Attach ``split`` (int8: 0 train, 1 val, 2 test) to the interaction edges and record the spec: every
    edge of one (user, item) pair has the pair's split (see :mod:`kgrec.loaders.splits`)."""
    store = export.data[INTERACTS]
    users, items = store.edge_index.numpy()
    ts = None
    if spec.kind != "random":
        if "ts" not in store:
            raise ExportError(f"the {spec.kind} split needs the interactions' exact times (data[{INTERACTS}].ts), "
                              "which this export predates: export it again")
        ts = store.ts.numpy()
    store.split = torch.from_numpy(make_split(spec, users, ts, items))  # independent of the edges' order
    counts = np.bincount(store.split.numpy(), minlength=3)
    export.meta["split"] = spec.as_dict() | {"edges": {"train": int(counts[0]), "val": int(counts[1]), "test": int(counts[2])}}


# -- one pass --------------------------------------------------------------------------------------------
def _export_once(graph: Graph, subgraph: SubgraphFilter, page_size: int, progress: bool,
                 degrees: dict[tuple[Label, RelType], float]) -> Export:
    def read(what: str, query: str, ids: list[str], degree: tuple[Label, RelType], convert: Callable[..., Any],
             **params: Any) -> _EdgeRead:
        return _EdgeRead(what, query, ids, _run_length(page_size, degrees[degree], len(ids)), convert, params)

    with ThreadPoolExecutor(max_workers=READ_WORKERS) as pool:  # the node pages of each label side by side
        items_read = pool.submit(_keyset, graph, q.EXPORT_ITEMS_OF_ENTITY if subgraph.entity else q.EXPORT_ITEMS,
                                 page_size, entity=subgraph.entity)
        users_read = pool.submit(_select_users, graph, subgraph, page_size)  # not yet sampled
        entities_read = pool.submit(_keyset, graph, q.EXPORT_ENTITIES, page_size) if subgraph.entity is None else None
        items, users = items_read.result(), users_read.result()
        entities = entities_read.result() if entities_read is not None else None
    item_index = pd.Index(items["id"])
    user_index = pd.Index(users)
    if subgraph.entity is None:  # every other filter is applied: draw the sample now
        user_index = user_index[_sample(len(user_index), subgraph)]
    item_ids, user_ids = _positions(item_index), _positions(user_index)
    outside: dict[str, int] = {}

    # Each page of edges becomes integer indices (and float attributes) as it arrives: the graph's string
    # ids are only ever held one page at a time.
    kinds: dict[str, int] = {}
    relation_codes: dict[str, int] = {}
    interactions = read("interactions", q.EXPORT_INTERACTIONS, list(user_index), DEGREES[0],
                        lambda page, start: _interaction_page(page, start, item_ids, kinds), nan=float("nan"),
                        bad=BAD_TIME)
    if subgraph.entity is None:  # every edge query is known now: their pages all go through one pipeline
        entity_index = pd.Index(entities["id"]).sort_values()  # the database's string order may differ
        entity_ids = _positions(entity_index)
        reads = [  # the small relations first: their pages then overlap with the interactions' instead of trailing
            read("item knowledge", q.EXPORT_ITEM_ENTITY, list(item_index), DEGREES[1],
                 lambda page, start: _link_page(page, start, entity_ids, relation_codes)),
            read("entity knowledge", q.EXPORT_ENTITY_ENTITY, list(entity_index), DEGREES[2],
                 lambda page, start: _link_page(page, start, entity_ids, relation_codes)),
            read("follows", q.EXPORT_FOLLOWS, list(user_index), DEGREES[3],
                 lambda page, start: _link_page(page, start, user_ids, None)),
            interactions,
        ]
        _read_edges(graph, reads, progress)
        knowledge, entity_knowledge, follows, inter = (_Columns(r.parts) for r in reads)
        _count(outside, "interactions", inter.drop("tail"))  # -1: not an item of the export
    else:  # the filter: only interactions with the category's items, and the users who have some (of
        # whom the sample is drawn, and the others' interactions dropped); the entities are those the
        # category's items link to, known only once their links are read
        _read_edges(graph, [interactions], progress)
        inter = _Columns(interactions.parts)
        inter.drop("tail")
        active = np.unique(inter["head"])
        active = active[_sample(len(active), subgraph)]
        user_index = user_index[active]
        user_ids = _positions(user_index)
        position = np.full(len(users), -1, dtype=np.int64)
        position[active] = np.arange(len(active))
        inter["head"] = position[inter["head"]]
        inter.drop("head")  # the users outside the sample
        links = read("item knowledge", q.EXPORT_ITEM_ENTITY, list(item_index), DEGREES[1], lambda page, start: (page, start))
        _read_edges(graph, [links], progress)
        linked = sorted({tail for page, _ in links.parts for tail in page["tail"]})
        entities = pd.concat(_by_ids(graph, q.EXPORT_ENTITIES_BY_ID, linked, page_size), ignore_index=True)
        entity_index = pd.Index(entities["id"]).sort_values()
        entity_ids = _positions(entity_index)
        knowledge = _Columns([_link_page(page, start, entity_ids, relation_codes) for page, start in links.parts])
        reads = [
            read("entity knowledge", q.EXPORT_ENTITY_ENTITY, list(entity_index), DEGREES[2],
                 lambda page, start: _link_page(page, start, entity_ids, relation_codes)),
            read("follows", q.EXPORT_FOLLOWS, list(user_index), DEGREES[3],
                 lambda page, start: _link_page(page, start, user_ids, None)),
        ]
        _read_edges(graph, reads, progress)
        entity_knowledge, follows = (_Columns(r.parts) for r in reads)
    entities = entities.set_index("id").loc[entity_index].reset_index()
    _count(outside, "item knowledge", knowledge.drop("head", "tail"))
    _count(outside, "entity knowledge", entity_knowledge.drop("head", "tail"))
    _count(outside, "follows", follows.drop("head", "tail"))

    _check_texts(items, "Item", ("title", "text"))
    _check_texts(entities, "Entity", ("name", "text"))
    bad = np.flatnonzero(inter["ts"] == BAD_TIME / 1000.0)
    if len(bad):
        raise ExportError(
            f"{len(bad)} INTERACTED relationship(s) have a ts that is not a datetime, the first from user "
            f"{user_index[inter['head'][bad[0]]]!r} to item {item_index[inter['tail'][bad[0]]]!r}: set it to a "
            "datetime or remove it (`kgrec schema check` lists every value of the wrong type)"
        )

    data = HeteroData()
    data["user"].node_id = list(user_index)
    data["user"].num_nodes = len(user_index)
    data["item"].node_id = list(item_index)
    data["item"].num_nodes = len(item_index)
    data["item"].text = [item_text(t, x) for t, x in zip(items["title"], items["text"])]
    data["item"].title = list(items["title"])  # for explanations: the text above joins title and text
    data["entity"].node_id = list(entity_index)
    data["entity"].num_nodes = len(entity_index)
    data["entity"].text = [item_text(n, x) for n, x in zip(entities["name"], entities["text"])]
    data["entity"].name = list(entities["name"])
    types = entities["type"].astype(str)
    type_names = sorted(types.unique())
    data["entity"].type = torch.from_numpy(pd.Index(type_names).get_indexer(types).astype(np.int64))
    data.entity_types = type_names

    attrs = np.column_stack([inter["weight"], inter["rating"]]).astype(np.float32, copy=False)
    _set_edges(data, INTERACTS, inter.edge_index(), edge_attr=torch.from_numpy(attrs).reshape(-1, len(INTERACTION_ATTRS)),
               ts=torch.from_numpy(inter["ts"].astype(np.float64, copy=False)))
    kind_names = sorted(kinds)  # codes were given in order of arrival: renumber them by name
    recode = np.empty(len(kinds), dtype=np.int64)
    recode[[kinds[k] for k in kind_names]] = np.arange(len(kinds))
    data.interaction_kinds = kind_names
    data[INTERACTS].kind = torch.from_numpy(recode[inter["kind"]] if len(kinds) else np.empty(0, dtype=np.int64))

    relations: dict[str, str] = {}
    names = {code: relation for relation, code in relation_codes.items()}
    for head_type, columns in (("item", knowledge), ("entity", entity_knowledge)):
        order = np.argsort(columns["relation"], kind="stable")  # edge order kept within each relation
        codes = columns["relation"][order]
        for code in sorted(np.unique(codes), key=lambda c: names[c]):
            picked = order[codes == code]
            edge_index = torch.from_numpy(np.vstack([columns["head"][picked], columns["tail"][picked]]))
            _set_edges(data, (head_type, _edge_name(names[code], relations), "entity"), edge_index)
    data.relations = relations
    _set_edges(data, FOLLOWS, follows.edge_index())
    meta = {
        # the nodes each unfiltered label read gave, for export_subgraph to compare with the count store
        "nodes_read": {"User": len(users) if subgraph.active_since is None else None,
                       "Item": len(items) if subgraph.entity is None else None,
                       "Entity": len(entities) if subgraph.entity is None else None},
        "counts": {
            "users": len(user_index), "items": len(item_index), "entities": len(entity_index),
            "interactions": int(data[INTERACTS].edge_index.shape[1]),
            "item_entity": int(sum(data[et].edge_index.shape[1] for et in data.edge_types if et[0] == "item" and et[2] == "entity")),
            "entity_entity": int(sum(data[et].edge_index.shape[1] for et in data.edge_types if et[0] == "entity" and et[2] == "entity" and not et[1].startswith("rev_"))),
            "follows": int(data[FOLLOWS].edge_index.shape[1]),
        },
        "relations": relations,
        "outside_snapshot": outside,
    }
    return Export(data=data, meta=meta)


Page = dict[str, np.ndarray]


def _interaction_page(page: dict[str, list], start: int, items: dict[str, int], kinds: dict[str, int]) -> Page:
    return {
        "head": _heads(page, start),
        "tail": _lookup(items, page["tail"]),
        "weight": np.asarray(page["weight"], dtype=np.float32),
        "rating": np.asarray(page["rating"], dtype=np.float32),
        "ts": np.asarray(page["ts_ms"], dtype=np.float64) / 1000.0,  # exact: see INTERACTION_ATTRS
        "kind": _codes(page["kind"], kinds),
    }


def _link_page(page: dict[str, list], start: int, tails: dict[str, int], relations: dict[str, int] | None) -> Page:
    out = {"head": _heads(page, start), "tail": _lookup(tails, page["tail"])}
    if relations is not None:
        out["relation"] = _codes(page["relation"], relations)
    return out


def _heads(page: dict[str, list], start: int) -> np.ndarray:
    """The head indices of a page of edges: its ``head`` column holds positions in the page's run of ids."""
    return np.asarray(page["head"], dtype=np.int64) + start


def _positions(index: pd.Index) -> dict[str, int]:
    """id → position (a dict lookup per edge is several times faster than ``Index.get_indexer`` on strings)."""
    return {key: position for position, key in enumerate(index)}


def _lookup(positions: dict[str, int], keys: list[str]) -> np.ndarray:
    """The position of each key; -1 where it has none."""
    return np.fromiter(map(positions.get, keys, repeat(-1)), dtype=np.int64, count=len(keys))


def _codes(values: list[str], codes: dict[str, int]) -> np.ndarray:
    """A code per value, numbering the values not yet in ``codes`` after those that are."""
    for value in set(values).difference(codes):
        codes[value] = len(codes)
    return _lookup(codes, values)


class _Columns:
    """Pages of equal-named arrays joined into one array per column.

    Each column is built into a fresh buffer page by page while the pages are released, so joining takes
    the result's memory plus one page, not twice the result."""

    def __init__(self, pages: list[Page]) -> None:
        self.columns: Page = {}
        if not pages:
            return
        keys, total = list(pages[0]), sum(len(p["head"]) for p in pages)
        for key in keys:
            self.columns[key] = np.empty(total, dtype=pages[0][key].dtype)
        at = 0
        while pages:
            page = pages.pop(0)
            n = len(page["head"])
            for key in keys:
                self.columns[key][at : at + n] = page[key]
            at += n

    def __getitem__(self, key: str) -> np.ndarray:
        return self.columns.get(key, np.empty(0, dtype=np.int64))

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        self.columns[key] = value

    def drop(self, *keys: str) -> int:
        """Drop the rows where any of ``keys`` is -1 (an id outside the export); return how many."""
        if not self.columns:
            return 0
        keep = np.ones(len(self.columns["head"]), dtype=bool)
        for key in keys:
            keep &= self.columns[key] >= 0
        dropped = int((~keep).sum())
        if dropped:
            self.columns = {key: value[keep] for key, value in self.columns.items()}
        return dropped

    def edge_index(self) -> torch.Tensor:
        return torch.from_numpy(np.vstack([self["head"], self["tail"]]).astype(np.int64, copy=False))


def _count(outside: dict[str, int], what: str, dropped: int) -> None:
    if dropped:
        outside[what] = outside.get(what, 0) + dropped


def _select_users(graph: Graph, subgraph: SubgraphFilter, page_size: int) -> list[str]:
    """The ids of the users that ``active_since`` leaves (all users without it), in id order; the sample is
    drawn later (:func:`_sample`), once the entity filter is applied too."""
    if subgraph.active_since is not None:
        since = subgraph.active_since if subgraph.active_since.tzinfo else subgraph.active_since.replace(tzinfo=timezone.utc)
        users = _keyset(graph, q.EXPORT_ACTIVE_USER_IDS, page_size, since_ms=int(since.timestamp() * 1000))
    else:
        users = _keyset(graph, q.EXPORT_USER_IDS, page_size)
    return list(users["id"])


def _sample(count: int, subgraph: SubgraphFilter) -> np.ndarray:
    """The positions, ascending, of the seeded ``sample_users`` among ``count`` users that passed every other
    filter: all of them without a sample or when there are not more."""
    if subgraph.sample_users is None or subgraph.sample_users >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(subgraph.seed).choice(count, size=subgraph.sample_users, replace=False))


def _keyset(graph: Graph, query: str, page_size: int, **params: Any) -> pd.DataFrame:
    """All pages of a keyset query (each page one record of parallel lists) as one DataFrame."""
    parts, after = [], ""
    while True:
        page = graph.read_columns(query, after=after, page=page_size, **params)
        parts.append(pd.DataFrame(page))
        if len(page["id"]) < page_size:
            return pd.concat(parts, ignore_index=True)
        after = page["id"][-1]


def _by_ids(graph: Graph, query: str, ids: list[str], page_size: int) -> list[pd.DataFrame]:
    """The rows of a node query for ``ids`` (one row per id), in pages of ``page_size`` ids."""
    return [pd.DataFrame(graph.read_columns(query, ids=ids[start : start + page_size]))
            for start in range(0, max(len(ids), 1), page_size)]


def _run_length(page_size: int, degree: float, heads: int) -> int:
    """How many head ids make a page of about ``page_size`` edges, at ``degree`` edges per id — or fewer: a
    relation of fewer than ``PIPELINE_PAGES`` full pages is cut into ``PIPELINE_PAGES`` pages (of at least
    ``MIN_PAGE`` edges), so that the database reads the next pages while Python converts the first ones
    instead of everyone waiting for two big pages."""
    if degree <= 0:
        return page_size
    edges = min(page_size, max(MIN_PAGE, degree * heads / PIPELINE_PAGES))
    return max(1, min(page_size, int(edges / degree)))


@dataclass
class _EdgeRead:
    """One edge query over the export's head ids, in pages of ``run`` ids; ``convert(page, start)`` turns a
    page (whose first id is ``ids[start]``) into what ``parts`` collects."""

    what: str
    query: str
    ids: list[str]
    run: int
    convert: Callable[[dict[str, list], int], Any]
    params: dict[str, Any] = field(default_factory=dict)
    parts: list[Any] = field(default_factory=list)


def _read_edges(graph: Graph, reads: list[_EdgeRead], progress: bool) -> None:
    """Read every page of every read, each through its ``convert`` as it arrives (so that only converted
    pages accumulate), into its ``parts`` in order.

    The pages of all the reads form one queue served by ``READ_WORKERS`` sessions at once — Neo4j runs each
    query on one core, so a second query keeps the database busy while Python converts the previous page,
    and the small relations' pages do not wait behind the large ones' conversion. At most
    ``READ_WORKERS + 1`` raw pages are in memory at a time.
    """
    pages = [(read, start) for read in reads for start in range(0, max(len(read.ids), 1), read.run)]
    with tqdm(total=sum(len(read.ids) for read in reads), desc=f"export {', '.join(read.what for read in reads)}",
              unit="node", disable=not progress, leave=False) as bar, ThreadPoolExecutor(max_workers=READ_WORKERS) as pool:
        pending: deque = deque()
        for read, start in pages:
            ids = read.ids[start : start + read.run]
            pending.append((read, start, len(ids), pool.submit(graph.read_columns, read.query, ids=ids, **read.params)))
            if len(pending) > READ_WORKERS:
                _collect(pending, bar)
        while pending:
            _collect(pending, bar)


def _collect(pending: deque, bar: tqdm) -> None:
    read, start, count, future = pending.popleft()
    read.parts.append(read.convert(future.result(), start))
    bar.update(count)


def _set_edges(data: HeteroData, edge_type: tuple[str, str, str], edge_index: torch.Tensor, **attrs: torch.Tensor) -> None:
    src, rel, dst = edge_type
    data[edge_type].edge_index = edge_index
    for key, value in attrs.items():
        data[edge_type][key] = value
    data[(dst, f"rev_{rel}", src)].edge_index = edge_index.flip(0)
    for key, value in attrs.items():
        data[(dst, f"rev_{rel}", src)][key] = value


def _edge_name(relation: str, taken: dict[str, str]) -> str:
    """An identifier-safe edge type name for a relation (PyG keys edge types into module names)."""
    base = re.sub(r"\W+", "_", relation).strip("_").lower() or "related"
    if base in ("interacts", "follows") or base.startswith("rev_"):
        base = f"rel_{base}"
    name, n = base, 2
    while name in taken and taken[name] != relation:
        name, n = f"{base}_{n}", n + 1
    taken[name] = relation
    return name


def _check_texts(frame: pd.DataFrame, label: str, columns: tuple[str, ...]) -> None:
    """Raise naming the first node whose text column holds something else than a string (hand-set in the graph)."""
    for column in columns:
        wrong = [k for k, value in enumerate(frame[column]) if not isinstance(value, str)]
        if wrong:
            node, value = frame["id"].iloc[wrong[0]], frame[column].iloc[wrong[0]]
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise ExportError(
                f"{len(wrong)} {label} node(s) have a {column} that is not a string, the first {node!r} ({shown}): "
                f"make it a string (`kgrec schema check` lists every value of the wrong type)"
            )


def item_text(title: str, text: str) -> str:
    """The string the text encoder gets for an item (or an entity: its name and text): ``title. text``,
    either part alone when the other is blank; ``''`` when both are."""
    return ". ".join(part for part in (title.strip(), text.strip()) if part)
