"""Shared helpers of the API tests: the served app, a tenant's key, triggers and the
problem+json assertions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from api.app import create_app
from api.deps import Runtime
from core import db as dbm
from core.security import hash_key, new_key
from core.settings import Settings

BASE_URL = "http://castra.test"


@dataclass
class Tenant:
    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@asynccontextmanager
async def serve(
    settings: Settings, *, wait_for_temporal: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and a client talking to it over ASGI."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        if wait_for_temporal:
            async with asyncio.timeout(30):
                while runtime.temporal is None:
                    await asyncio.sleep(0.05)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client


PROBLEM = "application/problem+json"

DEFINITION = {
    "name": "owner-lookup",
    "inputs": {"type": "object", "required": ["case_id"]},
    "vars": {"portal_url": "https://portal.example"},
    "steps": [
        {
            "id": "case",
            "kind": "http",
            "credential": "thehive",
            "request": {
                "method": "GET",
                "url": "https://hive.example/api/v1/case/{{ input.case_id }}",
            },
            "extract": {"severity": "severity"},
        }
    ],
}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"https://castra.dev/problems/{code}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["instance"] == response.request.url.path
    return dict(body)


async def create_automation(api: httpx.AsyncClient, tenant: Tenant, **changes: Any) -> str:
    response = await api.post(
        "/v1/automations", json={**DEFINITION, **changes}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def trigger(
    api: httpx.AsyncClient, tenant: Tenant, automation_id: str, data: dict[str, Any], **headers: str
) -> httpx.Response:
    return await api.post(
        "/v1/investigations",
        json={"automation_id": automation_id, "input": data},
        headers={**tenant.headers, **headers},
    )


async def add_worker(db: dbm.Db, tenant: Tenant, investigation_id: str) -> tuple[str, str]:
    """What the orchestrator's provisioning does: a worker doc holding the key's hash."""
    key = new_key("cw")
    worker_id = dbm.new_id("wrk")
    await db[dbm.WORKERS].insert_one(
        {
            "_id": worker_id,
            "tenant_id": tenant.id,
            "investigation_id": investigation_id,
            "provisioner": "process",
            "url": "http://127.0.0.1:1",
            "key_hash": hash_key(key),
            "status": "running",
            "created_at": dbm.utcnow(),
            "last_heartbeat_at": None,
            "revoked_at": None,
        }
    )
    return worker_id, key
