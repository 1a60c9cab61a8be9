"""The API's door onto a running InvestigationWorkflow: its query, update and cancel,
called only by the names in core/contracts.py, with Temporal's errors mapped to castra's.

Calls are bounded: when no orchestrator serves the workflow (it is down, or busy), the
worker gets a 503 to retry instead of a request that hangs. An unreachable cluster
surfaces as ``RPCError`` and becomes a 503 in api/problems.py.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from core.contracts import (
    NEXT_STEPS,
    SUBMIT_STEP_RESULT,
    NextSteps,
    StepResultAck,
    StepResultInput,
    investigation_workflow_id,
)
from core.errors import Conflict, Unavailable

QUERY_TIMEOUT = timedelta(seconds=10)
UPDATE_TIMEOUT = timedelta(seconds=30)

_NOT_RUNNING = "the investigation's workflow is not running"
_NO_ANSWER = "the investigation's workflow did not answer in time, retry later"


def _handle(client: Client, investigation_id: str) -> WorkflowHandle[object, object]:
    return client.get_workflow_handle(investigation_workflow_id(investigation_id))


def _mapped(exc: RPCError) -> Exception:
    if exc.status == RPCStatusCode.NOT_FOUND:
        return Conflict(_NOT_RUNNING)
    if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
        return Unavailable(_NO_ANSWER)
    if exc.status == RPCStatusCode.FAILED_PRECONDITION:
        # the workflow cannot take the call in its current state (e.g. it is closing, or
        # its last task failed): nothing the caller sent can fix that, retrying later might
        return Conflict(f"the investigation's workflow cannot take this call now: {exc.message}")
    return exc


async def next_steps(client: Client, investigation_id: str) -> NextSteps:
    try:
        answer = await _handle(client, investigation_id).query(
            NEXT_STEPS, result_type=NextSteps, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as exc:
        raise _mapped(exc) from None
    except RPCTimeoutOrCancelledError:
        raise Unavailable(_NO_ANSWER) from None
    except (WorkflowQueryRejectedError, WorkflowQueryFailedError) as exc:
        raise Conflict(f"the investigation's workflow did not answer: {exc}") from None
    assert isinstance(answer, NextSteps)
    return answer


async def submit_step_result(
    client: Client, investigation_id: str, result: StepResultInput
) -> StepResultAck:
    try:
        # One update id per step: a worker that retries after a lost answer gets the
        # first submission's acknowledgement back instead of a conflict.
        ack = await _handle(client, investigation_id).execute_update(
            SUBMIT_STEP_RESULT,
            result,
            id=f"result-{result.step_id}",
            result_type=StepResultAck,
            rpc_timeout=UPDATE_TIMEOUT,
        )
    except WorkflowUpdateFailedError as exc:
        # the workflow's validator (or handler) refused the result: say why
        message = getattr(exc.cause, "message", None) or str(exc.cause)
        raise Conflict(message) from None
    except RPCError as exc:
        raise _mapped(exc) from None
    except RPCTimeoutOrCancelledError:
        raise Unavailable(_NO_ANSWER) from None
    assert isinstance(ack, StepResultAck)
    return ack


async def cancel(client: Client, investigation_id: str) -> None:
    try:
        await _handle(client, investigation_id).cancel(rpc_timeout=QUERY_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise Conflict("the investigation has already finished") from None
        raise _mapped(exc) from None
