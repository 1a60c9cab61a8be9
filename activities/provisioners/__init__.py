"""Worker provisioners: how a dedicated worker is created, checked and destroyed.

Every provisioner implements ``Provisioner``. ``process`` (the embedded default) runs the
worker runtime as a local process; docker, ecs and kubernetes plug in here the same way.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import Field

from core.models import Model


class WorkerSpec(Model):
    worker_id: str
    investigation_id: str
    tenant_id: str
    start_timeout_seconds: float = 30.0


class ProvisionedWorker(Model):
    url: str  # where the orchestrator reaches the worker's POST /start
    handle: dict[str, Any] = Field(default_factory=dict)  # provisioner-specific reference


class Liveness(Model):
    alive: bool
    reason: str | None = None  # why not, in words an operator understands


class Provisioner(Protocol):
    name: str

    async def create(self, spec: WorkerSpec) -> ProvisionedWorker:
        """Starts the worker and returns once its /healthz answers; raises
        core.errors.ProvisioningError otherwise (after cleaning up what it made)."""
        ...

    async def liveness(self, handle: dict[str, Any]) -> Liveness: ...

    async def destroy(self, handle: dict[str, Any]) -> None:
        """Stops the worker; idempotent, and safe for a worker made by another process."""
        ...
