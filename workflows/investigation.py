"""InvestigationWorkflow: one investigation, from a queued trigger to its final status.

provision a worker -> start it (fresh key) -> hand out steps in order and take their
results as Updates -> tear the worker down and revoke its key on every path -> final status.
The workflow is the source of truth for progress; MongoDB gets snapshots through
activities. Deterministic code only: no I/O, clocks, randomness or settings here.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from activities.store import SaveProgressInput, StoreActivities
    from activities.workers import (
        PROVISIONING_FAILED,
        CheckWorkerInput,
        ProvisionWorkerInput,
        StartWorkerInput,
        TeardownWorkerInput,
        WorkerActivities,
    )
    from core import temporal as tc
    from core.contracts import (
        INVESTIGATION_WORKFLOW,
        NEXT_STEPS,
        PROGRESS,
        SUBMIT_STEP_RESULT,
        InvestigationInput,
        InvestigationResult,
        NextSteps,
        Progress,
        StepResultAck,
        StepResultInput,
    )
    from core.models import InvestigationStatus, StepState, StepStatus, WorkerInfo

STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)
WORKER_RETRY = RetryPolicy(maximum_attempts=3, non_retryable_error_types=[PROVISIONING_FAILED])
# One MongoDB read or write: an attempt lost with a crashed orchestrator is retried soon.
SHORT_ACTIVITY = timedelta(seconds=10)
TEARDOWN_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=20)


class _Stop(Exception):
    """Ends the step loop with a final status and reason."""

    def __init__(self, status: InvestigationStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@workflow.defn(name=INVESTIGATION_WORKFLOW)
class InvestigationWorkflow:
    @workflow.init
    def __init__(self, arg: InvestigationInput) -> None:
        self._arg = arg
        self._status = InvestigationStatus.queued
        self._steps = [StepState(id=s.id) for s in arg.automation.steps]
        self._current: int | None = None  # index of the step handed to the worker
        self._error: str | None = None
        self._worker: WorkerInfo | None = None
        self._started_at: datetime | None = None
        self._finished_at: datetime | None = None
        self._save_lock = asyncio.Lock()
        self._dirty: set[int] = set()  # steps changed since the last write to MongoDB

    # ------------------------------------------------------------------ main

    @workflow.run
    async def run(self, arg: InvestigationInput) -> InvestigationResult:
        deadline = workflow.now() + timedelta(seconds=arg.limits.investigation_timeout_seconds)
        self._started_at = workflow.now()
        try:
            # recording "provisioning" need not hold up the provisioning itself
            recorded = asyncio.create_task(self._set_status(InvestigationStatus.provisioning))
            await self._provision_and_start()
            await recorded
            await self._run_steps(deadline)
            # let the last result's update answer the worker before it is torn down
            await workflow.wait_condition(workflow.all_handlers_finished)
            self._finish(InvestigationStatus.succeeded, None)
        except _Stop as stop:
            self._finish(stop.status, stop.reason)
        except (asyncio.CancelledError, CancelledError):
            self._finish(InvestigationStatus.cancelled, "cancelled on request")
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                self._finish(InvestigationStatus.cancelled, "cancelled on request")
            else:
                self._finish(InvestigationStatus.failed, _reason(err))
        finally:
            # Runs on every path, cancellation included (the cancel is delivered once).
            await self._teardown()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._save()
        return InvestigationResult(status=self._status, error=self._error, steps=self._steps)

    async def _provision_and_start(self) -> None:
        limits = self._arg.limits
        provisioned = await workflow.execute_activity_method(
            WorkerActivities.provision_worker,
            ProvisionWorkerInput(
                investigation_id=self._arg.investigation_id,
                tenant_id=self._arg.tenant_id,
                provisioner=limits.provisioner,
                start_timeout_seconds=limits.worker_start_timeout_seconds,
            ),
            start_to_close_timeout=timedelta(seconds=limits.worker_start_timeout_seconds + 30),
            retry_policy=WORKER_RETRY,
            summary=f"provision a {limits.provisioner} worker",
        )
        self._worker = provisioned.worker
        # The first step is ready before the worker starts, so its first question finds it.
        self._status = InvestigationStatus.running
        self._begin_step(0)
        started = await workflow.execute_activity_method(
            WorkerActivities.start_worker,
            StartWorkerInput(
                worker_id=provisioned.worker.id,
                investigation_id=self._arg.investigation_id,
                backend_url=limits.backend_url,
                heartbeat_interval_seconds=limits.worker_heartbeat_interval_seconds,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=WORKER_RETRY,
            summary="start the worker with a fresh key",
        )
        self._worker = started.worker
        await self._set_status(InvestigationStatus.running)

    async def _run_steps(self, deadline: datetime) -> None:
        for index, step in enumerate(self._arg.automation.steps):
            if index > 0:
                self._begin_step(index)
                await self._save()
            step_timeout = step.timeout_seconds or self._arg.limits.step_timeout_seconds
            await self._await_result(
                index, min(workflow.now() + timedelta(seconds=step_timeout), deadline)
            )
            state = self._steps[index]
            if state.status == StepStatus.failed:
                raise _Stop(InvestigationStatus.failed, f"step {step.id!r} failed: {state.error}")
        self._current = None

    async def _await_result(self, index: int, step_deadline: datetime) -> None:
        """Waits for the step's result, checking on the worker between heartbeats."""
        limits = self._arg.limits
        state = self._steps[index]
        check_every = max(1.0, limits.worker_heartbeat_timeout_seconds / 3)
        while state.status == StepStatus.running:
            left = (step_deadline - workflow.now()).total_seconds()
            if left <= 0:
                raise self._timed_out(index)
            try:
                await workflow.wait_condition(
                    lambda: state.status != StepStatus.running, timeout=min(check_every, left)
                )
            except TimeoutError:
                if workflow.now() >= step_deadline:
                    raise self._timed_out(index) from None
                check = await workflow.execute_activity_method(
                    WorkerActivities.check_worker,
                    CheckWorkerInput(
                        worker_id=self._worker.id if self._worker else "",
                        heartbeat_timeout_seconds=limits.worker_heartbeat_timeout_seconds,
                    ),
                    start_to_close_timeout=SHORT_ACTIVITY,
                    retry_policy=WORKER_RETRY,
                    summary="check the worker's heartbeat",
                )
                if not check.alive and state.status == StepStatus.running:
                    raise _Stop(
                        InvestigationStatus.failed, f"worker lost: {check.reason}"
                    ) from None

    def _timed_out(self, index: int) -> _Stop:
        step = self._arg.automation.steps[index]
        limits = self._arg.limits
        step_timeout = step.timeout_seconds or limits.step_timeout_seconds
        elapsed = (
            workflow.now() - (self._steps[index].started_at or workflow.now())
        ).total_seconds()
        if elapsed + 0.001 >= step_timeout:
            self._steps[index].error = f"step did not finish within {step_timeout:g}s"
            return _Stop(
                InvestigationStatus.timed_out,
                f"step {step.id!r} did not finish within {step_timeout:g}s",
            )
        return _Stop(
            InvestigationStatus.timed_out,
            f"investigation did not finish within {limits.investigation_timeout_seconds:g}s",
        )

    # ------------------------------------------------------------------ worker-facing

    @workflow.update(name=SUBMIT_STEP_RESULT)
    async def submit_step_result(self, arg: StepResultInput) -> StepResultAck:
        index = self._index_of(arg.step_id)
        state = self._steps[index]
        state.status = StepStatus(arg.status)
        state.outputs = arg.outputs
        state.error = arg.error
        state.artifacts = arg.artifacts
        state.started_at = arg.started_at or state.started_at
        state.finished_at = workflow.now()
        self._dirty.add(index)
        await self._save()
        return StepResultAck(
            step_id=arg.step_id,
            status=state.status.value,
            investigation_status=self._status,
            last=state.status == StepStatus.failed or index == len(self._steps) - 1,
        )

    @submit_step_result.validator
    def _validate_step_result(self, arg: StepResultInput) -> None:
        if self._status.terminal:
            raise ValueError(f"investigation is already {self._status.value}")
        if arg.step_id not in {s.id for s in self._steps}:
            raise ValueError(f"no step {arg.step_id!r} in this investigation")
        current = self._steps[self._current].id if self._current is not None else None
        if arg.step_id != current:
            raise ValueError(f"step {arg.step_id!r} is not running (running: {current})")
        if self._steps[self._current or 0].status != StepStatus.running:
            raise ValueError(f"step {arg.step_id!r} already has a result")

    @workflow.query(name=NEXT_STEPS)
    def next_steps(self) -> NextSteps:
        done = self._status.terminal or (
            self._status == InvestigationStatus.running and self._current is None
        )
        steps = []
        if not done and self._current is not None:
            if self._steps[self._current].status == StepStatus.running:
                steps = [self._arg.automation.steps[self._current]]
        context = {
            s.id: {"status": s.status.value, "outputs": s.outputs}
            for s in self._steps
            if s.status in (StepStatus.succeeded, StepStatus.failed, StepStatus.skipped)
        }
        return NextSteps(done=done, status=self._status, steps=steps, context=context)

    @workflow.query(name=PROGRESS)
    def progress(self) -> Progress:
        return Progress(
            status=self._status,
            steps=self._steps,
            error=self._error,
            worker_id=self._worker.id if self._worker else None,
        )

    # ------------------------------------------------------------------ helpers

    def _index_of(self, step_id: str) -> int:
        return next(i for i, s in enumerate(self._steps) if s.id == step_id)

    def _begin_step(self, index: int) -> None:
        self._current = index
        self._dirty.add(index)
        self._steps[index].status = StepStatus.running
        self._steps[index].started_at = workflow.now()

    def _close_open_steps(self) -> None:
        """On an unsuccessful end: the running step is cancelled, those never reached skipped."""
        for index, state in enumerate(self._steps):
            if state.status == StepStatus.running:
                state.status = StepStatus.cancelled
                state.finished_at = workflow.now()
            elif state.status == StepStatus.pending:
                state.status = StepStatus.skipped
            else:
                continue
            self._dirty.add(index)
        self._current = None

    def _finish(self, status: InvestigationStatus, reason: str | None) -> None:
        if status != InvestigationStatus.succeeded:
            self._close_open_steps()
        self._status = status
        self._error = reason
        self._current = None
        self._finished_at = workflow.now()
        workflow.upsert_search_attributes([tc.STATUS.value_set(status.value)])

    async def _set_status(self, status: InvestigationStatus) -> None:
        self._status = status
        workflow.upsert_search_attributes([tc.STATUS.value_set(status.value)])
        await self._save()

    async def _save(self) -> None:
        # Serialized, and the snapshot is taken inside the lock, so the last write
        # always carries the newest state; steps changed while it runs go with the next.
        async with self._save_lock:
            progress = SaveProgressInput(
                investigation_id=self._arg.investigation_id,
                status=self._status,
                changed_steps={i: self._steps[i].model_copy() for i in sorted(self._dirty)},
                worker=self._worker,
                error=self._error,
                started_at=self._started_at,
                finished_at=self._finished_at,
            )
            self._dirty.clear()
            await workflow.execute_activity_method(
                StoreActivities.save_progress,
                progress,
                start_to_close_timeout=SHORT_ACTIVITY,
                retry_policy=STORE_RETRY,
                summary=f"record: {self._status.value}"
                + (f", step {self._steps[self._current].id}" if self._current is not None else ""),
            )

    async def _teardown(self) -> None:
        if self._worker is None:
            return
        await workflow.execute_activity_method(
            WorkerActivities.teardown_worker,
            TeardownWorkerInput(worker_id=self._worker.id),
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=TEARDOWN_RETRY,
            summary="tear down the worker and revoke its key",
        )
        self._worker = self._worker.model_copy(update={"status": "stopped"})


def _reason(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or err)
