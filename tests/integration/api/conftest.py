"""Fixtures for the API tests: the real app (lifespan and all) served over ASGI, against
the real Temporal dev server and SecantusDB from tests/conftest.py, and a fresh tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from core import db as dbm
from core.settings import Settings
from core.tenants import create_tenant_in
from tests.integration.api.helpers import Tenant, serve


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings) as client:
        yield client


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[dbm.Db]:
    """Direct access to the test's database, to check what the API recorded."""
    client = dbm.mongo_client(settings)
    try:
        yield dbm.database(client, settings)
    finally:
        await client.close()


@pytest.fixture
async def tenant(db: dbm.Db) -> Tenant:
    tenant_id, key = await create_tenant_in(db, "acme")
    return Tenant(tenant_id, key)


@pytest.fixture
async def other_tenant(db: dbm.Db) -> Tenant:
    tenant_id, key = await create_tenant_in(db, "globex")
    return Tenant(tenant_id, key)
