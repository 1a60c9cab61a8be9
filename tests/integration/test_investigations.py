"""Investigations through the real path: REST trigger -> Temporal workflow -> a real worker
process -> results back through the worker API -> final status in MongoDB.

Real Temporal dev server, SecantusDB, Chromium and worker processes; the demo target
stands in for a customer's tool.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core import db as dbm
from core.contracts import investigation_workflow_id
from tests.services import serve_in_thread
from tests.stack import Stack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ALERT = {"id": "ALRT-1", "host": "WS-0142", "severity": "high"}


def owner_lookup(target: str) -> dict[str, Any]:
    definition: dict[str, Any] = yaml.safe_load((EXAMPLES / "owner-lookup.yaml").read_text())
    definition["vars"]["portal_url"] = target
    return definition


async def store_demo_credentials(stack: Stack) -> None:
    from examples.demo_target import DEFAULT_API_KEY, DEFAULT_PASSWORD, USERNAME

    for name, body in {
        "demo-portal": {"kind": "basic", "username": USERNAME, "password": DEFAULT_PASSWORD},
        "demo-api": {"kind": "api_key", "key": DEFAULT_API_KEY},
    }.items():
        resp = await stack.api.put(f"/v1/credentials/{name}", json=body)
        assert resp.status_code == 200, resp.text


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


async def test_browser_and_http_steps_succeed(
    stack: Stack, demo_target: str, chromium_path: str
) -> None:
    await store_demo_credentials(stack)
    automation_id = await stack.create_automation(owner_lookup(demo_target))
    inv_id = await stack.trigger(automation_id, ALERT)

    inv = await stack.wait_done(inv_id)

    assert inv["status"] == "succeeded", (inv["error"], inv["steps"])
    login, risk = inv["steps"]
    assert login["outputs"]["owner"] == "Dana Whitfield"
    assert risk["outputs"]["risk_level"] == "high" and risk["outputs"]["status_code"] == 200
    assert login["started_at"] and login["finished_at"] and inv["finished_at"]
    [shot] = login["artifacts"]
    assert shot["name"] == "dashboard" and shot["content_type"] == "image/png"
    png = await stack.api.get(f"/v1/investigations/{inv_id}/artifacts/{shot['id']}")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png.content) == shot["size"]

    # the worker is gone and its key revoked
    worker = await stack.db[dbm.WORKERS].find_one({"investigation_id": inv_id})
    assert worker is not None and worker["status"] == "stopped" and worker["revoked_at"]
    assert not _alive(worker["handle"]["pid"])
    assert inv["worker"]["id"] == worker["_id"] and "key" not in str(inv["worker"]).lower()
    # it stopped by itself after its last result, with nothing refused on the way
    worker_log = Path(worker["handle"]["log"]).read_text()
    assert "step loop ended investigation=" in worker_log
    assert " ERROR " not in worker_log and " WARNING " not in worker_log, worker_log

    # visible in Temporal with castra's search attributes
    desc = await stack.temporal.get_workflow_handle(investigation_workflow_id(inv_id)).describe()
    attrs = {k.name: v for k, v in desc.typed_search_attributes}  # type: ignore[attr-defined]
    assert attrs["CastraStatus"] == "succeeded" and attrs["CastraTenant"] == stack.tenant_id
    assert attrs["CastraAutomation"] == automation_id and attrs["CastraTrigger"] == "api"
    assert await desc.static_summary() == "owner-lookup (api trigger)"


async def test_step_that_raises_fails_investigation_and_skips_the_rest(
    stack: Stack, demo_target: str
) -> None:
    await store_demo_credentials(stack)
    definition = {
        "name": "broken",
        "steps": [
            # no credential: the API answers 401, which the step reports as its error
            {
                "id": "unauthorized",
                "kind": "http",
                "request": {"url": f"{demo_target}/api/v1/hosts/WS-0142"},
            },
            {"id": "never", "kind": "http", "request": {"url": f"{demo_target}/healthz"}},
        ],
    }
    inv_id = await stack.trigger(await stack.create_automation(definition), {})

    inv = await stack.wait_done(inv_id)

    assert inv["status"] == "failed"
    first, second = inv["steps"]
    assert first["status"] == "failed" and "HTTP 401" in first["error"]
    assert second["status"] == "skipped"
    assert inv["error"].startswith("step 'unauthorized' failed: HTTP 401")


async def test_template_error_fails_the_step_with_a_clear_reason(
    stack: Stack, demo_target: str
) -> None:
    definition = {
        "name": "typo",
        "steps": [{"id": "s", "kind": "http", "request": {"url": "{{ input.nope }}/x"}}],
    }
    inv_id = await stack.trigger(await stack.create_automation(definition), {"host": "x"})
    inv = await stack.wait_done(inv_id)
    assert inv["status"] == "failed"
    assert "nope" in inv["steps"][0]["error"]


@pytest.fixture
def slow_target() -> Any:
    async def slow(request: Request) -> JSONResponse:
        await asyncio.sleep(float(request.query_params.get("seconds", "3")))
        return JSONResponse({"ok": True})

    with serve_in_thread(Starlette(routes=[Route("/slow", slow)])) as url:
        yield url


@pytest.mark.timeout(240)
async def test_orchestrator_restart_mid_investigation(stack: Stack, slow_target: str) -> None:
    definition = {
        "name": "slow",
        "steps": [
            {"id": "wait", "kind": "http", "request": {"url": f"{slow_target}/slow?seconds=4"}},
            {"id": "after", "kind": "http", "request": {"url": f"{slow_target}/slow?seconds=0"}},
        ],
    }
    inv_id = await stack.trigger(await stack.create_automation(definition), {})
    await stack.wait_step(inv_id, "wait", "running")

    # down for longer than one API call waits on Temporal (30 s), as a slow redeploy would
    # be: the worker keeps its result until the orchestrator is back
    await stack.stop_orchestrator()
    await asyncio.sleep(40)
    await stack.start_orchestrator()

    inv = await stack.wait_done(inv_id, timeout=90)
    assert inv["status"] == "succeeded", (inv["error"], inv["steps"])
    assert [s["status"] for s in inv["steps"]] == ["succeeded", "succeeded"]


async def test_silent_worker_fails_the_investigation(stack: Stack, slow_target: str) -> None:
    stack.settings.worker_heartbeat_interval_seconds = 0.5
    stack.settings.worker_heartbeat_timeout_seconds = 3
    definition = {
        "name": "hangs",
        "steps": [
            {"id": "wait", "kind": "http", "request": {"url": f"{slow_target}/slow?seconds=30"}}
        ],
    }
    inv_id = await stack.trigger(await stack.create_automation(definition), {})
    await stack.wait_step(inv_id, "wait", "running")
    worker = await stack.db[dbm.WORKERS].find_one({"investigation_id": inv_id})
    assert worker is not None
    os.kill(worker["handle"]["pid"], signal.SIGSTOP)  # frozen: alive, but silent
    try:
        inv = await stack.wait_done(inv_id, timeout=30)
    finally:
        try:
            os.kill(worker["handle"]["pid"], signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert inv["status"] == "failed"
    assert inv["error"] == "worker lost: worker sent no heartbeat for 3s"
    assert inv["steps"][0]["status"] == "cancelled"


async def test_cancel_stops_the_worker(stack: Stack, slow_target: str) -> None:
    definition = {
        "name": "cancel-me",
        "steps": [
            {"id": "wait", "kind": "http", "request": {"url": f"{slow_target}/slow?seconds=30"}}
        ],
    }
    inv_id = await stack.trigger(await stack.create_automation(definition), {})
    await stack.wait_step(inv_id, "wait", "running")

    resp = await stack.api.post(f"/v1/investigations/{inv_id}/cancel")
    assert resp.status_code == 202, resp.text
    inv = await stack.wait_done(inv_id)

    assert inv["status"] == "cancelled"
    worker = await stack.db[dbm.WORKERS].find_one({"investigation_id": inv_id})
    assert worker is not None and worker["revoked_at"] and not _alive(worker["handle"]["pid"])
    again = await stack.api.post(f"/v1/investigations/{inv_id}/cancel")
    assert again.status_code == 409
