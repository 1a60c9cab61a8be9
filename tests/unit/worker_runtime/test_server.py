"""The worker's /start and /healthz, in process and as the real ``python -m worker_runtime``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from core.contracts import WorkerStartRequest
from core.models import AutomationDefinition
from tests.helpers_http import INVESTIGATION, KEY, FakeBackend, serve
from worker_runtime.server import create_app

REPO = Path(__file__).resolve().parents[3]


async def test_start_once_then_409_and_healthz_follows_the_state() -> None:
    release = asyncio.Event()
    seen: list[WorkerStartRequest] = []
    finished: list[bool] = []

    async def runner(start: WorkerStartRequest) -> None:
        seen.append(start)
        await release.wait()

    app = create_app(runner=runner, on_done=lambda: finished.append(True))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        health = (await http.get("/healthz")).json()
        assert health == {"ok": True, "state": "idle", "investigation_id": None}

        body = {"investigation_id": "inv-9", "backend_url": "http://b", "api_key": "k" * 20}
        reply = await http.post("/start", json=body)
        assert reply.status_code == 202
        assert reply.json() == {"investigation_id": "inv-9", "state": "running"}
        assert "k" * 20 not in reply.text

        again = await http.post("/start", json={**body, "investigation_id": "inv-10"})
        assert again.status_code == 409
        assert (await http.get("/healthz")).json()["state"] == "running"

        release.set()
        for _ in range(100):
            if (await http.get("/healthz")).json()["state"] == "done":
                break
            await asyncio.sleep(0.01)
        assert (await http.get("/healthz")).json() == {
            "ok": True,
            "state": "done",
            "investigation_id": "inv-9",
        }
    assert [s.investigation_id for s in seen] == ["inv-9"]
    assert seen[0].api_key == "k" * 20
    assert finished == [True]


async def test_bad_start_body_is_422_without_echoing_it() -> None:
    async def runner(start: WorkerStartRequest) -> None:
        raise AssertionError("must not start")

    async with serve(create_app(runner=runner)) as url, httpx.AsyncClient(base_url=url) as http:
        missing = await http.post("/start", json={"api_key": "secret-key-1234"})
        assert missing.status_code == 422
        assert "secret-key-1234" not in missing.text
        assert {e["loc"][0] for e in missing.json()["detail"]} == {
            "investigation_id",
            "backend_url",
        }
        garbage = await http.post("/start", content=b"{not json")
        assert garbage.status_code == 422
        assert (await http.get("/healthz")).json()["state"] == "idle"


async def test_worker_process_runs_the_investigation_and_exits_by_itself() -> None:
    backend = FakeBackend(
        automation=AutomationDefinition.model_validate(
            {
                "name": "proc",
                "steps": [
                    {
                        "id": "only",
                        "kind": "http",
                        "request": {"url": "{{ vars.base }}/target/ok"},
                        "extract": {"owner": "owner"},
                    }
                ],
            }
        )
    )
    async with serve(backend.app()) as url:
        backend.automation.vars["base"] = url
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker_runtime",
            "--port",
            "0",
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None and proc.stderr is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            listening = json.loads(line)
            assert listening["event"] == "listening" and listening["port"] > 0
            worker = f"http://127.0.0.1:{listening['port']}"
            async with httpx.AsyncClient(base_url=worker) as http:
                assert (await http.get("/healthz")).json()["state"] == "idle"
                start = {
                    "investigation_id": INVESTIGATION,
                    "backend_url": url,
                    "api_key": KEY,
                    "heartbeat_interval_seconds": 0.5,
                }
                reply = await http.post("/start", json=start)
                assert reply.status_code == 202
            started = time.monotonic()
            code = await asyncio.wait_for(proc.wait(), 20)
            stderr = (await proc.stderr.read()).decode()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert code == 0, stderr
    assert time.monotonic() - started < 10
    assert backend.results["only"]["status"] == "succeeded"
    assert backend.results["only"]["outputs"]["owner"] == "ann"
    # structured fields in the log, never the worker key
    assert f"investigation={INVESTIGATION}" in stderr and "step=only" in stderr
    assert KEY not in stderr
