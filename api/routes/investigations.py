"""``/v1/investigations``: trigger, read, list and cancel a tenant's investigations.

Triggers go through core/triggers.py like every other trigger: recorded first, then
started; while Temporal is away they stay queued for the dispatcher (api/background.py).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from pymongo import ReturnDocument

from api import workflow
from api.bodies import JSONRoute
from api.deps import DbDep, MaybeTemporalDep, SettingsDep, TenantDep
from api.problems import invalid
from api.schemas import InvestigationOut, InvestigationPage, TriggerRequest
from core import db as dbm
from core.contracts import investigation_workflow_id
from core.errors import Conflict, NotFound, Unavailable
from core.models import InvestigationStatus, TriggerInfo, TriggerKind
from core.settings import Settings
from core.triggers import record_investigation, try_start_workflow

router = APIRouter(prefix="/v1/investigations", tags=["investigations"], route_class=JSONRoute)


def investigation_out(doc: dbm.Document, request: Request, settings: Settings) -> InvestigationOut:
    wid = investigation_workflow_id(doc["_id"])
    links = {
        "self": str(request.url_for("get_investigation", investigation_id=doc["_id"])),
        "temporal_ui": f"{settings.effective_temporal_ui_url}/namespaces/"
        f"{settings.temporal_namespace}/workflows/{wid}",
    }
    return InvestigationOut.model_validate({**doc, "id": doc["_id"], "links": links})


async def find_investigation(db: dbm.Db, tenant_id: str, investigation_id: str) -> dbm.Document:
    doc = await db[dbm.INVESTIGATIONS].find_one({"_id": investigation_id, "tenant_id": tenant_id})
    if doc is None:
        raise NotFound(f"investigation {investigation_id!r} not found")
    return doc


@router.post("", status_code=202, response_model=InvestigationOut)
async def trigger_investigation(
    body: TriggerRequest,
    request: Request,
    tenant_id: TenantDep,
    db: DbDep,
    settings: SettingsDep,
    temporal: MaybeTemporalDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
    ] = None,
) -> InvestigationOut:
    doc, _created = await record_investigation(
        db,
        tenant_id=tenant_id,
        automation_id=body.automation_id,
        data=body.input,
        trigger=TriggerInfo(kind=TriggerKind.api),
        idempotency_key=idempotency_key,
    )
    # A repeated key may find its first attempt still unstarted: starting is idempotent.
    # (A start Temporal refuses for good answers the failed investigation, still a 202.)
    if not doc["workflow_started"] and doc["status"] == InvestigationStatus.queued.value:
        await try_start_workflow(temporal, db, settings, doc)
    return investigation_out(doc, request, settings)


@router.get("/{investigation_id}", response_model=InvestigationOut)
async def get_investigation(
    investigation_id: str, request: Request, tenant_id: TenantDep, db: DbDep, settings: SettingsDep
) -> InvestigationOut:
    return investigation_out(
        await find_investigation(db, tenant_id, investigation_id), request, settings
    )


def _encode_cursor(doc: dbm.Document) -> str:
    raw = json.dumps([doc["created_at"].isoformat(), doc["_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, doc_id = json.loads(raw)
        when = datetime.fromisoformat(created)
        if when.tzinfo is None or not isinstance(doc_id, str):
            raise ValueError(cursor)
        return when, doc_id
    except (ValueError, TypeError, RecursionError, binascii.Error):
        raise invalid("query.cursor", "not a cursor returned by this endpoint") from None


@router.get("", response_model=InvestigationPage)
async def list_investigations(
    request: Request,
    tenant_id: TenantDep,
    db: DbDep,
    settings: SettingsDep,
    status: InvestigationStatus | None = None,
    automation_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> InvestigationPage:
    query: dbm.Document = {"tenant_id": tenant_id}
    if status is not None:
        query["status"] = status.value
    if automation_id is not None:
        query["automation_id"] = automation_id
    if cursor is not None:
        created, doc_id = _decode_cursor(cursor)
        query["$or"] = [
            {"created_at": {"$lt": created}},
            {"created_at": created, "_id": {"$lt": doc_id}},
        ]
    found = (
        db[dbm.INVESTIGATIONS].find(query).sort([("created_at", -1), ("_id", -1)]).limit(limit + 1)
    )
    docs = [doc async for doc in found]
    next_cursor = _encode_cursor(docs[limit - 1]) if len(docs) > limit else None
    return InvestigationPage(
        items=[investigation_out(doc, request, settings) for doc in docs[:limit]],
        next_cursor=next_cursor,
    )


@router.post("/{investigation_id}/cancel", status_code=202, response_model=InvestigationOut)
async def cancel_investigation(
    investigation_id: str,
    request: Request,
    tenant_id: TenantDep,
    db: DbDep,
    settings: SettingsDep,
    temporal: MaybeTemporalDep,
) -> InvestigationOut:
    doc = await find_investigation(db, tenant_id, investigation_id)
    if InvestigationStatus(doc["status"]).terminal:
        raise Conflict(f"the investigation has already finished ({doc['status']})")
    if not doc["workflow_started"]:
        # Nothing runs yet: cancelling is a record update (unless a start races us).
        now = dbm.utcnow()
        changed = await db[dbm.INVESTIGATIONS].find_one_and_update(
            {
                "_id": investigation_id,
                "workflow_started": False,
                "status": InvestigationStatus.queued.value,
            },
            {
                "$set": {
                    "status": InvestigationStatus.cancelled.value,
                    "error": "cancelled before it started",
                    "finished_at": now,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        if changed is not None:
            return investigation_out(changed, request, settings)
    if temporal is None:
        raise Unavailable("Temporal is unavailable, retry later")
    await workflow.cancel(temporal, investigation_id)
    return investigation_out(
        await find_investigation(db, tenant_id, investigation_id), request, settings
    )
