"""Helpers behind the session fixtures in tests/conftest.py: free ports, the real servers
(Temporal dev server, SecantusDB) started through castra.services, and ASGI apps served by
uvicorn in a background thread (the demo target, protocol doubles).

Nothing here is mocked: every server is the real one, on a free port and a temp data dir.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from castra.services import ManagedProcess, ServiceStartError, start_mongodb, start_temporal
from core.settings import Settings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _retry_on_port_race(start: Callable[[], ManagedProcess], attempts: int = 3) -> ManagedProcess:
    # A port found free can be taken before the server binds it (parallel runs on one box).
    for attempt in range(attempts):
        try:
            return start()
        except ServiceStartError as exc:
            if "already in use" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def start_test_temporal(data_dir: Path) -> ManagedProcess:
    """A Temporal dev server on free ports with its state in `data_dir`."""
    return _retry_on_port_race(
        lambda: start_temporal(
            Settings(
                _env_file=None,
                data_dir=data_dir,
                temporal_port=free_port(),
                temporal_ui_port=free_port(),
            )
        )
    )


def start_test_mongodb(data_dir: Path) -> ManagedProcess:
    """SecantusDB on a free port with its data in `data_dir`."""
    return _retry_on_port_race(
        lambda: start_mongodb(Settings(_env_file=None, data_dir=data_dir, mongodb_port=free_port()))
    )


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a daemon thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
