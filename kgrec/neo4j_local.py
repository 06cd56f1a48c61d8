"""A real local Neo4j (Community 5.26 LTS) without Docker.

The Java launcher in ``launcher/`` runs Neo4j embedded with its Bolt connector on; Maven builds it once from
Maven Central (``kgrec neo4j build``), after which starts need no network. :class:`LocalNeo4j` writes a
``neo4j.conf`` from the settings, starts the JVM in its own process session, waits until a Bolt query
answers with the configured password, and stops it with SIGTERM so that Neo4j shuts down cleanly.

Layout under ``home`` (``$KGREC_DATA_DIR/neo4j`` by default)::

    conf/neo4j.conf     written at every start
    data/               the store (persists across restarts)
    logs/launcher.log   the JVM's output; logs/debug.log, Neo4j's own log
    run/neo4j.pid       the running launcher's process id
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from kgrec.config import Settings
from kgrec.errors import LocalNeo4jError, Neo4jAuthError

LAUNCHER_DIR = Path(os.environ.get("KGREC_LAUNCHER_DIR", Path(__file__).resolve().parent.parent / "launcher"))
LAUNCHER_CLASS = "org.kgrec.launcher.Launcher"
SUPPORTED_JAVA = (17, 21)  # what Neo4j 5.26 LTS runs on
# Neo4j's own embedded tests open these packages to the unnamed module.
JVM_OPENS = ("java.lang", "java.nio", "java.io", "java.util", "java.util.concurrent", "sun.nio.ch")


@dataclass
class StartResult:
    pid: int
    uri: str
    already_running: bool = False
    seconds: float = 0.0


@dataclass
class LocalNeo4j:
    """One local Neo4j server: its home folder, Bolt port and password.

    Args:
        home: folder for configuration, store, logs and pid file.
        port: Bolt port on ``host``, 1 to 65535 (else :class:`~kgrec.errors.LocalNeo4jError`).
        password: password of the ``neo4j`` user; set on a new store, checked on an existing one.
        heap: JVM heap (``-Xmx``), like ``1g``.
        pagecache: Neo4j page cache, like ``512m``.
        host: address Bolt listens on (loopback by default).
        launcher_dir: the Maven module of the Java launcher.
    """

    home: Path
    port: int = 7687
    password: str = field(default="", repr=False)
    heap: str = "1g"
    pagecache: str = "512m"
    host: str = "127.0.0.1"
    launcher_dir: Path = LAUNCHER_DIR

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise LocalNeo4jError(f"the Bolt port (got {self.port}) must be from 1 to 65535")

    @classmethod
    def from_settings(cls, settings: Settings, *, port: int | None = None, with_password: bool = True) -> LocalNeo4j:
        """The local server the settings describe; ``with_password=False`` for status, stop and logs,
        which need no secret."""
        return cls(
            home=settings.neo4j_home,
            port=settings.bolt_port if port is None else port,
            password=settings.neo4j_password if with_password else "",
            heap=settings.neo4j_heap,
            pagecache=settings.neo4j_pagecache,
        )

    # -- paths -----------------------------------------------------------------------------------------
    @property
    def uri(self) -> str:
        return f"bolt://{self.host}:{self.port}"

    @property
    def conf_file(self) -> Path:
        return self.home / "conf" / "neo4j.conf"

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / "neo4j.pid"

    @property
    def launcher_log(self) -> Path:
        return self.home / "logs" / "launcher.log"

    def log_file(self, name: str = "launcher") -> Path:
        """``launcher`` (the JVM's output) or one of Neo4j's logs: ``debug``, ``query``, ``security``."""
        if name not in ("launcher", "debug", "query", "security"):
            raise LocalNeo4jError(f"unknown log {name!r}: choose launcher, debug, query or security")
        return self.launcher_log if name == "launcher" else self.home / "logs" / f"{name}.log"

    # -- build -----------------------------------------------------------------------------------------
    @property
    def _target(self) -> Path:
        return self.launcher_dir / "target"

    def is_built(self) -> bool:
        """The launcher's classes and Neo4j's jars are there and newer than the launcher's sources."""
        main_class = self._target / "classes" / "org" / "kgrec" / "launcher" / "Launcher.class"
        if not main_class.exists() or not any((self._target / "lib").glob("neo4j-5.26.*.jar")):
            return False
        sources = [self.launcher_dir / "pom.xml", *(self.launcher_dir / "src").rglob("*.java")]
        return all(src.stat().st_mtime <= main_class.stat().st_mtime for src in sources)

    def build(self, *, quiet: bool = True) -> None:
        """Build the launcher with Maven (downloads Neo4j's jars from Maven Central the first time)."""
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalNeo4jError("Maven (mvn) is not installed: install it (e.g. `apt-get install maven`) to build")
        cmd = [mvn, "-B", "-f", str(self.launcher_dir / "pom.xml"), "package"]
        if quiet:
            cmd.insert(2, "-q")
        java = find_java()
        env = {**os.environ, "JAVA_HOME": str(java.resolve().parent.parent)}
        result = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL)
        if result.returncode != 0 or not self.is_built():
            raise LocalNeo4jError(f"building the Neo4j launcher failed (`{' '.join(cmd)}` exited {result.returncode})")

    # -- run -------------------------------------------------------------------------------------------
    def running_pid(self) -> int | None:
        """The pid of this home's launcher if it is running (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _is_our_launcher(pid, self.home):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(self, *, timeout: float = 180.0) -> StartResult:
        """Start Neo4j and return once a Bolt query answers with the configured password.

        Raises:
            LocalNeo4jError: launcher not built, no usable Java, port taken, or Neo4j failed to start.
            Neo4jAuthError: the store was first started with another password.
        """
        began = time.monotonic()
        pid = self.running_pid()
        if pid is not None:
            return StartResult(pid=pid, uri=self.uri, already_running=True)
        if len(self.password) < 8:
            raise LocalNeo4jError("NEO4J_PASSWORD must have at least 8 characters (Neo4j's minimum)")
        if not self.is_built():
            raise LocalNeo4jError(
                "the Neo4j launcher is not built (or is older than its sources): run `kgrec neo4j build` "
                "(needs Maven; the first build downloads about 125 MB from Maven Central)"
            )
        java = find_java()
        _check_port_free(self.host, self.port)
        for sub in ("conf", "data", "logs", "run"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        self.conf_file.write_text(self.render_conf())

        log_offset = self.launcher_log.stat().st_size if self.launcher_log.exists() else 0
        with open(self.launcher_log, "ab") as log:
            proc = subprocess.Popen(
                self._command(java),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "KGREC_NEO4J_PASSWORD": self.password},
                start_new_session=True,  # outlives the CLI; ^C in the terminal does not reach it
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        try:
            self._wait_ready(proc, log_offset, began + timeout)
            self._check_password()
        except BaseException:
            self.stop()
            raise
        return StartResult(pid=proc.pid, uri=self.uri, seconds=time.monotonic() - began)

    def stop(self, *, timeout: float = 90.0) -> bool:
        """Stop Neo4j cleanly (SIGTERM, then wait); returns whether it was running."""
        pid = self.running_pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _is_our_launcher(pid, self.home):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                _reap(pid)
                self.pid_file.unlink(missing_ok=True)
                raise LocalNeo4jError(
                    f"Neo4j did not stop within {timeout:.0f}s and was killed; it recovers at the next start "
                    f"(see {self.log_file('debug')})"
                )
            time.sleep(0.2)
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> dict[str, object]:
        pid = self.running_pid()
        return {
            "running": pid is not None,
            "pid": pid,
            "uri": self.uri,
            "home": str(self.home),
            "built": self.is_built(),
        }

    def tail(self, name: str = "launcher", lines: int = 50) -> list[str]:
        path = self.log_file(name)
        if not path.exists():
            return []
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n") for line in deque(f, maxlen=lines)]

    def render_conf(self) -> str:
        plugins = self._target / "plugins"
        settings = {
            "server.default_listen_address": self.host,
            "server.bolt.enabled": "true",
            "server.bolt.listen_address": f"{self.host}:{self.port}",
            "server.http.enabled": "false",
            "server.https.enabled": "false",
            "dbms.security.auth_enabled": "true",
            "server.memory.pagecache.size": self.pagecache,
            "server.directories.plugins": str(plugins),
            "dbms.security.procedures.unrestricted": "apoc.*",
            "dbms.usage_report.enabled": "false",
        }
        return "# Written by `kgrec neo4j start`; edits are overwritten.\n" + "".join(
            f"{key}={value}\n" for key, value in settings.items()
        )

    def _command(self, java: Path) -> list[str]:
        classpath = os.pathsep.join(
            str(self._target / part) for part in ("classes", "lib/*", "plugins/*")
        )
        opens = [arg for pkg in JVM_OPENS for arg in ("--add-opens", f"java.base/{pkg}=ALL-UNNAMED")]
        return [
            str(java),
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:+ExitOnOutOfMemoryError",
            *opens,
            "-cp",
            classpath,
            LAUNCHER_CLASS,
            str(self.home),
            str(self.conf_file),
        ]

    def _wait_ready(self, proc: subprocess.Popen[bytes], offset: int, deadline: float) -> None:
        while True:
            output = _read_from(self.launcher_log, offset)
            if "KGREC-READY" in output:
                return
            error = re.search(r"KGREC-ERROR: (.*)", output)
            if error or proc.poll() is not None:
                message = error.group(1) if error else f"the JVM exited with code {proc.wait()}"
                if "Address already in use" in message or "BindException" in message:
                    raise LocalNeo4jError(_port_in_use_message(self.host, self.port))
                raise LocalNeo4jError(f"Neo4j did not start: {message} (see {self.launcher_log})")
            if time.monotonic() > deadline:
                raise LocalNeo4jError(f"Neo4j did not answer in time (see {self.launcher_log})")
            time.sleep(0.25)

    def _check_password(self) -> None:
        from kgrec.db import Graph  # the driver is only needed once the server runs
        from neo4j import GraphDatabase

        with GraphDatabase.driver(self.uri, auth=("neo4j", self.password)) as driver:
            try:
                Graph(driver, "neo4j", uri=self.uri).ping()
            except Neo4jAuthError as e:
                raise Neo4jAuthError(
                    f"Neo4j started, but refused NEO4J_PASSWORD: the store in {self.home / 'data'} was created "
                    "with another password. Set NEO4J_PASSWORD to that one, or move the store away to start empty"
                ) from e


def find_java() -> Path:
    """The Java to run Neo4j with: ``$KGREC_JAVA``, ``$JAVA_HOME/bin/java`` or ``java`` on PATH (17 or 21)."""
    candidates = [os.environ.get("KGREC_JAVA")]
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    candidates.append(shutil.which("java"))
    java = next((Path(c) for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)
    if java is None:
        raise LocalNeo4jError(
            "no Java found (looked at KGREC_JAVA, JAVA_HOME and PATH): install Java 17 "
            "(e.g. `apt-get install openjdk-17-jdk-headless`) or set JAVA_HOME"
        )
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LocalNeo4jError(f"could not run {java} -version: {e}") from e
    major = parse_java_major(out.stderr + out.stdout)
    if major not in SUPPORTED_JAVA:
        raise LocalNeo4jError(
            f"Neo4j 5.26 runs on Java 17 or 21, but {java} is Java {major or 'of unknown version'}: "
            "install Java 17 or set JAVA_HOME (or KGREC_JAVA) to one"
        )
    return java


def parse_java_major(version_output: str) -> int | None:
    """The major version in ``java -version`` output (``"1.8.0_1"`` → 8, ``"17.0.15"`` → 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the JVM binds: TIME_WAIT is no conflict
        try:
            sock.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise LocalNeo4jError(_port_in_use_message(host, port)) from e
            raise LocalNeo4jError(f"cannot listen on {host}:{port}: {e.strerror}") from e


def _port_in_use_message(host: str, port: int) -> str:
    return (
        f"port {port} on {host} is already in use by another program: stop it, or start on another port "
        f"(`kgrec neo4j start --port N`, and set NEO4J_URI to bolt://{host}:N)"
    )


def _is_our_launcher(pid: int, home: Path) -> bool:
    _reap(pid)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): trust the pid file if the process exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    args = [a.decode(errors="replace") for a in cmdline]
    return LAUNCHER_CLASS in args and str(home) in args


def _reap(pid: int) -> None:
    """Collect the exit status of a launcher this process started, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
