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

from bson.errors import InvalidDocument
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


# What inserting a document raises for a value BSON cannot encode.
UNSTORABLE = (OverflowError, InvalidDocument)
_INT64 = range(-(2**63), 2**63)


def unstorable(value: Any, where: str = "") -> str:
    """Where in ``value`` (JSON-like, as a client sent it) is the first thing MongoDB cannot
    store, and why, e.g. ``vars.n: an integer beyond 64 bits``; used once an insert failed
    with one of ``UNSTORABLE``, to tell the client which field to fix."""
    found = _find_unstorable(value, where)
    return found or f"{where or 'the document'}: too large or nested too deeply to store"


def _find_unstorable(value: Any, where: str) -> str | None:
    if isinstance(value, dict):
        for key, item in value.items():
            if "\0" in str(key):
                return f"{where or 'the document'}: a key contains a NUL character"
            found = _find_unstorable(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found = _find_unstorable(item, f"{where}.{n}" if where else str(n))
            if found:
                return found
    elif isinstance(value, int) and value not in _INT64:
        return f"{where}: an integer beyond 64 bits"
    return None


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
