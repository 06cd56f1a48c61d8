"""Benchmark: kgrec's write-back and API latency, each against a plain-driver baseline, on HetRec Last.FM-2k.

Usage: ``.venv/bin/python benchmarks/serving.py [--users 200] [--concurrency 1,16,64] [--seconds 10] [--workers 1]
[--out DIR]``

A throwaway local Neo4j (``--uri``: a given one, WIPED) gets the schema and HetRec Last.FM-2k (``--data``; ``--users
N``: the first N users only). 1. **Write-back**: seeded random 64-d vectors for every user and item and a top-50 list
per user (~300-byte JSON explanations), written by the plain driver (``SET n.embedding_b = row.vector``; ``MATCH ..
CREATE (u)-[:RECOMMENDED {...}]->(i)``; kgrec's batch sizes), deleted, then by kgrec (start_run, write_embeddings,
write_recommendations, complete_run, activate_run); an untimed warm-up of both on 100 users comes first. **Goal:
kgrec rows/s >= 0.7 x the floor's.** 2. **Latency**: the real app as ``kgrec serve --workers N`` runs it (uvicorn on
uvloop and httptools, ``--workers`` processes, default 1, in a subprocess; no access log) and an aiohttp client in
closed loops of ``GET /users/{id}/recommendations?k=20`` (precomputed lists) and ``GET /items/{id}/similar?k=20`` on
seeded random ids, per concurrency ``--warmup`` s unmeasured then ``--seconds`` s measured; against the Cypher the API
runs for those requests (one query each), one managed read transaction per query (as ``Graph.read``), from threads
with a driver session each. **Goals: API p99 <= 2x the driver's; >= 300 requests/s for precomputed lists.** Client,
server and Neo4j share the machine's cores. Output: a table on stdout, and ``serving.md``, ``serving.csv``,
``serving.png`` in ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import numpy as np
import pandas as pd
import psutil
from neo4j import READ_ACCESS, Driver, GraphDatabase, NotificationMinimumSeverity, Session

# this checkout's kgrec, here and in the API server (a git worktree sharing another checkout's editable venv
# would otherwise measure that checkout's code)
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from kgrec.db import Graph  # noqa: E402
from kgrec.errors import KgrecError  # noqa: E402
from kgrec.graph_schema import queries as q  # noqa: E402
from kgrec.graph_schema.migrations import apply_migrations, drop_everything  # noqa: E402
from kgrec.graph_schema.vocabulary import EMBEDDING_SLOTS, Label  # noqa: E402
from kgrec.loaders import writeback as wb  # noqa: E402
from kgrec.loaders.adapters import ADAPTERS  # noqa: E402
from kgrec.loaders.ingest import LoadOptions, load_dataset  # noqa: E402

from common import Server, free_port, log, neo4j_server, phase  # noqa: E402

DIM, TOP, K = 64, 50, 20
EMB_BATCH, REC_BATCH_USERS = 2000, 500  # kgrec's defaults; the floor uses them too
GOAL_RATIO, GOAL_P99_FACTOR, GOAL_RPS = 0.7, 2.0, 300
ENDPOINTS = {"recommendations": f"/users/{{}}/recommendations?k={K}", "similar": f"/items/{{}}/similar?k={K}"}


@dataclass
class Row:
    """A write-back step of one client, or one endpoint at one concurrency."""

    part: str  # write-back | latency
    what: str  # the step or the endpoint
    client: str  # floor | kgrec | API | driver
    concurrency: int
    count: int  # rows written, or requests answered in the window
    seconds: float
    per_s: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    cpu_ms: float | None = None  # CPU per request of the process running the Cypher: uvicorn, or this one


# -- data ----------------------------------------------------------------------------------------------
def load_lastfm(graph: Graph, path: Path, users: int) -> str:
    data = ADAPTERS["hetrec-lastfm"](path)
    if users:
        keep = pd.unique(data.interactions["user_id"])[:users]
        data.interactions = data.interactions[data.interactions["user_id"].isin(keep)]
        if (links := data.user_links) is not None:
            data.user_links = links[links["user_id"].isin(keep) & links["other_id"].isin(keep)]
    drop_everything(graph)
    apply_migrations(graph, dimension=384)
    report = load_dataset(graph, data, LoadOptions(progress=False))
    return ", ".join(f"{n:,} {table}" for table, n in report.rows_in.items())


@dataclass
class WriteData:
    users: list[str]
    items: list[str]
    user_vectors: np.ndarray
    item_vectors: np.ndarray
    recs: pd.DataFrame  # user_id, item_id, score, rank, explanation; by user, then rank


def make_write_data(graph: Graph, seed: int) -> WriteData:
    users = [r["id"] for r in graph.read("MATCH (u:User) RETURN u.id AS id ORDER BY id")]
    items = graph.read("MATCH (i:Item) RETURN i.id AS id, i.title AS title ORDER BY id")
    rng = np.random.default_rng(seed)
    picks = np.stack([rng.choice(len(items), TOP, replace=False) for _ in users]).ravel()
    scores = -np.sort(-rng.random((len(users), TOP)), axis=1).ravel()
    via, tag, degree = (rng.integers(n, size=(len(scores), 2)) for n in (len(items), 12000, 400))

    def explanation(n: int) -> str:  # what a KG model stores: score parts and two graph paths
        paths = [{"via_item": items[via[n, j]]["id"], "via_title": (items[via[n, j]]["title"] or "")[:24],
                  "relation": "tagged_as", "entity": f"tag:{tag[n, j]}", "entity_items": int(degree[n, j])}
                 for j in range(2)]
        return json.dumps({"model": "kgat", "parts": {"graph": round(scores[n] * 0.7, 4),
                                                      "social": round(scores[n] * 0.3, 4)}, "paths": paths})

    recs = pd.DataFrame({"user_id": np.repeat(users, TOP), "item_id": [items[i]["id"] for i in picks],
                         "score": scores, "rank": np.tile(np.arange(1, TOP + 1), len(users)),
                         "explanation": [explanation(n) for n in range(len(scores))]})
    return WriteData(users, [i["id"] for i in items], rng.standard_normal((len(users), DIM), dtype=np.float32),
                     rng.standard_normal((len(items), DIM), dtype=np.float32), recs)


# -- part 1: write-back ----------------------------------------------------------------------------------
FLOOR_VECTORS = "UNWIND $rows AS row MATCH (n:{} {{id: row.id}}) SET n.embedding_b = row.vector"
FLOOR_LISTS = ("UNWIND $rows AS row MATCH (u:User {id: row.user}) MATCH (i:Item {id: row.item}) CREATE "
               "(u)-[:RECOMMENDED {run: $run, score: row.score, rank: row.rank, explanation: row.explanation}]->(i)")


def floor_write(driver: Driver, database: str, data: WriteData) -> dict[str, float]:
    """The plain driver's writes; seconds per step, row preparation included."""
    seconds, began = {}, time.perf_counter()
    for label, ids, vectors in (("User", data.users, data.user_vectors), ("Item", data.items, data.item_vectors)):
        for s in range(0, len(ids), EMB_BATCH):
            rows = [{"id": i, "vector": v.tolist()} for i, v in zip(ids[s:s + EMB_BATCH], vectors[s:s + EMB_BATCH])]
            driver.execute_query(FLOOR_VECTORS.format(label), rows=rows, database_=database)
        seconds[f"{label.lower()} vectors"], began = time.perf_counter() - began, time.perf_counter()
    frame, batch = data.recs.rename(columns={"user_id": "user", "item_id": "item"}), REC_BATCH_USERS * TOP
    for s in range(0, len(frame), batch):
        rows = frame.iloc[s:s + batch].to_dict("records")
        driver.execute_query(FLOOR_LISTS, rows=rows, run="floor", database_=database)
    seconds["top-50 lists"] = time.perf_counter() - began
    return seconds


def kgrec_write(graph: Graph, data: WriteData, run_id: str, *, finish: bool = True) -> dict[str, float]:
    """kgrec's write path; seconds per step (start, complete and activate: 'run bookkeeping')."""
    seconds, began = {}, time.perf_counter()
    run = wb.start_run(graph, run_id, {"benchmark": "serving", "dimension": DIM})
    seconds["run bookkeeping"], began = time.perf_counter() - began, time.perf_counter()
    for label, ids, vectors in ((Label.USER, data.users, data.user_vectors),
                                (Label.ITEM, data.items, data.item_vectors)):
        wb.write_embeddings(graph, run, label, ids, vectors, batch_size=EMB_BATCH, wait=False)
        seconds[f"{label.value.lower()} vectors"], began = time.perf_counter() - began, time.perf_counter()
    wb.write_recommendations(graph, run, data.recs, batch_users=REC_BATCH_USERS)
    seconds["top-50 lists"], began = time.perf_counter() - began, time.perf_counter()
    if finish:
        wb.complete_run(graph, run, counts={"users": len(data.users), "items": len(data.items), "recs": len(data.recs)})
        wb.activate_run(graph, run.id)
        seconds["run bookkeeping"] += time.perf_counter() - began
    return seconds


def delete_writes(graph: Graph, run_id: str, slot: str, *, drop_indexes: bool = False) -> None:
    """Undo the floor (run 'floor', slot embedding_b) or an unfinished kgrec run: lists, vectors, run, indexes."""
    graph.run_autocommit(q.DELETE_RUN_RECOMMENDATIONS, run=run_id)
    graph.write(f"MATCH (n:User|Item) WHERE n.{slot} IS NOT NULL REMOVE n.{slot}, n.{slot}_run")
    graph.write(q.DELETE_RUN, run=run_id)
    for label in (Label.USER, Label.ITEM) if drop_indexes else ():
        graph.run_autocommit(q.DROP_INDEX, name=q.embedding_index(label, slot))


def measure_writeback(driver: Driver, graph: Graph, data: WriteData) -> list[Row]:
    with phase("write-back warm-up: 100 users, 1000 items (untimed, then deleted)"):
        few = data.recs["user_id"].isin(set(data.users[:100]))
        warm = WriteData(data.users[:100], data.items[:1000], data.user_vectors[:100], data.item_vectors[:1000],
                         data.recs[few])
        floor_write(driver, graph.database, warm)
        delete_writes(graph, "floor", "embedding_b")
        kgrec_write(graph, warm, "warm-up", finish=False)
        delete_writes(graph, "warm-up", "embedding_a", drop_indexes=True)
    size = f"{len(data.users):,} users, {len(data.items):,} items, {len(data.recs):,} list entries"
    with phase(f"write-back floor: {size}"):
        floor = floor_write(driver, graph.database, data)
    with phase("deleting the floor's writes"):
        delete_writes(graph, "floor", "embedding_b")
    with phase("write-back kgrec: start_run .. activate_run"):
        kgrec = kgrec_write(graph, data, "bench-run")
    counts = {"user vectors": len(data.users), "item vectors": len(data.items), "top-50 lists": len(data.recs)}
    rows, n = [], sum(counts.values())
    for client, steps in (("floor", floor), ("kgrec", kgrec)):
        rows += [Row("write-back", step, client, 0, counts.get(step, 0), s, counts.get(step, 0) / s)
                 for step, s in steps.items()]
        rows.append(Row("write-back", "total", client, 0, n, sum(steps.values()), n / sum(steps.values())))
    return rows


# -- part 2: API latency --------------------------------------------------------------------------------
SERVE = """
import sys, uvicorn
from kgrec.cli import APP_FACTORY, HTTP, LOOP
port, workers = sys.argv[1:]
uvicorn.run(APP_FACTORY, factory=True, host="127.0.0.1", port=int(port), workers=int(workers), loop=LOOP, http=HTTP,
            access_log=False, log_level="warning")
"""


def start_api(server: Server, home: str, workers: int) -> tuple[subprocess.Popen, str]:
    """``kgrec serve`` less its access log: the app factory on uvicorn with kgrec's loop and HTTP parser, and
    ``workers`` processes; settings from the environment (no .env in ``home``)."""
    port = free_port()
    env = {**os.environ, "KGREC_ENV": "development", "NEO4J_URI": server.uri, "NEO4J_USER": server.user,
           "NEO4J_PASSWORD": server.password, "NEO4J_DATABASE": server.database, "KGREC_API_KEY": "bench-key",
           "KGREC_DATA_DIR": home, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(port), str(workers)], cwd=home, env=env)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(base + "/ready", timeout=2):
                return proc, base
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise KgrecError(f"the API server was not ready within 60 s (exit status {proc.wait()})")


def cpu_seconds(process: psutil.Process, children: bool = False) -> float:
    """User and system CPU of a process so far, with ``children`` that of its children too (uvicorn's workers)."""
    total = 0.0
    for p in [process, *(process.children(recursive=True) if children else ())]:
        try:
            total += sum(p.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


class Window:
    """Closed-loop clients record (latency, ok) of the requests that end while the window is open."""

    def __init__(self, process: psutil.Process, children: bool = False) -> None:
        self.open = self.stop = False
        self.results: list[tuple[float, bool]] = []
        self.process, self.children, self.began, self.cpu = process, children, 0.0, 0.0

    def record(self, began: float, ok: bool) -> None:
        if self.open:
            self.results.append((time.perf_counter() - began, ok))

    def start(self) -> None:
        self.open, self.began, self.cpu = True, time.perf_counter(), cpu_seconds(self.process, self.children)

    def close(self, what: str, client: str, concurrency: int) -> Row:
        self.open, self.stop, seconds = False, True, time.perf_counter() - self.began
        cpu, n = cpu_seconds(self.process, self.children) - self.cpu, len(self.results)
        p50, p99 = np.percentile([r[0] * 1000 for r in self.results], [50, 99]) if n else (np.nan, np.nan)
        errors = sum(not ok for _, ok in self.results)
        row = Row("latency", what, client, concurrency, n, seconds, n / seconds, p50, p99, errors,
                  cpu * 1000 / max(n, 1))
        log(f"  {what:15} {client:6} x{concurrency:<3} {row.per_s:6,.0f} req/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
            f"{row.cpu_ms:4.1f} CPU ms/req" + (f"  {errors} ERRORS" if errors else ""))
        return row


async def api_level(base: str, api: psutil.Process, what: str, ids: list[str], c: int, warmup: float,
                    seconds: float) -> Row:
    window, order = Window(api, children=True), itertools.count()
    async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=c)) as session:
        async def client() -> None:
            while not window.stop:
                began = time.perf_counter()
                async with session.get(ENDPOINTS[what].format(ids[next(order) % len(ids)])) as response:
                    await response.read()
                window.record(began, response.status == 200)

        tasks = [asyncio.create_task(client()) for _ in range(c)]
        await asyncio.sleep(warmup)
        window.start()
        await asyncio.sleep(seconds)
        row = window.close(what, "API", c)
        await asyncio.gather(*tasks)
    return row


def read(session: Session, query: str, **params: object) -> list[dict]:
    return session.execute_read(lambda tx: tx.run(query, params).data())


def recommendations_cypher(session: Session, user: str) -> None:
    """The query of GET /users/{id}/recommendations with a precomputed list (serving.recommend)."""
    row = read(session, q.API_RECOMMENDATIONS, user=user, entity=None, exclude_seen=True, k=K)[0]
    assert row["user_found"] and len(row["runs"]) == 1 and row["has_list"] and not row["recent"]


SIMILAR_PARAMS = {"indexes": {slot: q.embedding_index(Label.ITEM, slot) for slot in EMBEDDING_SLOTS},
                  "text_index": q.ITEM_TEXT_INDEX, "k": K}


def similar_cypher(session: Session, item: str) -> None:
    """The query of GET /items/{id}/similar (serving.similar_items)."""
    row = read(session, q.API_SIMILAR_ITEMS, item=item, **SIMILAR_PARAMS)[0]
    assert row["item_found"] and row["model"]


def driver_level(driver: Driver, database: str, what: str, ids: list[str], c: int, warmup: float,
                 seconds: float) -> Row:
    window, order = Window(psutil.Process()), itertools.count()
    one = {"recommendations": recommendations_cypher, "similar": similar_cypher}[what]

    def client() -> None:
        with driver.session(database=database, default_access_mode=READ_ACCESS) as session:
            while not window.stop:
                began, ok = time.perf_counter(), True
                try:
                    one(session, ids[next(order) % len(ids)])
                except Exception:  # noqa: BLE001 - counted, like a non-200 answer
                    ok = False
                window.record(began, ok)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(c)]
    for t in threads:
        t.start()
    time.sleep(warmup)
    window.start()
    time.sleep(seconds)
    row = window.close(what, "driver", c)
    for t in threads:
        t.join()
    return row


def measure_latency(args: argparse.Namespace, server: Server, driver: Driver, data: WriteData, home: str) -> list[Row]:
    rng = np.random.default_rng(args.seed + 1)
    ids = {"recommendations": [str(u) for u in rng.choice(data.users, 100_000)],
           "similar": [str(i) for i in rng.choice(data.items, 100_000)]}
    rows: list[Row] = []
    with phase(f"starting the API: uvicorn, {args.workers} worker(s)"):
        proc, base = start_api(server, home, args.workers)
    try:
        for what, source in (("recommendations", "precomputed"), ("similar", "model")):  # measure what is meant
            with urllib.request.urlopen(base + ENDPOINTS[what].format(ids[what][0]), timeout=10) as response:
                body = json.load(response)
            if body["source"] != source or len(body["items"]) != K:
                raise KgrecError(f"{what}: the API answered {len(body['items'])} items from {body['source']!r}")
        api, top = psutil.Process(proc.pid), max(args.concurrency)
        with phase(f"latency warm-up: each endpoint, API and driver, {top} concurrent (not reported)"):
            for what in ENDPOINTS:
                asyncio.run(api_level(base, api, what, ids[what], top, 0, args.warmup))
                driver_level(driver, server.database, what, ids[what], top, 0, args.warmup)
        for what in ENDPOINTS:
            for c in args.concurrency:
                with phase(f"{what}, {c} concurrent: API over HTTP, then the driver"):
                    rows.append(asyncio.run(api_level(base, api, what, ids[what], c, args.warmup, args.seconds)))
                    rows.append(driver_level(driver, server.database, what, ids[what], c, args.warmup, args.seconds))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return rows


# -- reporting -------------------------------------------------------------------------------------------
HEADER = ["part", "what", "client", "concurrency", "count", "seconds", "per s", "p50 ms", "p99 ms", "errors",
          "CPU ms/req"]


def table(rows: list[Row], markdown: bool) -> str:
    def f(v: float | None, spec: str = ",.1f") -> str:
        return "" if v is None else format(v, spec)

    body = [[r.part, r.what, r.client, f(r.concurrency or None, ","), f(r.count, ","), f(r.seconds, ".2f"),
             f(r.per_s if r.count else None, ",.0f"), f(r.p50_ms), f(r.p99_ms), f(r.errors if r.part == "latency" else None, ","),
             f(r.cpu_ms)] for r in rows]
    if markdown:
        return "\n".join("| " + " | ".join(line) + " |" for line in [HEADER, ["---"] * 3 + ["---:"] * 8, *body])
    widths = [max(len(x) for x in col) for col in zip(HEADER, *body)]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths))
                     for line in [HEADER, ["-" * w for w in widths], *body])


def goals(rows: list[Row]) -> list[str]:
    def get(part: str, what: str, client: str, c: int = 0) -> Row:
        return next(r for r in rows if (r.part, r.what, r.client, r.concurrency) == (part, what, client, c))

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    floor, kgrec = get("write-back", "total", "floor"), get("write-back", "total", "kgrec")
    ratio = kgrec.per_s / floor.per_s
    lines = [f"write-back: kgrec {kgrec.per_s:,.0f} rows/s, floor {floor.per_s:,.0f} rows/s: ratio {ratio:.2f} "
             f"(goal >= {GOAL_RATIO}): {verdict(ratio >= GOAL_RATIO)}"]
    for api in (r for r in rows if r.client == "API"):
        driver = get("latency", api.what, "driver", api.concurrency)
        factor = api.p99_ms / driver.p99_ms
        lines.append(f"{api.what}, {api.concurrency} concurrent: API p99 {api.p99_ms:,.1f} ms, driver "
                     f"{driver.p99_ms:,.1f} ms: {factor:.2f}x (goal <= {GOAL_P99_FACTOR:g}x): "
                     f"{verdict(factor <= GOAL_P99_FACTOR)}")
    best = max((r for r in rows if r.client == "API" and r.what == "recommendations"), key=lambda r: r.per_s)
    lines.append(f"precomputed lists: the API's best is {best.per_s:,.0f} requests/s ({best.concurrency} concurrent; "
                 f"goal >= {GOAL_RPS}): {verdict(best.per_s >= GOAL_RPS)}")
    return lines


def write_outputs(out: Path, rows: list[Row], notes: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "serving.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(Row)])
        writer.writeheader()
        writer.writerows({k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(r).items()} for r in rows)
    (out / "serving.md").write_text("\n".join([
        "# Write-back and serving benchmark (HetRec Last.FM-2k)", "", *[f"- {n}" for n in notes], "",
        "Write-back: rows = vectors + list entries; kgrec's vector steps include creating the slot's vector index, "
        "which Neo4j populates with every vector written in the background while the lists are written; the run "
        "bookkeeping includes waiting for it to come online (complete_run); the floor has no vector index on its slot, no run "
        "node, and does not replace a user's earlier list. Latency: closed loops (a client sends its next request when the last is "
        "answered); API = aiohttp over HTTP to uvicorn running `create_app`; driver = the same Cypher from threads of "
        "the benchmark process, one managed read transaction per query. CPU ms/req: CPU time of the processes that "
        "run the Cypher (uvicorn and its workers; or the benchmark, its client threads included) per request "
        "answered.", "",
        "## Results", "", table(rows, markdown=True), "", "## Goals", "", *[f"- {g}" for g in goals(rows)], ""]))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, thr) = plt.subplots(1, 2, figsize=(12, 4.5))
    for n, what in enumerate(ENDPOINTS):
        for client, style in (("API", "o-"), ("driver", "s--")):
            sel = sorted((r for r in rows if r.what == what and r.client == client), key=lambda r: r.concurrency)
            c = [r.concurrency for r in sel]
            lat.plot(c, [r.p99_ms for r in sel], style, color=f"C{n}", label=f"{what}, {client}: p99")
            lat.plot(c, [r.p50_ms for r in sel], style, color=f"C{n}", alpha=0.3, label=f"{what}, {client}: p50")
            thr.plot(c, [r.per_s for r in sel], style, color=f"C{n}", label=f"{what}, {client}")
    thr.axhline(GOAL_RPS, color="grey", linestyle=":", label=f"goal: {GOAL_RPS} req/s, precomputed lists")
    lat.set(xscale="log", yscale="log", xlabel="concurrent clients", ylabel="ms", title="Latency")
    thr.set(xscale="log", xlabel="concurrent clients", ylabel="requests/s", title="Throughput")
    levels = sorted({r.concurrency for r in rows if r.part == "latency"})
    for ax in (lat, thr):
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.minorticks_off()
        ax.legend(fontsize="x-small")
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "serving.png", dpi=120)
    plt.close(fig)
    log(f"wrote {out / 'serving.md'}, .csv and .png")


# -- main ----------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hetrec-lastfm-2k",
        help="the HetRec Last.FM-2k folder (default: %(default)s)")
    add("--users", type=int, default=0, help="keep the first N users only (default 0: all)")
    add("--concurrency", default="1,16,64", help="concurrent clients, comma-separated (default: %(default)s)")
    add("--seconds", type=float, default=10.0, help="measured seconds per level (default: %(default)s)")
    add("--warmup", type=float, default=2.0, help="unmeasured seconds before each level (default: %(default)s)")
    add("--workers", type=int, default=1, help="uvicorn workers of the API server (default: %(default)s)")
    add("--seed", type=int, default=0)
    add("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "serving")
    add("--uri", help="use this Neo4j instead of a throwaway local one; its database is WIPED")
    add("--user", default="neo4j")
    add("--password", default=os.environ.get("NEO4J_PASSWORD"), help="with --uri (default: $NEO4J_PASSWORD)")
    add("--database", default="neo4j")
    add("--heap", default="1g", help="heap of the local Neo4j (default: %(default)s)")
    add("--pagecache", default="512m", help="page cache of the local Neo4j (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        args.concurrency = sorted({int(c) for c in args.concurrency.split(",") if c.strip()})
    except ValueError:
        parser.error(f"--concurrency takes comma-separated integers (got {args.concurrency!r})")
    if (not args.concurrency or args.concurrency[0] < 1 or args.users < 0 or args.seconds <= 0 or args.warmup < 0
            or args.workers < 1):
        parser.error("--concurrency needs integers >= 1, --users >= 0, --seconds > 0, --warmup >= 0, --workers >= 1")
    if args.uri and not args.password:
        parser.error("--uri needs --password (or NEO4J_PASSWORD)")
    if not (args.data / "user_artists.dat").is_file():
        parser.error(f"HetRec Last.FM-2k is not in {args.data} (no user_artists.dat): pass --data DIR")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops the API server and Neo4j
    began, load_before = time.perf_counter(), os.getloadavg()
    try:
        with neo4j_server(args) as server, tempfile.TemporaryDirectory(prefix="kgrec-bench-api-") as home, \
                GraphDatabase.driver(server.uri, auth=(server.user, server.password),
                                     notifications_min_severity=NotificationMinimumSeverity.OFF) as driver:
            graph = Graph(driver, server.database, uri=server.uri, user=server.user)
            graph.ping()
            with phase(f"loading HetRec Last.FM-2k ({args.users or 'all'} users) from {args.data}"):
                loaded = load_lastfm(graph, args.data, args.users)
            with phase("generating the write-back data"):
                data = make_write_data(graph, args.seed)
            rows = measure_writeback(driver, graph, data)
            rows += measure_latency(args, server, driver, data, home)
    except KgrecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    load, cpus = os.getloadavg(), os.cpu_count()
    notes = [
        f"date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}; "
        f"wall time {time.perf_counter() - began:,.0f} s",
        f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}",
        f"machine: {platform.platform()}, {cpus} CPUs, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM; "
        f"load average {load_before[0]:.2f} at the start, {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the end",
        f"**the {cpus} CPUs are shared** by the load generator (aiohttp client, driver threads), the API server "
        f"(uvicorn, {args.workers} worker(s)), Neo4j, and whatever else runs (see the load average)",
        f"server: {server.description}; data: {loaded}",
        f"write-back: {len(data.users):,} users, {len(data.items):,} items, dimension {DIM}, top-{TOP} lists, "
        f"explanations of {data.recs['explanation'].str.len().mean():.0f} bytes on average; batches of {EMB_BATCH} "
        f"vectors, {REC_BATCH_USERS} users' lists",
        f"latency: k={K}; per level {args.warmup:g} s unmeasured, then {args.seconds:g} s; ids drawn with seed "
        f"{args.seed + 1}",
    ]
    print(table(rows, markdown=False))
    print("\n" + "\n".join(goals(rows)))
    write_outputs(args.out, rows, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
