"""castra's HTTP API: the tenant REST API and the worker-facing API.

``create_app()`` is the uvicorn factory (``api.app:create_app``). Its lifespan connects
MongoDB and the secret store once and reaches Temporal in the background, so the API
serves, and records triggers, even while Temporal is down. Nothing here logs a request
body, and no response carries a secret value except the worker's credential endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from api import background, problems
from api.deps import Runtime
from api.limits import BodyLimits
from api.routes import artifacts, automations, credentials, health, investigations, worker
from core import db as dbm
from core.secrets import secret_store
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    mongo = dbm.mongo_client(settings)
    try:
        db = dbm.database(mongo, settings)
        await dbm.ensure_indexes(db)
        rt = Runtime(settings=settings, mongo=mongo, db=db, secrets=secret_store(settings))
        app.state.runtime = rt
        tasks = [
            asyncio.create_task(background.connect_temporal(rt), name="connect-temporal"),
            asyncio.create_task(background.dispatch_loop(rt), name="dispatch-pending"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await mongo.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="castra",
        summary="Runs recorded security automations in the backend, on Temporal.",
        version="0.1.0",
        lifespan=_lifespan,
    )
    app.state.settings = settings or get_settings()
    app.add_middleware(BodyLimits)  # added first: runs inside problems' UnhandledErrors
    problems.install(app)
    for module in (automations, investigations, artifacts, credentials, worker, health):
        app.include_router(module.router)
    return app
