"""Benchmark: kgrec's write-back and its API's latency, each against a plain-driver baseline, on HetRec Last.FM-2k.

Usage::

    .venv/bin/python benchmarks/serving.py [--users 200] [--seconds 10] [--concurrency 1,16,64] [--out DIR]
                                           [--uri bolt://host:7687 --user neo4j --password ...]

It starts a throwaway local Neo4j like ingest_export.py (``--uri`` uses, and WIPES, a given one), applies the
schema and loads HetRec Last.FM-2k (``--data``; ``--users N`` keeps the first N users, for a quick run). Then:

1. **Write-back**: a 64-dimensional seeded random vector for every user and item, and a top-50 list for every
   user (random items and scores, a ~300-byte JSON explanation per entry). Floor: the plain driver,
   ``UNWIND $rows ... SET n.embedding_b = row.vector`` and ``UNWIND $rows ... CREATE (u)-[:RECOMMENDED {...}]->(i)``
   in kgrec's batch sizes (2000 vectors, 500 users' lists), row preparation timed; its writes are deleted, then
   kgrec's path runs: start_run, write_embeddings (users, items), write_recommendations, complete_run,
   activate_run. Rows = vectors + list entries. **Goal: kgrec rows/s >= 0.7 x the floor's.** An untimed warm-up
   of both paths on a few users comes first and is deleted (the vector indexes it created too).
2. **API latency**: the real app (``create_app``) under uvicorn in a subprocess on a free port; an aiohttp client
   runs closed loops of ``GET /users/{id}/recommendations?k=20`` (precomputed lists) and ``GET /items/{id}/similar?k=20``
   (slot vector index) on seeded random ids, at each concurrency: ``--warmup`` s unmeasured, then ``--seconds`` s
   measured. Baseline: the Cypher the API runs for those requests (kgrec/api/deps.py, serving.py: known user/item,
   active run, user state + stored list / vectors present + vector query), one managed read transaction each
   like ``Graph.read``, from a thread pool of driver sessions. **Goals: API p99 <= 2x the driver's; >= 300
   requests/s for precomputed lists** (at the best concurrency).

Client, API server and Neo4j share the machine's cores (the output says how many, and the load average).
Output: a table on stdout; ``serving.md``, ``serving.csv``, ``serving.png`` in ``--out``.
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
from neo4j import READ_ACCESS, Driver, GraphDatabase, NotificationMinimumSeverity

from kgrec.db import Graph
from kgrec.errors import KgrecError
from kgrec.graph_schema import queries as q
from kgrec.graph_schema.migrations import apply_migrations, drop_everything
from kgrec.graph_schema.vocabulary import EMBEDDING_SLOTS, Label
from kgrec.loaders import writeback as wb
from kgrec.loaders.adapters import ADAPTERS
from kgrec.loaders.ingest import LoadOptions, load_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Server, free_port, log, neo4j_server, phase  # noqa: E402

DIM, TOP, K = 64, 50, 20
EMB_BATCH, REC_BATCH_USERS = 2000, 500  # kgrec's defaults, used by the floor too
GOAL_RATIO, GOAL_P99_FACTOR, GOAL_RPS = 0.7, 2.0, 300
DATA = Path("/work/shared/data/hetrec-lastfm-2k")
PATHS = ("recommendations", "similar")


@dataclass
class Row:
    """One line of the results: a write-back step, or one endpoint at one concurrency."""

    part: str  # write-back | latency
    what: str  # write-back step, or endpoint
    client: str  # floor | kgrec | driver | API
    concurrency: int
    count: int  # rows written, or requests completed
    seconds: float
    per_s: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0


# -- data ----------------------------------------------------------------------------------------------
def load_lastfm(graph: Graph, path: Path, users: int) -> str:
    if not (path / "user_artists.dat").is_file():
        raise KgrecError(f"HetRec Last.FM-2k is not at {path} (no user_artists.dat): pass --data DIR")
    dataset = ADAPTERS["hetrec-lastfm"](path)
    if users:
        keep = pd.unique(dataset.interactions["user_id"])[:users]
        dataset.interactions = dataset.interactions[dataset.interactions["user_id"].isin(keep)]
        links = dataset.user_links
        if links is not None:
            dataset.user_links = links[links["user_id"].isin(keep) & links["other_id"].isin(keep)]
    drop_everything(graph)
    apply_migrations(graph, dimension=384)
    report = load_dataset(graph, dataset, LoadOptions(progress=False))
    return ", ".join(f"{n:,} {t}" for t, n in report.rows_in.items())


@dataclass
class WriteData:
    users: list[str]
    items: list[str]
    user_vectors: np.ndarray
    item_vectors: np.ndarray
    recs: pd.DataFrame  # user_id, item_id, score, rank, explanation; sorted by user, rank


def make_write_data(graph: Graph, seed: int) -> WriteData:
    users = [r["id"] for r in graph.read("MATCH (u:User) RETURN u.id AS id ORDER BY id")]
    items = graph.read("MATCH (i:Item) RETURN i.id AS id, i.title AS title ORDER BY id")
    rng = np.random.default_rng(seed)
    picks = np.stack([rng.choice(len(items), TOP, replace=False) for _ in users])
    scores = -np.sort(-rng.random((len(users), TOP)), axis=1)
    via, tags, counts = rng.integers(len(items), size=(len(users), TOP, 2)), rng.integers(12000, size=(len(users), TOP, 2)), rng.integers(1, 400, size=(len(users), TOP, 2))

    def explanation(u: int, r: int) -> str:  # what a KG model stores: score parts and two graph paths
        return json.dumps({"model": "kgat", "score_parts": {"graph": round(float(scores[u, r]) * 0.7, 4), "social": round(float(scores[u, r]) * 0.3, 4)},
                           "paths": [{"via_item": items[via[u, r, j]]["id"], "via_item_title": (items[via[u, r, j]]["title"] or "")[:24],
                                      "relation": "tagged_as", "entity": f"tag:{tags[u, r, j]}", "entity_items": int(counts[u, r, j])} for j in range(2)]})

    recs = pd.DataFrame({
        "user_id": np.repeat(users, TOP), "item_id": [items[i]["id"] for i in picks.ravel()], "score": scores.ravel(),
        "rank": np.tile(np.arange(1, TOP + 1), len(users)),
        "explanation": [explanation(u, r) for u in range(len(users)) for r in range(TOP)],
    })
    return WriteData(users, [i["id"] for i in items], rng.standard_normal((len(users), DIM), dtype=np.float32),
                     rng.standard_normal((len(items), DIM), dtype=np.float32), recs)


def subset(data: WriteData, users: int, items: int) -> WriteData:
    keep = set(data.users[:users])
    return WriteData(data.users[:users], data.items[:items], data.user_vectors[:users], data.item_vectors[:items],
                     data.recs[data.recs["user_id"].isin(keep)].reset_index(drop=True))


# -- part 1: write-back ----------------------------------------------------------------------------------
FLOOR_EMB = "UNWIND $rows AS row MATCH (n:{label} {{id: row.id}}) SET n.embedding_b = row.vector"
FLOOR_RECS = ("UNWIND $rows AS row MATCH (u:User {id: row.user}) MATCH (i:Item {id: row.item}) "
              "CREATE (u)-[:RECOMMENDED {run: $run, score: row.score, rank: row.rank, explanation: row.explanation}]->(i)")


def floor_write(driver: Driver, database: str, data: WriteData) -> dict[str, float]:
    """The plain driver's writes; seconds per step (row preparation included)."""
    seconds: dict[str, float] = {}
    for step, label, ids, vectors in (("user vectors", "User", data.users, data.user_vectors),
                                      ("item vectors", "Item", data.items, data.item_vectors)):
        began = time.perf_counter()
        for s in range(0, len(ids), EMB_BATCH):
            rows = [{"id": i, "vector": v.tolist()} for i, v in zip(ids[s:s + EMB_BATCH], vectors[s:s + EMB_BATCH])]
            driver.execute_query(FLOOR_EMB.format(label=label), rows=rows, database_=database)
        seconds[step] = time.perf_counter() - began
    began, batch = time.perf_counter(), REC_BATCH_USERS * TOP
    frame = data.recs.rename(columns={"user_id": "user", "item_id": "item"})
    for s in range(0, len(frame), batch):
        driver.execute_query(FLOOR_RECS, rows=frame.iloc[s:s + batch].to_dict("records"), run="floor", database_=database)
    seconds["top-50 lists"] = time.perf_counter() - began
    return seconds


def kgrec_write(graph: Graph, data: WriteData, run_id: str, *, finish: bool = True) -> dict[str, float]:
    """kgrec's write-back path; seconds per step (start/complete/activate counted as 'run bookkeeping')."""
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    run = wb.start_run(graph, run_id, {"benchmark": "serving", "dimension": DIM})
    seconds["run bookkeeping"] = time.perf_counter() - began
    for step, label, ids, vectors in (("user vectors", Label.USER, data.users, data.user_vectors),
                                      ("item vectors", Label.ITEM, data.items, data.item_vectors)):
        began = time.perf_counter()
        wb.write_embeddings(graph, run, label, ids, vectors, batch_size=EMB_BATCH)
        seconds[step] = time.perf_counter() - began
    began = time.perf_counter()
    wb.write_recommendations(graph, run, data.recs, batch_users=REC_BATCH_USERS)
    seconds["top-50 lists"] = time.perf_counter() - began
    if finish:
        began = time.perf_counter()
        wb.complete_run(graph, run, counts={"users": len(data.users), "items": len(data.items), "recommendations": len(data.recs)})
        wb.activate_run(graph, run.id)
        seconds["run bookkeeping"] += time.perf_counter() - began
    return seconds


def delete_writes(graph: Graph, run_id: str, slot: str, *, drop_indexes: bool = False) -> None:
    """Undo a floor (run 'floor', slot embedding_b) or an unfinished kgrec run: its lists, vectors, run node."""
    graph.run_autocommit(q.DELETE_RUN_RECOMMENDATIONS, run=run_id)
    graph.write(f"MATCH (n:User|Item) WHERE n.{slot} IS NOT NULL REMOVE n.{slot}, n.{slot}_run")
    graph.write(q.DELETE_RUN, run=run_id)
    if drop_indexes:
        for label in (Label.USER, Label.ITEM):
            graph.run_autocommit(q.DROP_INDEX, name=q.embedding_index(label, slot))


def measure_writeback(driver: Driver, graph: Graph, data: WriteData) -> list[Row]:
    with phase("write-back warm-up (100 users, 1000 items; untimed, deleted)"):
        warm = subset(data, 100, 1000)
        floor_write(driver, graph.database, warm)
        delete_writes(graph, "floor", "embedding_b")
        kgrec_write(graph, warm, "warm-up", finish=False)
        delete_writes(graph, "warm-up", EMBEDDING_SLOTS[0], drop_indexes=True)
    with phase(f"write-back floor ({len(data.users):,} users, {len(data.items):,} items, {len(data.recs):,} list entries)"):
        floor = floor_write(driver, graph.database, data)
    with phase("deleting the floor's writes"):
        delete_writes(graph, "floor", "embedding_b")
    with phase("write-back kgrec (start_run .. activate_run)"):
        kgrec = kgrec_write(graph, data, "bench-run")
    counts = {"user vectors": len(data.users), "item vectors": len(data.items), "top-50 lists": len(data.recs), "run bookkeeping": 0}
    rows = [Row("write-back", step, client, 0, counts[step], s, counts[step] / s if counts[step] else 0.0)
            for client, steps in (("floor", floor), ("kgrec", kgrec)) for step, s in steps.items()]
    for client, steps in (("floor", floor), ("kgrec", kgrec)):
        total = sum(steps.values())
        rows.append(Row("write-back", "total", client, 0, sum(counts.values()), total, sum(counts.values()) / total))
    return rows


# -- part 2: API latency --------------------------------------------------------------------------------
SERVE = """
import os, sys, uvicorn
from kgrec.api.app import create_app
from kgrec.config import Settings
uri, user, database, data_dir, port = sys.argv[1:]
settings = Settings(_env_file=None, env="development", neo4j_uri=uri, neo4j_user=user, neo4j_database=database,
                    neo4j_password_=os.environ["BENCH_NEO4J_PASSWORD"], api_key_="bench-key", data_dir=data_dir)
uvicorn.run(create_app(settings), host="127.0.0.1", port=int(port), access_log=False, log_level="warning")
"""


def start_api(server: Server, home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "BENCH_NEO4J_PASSWORD": server.password}
    proc = subprocess.Popen([sys.executable, "-c", SERVE, server.uri, server.user, server.database, str(home), str(port)],
                            cwd=home, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise KgrecError(f"the API server exited with status {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(base + "/ready", timeout=2) as response:
                if response.status == 200:
                    return proc, base
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise KgrecError("the API server did not answer /ready within 60 s")


def summarize(what: str, client: str, concurrency: int, latencies: list[float], errors: int, seconds: float) -> Row:
    p50, p99 = (np.percentile(latencies, [50, 99]) * 1000) if latencies else (float("nan"), float("nan"))
    row = Row("latency", what, client, concurrency, len(latencies), seconds, len(latencies) / seconds, float(p50), float(p99), errors)
    log(f"  {what:15} {client:6} c={concurrency:<3} {row.per_s:8,.0f} req/s  p50 {row.p50_ms:7.1f} ms  p99 {row.p99_ms:7.1f} ms"
        + (f"  ({errors} errors)" if errors else ""))
    return row


async def api_level(base: str, what: str, urls: list[str], concurrency: int, warmup: float, seconds: float) -> Row:
    """Closed loops of GETs from ``concurrency`` client tasks; only requests that end in the window count."""
    latencies: list[float] = []
    state = {"recording": False, "stop": False, "errors": 0}
    order = itertools.count()
    async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def client() -> None:
            while not state["stop"]:
                began = time.perf_counter()
                async with session.get(urls[next(order) % len(urls)]) as response:
                    await response.read()
                    ok = response.status == 200
                if state["recording"]:
                    latencies.append(time.perf_counter() - began)
                    state["errors"] += not ok
        tasks = [asyncio.create_task(client()) for _ in range(concurrency)]
        await asyncio.sleep(warmup)
        state["recording"], began = True, time.perf_counter()
        await asyncio.sleep(seconds)
        state["recording"], state["stop"], elapsed = False, True, time.perf_counter() - began
        await asyncio.gather(*tasks)
    return summarize(what, "API", concurrency, latencies, state["errors"], elapsed)


def driver_request(driver: Driver, database: str) -> dict[str, object]:
    """Per endpoint, a function running the API's Cypher for one request, one managed read transaction each."""
    def read(session, query: str, **params: object) -> list[dict]:
        return session.execute_read(lambda tx: tx.run(query, params).data())

    def recommendations(session, user: str) -> None:
        assert read(session, q.existing_ids(Label.USER), ids=[user])
        run = read(session, q.API_ACTIVE_RUN)[0]
        state = read(session, q.api_user_state(run["slot"]), user=user, run=run["id"])[0]
        assert state["has_list"] and not state["recent"]
        read(session, q.API_PRECOMPUTED, user=user, run=run["id"])

    def similar(session, item: str) -> None:
        assert read(session, q.existing_ids(Label.ITEM), ids=[item])
        run = read(session, q.API_ACTIVE_RUN)[0]
        assert read(session, q.api_item_vectors_present(run["slot"]), item=item, run=run["id"])[0]["model"]
        read(session, q.api_similar_by_slot(run["slot"]), item=item, run=run["id"],
             index=q.embedding_index(Label.ITEM, run["slot"]), k=K)

    return {"recommendations": recommendations, "similar": similar}


def driver_level(driver: Driver, database: str, what: str, ids: list[str], concurrency: int, warmup: float, seconds: float) -> Row:
    """The same closed loops from ``concurrency`` threads, each with its own session."""
    one = driver_request(driver, database)[what]
    latencies: list[float] = []
    errors = [0]
    recording, stop, order = threading.Event(), threading.Event(), itertools.count()

    def client() -> None:
        with driver.session(database=database, default_access_mode=READ_ACCESS) as session:
            while not stop.is_set():
                began, ok = time.perf_counter(), True
                try:
                    one(session, ids[next(order) % len(ids)])
                except Exception:  # counted, like a non-200 answer
                    ok = False
                if recording.is_set():
                    latencies.append(time.perf_counter() - began)
                    errors[0] += not ok

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(warmup)
    recording.set()
    began = time.perf_counter()
    time.sleep(seconds)
    recording.clear()
    elapsed = time.perf_counter() - began
    stop.set()
    for t in threads:
        t.join()
    return summarize(what, "driver", concurrency, latencies, errors[0], elapsed)


def check_api(base: str, user: str, item: str) -> None:
    """The requests measured must be the ones meant: a precomputed list, model-based similar items."""
    for url, source in ((f"/users/{user}/recommendations?k={K}", "precomputed"), (f"/items/{item}/similar?k={K}", "model")):
        with urllib.request.urlopen(base + url, timeout=10) as response:
            body = json.load(response)
        if body["source"] != source or len(body["items"]) != K:
            raise KgrecError(f"GET {url} answered source {body['source']!r} with {len(body['items'])} items; expected {source!r}, {K}")


def measure_latency(args: argparse.Namespace, server: Server, driver: Driver, data: WriteData, home: Path) -> list[Row]:
    rng = np.random.default_rng(args.seed + 1)
    ids = {"recommendations": list(rng.choice(data.users, 100_000)), "similar": list(rng.choice(data.items, 100_000))}
    urls = {"recommendations": [f"/users/{u}/recommendations?k={K}" for u in ids["recommendations"]],
            "similar": [f"/items/{i}/similar?k={K}" for i in ids["similar"]]}
    rows: list[Row] = []
    with phase("starting the API (uvicorn, 1 process, in a subprocess)"):
        proc, base = start_api(server, home)
    try:
        check_api(base, ids["recommendations"][0], ids["similar"][0])
        for what in PATHS:
            for c in args.concurrency:
                with phase(f"{what}: API over HTTP, then driver, {c} concurrent"):
                    rows.append(asyncio.run(api_level(base, what, urls[what], c, args.warmup, args.seconds)))
                    rows.append(driver_level(driver, server.database, what, ids[what], c, args.warmup, args.seconds))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return rows


# -- reporting -------------------------------------------------------------------------------------------
def fmt(value: object) -> str:
    return "" if value is None else f"{value:,.1f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)


def table(rows: list[Row], markdown: bool) -> str:
    header = ["part", "what", "client", "concurrency", "count", "seconds", "per s", "p50 ms", "p99 ms", "errors"]
    body = [[r.part, r.what, r.client, fmt(r.concurrency or None), fmt(r.count), f"{r.seconds:.2f}", fmt(r.per_s), fmt(r.p50_ms), fmt(r.p99_ms),
             fmt(r.errors if r.part == "latency" else None)] for r in rows]
    if markdown:
        return "\n".join(["| " + " | ".join(header) + " |", "|---|---|---|" + "---:|" * 7] + ["| " + " | ".join(b) + " |" for b in body])
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in [header, ["-" * w for w in widths], *body])


def goals(rows: list[Row]) -> list[str]:
    def get(part: str, what: str, client: str, c: int = 0) -> Row:
        return next(r for r in rows if (r.part, r.what, r.client, r.concurrency) == (part, what, client, c))

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    floor, kgrec = get("write-back", "total", "floor"), get("write-back", "total", "kgrec")
    ratio = kgrec.per_s / floor.per_s
    lines = [f"write-back: kgrec {kgrec.per_s:,.0f} rows/s, floor {floor.per_s:,.0f} rows/s, ratio {ratio:.2f} "
             f"(goal >= {GOAL_RATIO}): {verdict(ratio >= GOAL_RATIO)}"]
    for what in PATHS:
        for c in sorted({r.concurrency for r in rows if r.part == "latency"}):
            if any(r.what == what and r.concurrency == c for r in rows):
                api, drv = get("latency", what, "API", c), get("latency", what, "driver", c)
                lines.append(f"{what}, {c} concurrent: API p99 {api.p99_ms:.1f} ms = {api.p99_ms / drv.p99_ms:.2f}x the driver's "
                             f"{drv.p99_ms:.1f} ms (goal <= {GOAL_P99_FACTOR}x): {verdict(api.p99_ms <= GOAL_P99_FACTOR * drv.p99_ms)}")
    best = max((r for r in rows if r.part == "latency" and r.what == "recommendations" and r.client == "API"), key=lambda r: r.per_s)
    lines.append(f"precomputed lists: API best {best.per_s:,.0f} requests/s (at {best.concurrency} concurrent; goal >= {GOAL_RPS}): "
                 f"{verdict(best.per_s >= GOAL_RPS)}")
    return lines


def write_outputs(out: Path, rows: list[Row], notes: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "serving.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(Row)])
        writer.writeheader()
        writer.writerows({k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(r).items()} for r in rows)
    (out / "serving.md").write_text("\n".join([
        "# Write-back and serving benchmark (HetRec Last.FM-2k)", "", *[f"- {n}" for n in notes], "",
        "Write-back rows = vectors + list entries; the floor is the plain driver (`SET n.embedding_b = row.vector`, "
        "`MATCH ... CREATE (u)-[:RECOMMENDED {...}]->(i)`) in the same batches, with no vector index on its slot, no run "
        "node, no per-user replacement of a list. Latency: closed loops, each concurrent client sends its next request when "
        "its last one is answered; API = HTTP to uvicorn (1 process) running `create_app`; driver = the same Cypher from "
        "threads of the benchmark process, one managed read transaction per query.", "",
        "## Results", "", table(rows, markdown=True), "", "## Goals", "", *[f"- {g}" for g in goals(rows)], ""]))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, thr) = plt.subplots(1, 2, figsize=(12, 4.5))
    for n, what in enumerate(PATHS):
        for client, style in (("API", "-"), ("driver", "--")):
            sel = sorted((r for r in rows if r.part == "latency" and r.what == what and r.client == client), key=lambda r: r.concurrency)
            c = [r.concurrency for r in sel]
            lat.plot(c, [r.p99_ms for r in sel], "o" + style, color=f"C{n}", label=f"{what}, {client} p99")
            lat.plot(c, [r.p50_ms for r in sel], "x" + style, color=f"C{n}", alpha=0.5, label=f"{what}, {client} p50")
            thr.plot(c, [r.per_s for r in sel], "o" + style, color=f"C{n}", label=f"{what}, {client}")
    thr.axhline(GOAL_RPS, color="grey", linestyle=":", label=f"goal {GOAL_RPS} req/s (precomputed)")
    lat.set(xscale="log", yscale="log", xlabel="concurrent clients", ylabel="latency (ms)", title="Latency against concurrency")
    thr.set(xscale="log", xlabel="concurrent clients", ylabel="requests/s", title="Throughput against concurrency")
    for ax in (lat, thr):
        ax.legend(fontsize="x-small")
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "serving.png", dpi=120)
    plt.close(fig)
    log(f"wrote {out / 'serving.md'}, .csv and .png")


# -- main ----------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="HetRec Last.FM-2k folder (default: %(default)s)")
    parser.add_argument("--users", type=int, default=0, help="keep only the first N users (0: all; default: %(default)s)")
    parser.add_argument("--concurrency", default="1,16,64", help="concurrent clients, comma-separated (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per level (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each level (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "serving")
    parser.add_argument("--uri", help="use this Neo4j instead of a throwaway local one; its database is WIPED")
    parser.add_argument("--user", default="neo4j")
    parser.add_argument("--password", default=os.environ.get("NEO4J_PASSWORD"), help="with --uri (default: $NEO4J_PASSWORD)")
    parser.add_argument("--database", default="neo4j")
    parser.add_argument("--heap", default="1g", help="heap of the local Neo4j (default: %(default)s)")
    parser.add_argument("--pagecache", default="512m", help="page cache of the local Neo4j (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        args.concurrency = sorted({int(c) for c in args.concurrency.split(",") if c.strip()})
    except ValueError:
        parser.error(f"--concurrency must be comma-separated integers (got {args.concurrency!r})")
    if not args.concurrency or min(args.concurrency) < 1 or args.users < 0 or args.seconds <= 0:
        parser.error("--concurrency needs integers >= 1, --users >= 0, --seconds > 0")
    if args.uri and not args.password:
        parser.error("--uri needs --password (or NEO4J_PASSWORD)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops the API and Neo4j
    began, load_before = time.perf_counter(), os.getloadavg()
    try:
        with neo4j_server(args) as server, tempfile.TemporaryDirectory(prefix="kgrec-bench-api-") as home, GraphDatabase.driver(
            server.uri, auth=(server.user, server.password), notifications_min_severity=NotificationMinimumSeverity.OFF
        ) as driver:
            graph = Graph(driver, server.database, uri=server.uri, user=server.user)
            graph.ping()
            with phase(f"loading HetRec Last.FM-2k from {args.data}" + (f" (first {args.users:,} users)" if args.users else "")):
                loaded = load_lastfm(graph, args.data, args.users)
            with phase("generating write-back data"):
                data = make_write_data(graph, args.seed)
            rows = measure_writeback(driver, graph, data)
            rows += measure_latency(args, server, driver, data, Path(home))
    except KgrecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    load = os.getloadavg()
    notes = [
        f"date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}; wall time {time.perf_counter() - began:,.0f} s",
        f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}",
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM; "
        f"load average {load_before[0]:.2f} before, {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} after",
        f"**the {os.cpu_count()} CPUs are shared** by the load generator (aiohttp client, driver threads), the API server "
        "(one uvicorn process) and Neo4j, and by anything else running (load average): absolute figures are a floor",
        f"server: {server.description}; data: {loaded}",
        f"write-back: {len(data.users):,} users, {len(data.items):,} items, dimension {DIM}, top-{TOP} lists "
        f"(explanations {data.recs['explanation'].str.len().mean():.0f} bytes on average), batches of {EMB_BATCH} vectors / "
        f"{REC_BATCH_USERS} users' lists; latency: k={K}, {args.warmup:g} s warm-up + {args.seconds:g} s per level, seed {args.seed}",
    ]
    print(table(rows, markdown=False))
    print()
    print("\n".join(goals(rows)))
    write_outputs(args.out, rows, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
