"""Records the committed histories the replay tests use (run by hand after a deliberate,
patched change to InvestigationWorkflow; never by the test suite):

    .venv/bin/python -m tests.replay.record

Keep what running workflows may still have: first rename the current
histories/investigation_succeeded.json to the next investigation_succeeded_vN.json.

It runs a real investigation (an http step, then a skipped one) on a throwaway embedded
stack and writes its history, as `temporal workflow show --output json` prints it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from core.settings import Settings
from tests.services import free_port, serve_in_thread, start_test_mongodb, start_test_temporal
from tests.stack import running_stack

HERE = Path(__file__).resolve().parent


async def record(temporal: str, mongodb: str, target: str, data_dir: Path) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        temporal_address=temporal,
        mongodb_uri=mongodb,
        mongodb_database="replay",
        api_port=free_port(),
    )
    async with running_stack(settings) as stack:
        automation_id = await stack.create_automation(
            {
                "name": "replay",
                "steps": [
                    {"id": "health", "kind": "http", "request": {"url": f"{target}/healthz"}},
                    {
                        "id": "skipped",
                        "kind": "http",
                        "when": "false",
                        "request": {"url": f"{target}/healthz"},
                    },
                ],
            }
        )
        inv_id = await stack.trigger(automation_id, {"alert": "A-1"})
        inv = await stack.wait_done(inv_id)
        assert inv["status"] == "succeeded", inv
    shown = subprocess.run(
        [
            str(Path(sys.executable).parent / "temporal"),
            "workflow",
            "show",
            "--output",
            "json",
            "--address",
            temporal,
            "--workflow-id",
            f"investigation-{inv_id}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (HERE / "histories" / "investigation_succeeded.json").write_text(shown)
    (HERE / "histories" / "investigation_nondeterministic.json").write_text(
        json.dumps(swap_first_activity(json.loads(shown)), indent=2)
    )


def swap_first_activity(history: dict[str, Any]) -> dict[str, Any]:
    """The same history as if an older workflow had torn a worker down before making one:
    today's code must refuse to replay it."""
    for event in history["events"]:
        attrs = event.get("activityTaskScheduledEventAttributes")
        if attrs:
            assert attrs["activityType"]["name"] != "teardown_worker"
            attrs["activityType"]["name"] = "teardown_worker"
            return history
    raise AssertionError("no activity in the history")


def main() -> None:
    from examples.demo_target import create_app

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        temporal = start_test_temporal(root / "temporal")
        mongodb = start_test_mongodb(root / "mongodb")
        try:
            with serve_in_thread(create_app()) as target:
                asyncio.run(record(temporal.address, mongodb.address, target, root / "castra"))
        finally:
            mongodb.stop()
            temporal.stop()


if __name__ == "__main__":
    main()
