"""The README's main job, as a user runs it: examples/demo.py starts `castra up` (every
process of the embedded default stack) and the demo portal, triggers the sample automation
through the REST API and must print `succeeded`, then stop everything it started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from castra.services import port_is_free
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(360)
def test_demo_runs_an_investigation_end_to_end(tmp_path: Path) -> None:
    ports = {
        "CASTRA_API_PORT": free_port(),
        "CASTRA_TEMPORAL_PORT": free_port(),
        "CASTRA_TEMPORAL_UI_PORT": free_port(),
        "CASTRA_MONGODB_PORT": free_port(),
    }
    target_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTRA_")}
    env.update({k: str(v) for k, v in ports.items()}, CASTRA_DATA_DIR=str(tmp_path / "data"))

    done = subprocess.run(
        [sys.executable, "examples/demo.py", "--exit", "--target-port", str(target_port)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "succeeded" in out.split("Investigation inv_", 1)[1].splitlines()[0]
    assert '"owner": "Dana Whitfield"' in out and '"risk_level": "high"' in out
    assert f"http://127.0.0.1:{ports['CASTRA_API_PORT']}/v1/investigations/inv_" in out
    assert (
        f"http://127.0.0.1:{ports['CASTRA_TEMPORAL_UI_PORT']}/namespaces/default/workflows/investigation-inv_"
        in out
    )
    assert "castra stopped." in out
    # everything it started is gone
    for port in [*ports.values(), target_port]:
        assert port_is_free("127.0.0.1", port), f"port {port} still in use"
