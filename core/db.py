"""MongoDB access: the client, collection names and indexes.

The documents (``_id`` is a prefixed random id, times are UTC datetimes):

- ``tenants``        {_id: ten_…, name, created_at}
- ``api_keys``       {_id: sha256(key), tenant_id, created_at, revoked_at}  tenant keys
- ``automations``    {_id: aut_…, tenant_id, name, definition, created_at}
- ``investigations`` {_id: inv_…, tenant_id, automation_id, status, trigger, input, steps,
                      worker, error, idempotency_key, workflow_started, created_at,
                      started_at, finished_at}
- ``workers``        {_id: wrk_…, tenant_id, investigation_id, provisioner, url, handle,
                      key_hash, status, created_at, last_heartbeat_at, stopped_at, revoked_at}
- GridFS ``artifacts`` files with metadata {tenant_id, investigation_id, step_id, name}

Secret values never go here: credentials live in the secret store, keys only as hashes.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from core.settings import Settings

Document = dict[str, Any]
Db = AsyncDatabase[Document]

TENANTS = "tenants"
API_KEYS = "api_keys"
AUTOMATIONS = "automations"
INVESTIGATIONS = "investigations"
WORKERS = "workers"
ARTIFACTS_BUCKET = "artifacts"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def utcnow() -> datetime:
    # Mongo keeps milliseconds; truncating here keeps round-trips equal.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def mongo_client(settings: Settings) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(
        settings.effective_mongodb_uri, tz_aware=True, serverSelectionTimeoutMS=10_000
    )


def database(client: AsyncMongoClient[Document], settings: Settings) -> Db:
    return client[settings.mongodb_database]


async def ensure_indexes(db: Db) -> None:
    await db[AUTOMATIONS].create_index([("tenant_id", ASCENDING), ("name", ASCENDING)], unique=True)
    await db[INVESTIGATIONS].create_index(
        [("tenant_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]
    )
    await db[INVESTIGATIONS].create_index(
        [("tenant_id", ASCENDING), ("idempotency_key", ASCENDING)],
        unique=True,
        partialFilterExpression={"idempotency_key": {"$type": "string"}},
    )
    await db[INVESTIGATIONS].create_index([("workflow_started", ASCENDING)])
    await db[WORKERS].create_index([("key_hash", ASCENDING)], unique=True, sparse=True)
    await db[WORKERS].create_index([("investigation_id", ASCENDING)])
