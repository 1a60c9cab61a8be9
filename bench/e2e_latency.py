"""End-to-end latency of an investigation on the embedded default stack.

Starts `castra up` (separate processes, free ports, a temporary data dir) and a local HTTP
target, then runs N investigations of a one-http-step automation, one after another, and
measures from the trigger (just before POST /v1/investigations) to
- the first step's result being recorded (`first_step`), and
- the investigation's final status being recorded (`done`),
using the times castra stores. In the same run it measures the worker runtime's own cold
start (spawn of `python -m worker_runtime` to /healthz answering), the floor that any
orchestration sits on, and prints their ratio. Target: ratio <= 2 and p50_first_step < 2 s.

    .venv/bin/python bench/e2e_latency.py [-n 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.settings import Settings  # noqa: E402
from core.tenants import create_tenant  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"process for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.005)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def worker_cold_start(runs: int) -> float:
    """Median seconds from spawning the worker runtime to its /healthz answering."""
    times = []
    for _ in range(runs):
        port = free_port()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker_runtime", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", 30, proc)
            times.append(time.perf_counter() - t0)
        finally:
            proc.terminate()
            proc.wait()
    return statistics.median(times)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def seconds_since(t0: datetime, stamp: str) -> float:
    return (datetime.fromisoformat(stamp) - t0).total_seconds()


def run(n: int, data_dir: Path) -> None:
    ports = {
        "CASTRA_API_PORT": free_port(),
        "CASTRA_TEMPORAL_PORT": free_port(),
        "CASTRA_TEMPORAL_UI_PORT": free_port(),
        "CASTRA_MONGODB_PORT": free_port(),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTRA_")}
    env.update(
        {k: str(v) for k, v in ports.items()},
        CASTRA_DATA_DIR=str(data_dir),
        CASTRA_LOG_LEVEL="WARNING",
    )
    os.environ.update(env)
    settings = Settings()
    target_port = free_port()
    target = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "demo_target.py"), "--port", str(target_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack = subprocess.Popen(
        [sys.executable, "-m", "castra", "up"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{target_port}/healthz", 30, target)
        wait_http(f"{settings.effective_public_url}/healthz", 180, stack)
        _, key = asyncio.run(create_tenant(settings, "bench"))
        api = httpx.Client(
            base_url=settings.effective_public_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        automation = api.post(
            "/v1/automations",
            json={
                "name": "one-http-step",
                "steps": [
                    {
                        "id": "ping",
                        "kind": "http",
                        "request": {"url": f"http://127.0.0.1:{target_port}/healthz"},
                    }
                ],
            },
        ).json()
        first_step, done = [], []
        for i in range(n + 1):  # the first run warms up Temporal, the API and the page cache
            t0 = datetime.now(UTC)
            inv = api.post(
                "/v1/investigations", json={"automation_id": automation["id"], "input": {"i": i}}
            ).json()
            while inv["status"] not in ("succeeded", "failed", "cancelled", "timed_out"):
                time.sleep(0.05)
                inv = api.get(f"/v1/investigations/{inv['id']}").json()
            if inv["status"] != "succeeded":
                raise SystemExit(
                    f"investigation {inv['id']} ended {inv['status']}: {inv.get('error')}"
                )
            if i == 0:
                continue
            first_step.append(seconds_since(t0, inv["steps"][0]["finished_at"]))
            done.append(seconds_since(t0, inv["finished_at"]))
            print(
                f"  {i:3d}/{n}  first_step {first_step[-1]:.3f}s  done {done[-1]:.3f}s", flush=True
            )
    finally:
        stack.send_signal(2)
        target.terminate()
        stack.wait(60)
        target.wait(10)
    cold = worker_cold_start(5)
    p50 = statistics.median(first_step)
    print(
        f"RESULT p50_first_step_s={p50:.3f} p95_first_step_s={quantile(first_step, 0.95):.3f} "
        f"p50_done_s={statistics.median(done):.3f} worker_cold_start_s={cold:.3f} "
        f"ratio={p50 / cold:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=20, help="investigations to time (default 20)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="castra-bench-") as tmp:
        run(args.n, Path(tmp))


if __name__ == "__main__":
    main()
