"""The main job: a real investigation, end to end, on the embedded default stack.

Starts `castra up` (Temporal dev server, SecantusDB, API, orchestrator) and the bundled demo
target, creates a tenant, stores two credentials, registers examples/owner-lookup.yaml,
triggers it with examples/alert.json through the REST API, follows it to the end and prints
the result with its REST and Temporal UI links. The stack then stays up for inspection
until Ctrl-C (or exits at once with --exit).

    python examples/demo.py [--exit]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from core.settings import Settings  # noqa: E402
from core.tenants import create_tenant  # noqa: E402
from examples.demo_target import DEFAULT_API_KEY, DEFAULT_PASSWORD, USERNAME  # noqa: E402

TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}


def say(text: str = "") -> None:
    print(text, flush=True)  # noqa: T201  (a command-line program)


def wait_http(url: str, what: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}; see its output above")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not answer {url} within {timeout:g}s")


def run_investigation(settings: Settings, target_url: str) -> tuple[dict[str, Any], str]:
    _, key = asyncio.run(create_tenant(settings, f"demo-{time.strftime('%Y%m%d-%H%M%S')}"))
    api = httpx.Client(
        base_url=settings.effective_public_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )

    def check(resp: httpx.Response) -> dict[str, Any]:
        if resp.status_code >= 400:
            raise SystemExit(
                f"{resp.request.method} {resp.request.url} -> {resp.status_code}: {resp.text}"
            )
        body: dict[str, Any] = resp.json() if resp.content else {}
        return body

    check(
        api.put(
            "/v1/credentials/demo-portal",
            json={
                "kind": "basic",
                "username": USERNAME,
                "password": DEFAULT_PASSWORD,
                "allowed_hosts": ["127.0.0.1"],
            },
        )
    )
    check(
        api.put(
            "/v1/credentials/demo-api",
            json={
                "kind": "api_key",
                "key": DEFAULT_API_KEY,
                "allowed_hosts": ["127.0.0.1"],
            },
        )
    )
    definition = yaml.safe_load((HERE / "owner-lookup.yaml").read_text())
    definition["vars"]["portal_url"] = target_url
    automation = check(api.post("/v1/automations", json=definition))
    alert = json.loads((HERE / "alert.json").read_text())
    inv = check(
        api.post(
            "/v1/investigations",
            json={"automation_id": automation["id"], "input": alert},
            headers={"Idempotency-Key": alert["id"]},
        )
    )
    say(f"Triggered investigation {inv['id']} ({automation['name']}) for alert {alert['id']}")
    seen: dict[str, str] = {}
    status = inv["status"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        inv = check(api.get(f"/v1/investigations/{inv['id']}"))
        if inv["status"] != status:
            status = inv["status"]
            say(f"  investigation  {status}")
        for step in inv["steps"]:
            if seen.get(step["id"]) != step["status"]:
                seen[step["id"]] = step["status"]
                say(f"  step {step['id']:<14} {step['status']}")
        if status in TERMINAL:
            return inv, key
        time.sleep(0.25)
    raise SystemExit(f"investigation {inv['id']} did not finish within 300s (status {status})")


def report(inv: dict[str, Any], key: str, settings: Settings) -> None:
    say()
    say(f"Investigation {inv['id']}: {inv['status']}")
    if inv.get("error"):
        say(f"  error: {inv['error']}")
    for step in inv["steps"]:
        say(f"  {step['id']}: {step['status']}")
        if step.get("outputs"):
            say(f"    outputs: {json.dumps(step['outputs'])}")
        if step.get("error"):
            say(f"    error: {step['error']}")
        for art in step.get("artifacts", []):
            say(
                f"    artifact: {art['name']} ({art['content_type']}, {art['size']} bytes) "
                f"{settings.effective_public_url}/v1/investigations/{inv['id']}/artifacts/{art['id']}"
            )
    say()
    url = f"{settings.effective_public_url}/v1/investigations/{inv['id']}"
    say(f"REST:        {url}")
    say(f"             curl -H 'Authorization: Bearer {key}' {url}")
    say(f"Temporal UI: {inv['links']['temporal_ui']}")
    say(f"API docs:    {settings.effective_public_url}/docs")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--exit", action="store_true", help="stop the stack once the investigation is done"
    )
    parser.add_argument("--target-port", type=int, default=8077, help="port of the demo target")
    args = parser.parse_args()
    settings = Settings()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    stack = subprocess.Popen(
        [sys.executable, "-m", "castra", "up"], env=env, start_new_session=True
    )
    target = subprocess.Popen(
        [sys.executable, str(HERE / "demo_target.py"), "--port", str(args.target_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    target_url = f"http://127.0.0.1:{args.target_port}"
    succeeded = False
    try:
        wait_http(f"{target_url}/healthz", "the demo target", target)
        wait_http(f"{settings.effective_public_url}/healthz", "castra up", stack, timeout=180)
        inv, key = run_investigation(settings, target_url)
        report(inv, key, settings)
        succeeded = inv["status"] == "succeeded"
        if not args.exit:
            say("\nThe stack stays up for inspection. Press Ctrl-C to stop it.")
            signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
            stack.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for proc in (target, stack):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in (target, stack):
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    return 0 if succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
