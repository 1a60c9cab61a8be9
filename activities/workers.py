"""Worker lifecycle activities: provision, start (with a fresh key), watch, tear down.

The worker key is minted and sent inside ``start_worker`` and never returned, so it never
reaches Temporal history; MongoDB keeps only its hash.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.provisioners import Provisioner, WorkerSpec
from core import db as dbm
from core.contracts import WorkerStartRequest
from core.errors import ProvisioningError
from core.models import Model, WorkerInfo
from core.security import hash_key, new_key

PROVISIONING_FAILED = "ProvisioningFailed"


class ProvisionWorkerInput(Model):
    investigation_id: str
    tenant_id: str
    provisioner: str
    start_timeout_seconds: float = 30.0


class ProvisionWorkerResult(Model):
    worker: WorkerInfo


class StartWorkerInput(Model):
    worker_id: str
    investigation_id: str
    backend_url: str
    heartbeat_interval_seconds: float = 5.0


class StartWorkerResult(Model):
    worker: WorkerInfo


class CheckWorkerInput(Model):
    worker_id: str
    heartbeat_timeout_seconds: float = 30.0


class CheckWorkerResult(Model):
    alive: bool
    reason: str | None = None


class TeardownWorkerInput(Model):
    worker_id: str


class TeardownWorkerResult(Model):
    destroyed: bool


class WorkerActivities:
    def __init__(self, db: dbm.Db, provisioners: dict[str, Provisioner]) -> None:
        self._db = db
        self._provisioners = provisioners

    def _provisioner(self, name: str) -> Provisioner:
        try:
            return self._provisioners[name]
        except KeyError:
            raise ApplicationError(
                f"no provisioner {name!r} is configured on this orchestrator",
                type=PROVISIONING_FAILED,
                non_retryable=True,
            ) from None

    async def _worker(self, worker_id: str) -> dbm.Document:
        doc = await self._db[dbm.WORKERS].find_one({"_id": worker_id})
        if doc is None:
            raise ApplicationError(f"worker {worker_id} is not recorded", non_retryable=True)
        return doc

    @activity.defn
    async def provision_worker(self, arg: ProvisionWorkerInput) -> ProvisionWorkerResult:
        provisioner = self._provisioner(arg.provisioner)
        # One worker per investigation: a retried attempt reuses the record, destroying
        # whatever an earlier attempt may have left running.
        worker_id = f"wrk_{arg.investigation_id.removeprefix('inv_')}"
        earlier = await self._db[dbm.WORKERS].find_one({"_id": worker_id})
        if earlier is not None and earlier.get("handle"):
            await provisioner.destroy(earlier["handle"])
        spec = WorkerSpec(
            worker_id=worker_id,
            investigation_id=arg.investigation_id,
            tenant_id=arg.tenant_id,
            start_timeout_seconds=arg.start_timeout_seconds,
        )
        try:
            made = await provisioner.create(spec)
        except ProvisioningError as exc:
            raise ApplicationError(
                f"could not provision a worker: {exc}", type=PROVISIONING_FAILED
            ) from None
        now = dbm.utcnow()
        await self._db[dbm.WORKERS].replace_one(
            {"_id": worker_id},
            {
                "_id": worker_id,
                "tenant_id": arg.tenant_id,
                "investigation_id": arg.investigation_id,
                "provisioner": provisioner.name,
                "url": made.url,
                "handle": made.handle,
                "status": "starting",
                "created_at": now,
                "last_heartbeat_at": None,
                "stopped_at": None,
                "revoked_at": None,
            },
            upsert=True,
        )
        info = WorkerInfo(id=worker_id, provisioner=provisioner.name, url=made.url)
        await self._db[dbm.INVESTIGATIONS].update_one(
            {"_id": arg.investigation_id}, {"$set": {"worker": info.model_dump()}}
        )
        return ProvisionWorkerResult(worker=info)

    @activity.defn
    async def start_worker(self, arg: StartWorkerInput) -> StartWorkerResult:
        doc = await self._worker(arg.worker_id)
        key = new_key("cw")
        await self._db[dbm.WORKERS].update_one(
            {"_id": arg.worker_id},
            {"$set": {"key_hash": hash_key(key), "status": "running", "started_at": dbm.utcnow()}},
        )
        body = WorkerStartRequest(
            investigation_id=arg.investigation_id,
            backend_url=arg.backend_url,
            api_key=key,
            heartbeat_interval_seconds=arg.heartbeat_interval_seconds,
        )
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                resp = await client.post(f"{doc['url']}/start", json=body.model_dump(mode="json"))
        except httpx.TransportError as exc:
            raise ApplicationError(f"worker did not accept the start call: {exc!r}") from None
        if resp.status_code == 409:
            # an earlier attempt started it, but its key is lost with that attempt
            raise ApplicationError(
                "worker was already started by an earlier attempt",
                type=PROVISIONING_FAILED,
                non_retryable=True,
            )
        if resp.status_code >= 300:
            raise ApplicationError(f"worker refused the start call: HTTP {resp.status_code}")
        info = WorkerInfo(
            id=arg.worker_id, provisioner=doc["provisioner"], url=doc["url"], status="running"
        )
        return StartWorkerResult(worker=info)

    @activity.defn
    async def check_worker(self, arg: CheckWorkerInput) -> CheckWorkerResult:
        """Is the worker still there, and has it sent a heartbeat recently enough?"""
        doc = await self._worker(arg.worker_id)
        live = await self._provisioner(doc["provisioner"]).liveness(doc["handle"])
        if not live.alive:
            return CheckWorkerResult(alive=False, reason=live.reason or "worker is gone")
        last = doc.get("last_heartbeat_at") or doc.get("started_at") or doc["created_at"]
        if dbm.utcnow() - last > timedelta(seconds=arg.heartbeat_timeout_seconds):
            return CheckWorkerResult(
                alive=False,
                reason=f"worker sent no heartbeat for {arg.heartbeat_timeout_seconds:g}s",
            )
        return CheckWorkerResult(alive=True)

    @activity.defn
    async def teardown_worker(self, arg: TeardownWorkerInput) -> TeardownWorkerResult:
        doc = await self._db[dbm.WORKERS].find_one({"_id": arg.worker_id})
        if doc is None:
            return TeardownWorkerResult(destroyed=False)
        # revoke first: a worker that cannot be stopped can at least do nothing more
        now = dbm.utcnow()
        await self._db[dbm.WORKERS].update_one(
            {"_id": arg.worker_id}, {"$set": {"revoked_at": doc.get("revoked_at") or now}}
        )
        if doc.get("handle"):
            await self._provisioner(doc["provisioner"]).destroy(doc["handle"])
        await self._db[dbm.WORKERS].update_one(
            {"_id": arg.worker_id}, {"$set": {"status": "stopped", "stopped_at": now}}
        )
        return TeardownWorkerResult(destroyed=True)
