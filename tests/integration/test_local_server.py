"""The local Neo4j through the CLI: start, persistence across restarts, and its error cases.

Each test runs its own server (own store, own port), apart from the session's shared one.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from kgrec.db import Graph
from tests.conftest import assert_one_line_error, cli_env, free_port, make_settings, run_cli


@pytest.fixture
def local_env(tmp_path: Path) -> dict[str, str]:
    port = free_port()
    env = cli_env(
        NEO4J_URI=f"bolt://127.0.0.1:{port}",
        NEO4J_PASSWORD="first-password-1",
        KGREC_DATA_DIR=str(tmp_path / "data"),
        KGREC_NEO4J_HEAP="512m",
        KGREC_NEO4J_PAGECACHE="128m",
    )
    yield env
    run_cli("neo4j", "stop", env=env, cwd=tmp_path)  # never leave a server behind


def _graph(env: dict[str, str]) -> Graph:
    return Graph.connect(make_settings(neo4j_uri=env["NEO4J_URI"], neo4j_password_=env["NEO4J_PASSWORD"]))


def test_start_apply_stop_start_keeps_data(local_env: dict[str, str], tmp_path: Path) -> None:
    started = run_cli("neo4j", "start", env=local_env, cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    assert "Neo4j is running (pid" in started.stdout and local_env["NEO4J_URI"] in started.stdout
    again = run_cli("neo4j", "start", env=local_env, cwd=tmp_path)
    assert again.returncode == 0 and "already running" in again.stdout
    assert run_cli("neo4j", "status", env=local_env, cwd=tmp_path).returncode == 0

    assert run_cli("schema", "apply", env=local_env, cwd=tmp_path).returncode == 0
    with _graph(local_env) as graph:
        graph.write("CREATE (:User {id: 'persisted'})-[:INTERACTED {weight: 2.0}]->(:Item {id: 'i1', title: 'T'})")

    stopped = run_cli("neo4j", "stop", env=local_env, cwd=tmp_path)
    assert stopped.returncode == 0 and "Neo4j stopped." in stopped.stdout
    status = run_cli("neo4j", "status", env=local_env, cwd=tmp_path)
    assert status.returncode == 1 and "not running" in status.stdout

    assert run_cli("neo4j", "start", env=local_env, cwd=tmp_path).returncode == 0
    with _graph(local_env) as graph:
        rows = graph.read("MATCH (u:User)-[r:INTERACTED]->(i:Item) RETURN u.id AS u, r.weight AS w, i.id AS i")
        assert rows == [{"u": "persisted", "w": 2.0, "i": "i1"}]
        assert graph.read("MATCH (m:KgrecMigration) RETURN count(m) AS n")[0]["n"] == 5
    up_to_date = run_cli("schema", "apply", env=local_env, cwd=tmp_path)
    assert "The schema is up to date." in up_to_date.stdout

    logs = run_cli("neo4j", "logs", "-n", "200", env=local_env, cwd=tmp_path)
    assert logs.stdout.count("KGREC-READY") == 2 and "KGREC-STOPPED" in logs.stdout
    debug = run_cli("neo4j", "logs", "--log", "debug", env=local_env, cwd=tmp_path)
    assert "INFO" in debug.stdout


def test_restart_with_another_password_is_refused(local_env: dict[str, str], tmp_path: Path) -> None:
    assert run_cli("neo4j", "start", env=local_env, cwd=tmp_path).returncode == 0
    assert run_cli("neo4j", "stop", env=local_env, cwd=tmp_path).returncode == 0
    other = {**local_env, "NEO4J_PASSWORD": "second-password-2"}
    result = run_cli("neo4j", "start", env=other, cwd=tmp_path)
    assert_one_line_error(result, "refused NEO4J_PASSWORD", "created with another password")
    status = run_cli("neo4j", "status", env=other, cwd=tmp_path)
    assert status.returncode == 1  # it did not stay up half-usable


def test_port_in_use(local_env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_cli("neo4j", "start", "--port", str(port), env=local_env, cwd=tmp_path)
    assert_one_line_error(result, f"port {port} on 127.0.0.1 is already in use", "--port")


def test_missing_java(local_env: dict[str, str], tmp_path: Path) -> None:
    env = {**local_env, "JAVA_HOME": str(tmp_path / "no-jdk"), "PATH": str(Path(sys.executable).parent)}
    env.pop("KGREC_JAVA", None)
    assert not any(Path(p, "java").exists() for p in env["PATH"].split(os.pathsep))
    result = run_cli("neo4j", "start", env=env, cwd=tmp_path)
    assert_one_line_error(result, "no Java found", "install Java 17")
