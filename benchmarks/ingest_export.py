"""Benchmark: kgrec's ingest and export against a plain-driver floor, at several sizes.

Usage::

    .venv/bin/python benchmarks/ingest_export.py [--sizes 100000,1000000,3000000] [--out benchmarks/results]
                                                 [--uri bolt://host:7687 --user neo4j --password ...]

Without ``--uri`` it starts its own throwaway local Neo4j (temporary home, free port, random password,
heap 2g, page cache 1g; the launcher must be built: ``make launcher``) and stops it at the end. With
``--uri`` it uses that server and **wipes its database** (every node, constraint and index) before each load.

For each size N (number of interactions), on a synthetic dataset from :func:`make_synthetic` with
N/100 users, max(1000, N/150) items, max(200, N/1000) entities, 16 topics, seed 0 (plus its default
item→entity, entity→entity and follows links), it measures:

1. **Generation** — ``make_synthetic`` alone; not part of any load time.
2. **Floor** — the fastest a straightforward loader gets on the same database: the ``neo4j`` driver's
   ``execute_query`` with ``UNWIND $rows AS row CREATE ...`` (relationships: ``MATCH`` both endpoints by id,
   then ``CREATE``), batches of 5000, rows from pandas ``to_dict('records')`` (that preparation is timed,
   as kgrec's is). No validation, no ``MERGE``: it only works on an empty database and cannot be re-run.
   It runs on an empty database with kgrec's schema applied (unique-id constraints, indexes).
3. **kgrec ingest** — after a wipe and the same schema, ``load_dataset(graph, dataset)``: validation,
   reference look-ups, idempotent ``MERGE`` writes, batches of 5000. Reported as rows/s (rows of all
   tables / seconds) and as the ratio of its throughput to the floor's. **Goal: ratio >= 0.7.**
4. **Export** — ``export_subgraph(graph, page_size=50000, split=SplitSpec())`` (the default) of the whole graph into
   PyG HeteroData. Edges/s counts forward edges (interactions + item→entity + entity→entity + follows).
   **Goal: >= 200,000 edges/s.** Memory, against the size of the result (the bytes of all ``edge_index``
   tensors, reverse edges included):

   - *RSS delta*: the process's resident memory (psutil), sampled every 10 ms during the timed export,
     peak minus the value before (freed heap is returned to the OS with ``malloc_trim`` first, so the
     baseline is not inflated by the ingest); also the delta still held right after (the result).
   - *tracemalloc peak*: Python-visible allocations (Python objects and numpy buffers, not torch's own
     allocations), from a separate, untimed run of the same export — tracing slows allocation-heavy code,
     so the timed run is not traced. The traced run goes first: it also pays the one-off costs of a
     first export (planning its queries after the schema change, warming the server's code paths: about
     3 s measured at 50k interactions), so the timed run measures the exporter's throughput.

   At the largest size the export also runs with ``page_size=5000`` to show memory against page size.

An untimed warm-up (floor, kgrec load and export of a small dataset) runs first, so that the first
measured size does not pay the JVM's and the driver's warm-up.

Growth: kgrec's ingest seconds from the smallest to the largest size against the ratio of the sizes; it
is called *linear* when the time ratio is within 1.3x the size ratio.

Output: a table on stdout (progress goes to stderr), and in ``--out``: ``ingest_export.md``,
``ingest_export.csv`` (one row per size; the ``small_page_*`` columns, filled at the largest size only, hold
the export with ``page_size=5000``) and ``ingest_export.png`` (throughput against N).
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import os
import platform
import shlex
import signal
import sys
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
from neo4j import Driver, GraphDatabase, NotificationMinimumSeverity

warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated")  # noise from torch_geometric

from kgrec.db import Graph  # noqa: E402
from kgrec.errors import KgrecError  # noqa: E402
from kgrec.graph_schema.migrations import apply_migrations, drop_everything  # noqa: E402
from kgrec.loaders.dataset import Dataset  # noqa: E402
from kgrec.loaders.export import Export, export_subgraph, fingerprint  # noqa: E402
from kgrec.loaders.ingest import LoadOptions, load_dataset  # noqa: E402
from kgrec.loaders.splits import SplitSpec  # noqa: E402
from kgrec.loaders.synth import SynthConfig, make_synthetic  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MIB, RssSampler, Server, log, neo4j_server, phase, release_free_memory  # noqa: E402

BATCH = 5000  # rows per transaction, floor and kgrec alike
DIMENSION = 384  # vector index dimension of the schema (all-MiniLM-L6-v2)
EXPORT_PAGE = 50_000  # kgrec's default
SMALL_EXPORT_PAGE = 5_000
GOAL_RATIO = 0.7
GOAL_EDGES_PER_S = 200_000
LINEAR_TOLERANCE = 1.3
EPOCH = pd.Timestamp(0, tz="UTC")


# -- results -------------------------------------------------------------------------------------------
@dataclass
class ExportMeasure:
    """One export: its time and memory, and the size of what it produced."""

    page_size: int
    seconds: float
    edges: int  # forward edges: interactions + item_entity + entity_entity + follows
    edges_per_s: float
    rss_peak_mib: float  # peak RSS during the timed export minus RSS before
    rss_kept_mib: float  # RSS right after (result still held) minus RSS before
    trace_peak_mib: float  # tracemalloc peak of an identical, untimed run just before
    output_mib: float  # bytes of all edge_index tensors (reverse edge types included)


@dataclass
class SizeResult:
    """One row of the result table: everything measured at one size."""

    n: int
    users: int
    items: int
    entities: int
    rows: int  # rows of all tables of the dataset
    gen_s: float
    floor_s: float
    floor_rows_per_s: float
    floor_interactions_per_s: float
    kgrec_s: float
    kgrec_rows_per_s: float
    kgrec_interactions_per_s: float
    ratio: float  # kgrec rows/s over floor rows/s
    export_s: float
    export_edges: int
    export_edges_per_s: float
    export_trace_peak_mib: float
    export_rss_peak_mib: float
    export_rss_kept_mib: float
    output_mib: float
    # the same export with SMALL_EXPORT_PAGE: measured at the largest size only (empty elsewhere)
    small_page_export_s: float | None = None
    small_page_export_edges_per_s: float | None = None
    small_page_export_trace_peak_mib: float | None = None
    small_page_export_rss_peak_mib: float | None = None


def wipe(graph: Graph) -> None:
    """Delete every node, constraint and index (the built-in lookups stay)."""
    drop_everything(graph)


def fresh_database(graph: Graph) -> None:
    """An empty database with kgrec's schema (constraints and indexes online)."""
    with phase("  wipe + apply schema"):
        wipe(graph)
        apply_migrations(graph, dimension=DIMENSION)


# -- phase 1: generation -------------------------------------------------------------------------------
def synth_config(n: int) -> SynthConfig:
    return SynthConfig(users=max(1, n // 100), items=max(1000, n // 150), entities=max(200, n // 1000),
                       interactions=n, topics=16, seed=0)


def generate(n: int) -> tuple[Dataset, float]:
    with phase(f"  generate N={n:,}") as timing:
        dataset = make_synthetic(synth_config(n))
    return dataset, timing.seconds


# -- phase 2: the floor --------------------------------------------------------------------------------
FLOOR_RELATIONS = "UNWIND $rows AS row CREATE (:Relation {name: row.relation, description: row.description})"
FLOOR_ENTITIES = "UNWIND $rows AS row CREATE (:Entity {id: row.id, name: row.name, type: row.type, text: row.text})"
FLOOR_ITEMS = "UNWIND $rows AS row CREATE (:Item {id: row.id, title: row.title, text: row.text})"
FLOOR_USERS = "UNWIND $rows AS row CREATE (:User {id: row.id})"
FLOOR_ITEM_ENTITY = (
    "UNWIND $rows AS row MATCH (h:Item {id: row.item_id}) MATCH (t:Entity {id: row.entity_id}) "
    "CREATE (h)-[:RELATES_TO {relation: row.relation}]->(t)"
)
FLOOR_ENTITY_ENTITY = (
    "UNWIND $rows AS row MATCH (h:Entity {id: row.head_id}) MATCH (t:Entity {id: row.tail_id}) "
    "CREATE (h)-[:RELATES_TO {relation: row.relation}]->(t)"
)
FLOOR_INTERACTIONS = (
    "UNWIND $rows AS row MATCH (u:User {id: row.user_id}) MATCH (i:Item {id: row.item_id}) "
    "CREATE (u)-[:INTERACTED {weight: row.weight, rating: row.rating, "
    "ts: CASE WHEN row.ts_ms IS NULL THEN null ELSE datetime({epochMillis: row.ts_ms}) END}]->(i)"
)
FLOOR_FOLLOWS = (
    "UNWIND $rows AS row MATCH (a:User {id: row.user_id}) MATCH (b:User {id: row.other_id}) "
    "CREATE (a)-[:FOLLOWS]->(b)"
)


ToRows = Callable[[pd.DataFrame], list[dict[str, Any]]]


def _renamed(**columns: str) -> ToRows:
    """Rows of a batch: its ``columns`` (those present, ``source=target``), renamed, via ``to_dict``."""
    def to_rows(batch: pd.DataFrame) -> list[dict[str, Any]]:
        present = {source: target for source, target in columns.items() if source in batch.columns}
        return batch[list(present)].rename(columns=present).to_dict("records")
    return to_rows


def _interaction_rows(batch: pd.DataFrame) -> list[dict[str, Any]]:
    rows = batch[[c for c in ("user_id", "item_id", "weight", "rating") if c in batch.columns]].copy()
    if "timestamp" in batch.columns:
        rows["ts_ms"] = (batch["timestamp"] - EPOCH) // pd.Timedelta(milliseconds=1)
    return rows.to_dict("records")


def _users(dataset: Dataset) -> pd.DataFrame:
    """Users have no table: every distinct id of the interactions and the follows."""
    ids = [dataset.interactions["user_id"]]
    if dataset.user_links is not None:
        ids += [dataset.user_links["user_id"], dataset.user_links["other_id"]]
    return pd.DataFrame({"id": pd.unique(pd.concat(ids, ignore_index=True))})


def floor_plan(dataset: Dataset) -> list[tuple[str, pd.DataFrame | None, ToRows]]:
    """(query, source frame, batch → rows) in load order: the tables kgrec writes, plus the user nodes."""
    d = dataset
    return [
        (FLOOR_RELATIONS, d.relations, _renamed(relation="relation", description="description")),
        (FLOOR_ENTITIES, d.entities, _renamed(entity_id="id", name="name", type="type", text="text")),
        (FLOOR_ITEMS, d.items, _renamed(item_id="id", title="title", text="text")),
        (FLOOR_USERS, _users(d), _renamed(id="id")),
        (FLOOR_ITEM_ENTITY, d.item_entity, _renamed(item_id="item_id", relation="relation", entity_id="entity_id")),
        (FLOOR_ENTITY_ENTITY, d.entity_entity, _renamed(head_id="head_id", relation="relation", tail_id="tail_id")),
        (FLOOR_INTERACTIONS, d.interactions, _interaction_rows),
        (FLOOR_FOLLOWS, d.user_links, _renamed(user_id="user_id", other_id="other_id")),
    ]


def floor_load(driver: Driver, database: str, dataset: Dataset) -> float:
    """Load ``dataset`` with plain ``CREATE`` batches; returns seconds (row preparation included).

    Rows are prepared batch by batch, as kgrec does, so a large table is never a list of millions of dicts.
    """
    with phase("  floor load (plain driver, UNWIND ... CREATE)") as timing:
        for query, frame, to_rows in floor_plan(dataset):
            if frame is None:
                continue
            for start in range(0, len(frame), BATCH):
                rows = to_rows(frame.iloc[start : start + BATCH])
                driver.execute_query(query, rows=rows, database_=database)
    return timing.seconds


# -- phase 3: kgrec's ingest ---------------------------------------------------------------------------
def kgrec_load(graph: Graph, dataset: Dataset) -> float:
    with phase("  kgrec load_dataset") as timing:
        report = load_dataset(graph, dataset, LoadOptions(batch_size=BATCH, progress=False))
    if len(report.rejected):
        log(f"  WARNING: kgrec rejected rows: {report.rejected_counts()}")
    return timing.seconds


def check_same_graph(floor_counts: dict[str, int], kgrec_counts: dict[str, int]) -> None:
    """Both loaders must have written the same numbers of nodes and relationships."""
    differ = {k: (floor_counts.get(k), kgrec_counts.get(k)) for k in floor_counts.keys() | kgrec_counts.keys()
              if floor_counts.get(k) != kgrec_counts.get(k)}
    if differ:
        log(f"  WARNING: floor and kgrec graphs differ (floor, kgrec): {differ}")


# -- phase 4: the export -------------------------------------------------------------------------------
def forward_edges(export: Export) -> int:
    counts = export.meta["counts"]
    return counts["interactions"] + counts["item_entity"] + counts["entity_entity"] + counts["follows"]


def edge_index_bytes(export: Export) -> int:
    data = export.data
    return sum(data[et].edge_index.element_size() * data[et].edge_index.numel() for et in data.edge_types)


def measure_export(graph: Graph, page_size: int) -> ExportMeasure:
    """The export twice: first under tracemalloc (untimed; it also pays the one-off costs: planning the
    export's queries after the schema change, warming their code paths), then timed with RSS sampled."""
    release_free_memory()
    with phase(f"  export page_size={page_size:,} (tracemalloc, untimed)"):
        tracemalloc.start()
        try:
            export = export_subgraph(graph, page_size=page_size, split=SplitSpec())
            _, trace_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    del export
    release_free_memory()

    with phase(f"  export page_size={page_size:,} (timed, RSS sampled)") as timing, RssSampler() as rss:
        export = export_subgraph(graph, page_size=page_size, split=SplitSpec())
    kept = rss.rss() - rss.before
    edges, output = forward_edges(export), edge_index_bytes(export)
    del export
    release_free_memory()
    return ExportMeasure(
        page_size=page_size, seconds=timing.seconds, edges=edges, edges_per_s=edges / timing.seconds,
        rss_peak_mib=(rss.peak - rss.before) / MIB, rss_kept_mib=kept / MIB, trace_peak_mib=trace_peak / MIB,
        output_mib=output / MIB,
    )


# -- one size ------------------------------------------------------------------------------------------
def run_size(driver: Driver, graph: Graph, n: int) -> tuple[SizeResult, ExportMeasure]:
    """Generate, floor load, kgrec load and export at one size; the graph keeps kgrec's load afterwards."""
    log(f"== N = {n:,} interactions ==")
    dataset, gen_s = generate(n)
    rows = sum(dataset.summary().values())
    users, items, entities = dataset.interactions["user_id"].nunique(), len(dataset.items), len(dataset.entities)
    edges_in = sum(len(t) for name, t in dataset.tables().items()
                   if name in ("interactions", "item_entity", "entity_entity", "user_links"))

    fresh_database(graph)
    floor_s = floor_load(driver, graph.database, dataset)
    floor_counts = fingerprint(graph)

    fresh_database(graph)
    kgrec_s = kgrec_load(graph, dataset)
    check_same_graph(floor_counts, fingerprint(graph))
    del dataset  # the export's memory is measured without the input frames around

    export = measure_export(graph, EXPORT_PAGE)
    if export.edges != edges_in:
        log(f"  WARNING: the export has {export.edges:,} forward edges, the dataset {edges_in:,}")
    result = SizeResult(
        n=n, users=users, items=items, entities=entities, rows=rows, gen_s=gen_s,
        floor_s=floor_s, floor_rows_per_s=rows / floor_s, floor_interactions_per_s=n / floor_s,
        kgrec_s=kgrec_s, kgrec_rows_per_s=rows / kgrec_s, kgrec_interactions_per_s=n / kgrec_s,
        ratio=floor_s / kgrec_s,
        export_s=export.seconds, export_edges=export.edges, export_edges_per_s=export.edges_per_s,
        export_trace_peak_mib=export.trace_peak_mib, export_rss_peak_mib=export.rss_peak_mib,
        export_rss_kept_mib=export.rss_kept_mib, output_mib=export.output_mib,
    )
    log(f"== N = {n:,}: floor {result.floor_rows_per_s:,.0f} rows/s, kgrec {result.kgrec_rows_per_s:,.0f} rows/s "
        f"(ratio {result.ratio:.2f}), export {result.export_edges_per_s:,.0f} edges/s ==")
    return result, export


def warm_up(driver: Driver, graph: Graph, n: int) -> None:
    """An untimed small round of every phase: JIT, query plans and driver connections get warm."""
    with phase(f"warm-up (N={n:,}, not measured)"):
        dataset = make_synthetic(synth_config(n))
        fresh_database(graph)
        floor_load(driver, graph.database, dataset)
        fresh_database(graph)
        kgrec_load(graph, dataset)
        export_subgraph(graph, page_size=EXPORT_PAGE, split=SplitSpec())


# -- reporting -----------------------------------------------------------------------------------------
COLUMNS: list[tuple[str, str, str]] = [  # (header, SizeResult field, format)
    ("N", "n", "{:,}"),
    ("gen s", "gen_s", "{:.2f}"),
    ("floor s", "floor_s", "{:.2f}"),
    ("floor rows/s", "floor_rows_per_s", "{:,.0f}"),
    ("kgrec s", "kgrec_s", "{:.2f}"),
    ("kgrec rows/s", "kgrec_rows_per_s", "{:,.0f}"),
    ("ratio", "ratio", "{:.2f}"),
    ("export s", "export_s", "{:.2f}"),
    ("export edges/s", "export_edges_per_s", "{:,.0f}"),
    ("export peak MiB (tracemalloc)", "export_trace_peak_mib", "{:.1f}"),
    ("RSS delta MiB (peak)", "export_rss_peak_mib", "{:.1f}"),
    ("output MiB", "output_mib", "{:.1f}"),
]
PAGE_COLUMNS: list[tuple[str, str, str]] = [
    ("page size", "page_size", "{:,}"),
    ("export s", "seconds", "{:.2f}"),
    ("edges/s", "edges_per_s", "{:,.0f}"),
    ("peak MiB (tracemalloc)", "trace_peak_mib", "{:.1f}"),
    ("RSS delta MiB (peak)", "rss_peak_mib", "{:.1f}"),
    ("RSS delta MiB (kept)", "rss_kept_mib", "{:.1f}"),
    ("output MiB", "output_mib", "{:.1f}"),
]


def cells(row: object, columns: list[tuple[str, str, str]]) -> list[str]:
    return [fmt.format(getattr(row, name)) for _, name, fmt in columns]


def text_table(rows: list[object], columns: list[tuple[str, str, str]]) -> str:
    header = [h for h, _, _ in columns]
    body = [cells(r, columns) for r in rows]
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in body]
    return "\n".join(lines)


def markdown_table(rows: list[object], columns: list[tuple[str, str, str]]) -> str:
    lines = ["| " + " | ".join(h for h, _, _ in columns) + " |", "|" + "---:|" * len(columns)]
    lines += ["| " + " | ".join(cells(r, columns)) + " |" for r in rows]
    return "\n".join(lines)


def growth(results: list[SizeResult]) -> list[str]:
    """Seconds ratio from the smallest to the largest size against the size ratio, per phase."""
    if len(results) < 2:
        return ["(one size only: no growth to report)"]
    small, large = min(results, key=lambda r: r.n), max(results, key=lambda r: r.n)
    n_ratio = large.n / small.n
    lines = []
    for what, field_name in (("kgrec ingest", "kgrec_s"), ("floor", "floor_s"), ("export", "export_s")):
        t_ratio = getattr(large, field_name) / getattr(small, field_name)
        verdict = "linear" if t_ratio <= LINEAR_TOLERANCE * n_ratio else "super-linear"
        lines.append(f"{what}: N x{n_ratio:.2f} ({small.n:,} -> {large.n:,}), seconds x{t_ratio:.2f} "
                     f"-> {verdict} (linear: within {LINEAR_TOLERANCE}x the N ratio)")
    return lines


def goal_lines(results: list[SizeResult]) -> list[str]:
    lines = []
    for r in results:
        ratio_ok = "met" if r.ratio >= GOAL_RATIO else "MISSED"
        edges_ok = "met" if r.export_edges_per_s >= GOAL_EDGES_PER_S else "MISSED"
        lines.append(f"N={r.n:,}: ingest ratio {r.ratio:.2f} (goal >= {GOAL_RATIO}: {ratio_ok}); "
                     f"export {r.export_edges_per_s:,.0f} edges/s (goal >= {GOAL_EDGES_PER_S:,}: {edges_ok})")
    return lines


def environment(server: Server) -> list[str]:
    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    load = os.getloadavg()
    return [
        f"date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
        f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}",
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
        f"load average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        f"server: {server.description}",
        f"python {platform.python_version()}, kgrec {version('kgrec')}, neo4j driver {version('neo4j')}, "
        f"neo4j-rust-ext {version('neo4j-rust-ext')}, pandas {pd.__version__}",
    ]


def write_csv(path: Path, rows: list[object]) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(rows[0])])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: round(v, 4) if isinstance(v, float) else ("" if v is None else v)
                             for k, v in asdict(row).items()})


def write_markdown(path: Path, results: list[SizeResult], pages: list[ExportMeasure], server: Server) -> None:
    largest = max(r.n for r in results)
    parts = [
        "# Ingest and export benchmark",
        "",
        *[f"- {line}" for line in environment(server)],
        "",
        "Synthetic data (`make_synthetic`): N interactions, N/100 users, max(1000, N/150) items, "
        "max(200, N/1000) entities, 16 topics, seed 0. *rows* = rows of all tables; the floor is a plain "
        f"`UNWIND ... CREATE` loader in batches of {BATCH}; ratio = kgrec rows/s / floor rows/s; export edges "
        "are forward edges (interactions, item→entity, entity→entity, follows), timed on the second export "
        "(the first, untimed, pays a first export's one-off costs). Memory: tracemalloc peak of that first run "
        "(Python objects and numpy buffers; torch's own allocations are not traced); RSS delta = peak RSS "
        "during the timed export minus RSS before; output = bytes of all `edge_index` tensors. Both loads "
        "start right after the schema is applied, and fixed costs weigh heavily at small N.",
        "",
        "## Results",
        "",
        markdown_table(results, COLUMNS),
        "",
        "| N | users | items | entities | rows | floor interactions/s | kgrec interactions/s | export edges | RSS delta MiB (kept) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[f"| {r.n:,} | {r.users:,} | {r.items:,} | {r.entities:,} | {r.rows:,} | {r.floor_interactions_per_s:,.0f} "
          f"| {r.kgrec_interactions_per_s:,.0f} | {r.export_edges:,} | {r.export_rss_kept_mib:.1f} |" for r in results],
        "",
        "## Goals",
        "",
        *[f"- {line}" for line in goal_lines(results)],
        "",
        "## Growth",
        "",
        *[f"- {line}" for line in growth(results)],
        "",
    ]
    if pages:
        parts += [f"## Export memory against page size (N = {largest:,})", "", markdown_table(pages, PAGE_COLUMNS), ""]
    else:
        parts += ["(partial results: the run has not finished)", ""]
    path.write_text("\n".join(parts))


def write_plot(path: Path, results: list[SizeResult]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r.n for r in results]
    fig, (throughput, ratio) = plt.subplots(1, 2, figsize=(12, 4.5))
    throughput.plot(n, [r.floor_rows_per_s for r in results], "o-", label="floor ingest (rows/s)")
    throughput.plot(n, [r.kgrec_rows_per_s for r in results], "s-", label="kgrec ingest (rows/s)")
    throughput.plot(n, [r.export_edges_per_s for r in results], "^-", label="kgrec export (edges/s)")
    throughput.axhline(GOAL_EDGES_PER_S, color="grey", linestyle=":", label=f"export goal {GOAL_EDGES_PER_S:,} edges/s")
    throughput.set(xscale="log", yscale="log", xlabel="N (interactions)", ylabel="throughput per second",
                   title="Throughput against size")
    throughput.legend(fontsize="small")
    throughput.grid(True, which="both", alpha=0.3)
    ratio.plot(n, [r.ratio for r in results], "s-", color="C1", label="kgrec / floor")
    ratio.axhline(GOAL_RATIO, color="grey", linestyle=":", label=f"goal {GOAL_RATIO}")
    ratio.set(xscale="log", ylim=(0, max(1.2, max(r.ratio for r in results) * 1.1)), xlabel="N (interactions)",
              ylabel="ingest throughput ratio", title="kgrec ingest against the floor")
    ratio.legend(fontsize="small")
    ratio.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(out: Path, results: list[SizeResult], pages: list[ExportMeasure], server: Server) -> None:
    """The markdown, CSV and plot; written after every size too, so that a long run leaves partial results."""
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "ingest_export.csv", results)
    write_markdown(out / "ingest_export.md", results, pages, server)
    write_plot(out / "ingest_export.png", results)
    log(f"wrote {out / 'ingest_export.md'}, .csv and .png" + ("" if pages else " (partial)"))


def print_table(results: list[SizeResult], pages: list[ExportMeasure]) -> None:
    print(text_table(results, COLUMNS))
    print()
    for line in goal_lines(results) + growth(results):
        print(line)
    print()
    print(f"export memory against page size (N = {max(r.n for r in results):,}):")
    print(text_table(pages, PAGE_COLUMNS))


# -- main ----------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000,3000000",
                        help="comma-separated numbers of interactions (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results",
                        help="folder for ingest_export.md/.csv/.png (default: benchmarks/results)")
    parser.add_argument("--uri", help="use this Neo4j instead of a throwaway local one; its database is WIPED")
    parser.add_argument("--user", default="neo4j")
    parser.add_argument("--password", default=os.environ.get("NEO4J_PASSWORD"),
                        help="with --uri (default: $NEO4J_PASSWORD)")
    parser.add_argument("--database", default="neo4j")
    parser.add_argument("--heap", default="2g", help="heap of the local Neo4j (default: %(default)s)")
    parser.add_argument("--pagecache", default="1g", help="page cache of the local Neo4j (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=20000,
                        help="interactions of the untimed warm-up round; 0 skips it (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers (got {args.sizes!r})")
    if not args.sizes or min(args.sizes) < 1000:
        parser.error("--sizes needs at least one size, each >= 1000")
    if args.uri and not args.password:
        parser.error("--uri needs --password (or NEO4J_PASSWORD)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops the local Neo4j
    log(f"sizes {', '.join(f'{n:,}' for n in args.sizes)}; results go to {args.out}")
    try:
        with neo4j_server(args) as server, GraphDatabase.driver(
            server.uri, auth=(server.user, server.password),
            notifications_min_severity=NotificationMinimumSeverity.OFF,
        ) as driver:
            graph = Graph(driver, server.database, uri=server.uri, user=server.user)
            graph.ping()
            if args.warmup:
                warm_up(driver, graph, args.warmup)
            results: list[SizeResult] = []
            for n in args.sizes:
                result, export = run_size(driver, graph, n)
                results.append(result)
                write_outputs(args.out, results, [], server)
            log(f"N = {args.sizes[-1]:,}: the export again with page_size={SMALL_EXPORT_PAGE:,}, for memory")
            pages = [export, measure_export(graph, SMALL_EXPORT_PAGE)]
            results[-1].small_page_export_s = pages[1].seconds
            results[-1].small_page_export_edges_per_s = pages[1].edges_per_s
            results[-1].small_page_export_trace_peak_mib = pages[1].trace_peak_mib
            results[-1].small_page_export_rss_peak_mib = pages[1].rss_peak_mib
    except KgrecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    print_table(results, pages)
    write_outputs(args.out, results, pages, server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
