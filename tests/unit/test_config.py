from pathlib import Path

import pytest

from kgrec.config import DEV_API_KEY, DEV_PASSWORD, load_settings
from kgrec.errors import ConfigError
from tests.conftest import make_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("KGREC_ENV", "NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE", "KGREC_DATA_DIR",
                 "KGREC_TEXT_MODEL", "KGREC_API_KEY", "KGREC_NEO4J_HEAP", "KGREC_NEO4J_PAGECACHE", "KGREC_BATCH_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's


def test_defaults() -> None:
    s = make_settings()
    assert (s.neo4j_uri, s.neo4j_user, s.neo4j_database, s.text_model) == (
        "bolt://127.0.0.1:7687", "neo4j", "neo4j", "all-MiniLM-L6-v2")
    assert s.env == "production" and s.bolt_port == 7687
    assert s.neo4j_home == (Path("data").resolve() / "neo4j")


def test_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEO4J_URI", "neo4j://db.example:7690")
    monkeypatch.setenv("NEO4J_PASSWORD", "s3cret-pass")
    monkeypatch.setenv("KGREC_DATA_DIR", "/tmp/elsewhere")
    monkeypatch.setenv("KGREC_BATCH_SIZE", "100")
    s = make_settings()
    assert s.neo4j_uri == "neo4j://db.example:7690" and s.bolt_port == 7690
    assert s.neo4j_password == "s3cret-pass"
    assert s.data_dir == Path("/tmp/elsewhere") and s.batch_size == 100


def test_reads_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NEO4J_PASSWORD=from-dotenv-1\nKGREC_TEXT_MODEL=all-mpnet-base-v2\n")
    s = load_settings()
    assert s.neo4j_password == "from-dotenv-1" and s.text_model == "all-mpnet-base-v2"


@pytest.mark.parametrize("secret, variable", [("neo4j_password", "NEO4J_PASSWORD"), ("api_key", "KGREC_API_KEY")])
def test_missing_secret_names_the_variable_outside_development(secret: str, variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        getattr(make_settings(), secret)


def test_development_mode_has_defaults() -> None:
    s = make_settings(env="development")
    assert s.neo4j_password == DEV_PASSWORD and s.api_key == DEV_API_KEY


@pytest.mark.parametrize("placeholder", ["neo4j", "password", DEV_PASSWORD, "change-me-neo4j-password"])
def test_placeholder_passwords_refused_outside_development(monkeypatch: pytest.MonkeyPatch, placeholder: str) -> None:
    monkeypatch.setenv("NEO4J_PASSWORD", placeholder)
    with pytest.raises(ConfigError, match="NEO4J_PASSWORD is a well-known placeholder"):
        load_settings()
    monkeypatch.setenv("KGREC_ENV", "development")
    assert load_settings().neo4j_password == placeholder


@pytest.mark.parametrize("uri", ["http://localhost:7474", "localhost:7687", "bolt://"])
def test_bad_uri_is_named(monkeypatch: pytest.MonkeyPatch, uri: str) -> None:
    monkeypatch.setenv("NEO4J_URI", uri)
    with pytest.raises(ConfigError, match="NEO4J_URI"):
        load_settings()


@pytest.mark.parametrize("port", ["99999", "65536", "0", "-5", "http"])
def test_uri_port_out_of_range_is_named(monkeypatch: pytest.MonkeyPatch, port: str) -> None:
    monkeypatch.setenv("NEO4J_URI", f"bolt://127.0.0.1:{port}")
    with pytest.raises(ConfigError, match=r"NEO4J_URI .* must name a port from 1 to 65535"):
        load_settings()


@pytest.mark.parametrize("uri, port", [("bolt://127.0.0.1:1", 1), ("neo4j+s://db.example:65535", 65535),
                                       ("bolt://[::1]:7690", 7690), ("bolt://db.example", 7687)])
def test_uri_ports_in_range(monkeypatch: pytest.MonkeyPatch, uri: str, port: int) -> None:
    monkeypatch.setenv("NEO4J_URI", uri)
    assert load_settings().bolt_port == port


@pytest.mark.parametrize("size, ok", [("512m", True), ("2G", True), ("lots", False), ("512", False), ("m", False)])
def test_memory_sizes(monkeypatch: pytest.MonkeyPatch, size: str, ok: bool) -> None:
    monkeypatch.setenv("KGREC_NEO4J_HEAP", size)
    if ok:
        assert load_settings().neo4j_heap == size.lower()
    else:
        with pytest.raises(ConfigError, match="neo4j_heap|KGREC_NEO4J_HEAP"):
            load_settings()


def test_unknown_environment_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGREC_ENV", "staging")
    with pytest.raises(ConfigError, match="KGREC_ENV|env"):
        load_settings()
