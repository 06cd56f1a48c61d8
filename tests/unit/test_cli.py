"""The CLI without a database: help texts, offline schema output, one-line errors."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgrec.cli import app
from kgrec.graph_schema.vocabulary import Label, RelType
from tests.conftest import assert_one_line_error, cli_env, free_port, run_cli

runner = CliRunner()

COMMANDS = [
    [], ["neo4j"], ["neo4j", "build"], ["neo4j", "start"], ["neo4j", "stop"], ["neo4j", "status"], ["neo4j", "logs"],
    ["schema"], ["schema", "apply"], ["schema", "show"], ["schema", "check"], ["serve"],
    ["load"], ["load", "generic"], ["load", "hetrec-lastfm"], ["load", "kgcn-lastfm"], ["load", "movielens"],
    ["load", "recbole"], ["synth"], ["export"], ["download"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "kgrec")
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert len(result.output.splitlines()) > 5


def test_schema_show_offline_prints_tables_and_mermaid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["schema", "show", "--offline"])
    assert result.exit_code == 0, result.output
    assert "erDiagram" in result.output
    for name in [*(label.value for label in Label), *(rel.value for rel in RelType)]:
        assert name in result.output


def test_mermaid_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["schema", "show", "--mermaid"])
    assert result.output.startswith("erDiagram\n")
    assert "User }o--o{ Item : INTERACTED" in result.output


def test_status_when_not_running(tmp_path: Path) -> None:
    env = cli_env(KGREC_DATA_DIR=str(tmp_path / "data"))
    result = run_cli("neo4j", "status", env=env, cwd=tmp_path)
    assert result.returncode == 1 and "not running" in result.stdout


def test_stop_when_not_running(tmp_path: Path) -> None:
    result = run_cli("neo4j", "stop", env=cli_env(KGREC_DATA_DIR=str(tmp_path)), cwd=tmp_path)
    assert result.returncode == 0 and "not running" in result.stdout


def test_neo4j_not_running_is_one_line(tmp_path: Path) -> None:
    env = cli_env(NEO4J_URI=f"bolt://127.0.0.1:{free_port()}", NEO4J_PASSWORD="whatever-123")
    result = run_cli("schema", "check", env=env, cwd=tmp_path)
    assert_one_line_error(result, "cannot reach Neo4j at bolt://127.0.0.1:", "kgrec neo4j start")


def test_missing_password_is_one_line(tmp_path: Path) -> None:
    result = run_cli("schema", "apply", env=cli_env(), cwd=tmp_path)
    assert_one_line_error(result, "NEO4J_PASSWORD is not set")


def test_bad_setting_is_one_line(tmp_path: Path) -> None:
    result = run_cli("schema", "check", env=cli_env(NEO4J_URI="http://localhost:7474"), cwd=tmp_path)
    assert_one_line_error(result, "NEO4J_URI")


def test_synth_writes_generic_files(tmp_path: Path) -> None:
    result = run_cli("synth", "--out", "syn", "--users", "50", "--items", "40", "--entities", "10",
                     "--interactions", "500", "--topics", "3", env=cli_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "syn").iterdir()) == [
        "entities.csv", "entity_entity.csv", "interactions.csv", "item_entity.csv", "items.csv", "relations.csv",
        "user_links.csv"]
    assert len((tmp_path / "syn" / "interactions.csv").read_text().splitlines()) == 501


def test_synth_bad_config_is_one_line(tmp_path: Path) -> None:
    result = run_cli("synth", "--out", "syn", "--users", "5", "--interactions", "2", env=cli_env(), cwd=tmp_path)
    assert_one_line_error(result, "interactions")


def test_a_bad_training_device_is_one_line(tmp_path: Path) -> None:
    result = run_cli("train", "--export", "nowhere", "--device", "gpu-please", env=cli_env(), cwd=tmp_path)
    assert_one_line_error(result, "'device'", "gpu-please")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_one_line(tmp_path: Path) -> None:
    result = run_cli("train", "--export", "nowhere", "--device", "cuda", env=cli_env(), cwd=tmp_path)
    assert_one_line_error(result, "no CUDA device")


def test_an_unforeseen_neo4j_refusal_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """A query Neo4j refuses (here as on a hand-made list where a text goes) is one line, not a traceback."""
    from neo4j.exceptions import Neo4jError

    import kgrec.cli as cli

    def refused() -> None:
        raise Neo4jError._hydrate_neo4j(code="Neo.ClientError.Statement.TypeError",
                                        message="Expected a string value for trim, but got: StringArray[a, list]")

    monkeypatch.setattr(cli, "app", refused)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 1 and "\n" not in err
    assert err.startswith("error: Neo4j refused a query (Neo.ClientError.Statement.TypeError): Expected a string")
    assert err.endswith("`kgrec schema check` lists them")
