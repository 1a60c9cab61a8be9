"""HTTP helpers for the worker runtime's tests.

``serve(app)`` serves a small ASGI app with real uvicorn on a free 127.0.0.1 port, in the
test's own event loop, so the app can share state with the test without locks.

``FakeBackend`` stands in for the backend's worker API (``/worker/v1/...``) and a remote
system (``/target/...``) for http steps to call; it records every call. It hands out one
runnable step at a time, in definition order, with the finished steps as context, and says
``done`` once every step has a result or one has failed, as the real workflow does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from core.contracts import INVESTIGATION_HEADER, WorkerInvestigation
from core.models import AutomationDefinition


@contextlib.asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Yield the base URL (``http://127.0.0.1:<port>``) while ``app`` is being served."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    # Leave pytest's own SIGINT handling alone (uvicorn would swap in its own handler).
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    sock = config.bind_socket()
    port = sock.getsockname()[1]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


KEY = "worker-key-0123456789"
INVESTIGATION = "inv-1"


@dataclass
class Call:
    method: str
    path: str
    authorization: str | None
    investigation: str | None


@dataclass
class FakeBackend:
    automation: AutomationDefinition
    credentials: dict[str, dict[str, Any]] = field(default_factory=dict)
    input: dict[str, Any] = field(default_factory=dict)
    stop_after_heartbeats: int | None = None  # reply stop=True from this heartbeat on
    calls: list[Call] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    credential_fetches: list[str] = field(default_factory=list)
    heartbeats: int = 0
    artifacts: list[tuple[str, str, bytes]] = field(default_factory=list)
    target_hits: list[str] = field(default_factory=list)

    @property
    def worker_calls(self) -> list[Call]:
        return [c for c in self.calls if c.path.startswith("/worker/")]

    def _finished(self) -> bool:
        return any(r["status"] == "failed" for r in self.results.values()) or len(
            self.results
        ) == len(self.automation.steps)

    def app(self) -> Starlette:
        async def guard(request: Request) -> Response | None:
            self.calls.append(
                Call(
                    request.method,
                    request.url.path,
                    request.headers.get("authorization"),
                    request.headers.get(INVESTIGATION_HEADER),
                )
            )
            if request.headers.get("authorization") != f"Bearer {KEY}":
                return JSONResponse({"title": "unauthenticated"}, 401)
            if request.headers.get(INVESTIGATION_HEADER) != INVESTIGATION:
                return JSONResponse({"title": "forbidden"}, 403)
            return None

        async def investigation(request: Request) -> Response:
            if refused := await guard(request):
                return refused
            body = WorkerInvestigation(
                id=INVESTIGATION,
                tenant_id="t1",
                automation=self.automation,
                input=self.input,
                vars={"extra": "from-investigation"},
            )
            return Response(body.model_dump_json(), media_type="application/json")

        async def next_steps(request: Request) -> Response:
            if refused := await guard(request):
                return refused
            context = {
                sid: {"status": r["status"], "outputs": r["outputs"]}
                for sid, r in self.results.items()
            }
            if self._finished():
                failed = any(r["status"] == "failed" for r in self.results.values())
                return JSONResponse(
                    {
                        "done": True,
                        "status": "failed" if failed else "succeeded",
                        "context": context,
                    }
                )
            step = next(s for s in self.automation.steps if s.id not in self.results)
            return JSONResponse(
                {
                    "done": False,
                    "status": "running",
                    "steps": [step.model_dump(mode="json", by_alias=True, exclude_none=True)],
                    "context": context,
                }
            )

        async def result(request: Request) -> Response:
            if refused := await guard(request):
                return refused
            step_id = request.path_params["step_id"]
            if step_id in self.results:
                return JSONResponse({"title": "conflict"}, 409)
            self.results[step_id] = await request.json()
            status = "running"
            if self._finished():
                status = "failed" if self.results[step_id]["status"] == "failed" else "succeeded"
            return JSONResponse(
                {
                    "step_id": step_id,
                    "status": self.results[step_id]["status"],
                    "investigation_status": status,
                }
            )

        async def heartbeat(request: Request) -> Response:
            if refused := await guard(request):
                return refused
            self.heartbeats += 1
            stop = (
                self.stop_after_heartbeats is not None
                and self.heartbeats >= self.stop_after_heartbeats
            )
            return JSONResponse({"stop": stop, "status": "cancelled" if stop else "running"})

        async def credential(request: Request) -> Response:
            if refused := await guard(request):
                return refused
            name = request.path_params["name"]
            self.credential_fetches.append(name)
            if name not in self.credentials:
                return JSONResponse({"title": "not found", "detail": f"no credential {name}"}, 404)
            return JSONResponse(self.credentials[name])

        async def artifact(request: Request) -> Response:
            if refused := await guard(request):
                return refused
            data = await request.body()
            name = request.query_params["name"]
            self.artifacts.append((request.query_params["step_id"], name, data))
            ref = {
                "id": f"a{len(self.artifacts)}",
                "name": name,
                "content_type": request.headers["content-type"],
                "size": len(data),
            }
            return JSONResponse(ref)

        async def target(request: Request) -> Response:
            what = request.path_params["what"]
            self.target_hits.append(what)
            if what == "slow":
                await asyncio.sleep(30)
            if what == "huge":
                return JSONResponse({"blob": "x" * (600 * 1024)})
            if what == "fail":
                auth = request.headers.get("authorization", "")
                password = ""
                if auth.startswith("Basic "):
                    password = base64.b64decode(auth[6:]).decode().partition(":")[2]
                return PlainTextResponse(f"boom: got {auth} (password {password})", 500)
            return JSONResponse(
                {
                    "owner": "ann",
                    "auth": request.headers.get("x-api-key"),
                    "who": request.headers.get("x-who"),
                    "case": request.query_params.get("case"),
                }
            )

        return Starlette(
            routes=[
                Route("/worker/v1/investigation", investigation),
                Route("/worker/v1/steps/next", next_steps),
                Route("/worker/v1/steps/{step_id}/result", result, methods=["POST"]),
                Route("/worker/v1/heartbeat", heartbeat, methods=["POST"]),
                Route("/worker/v1/credentials/{name}", credential),
                Route("/worker/v1/artifacts", artifact, methods=["POST"]),
                Route("/target/{what}", target),
            ]
        )
