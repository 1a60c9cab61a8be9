"""The orchestrator process: Temporal workers for castra's workflows and activities.

This is the one place where workflows and activities are registered.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from temporalio.client import Client
from temporalio.worker import Worker

from activities.provisioners import Provisioner
from activities.provisioners.process import ProcessProvisioner
from activities.store import StoreActivities
from activities.workers import WorkerActivities
from core import db as dbm
from core.settings import Settings
from core.temporal import connect, ensure_search_attributes
from workflows import sandbox_runner
from workflows.investigation import InvestigationWorkflow

log = logging.getLogger(__name__)


def provisioners(settings: Settings) -> dict[str, Provisioner]:
    process = ProcessProvisioner(
        host=settings.worker_host, log_dir=settings.data_dir / "logs" / "workers"
    )
    return {process.name: process}


def build_worker(client: Client, db: dbm.Db, settings: Settings) -> Worker:
    store = StoreActivities(db)
    workers = WorkerActivities(db, provisioners(settings))
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[InvestigationWorkflow],
        workflow_runner=sandbox_runner(),
        activities=[
            store.save_progress,
            workers.provision_worker,
            workers.start_worker,
            workers.check_worker,
            workers.teardown_worker,
        ],
        max_concurrent_activities=200,  # all async, mostly waiting on I/O
    )


async def run_orchestrator(settings: Settings) -> None:
    client = await connect(settings)
    await ensure_search_attributes(client)
    mongo = dbm.mongo_client(settings)
    db = dbm.database(mongo, settings)
    await dbm.ensure_indexes(db)
    worker = build_worker(client, db, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("orchestrator polling task queue %s", settings.temporal_task_queue)
    try:
        async with worker:
            await stop.wait()
    finally:
        await mongo.close()
