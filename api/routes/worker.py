"""``/worker/v1``: the door a worker uses for its one investigation.

Every route needs the worker's key and the ``Castra-Investigation`` header (api/deps.py).
Step results go to the workflow as Temporal Updates; the workflow, not this module,
decides whether a result is acceptable. A credential's clear value leaves only through
``GET /worker/v1/credentials/{name}``, and only for a step the workflow hands out now.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from api import workflow
from api.bodies import JSONRoute
from api.deps import DbDep, SecretsDep, TemporalDep, WorkerDep
from api.routes.artifacts import bucket
from core import db as dbm
from core.contracts import (
    HeartbeatReply,
    NextSteps,
    StepResultAck,
    StepResultInput,
    StepResultSubmission,
    WorkerInvestigation,
)
from core.errors import Forbidden, NotFound
from core.models import NAME_RE, ArtifactRef, AutomationDefinition, InvestigationStatus

log = logging.getLogger(__name__)

router = APIRouter(prefix="/worker/v1", tags=["worker"], route_class=JSONRoute)

StepId = Annotated[str, Path(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


async def _investigation(db: dbm.Db, worker: WorkerDep) -> dbm.Document:
    doc = await db[dbm.INVESTIGATIONS].find_one(
        {"_id": worker.investigation_id, "tenant_id": worker.tenant_id}
    )
    if doc is None:
        raise NotFound(f"investigation {worker.investigation_id!r} not found")
    return doc


@router.get("/investigation", response_model=WorkerInvestigation)
async def get_investigation(worker: WorkerDep, db: DbDep) -> WorkerInvestigation:
    doc = await _investigation(db, worker)
    definition = AutomationDefinition.model_validate(doc["definition"])
    return WorkerInvestigation(
        id=doc["_id"],
        tenant_id=doc["tenant_id"],
        automation=definition,
        input=doc["input"],
        vars=definition.vars,
    )


@router.get("/steps/next", response_model=NextSteps)
async def next_steps(worker: WorkerDep, temporal: TemporalDep) -> NextSteps:
    return await workflow.next_steps(temporal, worker.investigation_id)


@router.post("/steps/{step_id}/result", response_model=StepResultAck)
async def submit_step_result(
    step_id: StepId, body: StepResultSubmission, worker: WorkerDep, temporal: TemporalDep
) -> StepResultAck:
    result = StepResultInput(step_id=step_id, **dict(body))
    ack = await workflow.submit_step_result(temporal, worker.investigation_id, result)
    log.info(
        "step result accepted",
        extra={
            "tenant": worker.tenant_id,
            "investigation": worker.investigation_id,
            "step": step_id,
            "status": body.status,
        },
    )
    return ack


@router.post("/heartbeat", response_model=HeartbeatReply)
async def heartbeat(worker: WorkerDep, db: DbDep) -> HeartbeatReply:
    await db[dbm.WORKERS].update_one(
        {"_id": worker.worker_id}, {"$set": {"last_heartbeat_at": dbm.utcnow()}}
    )
    status = InvestigationStatus((await _investigation(db, worker))["status"])
    return HeartbeatReply(stop=status.terminal, status=status)


@router.get("/credentials/{name}")
async def get_credential(
    name: Annotated[str, Path(pattern=NAME_RE.pattern)],
    worker: WorkerDep,
    temporal: TemporalDep,
    secrets: SecretsDep,
) -> JSONResponse:
    running = await workflow.next_steps(temporal, worker.investigation_id)
    if not any(step.credential == name for step in running.steps):
        raise Forbidden("credential not used by the running step")
    credential = await secrets.get(worker.tenant_id, name)
    log.info(
        "credential handed out",
        extra={
            "tenant": worker.tenant_id,
            "investigation": worker.investigation_id,
            "credential": name,
        },
    )
    return JSONResponse(credential.reveal(), headers={"Cache-Control": "no-store"})


@router.post("/artifacts", response_model=ArtifactRef, status_code=201)
async def upload_artifact(
    request: Request,
    worker: WorkerDep,
    db: DbDep,
    step_id: Annotated[str, Query(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")],
    name: Annotated[str, Query(pattern=NAME_RE.pattern)],
) -> ArtifactRef:
    # api/limits.py holds the body to ARTIFACT_BYTES, declared or streamed, with a 413
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        chunks.append(chunk)
    content_type = request.headers.get("content-type") or "application/octet-stream"
    file_id = await bucket(db).upload_from_stream(
        name,
        b"".join(chunks),
        metadata={
            "tenant_id": worker.tenant_id,
            "investigation_id": worker.investigation_id,
            "step_id": step_id,
            "name": name,
            "content_type": content_type,
        },
    )
    return ArtifactRef(id=str(file_id), name=name, content_type=content_type, size=size)
