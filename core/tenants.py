"""Tenants and their API keys."""

from __future__ import annotations

from core import db as dbm
from core.security import hash_key, new_key
from core.settings import Settings


async def create_tenant_in(db: dbm.Db, name: str) -> tuple[str, str]:
    """Creates a tenant and its first API key; returns ``(tenant_id, api_key)``.
    The key is returned once and never stored in clear."""
    tenant_id = dbm.new_id("ten")
    key = new_key("ck")
    now = dbm.utcnow()
    await db[dbm.TENANTS].insert_one({"_id": tenant_id, "name": name, "created_at": now})
    await db[dbm.API_KEYS].insert_one(
        {"_id": hash_key(key), "tenant_id": tenant_id, "created_at": now, "revoked_at": None}
    )
    return tenant_id, key


async def create_tenant(settings: Settings, name: str) -> tuple[str, str]:
    client = dbm.mongo_client(settings)
    try:
        return await create_tenant_in(dbm.database(client, settings), name)
    finally:
        await client.close()
