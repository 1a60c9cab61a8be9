"""The worker's own HTTP face, for the orchestrator: ``POST /start`` and ``GET /healthz``.

``/start`` carries the worker key; it starts the step loop exactly once and never echoes
the key back (nor any part of a refused body). When the loop ends, ``on_done`` is called,
which in ``__main__`` makes uvicorn finish the response in flight and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from core.contracts import WorkerStartRequest

logger = logging.getLogger(__name__)

Runner = Callable[["WorkerStartRequest"], Awaitable[None]]


def _preload() -> None:
    """Import the models, the loop and the executors (not Playwright, which only a
    browser step needs) before serving: /healthz answering means ready to run."""
    import worker_runtime.loop  # noqa: F401


async def run_step_loop(start: WorkerStartRequest) -> None:
    from worker_runtime.loop import StepLoop

    await StepLoop(start).run()


class _Worker:
    def __init__(self, runner: Runner, on_done: Callable[[], None] | None) -> None:
        self.runner = runner
        self.on_done = on_done
        self.state: Literal["idle", "running", "done"] = "idle"
        self.investigation_id: str | None = None
        self.task: asyncio.Task[None] | None = None

    async def _run(self, start: WorkerStartRequest) -> None:
        log = {"investigation": start.investigation_id}
        try:
            await self.runner(start)
        except asyncio.CancelledError:
            logger.warning("step loop cancelled", extra=log)
            raise
        except Exception as exc:
            logger.error("step loop crashed: %s", type(exc).__name__, extra=log, exc_info=True)
        finally:
            self.state = "done"
            if self.on_done is not None:
                self.on_done()

    def start(self, start: WorkerStartRequest) -> None:
        self.state = "running"
        self.investigation_id = start.investigation_id
        self.task = asyncio.create_task(self._run(start), name="castra-step-loop")


def create_app(
    *, runner: Runner = run_step_loop, on_done: Callable[[], None] | None = None
) -> Starlette:
    worker = _Worker(runner, on_done)

    def already_started() -> JSONResponse:
        detail = {"detail": "this worker has already been started"}
        return JSONResponse({**detail, "investigation_id": worker.investigation_id}, 409)

    async def start(request: Request) -> JSONResponse:
        from pydantic import ValidationError

        from core.contracts import WorkerStartRequest

        if worker.state != "idle":
            return already_started()
        try:
            body = await request.body()
            start_request = WorkerStartRequest.model_validate_json(body)
        except ValidationError as exc:
            errors = exc.errors(include_input=False, include_url=False, include_context=False)
            return JSONResponse({"detail": json.loads(json.dumps(errors, default=str))}, 422)
        if worker.state != "idle":  # another /start won while this body was being read
            return already_started()
        worker.start(start_request)
        logger.info("investigation started", extra={"investigation": worker.investigation_id})
        return JSONResponse({"investigation_id": worker.investigation_id, "state": "running"}, 202)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse(
            {"ok": True, "state": worker.state, "investigation_id": worker.investigation_id}
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        _preload()
        yield
        # Shutting down (SIGTERM, or the loop ended): let a running loop close its browser.
        if worker.task is not None and not worker.task.done():
            worker.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker.task

    app = Starlette(
        routes=[Route("/start", start, methods=["POST"]), Route("/healthz", healthz)],
        lifespan=lifespan,
    )
    app.state.worker = worker
    return app
