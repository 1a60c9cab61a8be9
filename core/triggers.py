"""Starting investigations: the one path every trigger (REST, webhook, poller) takes.

A trigger is first recorded in MongoDB (``queued``, ``workflow_started: false``), then its
workflow is started. If Temporal cannot be reached the record stays and
``dispatch_pending`` starts it later, so no trigger is ever lost. One Temporal refuses for
good is marked ``failed`` instead: left queued, it would hold up every trigger behind it.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from pymongo.errors import DuplicateKeyError
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from core import db as dbm
from core import temporal as tc
from core.contracts import (
    INVESTIGATION_WORKFLOW,
    InvestigationInput,
    InvestigationLimits,
    investigation_workflow_id,
)
from core.errors import InvalidInput, NotFound
from core.inputs import check_input
from core.models import AutomationDefinition, InvestigationStatus, StepState, TriggerInfo
from core.settings import Settings

log = logging.getLogger(__name__)

# Temporal answers that say "not now" about the cluster, not "never" about this workflow:
# the record waits for the dispatcher. Authentication, permission and namespace errors
# belong here too: they fail every start alike, and fixing the deployment should start
# the triggers that waited, not find them all failed. Any other answer (INVALID_ARGUMENT
# for an input beyond Temporal's payload limit, say) refuses this one workflow for good.
_OUTAGE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.UNKNOWN,
    RPCStatusCode.INTERNAL,
    RPCStatusCode.UNAUTHENTICATED,
    RPCStatusCode.PERMISSION_DENIED,
    RPCStatusCode.NOT_FOUND,
}

IDEMPOTENCY_MISMATCH = "Idempotency-Key already used with a different request"


class StartOutcome(StrEnum):
    started = "started"
    deferred = "deferred"  # Temporal is unreachable: dispatch_pending retries
    refused = "refused"  # it can never start: the investigation is marked failed


def limits_for(settings: Settings, automation: AutomationDefinition) -> InvestigationLimits:
    return InvestigationLimits(
        backend_url=settings.effective_public_url,
        provisioner=settings.provisioner,
        investigation_timeout_seconds=automation.timeout_seconds
        or settings.investigation_timeout_seconds,
        step_timeout_seconds=settings.step_timeout_seconds,
        worker_start_timeout_seconds=settings.worker_start_timeout_seconds,
        worker_heartbeat_timeout_seconds=settings.worker_heartbeat_timeout_seconds,
        worker_heartbeat_interval_seconds=settings.worker_heartbeat_interval_seconds,
    )


async def record_investigation(
    db: dbm.Db,
    *,
    tenant_id: str,
    automation_id: str,
    data: dict[str, Any],
    trigger: TriggerInfo,
    idempotency_key: str | None = None,
) -> tuple[dbm.Document, bool]:
    """Records a queued investigation; returns ``(doc, created)``. With an idempotency key
    already used by this tenant, returns the earlier investigation and ``False``."""
    automation = await db[dbm.AUTOMATIONS].find_one({"_id": automation_id, "tenant_id": tenant_id})
    if automation is None:
        raise NotFound(f"automation {automation_id!r} not found")
    if idempotency_key is not None:
        earlier = await db[dbm.INVESTIGATIONS].find_one(
            {"tenant_id": tenant_id, "idempotency_key": idempotency_key}
        )
        if earlier is not None:
            return _same_request(earlier, automation_id, data), False
    definition = AutomationDefinition.model_validate(automation["definition"])
    check_input(definition, data)
    doc: dbm.Document = {
        "_id": dbm.new_id("inv"),
        "tenant_id": tenant_id,
        "automation_id": automation_id,
        "automation_name": definition.name,
        "definition": automation["definition"],
        "status": InvestigationStatus.queued.value,
        "trigger": trigger.model_dump(mode="json"),
        "input": data,
        "steps": [StepState(id=s.id).model_dump(mode="json") for s in definition.steps],
        "worker": None,
        "error": None,
        "workflow_started": False,
        "created_at": dbm.utcnow(),
        "started_at": None,
        "finished_at": None,
    }
    if idempotency_key is not None:
        doc["idempotency_key"] = idempotency_key
    try:
        await db[dbm.INVESTIGATIONS].insert_one(doc)
    except dbm.UNSTORABLE:
        raise InvalidInput(dbm.unstorable(data, "input")) from None
    except DuplicateKeyError:
        # a concurrent request with the same idempotency key won the race
        earlier = await db[dbm.INVESTIGATIONS].find_one(
            {"tenant_id": tenant_id, "idempotency_key": idempotency_key}
        )
        if earlier is None:
            raise
        return _same_request(earlier, automation_id, data), False
    return doc, True


def _same_request(earlier: dbm.Document, automation_id: str, data: dict[str, Any]) -> dbm.Document:
    """A repeated key must come with the same request, or the client would take the answer
    to another one for its own (draft-ietf-httpapi-idempotency-key-header: 422)."""
    if earlier["automation_id"] != automation_id or earlier["input"] != data:
        raise InvalidInput(IDEMPOTENCY_MISMATCH)
    return earlier


async def start_workflow(client: Client, db: dbm.Db, settings: Settings, doc: dbm.Document) -> None:
    """Starts the investigation's workflow (idempotent) and marks the record started."""
    definition = AutomationDefinition.model_validate(doc["definition"])
    trigger = TriggerInfo.model_validate(doc["trigger"])
    arg = InvestigationInput(
        investigation_id=doc["_id"],
        tenant_id=doc["tenant_id"],
        automation_id=doc["automation_id"],
        automation=definition,
        input=doc["input"],
        trigger=trigger,
        limits=limits_for(settings, definition),
    )
    try:
        await client.start_workflow(
            INVESTIGATION_WORKFLOW,
            arg,
            id=investigation_workflow_id(doc["_id"]),
            task_queue=settings.temporal_task_queue,
            # what the Temporal Web UI shows in its list and on the workflow's page
            static_summary=f"{definition.name} ({trigger.kind.value} trigger)",
            static_details=f"tenant `{doc['tenant_id']}` · automation `{doc['automation_id']}`"
            f" · investigation `{doc['_id']}`",
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(tc.TENANT, doc["tenant_id"]),
                    SearchAttributePair(tc.AUTOMATION, doc["automation_id"]),
                    SearchAttributePair(tc.STATUS, InvestigationStatus.queued.value),
                    SearchAttributePair(tc.TRIGGER, trigger.kind.value),
                ]
            ),
        )
    except WorkflowAlreadyStartedError:
        pass  # started by an earlier attempt whose acknowledgement was lost
    await db[dbm.INVESTIGATIONS].update_one(
        {"_id": doc["_id"]}, {"$set": {"workflow_started": True}}
    )


async def try_start_workflow(
    client: Client | None, db: dbm.Db, settings: Settings, doc: dbm.Document
) -> StartOutcome:
    """``start_workflow`` that never fails the trigger's request: while Temporal is
    unreachable the record stays for ``dispatch_pending``; a workflow Temporal refuses for
    good (or a record that no longer validates) marks the investigation failed, since it
    would otherwise stay queued for ever. ``doc`` is updated to match the record."""
    if client is None:
        return StartOutcome.deferred
    extra = {"investigation": doc["_id"], "tenant": doc["tenant_id"]}
    try:
        await start_workflow(client, db, settings, doc)
    except RPCError as exc:
        if exc.status in _OUTAGE:
            log.warning("workflow start deferred", extra={**extra, "reason": str(exc)})
            return StartOutcome.deferred
        reason = exc.message or exc.status.name
    except ValidationError:
        reason = "its recorded automation or trigger is no longer valid"
    else:
        doc["workflow_started"] = True
        return StartOutcome.started
    log.warning("workflow start refused", extra={**extra, "reason": reason})
    await _refused(db, doc, f"could not start: {reason}")
    return StartOutcome.refused


async def _refused(db: dbm.Db, doc: dbm.Document, error: str) -> None:
    changes = {
        "status": InvestigationStatus.failed.value,
        "error": error,
        "finished_at": dbm.utcnow(),
    }
    # unless a cancel got there first
    result = await db[dbm.INVESTIGATIONS].update_one(
        {"_id": doc["_id"], "workflow_started": False, "status": InvestigationStatus.queued.value},
        {"$set": changes},
    )
    if result.modified_count:
        doc.update(changes)


async def dispatch_pending(client: Client, db: dbm.Db, settings: Settings, limit: int = 100) -> int:
    """Starts the workflows of recorded triggers that could not be started yet, oldest
    first; stops at the first sign that Temporal is still away."""
    started = 0
    cursor = (
        db[dbm.INVESTIGATIONS]
        .find({"workflow_started": False, "status": InvestigationStatus.queued.value})
        .sort("created_at", 1)
        .limit(limit)
    )
    async for doc in cursor:
        outcome = await try_start_workflow(client, db, settings, doc)
        if outcome is StartOutcome.deferred:
            break
        if outcome is StartOutcome.started:
            started += 1
    return started
