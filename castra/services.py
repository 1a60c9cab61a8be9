"""Child processes of the embedded default stack: the Temporal dev server, SecantusDB, and
castra's own `api` / `orchestrator` processes when `castra up` runs them.

Each child runs in its own process group (so whatever it spawns dies with it) and writes
to `<data_dir>/logs/<name>.log`; servers keep their state under `data_dir`, so it survives
restarts. SecantusDB is GPL-licensed: it is only ever run as a subprocess, never imported.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pymongo

from core.contracts import SEARCH_ATTRIBUTES
from core.settings import Settings

logger = logging.getLogger(__name__)


LOCALHOST = "127.0.0.1"


class ServiceStartError(RuntimeError):
    """A child process could not be started or never became ready."""


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    address: str = ""  # what it serves, for humans: "127.0.0.1:7233", a URI, a URL
    _log_offset: int = field(default=0, repr=False)  # where this run's output starts

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines this run wrote to its log."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(max(self._log_offset, self.log_path.stat().st_size - 16_384))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_seconds: float = 10.0) -> int:
        """SIGTERM the whole process group, SIGKILL it after `grace_seconds`."""
        if self.alive():
            logger.info("stopping %s (pid %s)", self.name, self.pid)
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %.0fs; killing it", self.name, grace_seconds)
        # Also kills grandchildren left behind by a child that exited on its own.
        self._signal_group(signal.SIGKILL)
        return self.popen.wait()

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.popen.pid, sig)  # start_new_session=True: pgid == pid
        except ProcessLookupError:
            pass


def find_binary(name: str) -> str:
    """`name` next to the running interpreter (the venv's bin/) first, then on PATH."""
    candidate = Path(sys.executable).parent / name  # not resolved: keep the venv's bin/
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ServiceStartError(
            f"{name!r} not found next to {sys.executable} or on PATH; "
            "install the embedded extra: pip install 'castra[embedded]'"
        )
    return found


def spawn(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    address: str = "",
) -> ManagedProcess:
    """Start `argv` in its own process group with stdout and stderr appended to its log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        offset = log.tell()
        started = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n=== {started} {' '.join(argv)}\n".encode())
        log.flush()
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    logger.info("started %s (pid %s), log %s", name, popen.pid, log_path)
    return ManagedProcess(name, popen, log_path, address, offset)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _check_ports_free(what: str, ports: Mapping[str, int], setting_hint: str) -> None:
    for label, port in ports.items():
        if not port_is_free(LOCALHOST, port):
            raise ServiceStartError(
                f"cannot start {what}: {label} port {LOCALHOST}:{port} is already in use "
                f"(another castra up or server running?). {setting_hint}"
            )


def wait_until_ready(
    proc: ManagedProcess,
    probe: Callable[[], bool],
    timeout_seconds: float,
    what: str = "",
) -> None:
    """Poll `probe` until it returns True; fail early and clearly if the process exits."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        if not proc.alive():
            proc.stop()  # reaps anything it left behind
            raise ServiceStartError(
                f"{proc.name} exited with code {proc.returncode} before it was ready. "
                f"Last lines of {proc.log_path}:\n{proc.log_tail()}"
            )
        try:
            if probe():
                return
        except Exception as exc:  # a probe failing just means "not yet"
            logger.debug("%s not ready yet: %s", proc.name, exc)
        if time.monotonic() > deadline:
            proc.stop()
            raise ServiceStartError(
                f"{proc.name} did not become ready{what} within {timeout_seconds:.0f}s. "
                f"Last lines of {proc.log_path}:\n{proc.log_tail()}"
            )
        time.sleep(0.2)


def tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def start_temporal(settings: Settings, timeout_seconds: float = 60.0) -> ManagedProcess:
    """The Temporal CLI dev server on 127.0.0.1:temporal_port, state in data_dir/temporal.db."""
    port, ui_port = settings.temporal_port, settings.temporal_ui_port
    _check_ports_free(
        "Temporal",
        {"gRPC": port, "Web UI": ui_port},
        "Set CASTRA_TEMPORAL_PORT / CASTRA_TEMPORAL_UI_PORT, or CASTRA_TEMPORAL_ADDRESS "
        "to use an existing server.",
    )
    temporal = find_binary("temporal")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        temporal, "server", "start-dev",
        "--ip", LOCALHOST,
        "--port", str(port),
        "--ui-port", str(ui_port),
        "--db-filename", str(settings.data_dir / "temporal.db"),
        "--sqlite-pragma", "journal_mode=wal",
        "--namespace", settings.temporal_namespace,
        # Fair dispatch across tenants sharing a task queue (fairness keys).
        "--dynamic-config-value", "matching.enableFairness=true",
        "--log-level", "warn",
    ]  # fmt: skip
    for attribute in SEARCH_ATTRIBUTES:
        argv += ["--search-attribute", f"{attribute}=Keyword"]
    address = f"{LOCALHOST}:{port}"
    proc = spawn("temporal", argv, settings.data_dir / "logs", address=address)

    def healthy() -> bool:
        if not tcp_open(LOCALHOST, port):
            return False
        health = subprocess.run(
            [temporal, "operator", "cluster", "health", "--address", address],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return health.returncode == 0 and b"SERVING" in health.stdout

    wait_until_ready(proc, healthy, timeout_seconds, f" at {address}")
    return proc


def start_mongodb(settings: Settings, timeout_seconds: float = 60.0) -> ManagedProcess:
    """SecantusDB (MongoDB-compatible) on 127.0.0.1:mongodb_port, data in data_dir/mongodb."""
    port = settings.mongodb_port
    _check_ports_free(
        "SecantusDB",
        {"MongoDB": port},
        "Set CASTRA_MONGODB_PORT, or CASTRA_MONGODB_URI to use an existing server.",
    )
    storage = settings.data_dir / "mongodb"
    storage.mkdir(parents=True, exist_ok=True)
    argv = [
        find_binary("secantusd-py"),
        "--host", LOCALHOST,
        "--port", str(port),
        "--storage-path", str(storage),
        "--log-level", "WARNING",
    ]  # fmt: skip
    uri = f"mongodb://{LOCALHOST}:{port}/?directConnection=true"
    proc = spawn("mongodb", argv, settings.data_dir / "logs", address=uri)

    def pings() -> bool:
        if not tcp_open(LOCALHOST, port):
            return False
        client: pymongo.MongoClient[dict[str, object]]
        with pymongo.MongoClient(uri, serverSelectionTimeoutMS=1000) as client:
            client.admin.command("ping")
        return True

    wait_until_ready(proc, pings, timeout_seconds, f" at {uri}")
    return proc


def start_python_process(
    name: str,
    argv: Sequence[str],
    settings: Settings,
    env: Mapping[str, str] | None = None,
) -> ManagedProcess:
    """Run `python <argv...>` with this interpreter (e.g. ["-m", "castra", "api"]).

    `env` is added to a copy of this process's environment.
    """
    child_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    return spawn(name, [sys.executable, *argv], settings.data_dir / "logs", env=child_env)


class Stack:
    """Processes started in order and stopped in reverse order."""

    def __init__(self) -> None:
        self.processes: list[ManagedProcess] = []

    def start(self, starter: Callable[[], ManagedProcess]) -> ManagedProcess:
        proc = starter()
        self.processes.append(proc)
        return proc

    def start_all(self, starters: Sequence[Callable[[], ManagedProcess]]) -> None:
        """Start each in turn; if one fails, stop those already started and re-raise."""
        try:
            for starter in starters:
                self.start(starter)
        except BaseException:
            self.stop()
            raise

    def first_dead(self) -> ManagedProcess | None:
        return next((p for p in self.processes if not p.alive()), None)

    def stop(self) -> None:
        while self.processes:
            self.processes.pop().stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
