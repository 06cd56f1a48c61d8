"""Test fixtures shared by both tiers.

Unit tests need no services. Integration tests (``tests/integration``) run against a real Neo4j: an
already running server when ``NEO4J_URI`` is set in the environment (with ``NEO4J_USER``,
``NEO4J_PASSWORD``, ``NEO4J_DATABASE``), otherwise one local Neo4j started once per test session through
the same launcher as ``kgrec neo4j start``, on a free port with a throwaway store and password.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from kgrec.config import Settings  # noqa: E402
from kgrec.db import Graph  # noqa: E402
from kgrec.graph_schema.migrations import drop_everything  # noqa: E402
from kgrec.neo4j_local import LocalNeo4j  # noqa: E402


# The real datasets live beside the checkout (../shared/data), never inside it.
SHARED_DATA = Path(os.environ.get("KGREC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DATASET_FOLDERS = {
    "hetrec-lastfm": "hetrec-lastfm-2k",
    "kgcn-lastfm": "kgcn-lastfm",
    "movielens": "ml-latest-small",
    "recbole": "recbole-ml100k-kg",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_settings(**overrides: object) -> Settings:
    """Settings for a test: nothing from a developer's .env, production mode unless overridden."""
    return Settings(_env_file=None, **overrides)


@dataclass(frozen=True)
class Server:
    uri: str
    user: str
    password: str
    database: str


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if os.environ.get("NEO4J_URI"):
        yield Server(
            os.environ["NEO4J_URI"],
            os.environ.get("NEO4J_USER", "neo4j"),
            os.environ["NEO4J_PASSWORD"],
            os.environ.get("NEO4J_DATABASE", "neo4j"),
        )
        return
    server = LocalNeo4j(
        home=tmp_path_factory.mktemp("neo4j-session"),
        port=free_port(),
        password=secrets.token_urlsafe(12),
        heap="1g",
        pagecache="512m",
    )
    if not server.is_built():
        pytest.fail("the Neo4j launcher is not built: run `make test` (or `kgrec neo4j build`) first")
    server.start()
    try:
        yield Server(server.uri, "neo4j", server.password, "neo4j")
    finally:
        server.stop()
        shutil.rmtree(server.home, ignore_errors=True)  # ~0.5 GB of store and logs per session


@pytest.fixture
def settings(neo4j_server: Server, tmp_path: Path) -> Settings:
    return make_settings(
        neo4j_uri=neo4j_server.uri,
        neo4j_user=neo4j_server.user,
        neo4j_password_=neo4j_server.password,
        neo4j_database=neo4j_server.database,
        data_dir=tmp_path / "data",
    )


@pytest.fixture
def graph(settings: Settings) -> Iterator[Graph]:
    """A connection to a clean database: no nodes, no constraints, no indexes (but the built-in lookups)."""
    with Graph.connect(settings) as graph:
        wipe(graph)
        yield graph


def wipe(graph: Graph) -> None:
    """Delete every node, constraint and index (the built-in lookups stay)."""
    drop_everything(graph)


def cli_env(settings: Settings | None = None, **extra: str) -> dict[str, str]:
    """An environment for running ``kgrec`` as a subprocess, described by ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "KGREC_"))}
    if settings is not None:
        env.update(
            NEO4J_URI=settings.neo4j_uri,
            NEO4J_USER=settings.neo4j_user,
            NEO4J_DATABASE=settings.neo4j_database,
            KGREC_DATA_DIR=str(settings.data_dir),
        )
        if settings.neo4j_password_ is not None:
            env["NEO4J_PASSWORD"] = settings.neo4j_password_.get_secret_value()
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``kgrec ARGS`` in a fresh process (from ``cwd``, so no developer .env is read)."""
    return subprocess.run(
        [sys.executable, "-m", "kgrec", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """The command failed with exit 1 and one line on stderr that names the problem, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
