"""Ports on the command line and in NEO4J_URI: outside 1 to 65535 they are refused cleanly, never wrapped."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgrec.cli import app
from tests.conftest import assert_one_line_error, cli_env, run_cli

runner = CliRunner()


@pytest.fixture(autouse=True)
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Neither a local Neo4j nor uvicorn may start: the option must be refused first."""
    started: list[object] = []
    monkeypatch.setattr("kgrec.cli._local", lambda *args, **kwargs: started.append(args) or pytest.fail("started"))
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: started.append(kwargs) or pytest.fail("served"))
    return started


@pytest.mark.parametrize("command", [["neo4j", "start"], ["neo4j", "stop"], ["neo4j", "status"], ["serve"]])
@pytest.mark.parametrize("port", ["99999", "65536", "0", "-5"])
def test_out_of_range_port_is_a_usage_error(command: list[str], port: str, nothing_starts: list[object]) -> None:
    result = runner.invoke(app, [*command, f"--port={port}"])
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Invalid value for '--port'" in result.output
    assert nothing_starts == []


@pytest.mark.parametrize("port", ["99999", "0", "-5", "http"])
def test_out_of_range_port_in_the_uri_is_one_line(tmp_path: Path, port: str) -> None:
    env = cli_env(NEO4J_URI=f"bolt://127.0.0.1:{port}", KGREC_DATA_DIR=str(tmp_path / "data"))
    result = run_cli("neo4j", "status", env=env, cwd=tmp_path)
    assert_one_line_error(result, "invalid settings", f"NEO4J_URI (got 'bolt://127.0.0.1:{port}')", "1 to 65535")
