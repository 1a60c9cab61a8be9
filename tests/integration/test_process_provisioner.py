"""The `process` provisioner with real worker processes: create, check, destroy, and a
worker that cannot start."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from activities.provisioners import WorkerSpec
from activities.provisioners.process import ProcessProvisioner
from core.errors import ProvisioningError


def _spec(worker_id: str) -> WorkerSpec:
    return WorkerSpec(
        worker_id=worker_id, investigation_id="inv_1", tenant_id="ten_1", start_timeout_seconds=20
    )


async def test_create_liveness_destroy(tmp_path: Path) -> None:
    provisioner = ProcessProvisioner("127.0.0.1", tmp_path)
    made = await provisioner.create(_spec("wrk_a"))

    health = httpx.get(f"{made.url}/healthz").json()
    assert health == {"ok": True, "state": "idle", "investigation_id": None}
    assert (await provisioner.liveness(made.handle)).alive

    await provisioner.destroy(made.handle)
    gone = await provisioner.liveness(made.handle)
    assert not gone.alive and gone.reason == "worker process is gone"
    await provisioner.destroy(made.handle)  # idempotent

    # a provisioner that did not make it (an orchestrator restarted since) still sees it
    made = await provisioner.create(_spec("wrk_b"))
    stranger = ProcessProvisioner("127.0.0.1", tmp_path)
    assert (await stranger.liveness(made.handle)).alive
    await stranger.destroy(made.handle)
    assert not (await stranger.liveness(made.handle)).alive
    await provisioner.destroy(made.handle)


async def test_a_worker_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    broken = ProcessProvisioner("127.0.0.1", tmp_path, python="/bin/false")
    with pytest.raises(ProvisioningError, match="exited with code 1 before it was ready"):
        await broken.create(_spec("wrk_c"))
