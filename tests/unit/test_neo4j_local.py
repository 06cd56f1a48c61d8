import os
import socket
import stat
from pathlib import Path

import pytest

from kgrec.errors import LocalNeo4jError
from kgrec.neo4j_local import LocalNeo4j, _check_port_free, find_java, parse_java_major
from tests.conftest import free_port, make_settings


@pytest.mark.parametrize(
    "output, major",
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "25.0.1"', 25),
        ("something else", None),
    ],
)
def test_parse_java_major(output: str, major: int | None) -> None:
    assert parse_java_major(output) == major


def _fake_java(tmp_path: Path, version: str) -> Path:
    java = tmp_path / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\"' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    return java


def test_find_java_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KGREC_JAVA", raising=False)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LocalNeo4jError, match="no Java found .* install Java 17"):
        find_java()


def test_find_java_wrong_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KGREC_JAVA", str(_fake_java(tmp_path, "11.0.2")))
    with pytest.raises(LocalNeo4jError, match="runs on Java 17 or 21, but .* is Java 11"):
        find_java()


def test_find_java_prefers_kgrec_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    java = _fake_java(tmp_path, "21.0.1")
    monkeypatch.setenv("KGREC_JAVA", str(java))
    assert find_java() == java


def test_port_in_use_is_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(LocalNeo4jError, match=f"port {port} on 127.0.0.1 is already in use .* --port"):
            _check_port_free("127.0.0.1", port)
    _check_port_free("127.0.0.1", free_port())


@pytest.mark.parametrize("port", [0, -5, 65536, 99999])
def test_port_out_of_range_is_named(tmp_path: Path, port: int) -> None:
    with pytest.raises(LocalNeo4jError, match=rf"Bolt port \(got {port}\) must be from 1 to 65535"):
        LocalNeo4j(home=tmp_path, port=port)
    settings = make_settings(neo4j_password_="whatever-123", data_dir=tmp_path)
    with pytest.raises(LocalNeo4jError, match=rf"got {port}\)"):  # not the NEO4J_URI port instead of 0
        LocalNeo4j.from_settings(settings, port=port)
    assert LocalNeo4j.from_settings(settings).port == 7687 and LocalNeo4j(home=tmp_path, port=65535).port == 65535


def test_conf_has_bolt_on_loopback_and_no_http(tmp_path: Path) -> None:
    conf = LocalNeo4j(home=tmp_path, port=7777, pagecache="256m").render_conf()
    assert "server.bolt.listen_address=127.0.0.1:7777\n" in conf
    assert "server.http.enabled=false\n" in conf and "server.https.enabled=false\n" in conf
    assert "dbms.security.auth_enabled=true\n" in conf
    assert "server.memory.pagecache.size=256m\n" in conf
    assert "dbms.usage_report.enabled=false\n" in conf


def test_start_without_launcher_says_how_to_build(tmp_path: Path) -> None:
    server = LocalNeo4j(home=tmp_path / "home", port=free_port(), password="long-enough", launcher_dir=tmp_path)
    with pytest.raises(LocalNeo4jError, match="launcher is not built .* `kgrec neo4j build`"):
        server.start()


def test_short_password_refused(tmp_path: Path) -> None:
    with pytest.raises(LocalNeo4jError, match="at least 8 characters"):
        LocalNeo4j(home=tmp_path, password="short").start()


def test_stale_pid_file_is_ignored(tmp_path: Path) -> None:
    server = LocalNeo4j(home=tmp_path)
    server.pid_file.parent.mkdir(parents=True)
    server.pid_file.write_text(f"{os.getpid()}\n")  # alive, but not a launcher for this home
    assert server.running_pid() is None and not server.pid_file.exists()
    assert server.stop() is False
    assert server.status()["running"] is False


def test_unknown_log_refused(tmp_path: Path) -> None:
    with pytest.raises(LocalNeo4jError, match="unknown log 'gc'"):
        LocalNeo4j(home=tmp_path).log_file("gc")
