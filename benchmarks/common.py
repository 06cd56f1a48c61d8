"""What the benchmarks share: progress lines, a throwaway local Neo4j (or a given one), memory sampling."""

from __future__ import annotations

import argparse
import csv
import ctypes
import gc
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from kgrec.errors import KgrecError
from kgrec.neo4j_local import LocalNeo4j

MIB = 1024 * 1024


# -- progress ------------------------------------------------------------------------------------------
def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Phase:
    """The duration of a finished :func:`phase`."""

    seconds: float = 0.0


@contextmanager
def phase(name: str) -> Iterator[Phase]:
    """Log the start and end of a phase; ``.seconds`` holds its duration afterwards."""
    timing = Phase()
    log(f"{name} ...")
    began = time.perf_counter()
    yield timing
    timing.seconds = time.perf_counter() - began
    log(f"{name}: {timing.seconds:.2f} s")


# -- the server ----------------------------------------------------------------------------------------
@dataclass
class Server:
    uri: str
    user: str
    password: str
    database: str
    description: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def neo4j_server(args: argparse.Namespace) -> Iterator[Server]:
    """The given server (``--uri``), or a throwaway local Neo4j that is stopped and deleted at the end."""
    if args.uri:
        log(f"WARNING: using {args.uri}, database {args.database!r}: this benchmark WIPES it "
            "(all nodes, constraints and indexes) before every load")
        yield Server(args.uri, args.user, args.password, args.database, f"{args.uri} (given)")
        return
    home = Path(tempfile.mkdtemp(prefix="kgrec-bench-neo4j-"))
    server = LocalNeo4j(home=home, port=free_port(), password=secrets.token_urlsafe(12),
                        heap=args.heap, pagecache=args.pagecache)
    try:
        if not server.is_built():
            raise KgrecError("the Neo4j launcher is not built (or is older than its sources): run `make launcher` first")
        with phase(f"starting local Neo4j on port {server.port} (heap {server.heap}, page cache {server.pagecache})"):
            server.start()
        yield Server(server.uri, "neo4j", server.password, "neo4j",
                     f"local Neo4j 5.26 Community, heap {server.heap}, page cache {server.pagecache}")
    finally:
        if server.running_pid() is not None:
            with phase("stopping local Neo4j"):
                server.stop()
        shutil.rmtree(home, ignore_errors=True)



# -- tables --------------------------------------------------------------------------------------------
def write_table(stem: Path, heading: str, columns: Sequence[str], rows: Sequence[dict],
                fmt: Callable[[str, object], str]) -> list[str]:
    """Write ``rows`` as ``stem.csv`` (raw values) and ``stem.md`` (``heading``, then a markdown table of
    ``fmt(column, value)``); return the table's lines."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(fmt(c, r[c]) for c in columns) + " |" for r in rows]
    Path(f"{stem}.md").write_text(f"{heading}\n\n" + "\n".join(lines) + "\n")
    return lines


# -- memory --------------------------------------------------------------------------------------------
def release_free_memory() -> None:
    """Collect garbage and hand freed heap back to the OS, so that an RSS baseline means something."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class RssSampler:
    """Peak resident set size of this process, sampled in a background thread."""

    def __init__(self, interval: float = 0.01) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.before = self.peak = self._process.memory_info().rss

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    def rss(self) -> int:
        return self._process.memory_info().rss
