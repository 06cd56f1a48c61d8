"""Command arguments checked before any work: ``synth --format`` and ``--out``, ``evaluate --models``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgrec.cli import app
from kgrec.errors import KgrecError
from tests.conftest import assert_one_line_error, cli_env, run_cli

runner = CliRunner()
SMALL = ["--users", "20", "--items", "10", "--entities", "10", "--topics", "2", "--interactions", "50"]


def test_synth_unknown_format_is_one_line(tmp_path: Path) -> None:
    result = run_cli("synth", "--out", "syn", "--format", "bogus", *SMALL, env=cli_env(), cwd=tmp_path)
    assert_one_line_error(result, "'bogus'", "'csv', 'tsv', 'parquet'")
    assert not (tmp_path / "syn").exists()


@pytest.mark.parametrize("out", ["taken", "taken/sub"])
def test_synth_out_under_a_file_is_one_line(tmp_path: Path, out: str) -> None:
    (tmp_path / "taken").write_text("mine")
    result = run_cli("synth", "--out", out, *SMALL, env=cli_env(), cwd=tmp_path)
    assert_one_line_error(result, "taken")
    assert (tmp_path / "taken").read_text() == "mine"


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading the export and encoding text is the first work ``evaluate`` does: it must not start."""
    monkeypatch.setattr("kgrec.cli._models_setup", lambda *args: pytest.fail("the models were set up"))


@pytest.mark.parametrize("models", ["", ",", " , "])
def test_evaluate_without_models_is_refused_before_training(tmp_path: Path, no_training: None, models: str) -> None:
    result = runner.invoke(app, ["evaluate", "--export", str(tmp_path), "--out", str(tmp_path / "eval"),
                                 "--models", models])
    assert isinstance(result.exception, KgrecError) and "no models given" in str(result.exception), result.output
    assert not (tmp_path / "eval").exists()


def test_evaluate_checks_every_model_name_before_training(tmp_path: Path, no_training: None) -> None:
    result = runner.invoke(app, ["evaluate", "--export", str(tmp_path), "--out", str(tmp_path / "eval"),
                                 "--models", "popularity, bogus"])
    assert isinstance(result.exception, KgrecError), result.output
    assert str(result.exception).startswith("unknown model 'bogus': choose from kgrec, popularity, itemknn")


def test_evaluate_without_models_is_one_line(tmp_path: Path) -> None:
    result = run_cli("evaluate", "--export", "nowhere", "--out", "eval", "--models", ",", env=cli_env(), cwd=tmp_path)
    assert_one_line_error(result, "no models given", "popularity")
