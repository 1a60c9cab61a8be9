"""The embedded stack's child processes (castra/services.py) and the session fixtures built
on them: real Temporal dev server, real SecantusDB, real processes."""

from __future__ import annotations

import socket
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from pymongo import AsyncMongoClient
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus

from castra.services import (
    ManagedProcess,
    ServiceStartError,
    Stack,
    start_mongodb,
    start_python_process,
    wait_until_ready,
)
from core.contracts import SEARCH_ATTRIBUTES
from core.settings import Settings
from tests.services import free_port, start_test_temporal

pytestmark = pytest.mark.integration


async def test_mongodb_insert_find_round_trip(mongodb_server: str, mongo_db_name: str) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_server)
    try:
        alerts = client[mongo_db_name]["alerts"]
        await alerts.insert_one({"_id": "ALRT-1", "host": "WS-0142", "severity": "high"})
        found = await alerts.find_one({"host": "WS-0142"})
        assert found == {"_id": "ALRT-1", "host": "WS-0142", "severity": "high"}
    finally:
        await client.drop_database(mongo_db_name)
        await client.close()


async def test_temporal_has_castra_search_attributes(temporal_server: str) -> None:
    client = await Client.connect(temporal_server, namespace="default")
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    custom = dict(response.custom_attributes)
    for name in SEARCH_ATTRIBUTES:
        assert custom.get(name) == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD, name


def test_settings_fixture_points_at_the_session_servers(
    settings: Settings, temporal_server: str, mongodb_server: str, task_queue: str
) -> None:
    assert settings.effective_temporal_address == temporal_server
    assert settings.effective_mongodb_uri == mongodb_server
    assert settings.temporal_task_queue == task_queue
    assert settings.mongodb_database.startswith("castra_test_")


def test_demo_target_fixture_serves_the_portal(demo_target: str) -> None:
    response = httpx.get(f"{demo_target}/login")
    assert response.status_code == 200
    assert 'id="username"' in response.text


def _wait_for_log_line(proc: ManagedProcess) -> str:
    wait_until_ready(proc, lambda: bool(proc.log_tail(1).strip("= \n")), 10)
    return proc.log_tail(1).strip()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie is dead, merely not yet reaped


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    spawner = (
        "import subprocess, time\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    proc = start_python_process(
        "spawner", ["-c", spawner], Settings(_env_file=None, data_dir=tmp_path)
    )
    grandchild = int(_wait_for_log_line(proc))
    assert _running(grandchild)

    proc.stop(grace_seconds=5)

    assert not proc.alive()
    assert not _running(grandchild)
    assert proc.log_path == tmp_path / "logs" / "spawner.log"


def test_child_that_dies_during_startup_is_reported_with_its_log(tmp_path: Path) -> None:
    crash = "import sys; print('config error: no such tenant', flush=True); sys.exit(3)"
    proc = start_python_process(
        "crasher", ["-c", crash], Settings(_env_file=None, data_dir=tmp_path)
    )

    with pytest.raises(ServiceStartError) as error:
        wait_until_ready(proc, lambda: False, timeout_seconds=10)

    assert "crasher exited with code 3" in str(error.value)
    assert "config error: no such tenant" in str(error.value)


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(ServiceStartError, match=f"127.0.0.1:{port} is already in use"):
            start_mongodb(Settings(_env_file=None, data_dir=tmp_path, mongodb_port=port))


def test_stack_stops_what_it_started_when_a_later_start_fails(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    stack = Stack()
    started: list[ManagedProcess] = []

    def sleeper() -> ManagedProcess:
        started.append(
            start_python_process("sleeper", ["-c", "import time; time.sleep(300)"], settings)
        )
        return started[-1]

    def broken() -> ManagedProcess:
        raise ServiceStartError("mongodb did not become ready")

    with pytest.raises(ServiceStartError):
        stack.start_all([sleeper, broken])

    assert not started[0].alive()
    assert stack.processes == []


async def test_mongodb_data_survives_a_restart(tmp_path: Path) -> None:
    doc_id = uuid.uuid4().hex
    for round_ in ("write", "read"):
        proc = start_mongodb(Settings(_env_file=None, data_dir=tmp_path, mongodb_port=free_port()))
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(proc.address)
        try:
            cases = client["castra"]["cases"]
            if round_ == "write":
                await cases.insert_one({"_id": doc_id, "title": "phishing"})
            else:
                assert await cases.find_one({"_id": doc_id}) == {"_id": doc_id, "title": "phishing"}
        finally:
            await client.close()
            proc.stop()
    assert (tmp_path / "logs" / "mongodb.log").is_file()


async def test_temporal_state_survives_a_restart(tmp_path: Path) -> None:
    workflow_id = f"survivor-{uuid.uuid4().hex}"

    def start() -> ManagedProcess:
        return start_test_temporal(tmp_path)  # fresh free ports, retried on a port race

    proc = start()
    try:
        client = await Client.connect(proc.address)
        # No worker polls this queue: the workflow simply stays running.
        await client.start_workflow("NoSuchWorkflow", id=workflow_id, task_queue="nobody-home")
    finally:
        proc.stop()

    proc = start()
    try:
        client = await Client.connect(proc.address)
        handle = client.get_workflow_handle(workflow_id)
        description = await handle.describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        await handle.terminate()
    finally:
        proc.stop()
    assert (tmp_path / "temporal.db").is_file()


def test_binaries_are_found_next_to_the_interpreter() -> None:
    from castra.services import find_binary

    assert find_binary("temporal") == str(Path(sys.executable).parent / "temporal")
