"""BackendClient: headers on every call, retries while the API restarts, clear refusals."""

from __future__ import annotations

import socket
import time

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.models import ApiKeyCredential, BasicCredential
from tests.helpers_http import serve
from worker_runtime.client import BackendClient, WorkerApiError

KEY = "worker-key-abcdefgh"


async def test_retries_502_503_504_then_succeeds_and_sends_both_headers() -> None:
    seen: list[tuple[str | None, str | None]] = []
    replies = [502, 503, 504]

    async def heartbeat(request: Request) -> Response:
        seen.append(
            (request.headers.get("authorization"), request.headers.get("castra-investigation"))
        )
        if replies:
            return Response("restarting", replies.pop(0))
        return JSONResponse({"stop": True, "status": "cancelled"})

    app = Starlette(routes=[Route("/worker/v1/heartbeat", heartbeat, methods=["POST"])])
    async with serve(app) as url, BackendClient(url, KEY, "inv-3") as client:
        reply = await client.heartbeat()
    assert reply.stop is True and reply.status == "cancelled"
    assert seen == [(f"Bearer {KEY}", "inv-3")] * 4


async def test_4xx_raises_at_once_with_the_problem_and_without_the_key() -> None:
    calls = 0

    async def credential(request: Request) -> Response:
        nonlocal calls
        calls += 1
        return JSONResponse({"title": "Forbidden", "detail": "key not valid here"}, 403)

    app = Starlette(routes=[Route("/worker/v1/credentials/{name}", credential)])
    async with serve(app) as url, BackendClient(url, KEY, "inv-3") as client:
        with pytest.raises(WorkerApiError) as info:
            await client.credential("portal")
    assert str(info.value) == (
        "GET /worker/v1/credentials/portal: HTTP 403: Forbidden: key not valid here"
    )
    assert info.value.status_code == 403 and calls == 1


async def test_credentials_parse_by_kind_and_a_bad_one_never_echoes_its_values() -> None:
    bodies = {
        "basic": {"kind": "basic", "username": "u", "password": "pw-123456"},
        "api": {"kind": "api_key", "key": "k-123456", "query_param": "token"},
        "broken": {"kind": "basic", "username": "", "password": "leaky-secret-99"},
    }

    async def credential(request: Request) -> Response:
        return JSONResponse(bodies[request.path_params["name"]])

    app = Starlette(routes=[Route("/worker/v1/credentials/{name}", credential)])
    async with serve(app) as url, BackendClient(url, KEY, "inv-3") as client:
        basic = await client.credential("basic")
        api = await client.credential("api")
        with pytest.raises(WorkerApiError) as info:
            await client.credential("broken")
    assert isinstance(basic, BasicCredential) and basic.reveal()["password"] == "pw-123456"
    assert isinstance(api, ApiKeyCredential) and api.query_param == "token" and api.header is None
    assert "username" in str(info.value) and "leaky-secret-99" not in str(info.value)


async def test_unreachable_backend_gives_up_after_the_retry_window() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    started = time.monotonic()
    async with BackendClient(dead, KEY, "inv-3", retry_seconds=1.0) as client:
        with pytest.raises(
            WorkerApiError, match=r"^GET /worker/v1/steps/next: backend unreachable"
        ):
            await client.next_steps()
    assert 0.5 < time.monotonic() - started < 3
