"""A canary credential value must never appear in MongoDB, in Temporal history (as
`temporal workflow show` prints it), in any log, or in any API response — even when the
target echoes it back and a step fails with it in the error."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.contracts import investigation_workflow_id
from tests.services import serve_in_thread
from tests.stack import Stack

CANARY_KEY = "canary-7f3e9b1d5a2c4e6f8091"
CANARY_PASSWORD = "canary-pw-2b8d4f6a0c1e3579"


@pytest.fixture
def echo_target() -> Any:
    async def echo(request: Request) -> JSONResponse:
        # a careless tool that reflects credentials back
        return JSONResponse({"seen": dict(request.headers), "query": dict(request.query_params)})

    async def fail(request: Request) -> JSONResponse:
        return JSONResponse({"detail": f"bad token {request.headers.get('authorization')}"}, 500)

    with serve_in_thread(Starlette(routes=[Route("/echo", echo), Route("/fail", fail)])) as url:
        yield url


async def test_canary_never_leaks(
    stack: Stack, echo_target: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    responses: list[bytes] = []

    async def keep(resp: httpx.Response) -> None:
        responses.append(await resp.aread())

    stack.api.event_hooks["response"].append(keep)

    assert (
        await stack.api.put(
            "/v1/credentials/canary-api", json={"kind": "api_key", "key": CANARY_KEY}
        )
    ).status_code == 200
    assert (
        await stack.api.put(
            "/v1/credentials/canary-basic",
            json={"kind": "basic", "username": "svc", "password": CANARY_PASSWORD},
        )
    ).status_code == 200
    await stack.api.get("/v1/credentials")
    definition = {
        "name": "leaky",
        "steps": [
            {
                "id": "echo",
                "kind": "http",
                "credential": "canary-api",
                "request": {"url": f"{echo_target}/echo"},
                "extract": {"auth": "seen.authorization", "all": "seen"},
            },
            {
                "id": "echo_basic",
                "kind": "http",
                "credential": "canary-basic",
                "request": {
                    "url": f"{echo_target}/echo",
                    "params": {"p": "{{ credential.password }}"},
                },
                "extract": {"auth": "seen.authorization", "p": "query.p"},
            },
            {
                "id": "fails",
                "kind": "http",
                "credential": "canary-api",
                "request": {"url": f"{echo_target}/fail"},
            },
        ],
    }
    inv_id = await stack.trigger(await stack.create_automation(definition), {"k": "v"})
    inv = await stack.wait_done(inv_id)
    await stack.api.get("/v1/investigations?limit=10")

    # the steps really ran and saw the secret (so the absence below means something)
    assert inv["steps"][0]["outputs"]["auth"] == "Bearer [REDACTED]"
    assert inv["steps"][1]["outputs"]["p"] == "[REDACTED]"
    assert inv["status"] == "failed" and "[REDACTED]" in inv["steps"][2]["error"]

    basic = base64.b64encode(f"svc:{CANARY_PASSWORD}".encode()).decode()
    secrets = (CANARY_KEY, CANARY_PASSWORD, basic)

    # MongoDB: every collection of the database, GridFS included
    names = await stack.db.list_collection_names()
    assert "investigations" in names
    for name in names:
        async for doc in stack.db[name].find({}):
            dumped = repr(doc)
            assert not any(s in dumped for s in secrets), f"secret in MongoDB collection {name}"

    # Temporal history, as the CLI shows it
    temporal = Path(sys.executable).parent / "temporal"
    shown = subprocess.run(
        [
            str(temporal),
            "workflow",
            "show",
            "--output",
            "json",
            "--address",
            stack.settings.effective_temporal_address,
            "--workflow-id",
            investigation_workflow_id(inv_id),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "submit_step_result" in shown
    assert not any(s in shown for s in secrets), "secret in Temporal history"

    # logs: this process's records and every log file castra wrote (workers included)
    assert not any(s in caplog.text for s in secrets), "secret in a log record"
    log_files = list(stack.settings.data_dir.rglob("*.log"))
    assert log_files, "the worker logs should exist"
    for path in log_files:
        text = path.read_text(errors="replace")
        assert not any(s in text for s in secrets), f"secret in {path}"

    # API responses
    assert len(responses) >= 6
    for body in responses:
        assert not any(s.encode() in body for s in secrets), "secret in an API response"
    assert json.dumps(inv).count("[REDACTED]") >= 3
