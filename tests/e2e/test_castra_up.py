"""`castra up` given existing servers starts only castra's own processes, answers, and
stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from castra.services import port_is_free
from tests.services import free_port


def test_up_uses_given_servers_and_starts_none(
    temporal_server: str, mongodb_server: str, mongo_db_name: str, tmp_path: Path
) -> None:
    api_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTRA_")}
    env.update(
        CASTRA_TEMPORAL_ADDRESS=temporal_server,
        CASTRA_MONGODB_URI=mongodb_server,
        CASTRA_MONGODB_DATABASE=mongo_db_name,
        CASTRA_API_PORT=str(api_port),
        CASTRA_DATA_DIR=str(tmp_path),
        CASTRA_TEMPORAL_TASK_QUEUE=f"up-{api_port}",
    )
    up = subprocess.Popen(
        [sys.executable, "-m", "castra", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert up.stdout is not None
    seen: list[str] = []
    try:
        for line in up.stdout:  # until it says it is up (or exits)
            seen.append(line)
            if line.startswith("Press Ctrl-C to stop."):
                break
        health = httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=5).json()
        assert health == {"ok": True, "temporal": True, "mongodb": True}, health
    finally:
        up.send_signal(signal.SIGINT)
        rest, _ = up.communicate(timeout=60)
    out = "".join(seen) + rest
    assert up.returncode == 0, out
    assert f"Temporal gRPC    {temporal_server}" in out
    assert "started temporal" not in out and "started mongodb" not in out
    assert "started api" in out and "started orchestrator" in out
    assert "castra stopped." in out
    assert port_is_free("127.0.0.1", api_port)
