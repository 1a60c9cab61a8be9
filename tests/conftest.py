"""Shared fixtures: the real servers, started ONCE per test session on free ports and temp
data dirs, plus fresh per-test names so tests never see each other's data.

Session: `temporal_server` (address "127.0.0.1:port"), `mongodb_server` (URI),
`chromium_path`, `demo_target` (base URL of examples/demo_target.py served by uvicorn).
Per test: `task_queue`, `mongo_db_name`, `settings` (a Settings pointing at all of the above).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from core.settings import Settings
from tests.services import (
    free_port,
    serve_in_thread,
    start_test_mongodb,
    start_test_temporal,
)
from tests.stack import Stack, running_stack

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Temporal dev server (castra's search attributes registered); its address."""
    proc = start_test_temporal(tmp_path_factory.mktemp("temporal"))
    try:
        yield proc.address
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def mongodb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real SecantusDB server; its MongoDB URI."""
    proc = start_test_mongodb(tmp_path_factory.mktemp("mongodb"))
    try:
        yield proc.address
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`./run.sh test` does it; "
            "never `playwright install`)",
            pytrace=False,
        )
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def demo_target() -> Iterator[str]:
    """examples/demo_target.py served on a free port, with its default credentials."""
    from examples.demo_target import DEFAULT_API_KEY, DEFAULT_PASSWORD, create_app

    with serve_in_thread(create_app(password=DEFAULT_PASSWORD, api_key=DEFAULT_API_KEY)) as url:
        yield url


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
def mongo_db_name() -> str:
    return f"castra_test_{uuid.uuid4().hex}"


@pytest.fixture
def settings(
    tmp_path: Path,
    temporal_server: str,
    mongodb_server: str,
    task_queue: str,
    mongo_db_name: str,
) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "castra",
        temporal_address=temporal_server,
        temporal_namespace="default",
        temporal_task_queue=task_queue,
        mongodb_uri=mongodb_server,
        mongodb_database=mongo_db_name,
        api_port=free_port(),
    )


# The Temporal SDK's native core can abort while the interpreter shuts down
# (temporalio/sdk-python#300), turning a green run red. Once pytest has reported everything
# (and the session fixtures above have stopped their servers), exit with pytest's own status.
_finished_session: pytest.Session | None = None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _finished_session
    _finished_session = session


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _finished_session is None:  # --help, --version, usage errors: a normal exit
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(_finished_session.exitstatus))


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    """castra's API and orchestrator in this event loop, a tenant and its API client."""
    async with running_stack(settings) as running:
        yield running
