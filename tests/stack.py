"""castra's own processes for integration tests, in the test's event loop: the API (uvicorn
on the settings' port) and the orchestrator (Temporal worker), against the session's real
Temporal and SecantusDB servers. Workers are real `python -m worker_runtime` processes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from temporalio.client import Client

from api.app import create_app
from castra.orchestrator import build_worker
from core import db as dbm
from core.settings import Settings
from core.temporal import connect
from core.tenants import create_tenant_in

TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}


async def wait_done(
    api: httpx.AsyncClient, investigation_id: str, timeout: float = 60
) -> dict[str, Any]:
    """The investigation once it has a final status (polled through the REST API)."""
    async with asyncio.timeout(timeout):
        while True:
            resp = await api.get(f"/v1/investigations/{investigation_id}")
            assert resp.status_code == 200, resp.text
            body: dict[str, Any] = resp.json()
            if body["status"] in TERMINAL:
                return body
            await asyncio.sleep(0.1)


@dataclass
class Stack:
    settings: Settings
    temporal: Client
    db: dbm.Db
    api: httpx.AsyncClient  # authenticated as `tenant_id`
    tenant_id: str
    tenant_key: str
    _orchestrator: asyncio.Task[None] | None = field(default=None, repr=False)

    async def start_orchestrator(self) -> None:
        worker = build_worker(self.temporal, self.db, self.settings)
        self._orchestrator = asyncio.create_task(worker.run())

    async def stop_orchestrator(self) -> None:
        """Like killing the orchestrator process: in-flight tasks are abandoned."""
        if self._orchestrator is not None:
            self._orchestrator.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._orchestrator
            self._orchestrator = None

    async def new_tenant(self, name: str = "other") -> httpx.AsyncClient:
        _, key = await create_tenant_in(self.db, name)
        return httpx.AsyncClient(
            base_url=self.settings.effective_public_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )

    async def create_automation(self, definition: dict[str, Any]) -> str:
        resp = await self.api.post("/v1/automations", json=definition)
        assert resp.status_code == 201, resp.text
        automation_id: str = resp.json()["id"]
        return automation_id

    async def trigger(self, automation_id: str, data: dict[str, Any]) -> str:
        resp = await self.api.post(
            "/v1/investigations", json={"automation_id": automation_id, "input": data}
        )
        assert resp.status_code == 202, resp.text
        investigation_id: str = resp.json()["id"]
        return investigation_id

    async def wait_done(self, investigation_id: str, timeout: float = 60) -> dict[str, Any]:
        return await wait_done(self.api, investigation_id, timeout)

    async def wait_step(self, investigation_id: str, step_id: str, status: str) -> None:
        async with asyncio.timeout(60):
            while True:
                body = (await self.api.get(f"/v1/investigations/{investigation_id}")).json()
                if any(s["id"] == step_id and s["status"] == status for s in body["steps"]):
                    return
                await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def serving_api(settings: Settings) -> AsyncIterator[None]:
    """The API (create_app) served by uvicorn on the settings' port, in this event loop."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
            lifespan="on",
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await serving


@contextlib.asynccontextmanager
async def running_stack(settings: Settings) -> AsyncIterator[Stack]:
    async with serving_api(settings):
        temporal = await connect(settings)
        mongo = dbm.mongo_client(settings)
        db = dbm.database(mongo, settings)
        tenant_id, key = await create_tenant_in(db, "test")
        api = httpx.AsyncClient(
            base_url=settings.effective_public_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        stack = Stack(settings, temporal, db, api, tenant_id, key)
        await stack.start_orchestrator()
        try:
            yield stack
        finally:
            await stack.stop_orchestrator()
            await api.aclose()
            await mongo.close()
