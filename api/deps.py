"""The API's dependencies, as ``Annotated`` aliases for route signatures.

Everything comes from the ``Runtime`` the lifespan built (api/app.py): no module-level
clients, no per-request connections. Authentication lives here too: a tenant key names a
tenant; a worker key is valid for exactly one investigation, named again by the
``Castra-Investigation`` header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pymongo import AsyncMongoClient
from temporalio.client import Client

from core import db as dbm
from core.contracts import INVESTIGATION_HEADER
from core.errors import Forbidden, Unauthenticated, Unavailable
from core.secrets import SecretStore
from core.security import hash_key
from core.settings import Settings


@dataclass
class Runtime:
    """What the lifespan connected once, shared by every request."""

    settings: Settings
    mongo: AsyncMongoClient[dbm.Document]
    db: dbm.Db
    secrets: SecretStore
    temporal: Client | None = None  # None while Temporal cannot be reached


@dataclass(frozen=True)
class WorkerIdentity:
    worker_id: str
    tenant_id: str
    investigation_id: str


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]


def _settings(rt: RuntimeDep) -> Settings:
    return rt.settings


def _db(rt: RuntimeDep) -> dbm.Db:
    return rt.db


def _secrets(rt: RuntimeDep) -> SecretStore:
    return rt.secrets


def _temporal(rt: RuntimeDep) -> Client:
    if rt.temporal is None:
        raise Unavailable("Temporal is unavailable, retry later")
    return rt.temporal


def _maybe_temporal(rt: RuntimeDep) -> Client | None:
    return rt.temporal


SettingsDep = Annotated[Settings, Depends(_settings)]
DbDep = Annotated[dbm.Db, Depends(_db)]
SecretsDep = Annotated[SecretStore, Depends(_secrets)]
TemporalDep = Annotated[Client, Depends(_temporal)]
# For triggers, which are recorded even while Temporal is away.
MaybeTemporalDep = Annotated[Client | None, Depends(_maybe_temporal)]

_tenant_bearer = HTTPBearer(
    auto_error=False, scheme_name="TenantKey", description="A tenant API key (ck_…)."
)
_worker_bearer = HTTPBearer(
    auto_error=False, scheme_name="WorkerKey", description="A worker key (one investigation)."
)
Bearer = HTTPAuthorizationCredentials | None


async def _tenant(db: DbDep, auth: Annotated[Bearer, Depends(_tenant_bearer)]) -> str:
    if auth is None:
        raise Unauthenticated("a tenant API key is required (Authorization: Bearer <key>)")
    doc = await db[dbm.API_KEYS].find_one(
        {"_id": hash_key(auth.credentials), "revoked_at": None}, {"tenant_id": 1}
    )
    if doc is None:
        raise Unauthenticated("unknown or revoked API key")
    tenant_id: str = doc["tenant_id"]
    return tenant_id


async def _worker(
    db: DbDep,
    auth: Annotated[Bearer, Depends(_worker_bearer)],
    investigation: Annotated[str | None, Header(alias=INVESTIGATION_HEADER)] = None,
) -> WorkerIdentity:
    if auth is None:
        raise Unauthenticated("a worker key is required (Authorization: Bearer <key>)")
    doc = await db[dbm.WORKERS].find_one(
        {"key_hash": hash_key(auth.credentials), "revoked_at": None},
        {"tenant_id": 1, "investigation_id": 1},
    )
    if doc is None:
        raise Unauthenticated("unknown or revoked worker key")
    if investigation != doc["investigation_id"]:
        raise Forbidden(
            f"this worker key is not valid for the investigation in {INVESTIGATION_HEADER}"
        )
    return WorkerIdentity(
        worker_id=doc["_id"], tenant_id=doc["tenant_id"], investigation_id=doc["investigation_id"]
    )


TenantDep = Annotated[str, Depends(_tenant)]
WorkerDep = Annotated[WorkerIdentity, Depends(_worker)]
