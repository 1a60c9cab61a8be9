"""The step loop: ask the backend for runnable steps, run them, report each result.

It ends when the backend says ``done``, when a heartbeat reply says ``stop`` (a running
step is cancelled at once), or when the backend refuses or stays unreachable. A step that
raises becomes a ``failed`` result with a redacted ``Type: message`` error; it never takes
the worker down.

A credential is fetched just in time, only for a step that names it and only once its
``when`` has passed (``when`` therefore cannot see ``credential``), and every one of its
values is redacted from the step's outputs, error and artifact metadata before they are
submitted. Logs carry the investigation, step and status, never an error text: a secret
too short to redact could be in it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from core.contracts import (
    MAX_STEP_RESULT_BYTES,
    NextSteps,
    StepResultAck,
    StepResultSubmission,
    WorkerInvestigation,
    WorkerStartRequest,
)
from core.models import ArtifactRef, BrowserStep, HttpStep
from worker_runtime.browser import BrowserExecutor
from worker_runtime.client import BackendClient, WorkerApiError
from worker_runtime.http import HttpExecutor
from worker_runtime.redaction import Redactor
from worker_runtime.steps import StepError, StepRun
from worker_runtime.templates import evaluate_when

logger = logging.getLogger(__name__)

_IDLE_FIRST, _IDLE_MAX = 0.2, 1.0  # seconds between polls while no step is runnable


class StepLoop:
    def __init__(
        self,
        start: WorkerStartRequest,
        *,
        client: BackendClient | None = None,
        http: HttpExecutor | None = None,
        browser: BrowserExecutor | None = None,
    ) -> None:
        self.investigation_id = start.investigation_id
        self._interval = start.heartbeat_interval_seconds
        self._client = client or BackendClient(
            start.backend_url, start.api_key, start.investigation_id
        )
        self._http = http or HttpExecutor()
        self._browser = browser or BrowserExecutor()
        self._submitted: set[str] = set()
        self._log = {"investigation": self.investigation_id}

    async def run(self) -> None:
        try:
            # both questions at once: the first step is usually ready already
            investigation, first = await asyncio.gather(
                self._client.investigation(), self._client.next_steps()
            )
            heartbeat = asyncio.create_task(self._heartbeat())
            steps = asyncio.create_task(self._steps(investigation, first))
            try:
                await asyncio.wait({heartbeat, steps}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (heartbeat, steps):
                    task.cancel()
                await asyncio.gather(heartbeat, steps, return_exceptions=True)
            failure = None if steps.cancelled() else steps.exception()
            if failure is not None:
                raise failure
        except WorkerApiError as exc:
            # The backend refused us or stayed unreachable: nothing more can be reported.
            if exc.status_code == 401:  # key revoked: the investigation ended (e.g. cancelled)
                logger.info("worker key revoked, stopping", extra=self._log)
            else:
                logger.error("step loop ended by the backend: %s", exc, extra=self._log)
        finally:
            await self._browser.close()
            await self._http.aclose()
            await self._client.aclose()
        logger.info("step loop ended", extra=self._log)

    async def _heartbeat(self) -> None:
        """Returns when the investigation is over for this worker."""
        while True:
            try:
                reply = await self._client.heartbeat()
            except WorkerApiError as exc:
                logger.error("heartbeat refused, stopping: %s", exc, extra=self._log)
                return
            if reply.stop:
                logger.info(
                    "backend asked the worker to stop",
                    extra={**self._log, "status": str(reply.status)},
                )
                return
            await asyncio.sleep(self._interval)

    async def _steps(self, investigation: WorkerInvestigation, first: NextSteps) -> None:
        base: dict[str, Any] = {
            "input": investigation.input,
            "vars": {**investigation.automation.vars, **investigation.vars},
        }
        idle = _IDLE_FIRST
        pending: NextSteps | None = first
        while True:
            batch = pending or await self._client.next_steps()
            pending = None
            if batch.done:
                return
            todo = [s for s in batch.steps if s.id not in self._submitted]
            if not todo:
                await asyncio.sleep(idle)
                idle = min(idle * 1.5, _IDLE_MAX)
                continue
            idle = _IDLE_FIRST
            done_steps = dict(batch.context)
            for step in todo:
                ack = await self._run_step(step, {**base, "steps": done_steps}, done_steps)
                if ack is not None and (ack.last or ack.investigation_status.terminal):
                    return

    async def _run_step(
        self,
        step: BrowserStep | HttpStep,
        context: dict[str, Any],
        done_steps: dict[str, dict[str, Any]],
    ) -> StepResultAck | None:
        log = {**self._log, "step": step.id}
        started_at = datetime.now(UTC)
        run = StepRun(
            step.id, context, upload=functools.partial(self._client.upload_artifact, step.id)
        )
        status: Literal["succeeded", "failed", "skipped"] = "succeeded"
        error: str | None = None
        try:
            if step.when is not None and not evaluate_when(step.when, context):
                status = "skipped"
            else:
                logger.info("step started", extra=log)
                await self._execute(step, run)
        except StepError as exc:
            status, error = "failed", str(exc)
        except Exception as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"

        redactor = Redactor(run.secret_values())
        result = StepResultSubmission(
            status=status,
            outputs=redactor.value(run.outputs),
            error=None if error is None else redactor.text(error),
            artifacts=[
                ArtifactRef.model_validate(redactor.value(a.model_dump())) for a in run.artifacts
            ],
            started_at=started_at,
        )
        result = _within_limit(result)
        self._submitted.add(step.id)
        done_steps[step.id] = {"status": status, "outputs": result.outputs}
        logger.info("step finished", extra={**log, "status": status})
        try:
            return await self._client.submit_result(step.id, result)
        except WorkerApiError as exc:
            if exc.status_code == 409:  # already recorded (a retried submission landed twice)
                logger.warning("result already recorded", extra=log)
                return None
            raise

    async def _execute(self, step: BrowserStep | HttpStep, run: StepRun) -> None:
        if step.credential:
            try:
                run.credential = await self._client.credential(step.credential)
            except WorkerApiError as exc:
                raise StepError(f"credential {step.credential!r}: {exc}") from None
            run.context["credential"] = run.credential.reveal()
        timeout = step.timeout_seconds
        try:
            async with asyncio.timeout(timeout) as deadline:
                if isinstance(step, HttpStep):
                    await self._http.run(step, run)
                else:
                    await self._browser.run(step, run)
        except TimeoutError:
            if deadline.expired():
                raise StepError(f"step timed out after {timeout:g}s") from None
            raise


def _within_limit(result: StepResultSubmission) -> StepResultSubmission:
    """A result the backend would refuse for its size becomes a failure that says so."""
    size = len(result.model_dump_json())
    if size <= MAX_STEP_RESULT_BYTES:
        return result
    return StepResultSubmission(
        status="failed",
        error=f"the step's result is {size // 1024} KiB; the limit is "
        f"{MAX_STEP_RESULT_BYTES // 1024} KiB (extract less)",
        artifacts=result.artifacts,
        started_at=result.started_at,
    )
