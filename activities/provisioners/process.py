"""The ``process`` provisioner: each worker is a local ``python -m worker_runtime`` process.

Workers run in their own session so they outlive an orchestrator restart; they are found
again by pid plus the kernel's start time of that pid, so a recycled pid is never killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from activities.provisioners import Liveness, ProvisionedWorker, WorkerSpec
from core.errors import ProvisioningError


def _start_time(pid: int) -> str | None:
    """The pid's start time in clock ticks since boot, or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


# A worker gets none of the backend's configuration (secrets key, database URI, ...).
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "CASTRA_CHROMIUM_PATH")


def _worker_env(worker_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _PASSED_ENV}
    env["CASTRA_WORKER_ID"] = worker_id
    return env


class ProcessProvisioner:
    name = "process"

    def __init__(self, host: str, log_dir: Path, python: str = sys.executable) -> None:
        self._host = host
        self._log_dir = log_dir
        self._python = python
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    async def create(self, spec: WorkerSpec) -> ProvisionedWorker:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self._log_dir / f"{spec.worker_id}.log"
        with open(log_path, "ab") as log:
            # Port 0: the worker binds a free port itself and reports it on its stdout,
            # so no other process can take the port between our choice and its bind.
            proc = subprocess.Popen(
                [self._python, "-m", "worker_runtime", "--host", self._host, "--port", "0"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                env=_worker_env(spec.worker_id),
            )
        self._children[proc.pid] = proc
        handle = {"pid": proc.pid, "start_time": _start_time(proc.pid), "log": str(log_path)}
        try:
            url = await self._wait_listening(proc, spec.start_timeout_seconds)
            async with httpx.AsyncClient(timeout=5.0) as client:
                if (await client.get(f"{url}/healthz")).status_code != 200:
                    raise ProvisioningError("worker did not answer /healthz")
        except (ProvisioningError, httpx.TransportError) as exc:
            await self.destroy(handle)
            raise ProvisioningError(str(exc)) from None
        return ProvisionedWorker(url=url, handle=handle)

    async def _wait_listening(self, proc: subprocess.Popen[bytes], timeout: float) -> str:
        """The worker's one stdout line, written once it is ready to serve."""
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)
        except TimeoutError:
            raise ProvisioningError(f"worker was not ready within {timeout:g}s") from None
        if not line:
            code = await asyncio.to_thread(proc.wait)
            raise ProvisioningError(f"worker process exited with code {code} before it was ready")
        proc.stdout.close()
        try:
            port = int(json.loads(line)["port"])
        except (ValueError, KeyError, TypeError):
            raise ProvisioningError("worker announced no port") from None
        return f"http://{self._host}:{port}"

    def _reap(self, pid: int) -> int | None:
        proc = self._children.get(pid)
        return None if proc is None else proc.poll()

    async def liveness(self, handle: dict[str, Any]) -> Liveness:
        pid = int(handle["pid"])
        code = self._reap(pid)
        if code is not None:
            return Liveness(alive=False, reason=f"worker process exited with code {code}")
        if _start_time(pid) != handle.get("start_time"):
            return Liveness(alive=False, reason="worker process is gone")
        return Liveness(alive=True)

    async def destroy(self, handle: dict[str, Any]) -> None:
        pid = int(handle["pid"])
        if self._reap(pid) is None and _start_time(pid) == handle.get("start_time"):
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            for _ in range(50):
                await asyncio.sleep(0.05)
                if self._reap(pid) is not None or _start_time(pid) != handle.get("start_time"):
                    break
            else:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        proc = self._children.pop(pid, None)
        if proc is not None:
            await asyncio.to_thread(proc.wait)
