"""Starting investigations: the one path every trigger (REST, webhook, poller) takes.

A trigger is first recorded in MongoDB (``queued``, ``workflow_started: false``), then its
workflow is started. If Temporal cannot be reached the record stays and
``dispatch_pending`` starts it later, so no trigger is ever lost.
"""

from __future__ import annotations

import logging
from typing import Any

import jsonschema
from pymongo.errors import DuplicateKeyError
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from core import db as dbm
from core import temporal as tc
from core.contracts import (
    INVESTIGATION_WORKFLOW,
    InvestigationInput,
    InvestigationLimits,
    investigation_workflow_id,
)
from core.errors import InvalidInput, NotFound
from core.models import AutomationDefinition, InvestigationStatus, StepState, TriggerInfo
from core.settings import Settings

log = logging.getLogger(__name__)


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


def check_input(automation: AutomationDefinition, data: dict[str, Any]) -> None:
    if not automation.inputs:
        return
    validator = jsonschema.Draft202012Validator(automation.inputs)
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = "input" + "".join(f"[{p!r}]" for p in error.absolute_path)
        raise InvalidInput(f"{where}: {error.message}")


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
            return earlier, False
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
    except DuplicateKeyError:
        # a concurrent request with the same idempotency key won the race
        earlier = await db[dbm.INVESTIGATIONS].find_one(
            {"tenant_id": tenant_id, "idempotency_key": idempotency_key}
        )
        if earlier is None:
            raise
        return earlier, False
    return doc, True


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
) -> bool:
    """``start_workflow`` that leaves the record for ``dispatch_pending`` when Temporal is
    unreachable, instead of failing the trigger."""
    if client is None:
        return False
    try:
        await start_workflow(client, db, settings, doc)
        return True
    except RPCError as exc:
        log.warning(
            "workflow start deferred",
            extra={"investigation": doc["_id"], "tenant": doc["tenant_id"], "reason": str(exc)},
        )
        return False


async def dispatch_pending(client: Client, db: dbm.Db, settings: Settings, limit: int = 100) -> int:
    """Starts the workflows of recorded triggers that could not be started yet."""
    started = 0
    cursor = (
        db[dbm.INVESTIGATIONS]
        .find({"workflow_started": False, "status": InvestigationStatus.queued.value})
        .sort("created_at", 1)
        .limit(limit)
    )
    async for doc in cursor:
        if await try_start_workflow(client, db, settings, doc):
            started += 1
        else:
            break
    return started
