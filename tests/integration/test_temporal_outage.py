"""No trigger is lost while Temporal is unreachable: it is recorded as queued, answered
with 202, and its workflow starts once Temporal is back — both for an API that never
reached Temporal yet and for one whose Temporal went away."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx

from castra.orchestrator import build_worker
from castra.services import ManagedProcess, start_temporal
from core import db as dbm
from core.settings import Settings
from core.temporal import connect
from core.tenants import create_tenant_in
from tests.services import free_port
from tests.stack import serving_api, wait_done


async def _temporal(settings: Settings, data_dir: Path) -> ManagedProcess:
    own = settings.model_copy(update={"data_dir": data_dir, "temporal_ui_port": free_port()})
    return await asyncio.to_thread(start_temporal, own)


async def test_triggers_wait_for_temporal(
    settings: Settings, demo_target: str, tmp_path: Path
) -> None:
    port = free_port()  # nobody listens here yet
    settings = settings.model_copy(
        update={
            "temporal_address": f"127.0.0.1:{port}",
            "temporal_port": port,
            "dispatch_retry_seconds": 0.3,
        }
    )
    mongo = dbm.mongo_client(settings)
    db = dbm.database(mongo, settings)
    _, key = await create_tenant_in(db, "outage")
    api = httpx.AsyncClient(
        base_url=settings.effective_public_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    definition = {
        "name": "ping",
        "steps": [{"id": "ping", "kind": "http", "request": {"url": f"{demo_target}/healthz"}}],
    }
    temporal: ManagedProcess | None = None
    orchestrator: asyncio.Task[None] | None = None
    try:
        async with serving_api(settings):
            automation_id = (await api.post("/v1/automations", json=definition)).json()["id"]

            # 1. Temporal has never been reachable
            first = await api.post(
                "/v1/investigations", json={"automation_id": automation_id, "input": {}}
            )
            assert first.status_code == 202 and first.json()["status"] == "queued"
            first_id = first.json()["id"]
            doc = await db[dbm.INVESTIGATIONS].find_one({"_id": first_id})
            assert doc is not None and doc["workflow_started"] is False

            temporal = await _temporal(settings, tmp_path / "temporal")
            orchestrator = asyncio.create_task(
                build_worker(await connect(settings), db, settings).run()
            )
            assert (await wait_done(api, first_id))["status"] == "succeeded"

            # 2. Temporal goes away under a connected API
            temporal.stop()
            second = await api.post(
                "/v1/investigations", json={"automation_id": automation_id, "input": {}}
            )
            assert second.status_code == 202 and second.json()["status"] == "queued"
            second_id = second.json()["id"]
            await asyncio.sleep(1)
            doc = await db[dbm.INVESTIGATIONS].find_one({"_id": second_id})
            assert doc is not None and doc["workflow_started"] is False

            temporal = await _temporal(settings, tmp_path / "temporal")
            assert (await wait_done(api, second_id, timeout=90))["status"] == "succeeded"
    finally:
        if orchestrator is not None:
            orchestrator.cancel()
            with contextlib.suppress(BaseException):
                await orchestrator
        if temporal is not None:
            temporal.stop()
        await api.aclose()
        await mongo.close()
