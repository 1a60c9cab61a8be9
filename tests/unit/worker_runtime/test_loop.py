"""The step loop against a fake worker API served for real on a free port."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from typing import Any

import pytest

from core.contracts import WorkerStartRequest
from core.models import AutomationDefinition
from tests.helpers_http import INVESTIGATION, KEY, FakeBackend, serve
from worker_runtime.loop import StepLoop

API_KEY = "api-key-value-777"
PASSWORD = "hunter2-pass"


def _loop(url: str, interval: float = 0.2) -> StepLoop:
    start = WorkerStartRequest(
        investigation_id=INVESTIGATION,
        backend_url=url,
        api_key=KEY,
        heartbeat_interval_seconds=interval,
    )
    return StepLoop(start)


def _automation(steps: list[dict[str, Any]]) -> AutomationDefinition:
    return AutomationDefinition.model_validate(
        {"name": "loop-test", "vars": {"who": "ann"}, "steps": steps}
    )


async def test_runs_skips_fails_redacts_and_stops_when_done() -> None:
    backend = FakeBackend(
        automation=_automation(
            [
                {
                    "id": "lookup",
                    "kind": "http",
                    "credential": "api",
                    "request": {
                        "url": "{{ vars.base }}/target/ok?case={{ input.case_id }}",
                        "headers": {"X-Who": "{{ vars.who }}-{{ vars.extra }}"},
                    },
                    "extract": {"owner": "owner", "key_seen": "auth", "who": "who", "case": "case"},
                },
                {
                    "id": "escalate",
                    "kind": "http",
                    "credential": "pager",
                    "when": "steps.lookup.outputs.owner == 'nobody'",
                    "request": {"url": "{{ vars.base }}/target/ok"},
                },
                {
                    "id": "portal",
                    "kind": "http",
                    "credential": "portal",
                    "request": {"url": "{{ vars.base }}/target/fail"},
                },
                {
                    "id": "after",
                    "kind": "http",
                    "credential": "never",
                    "request": {"url": "{{ vars.base }}/target/ok"},
                },
            ]
        ),
        credentials={
            "api": {"kind": "api_key", "key": API_KEY, "header": "X-Api-Key", "prefix": ""},
            "pager": {"kind": "api_key", "key": "pager-key-xyz"},
            "portal": {"kind": "basic", "username": "analyst", "password": PASSWORD},
        },
        input={"case_id": "C-1"},
    )
    async with serve(backend.app()) as url:
        backend.automation.vars["base"] = url
        started = time.monotonic()
        await asyncio.wait_for(_loop(url).run(), 20)

    results = backend.results
    # the http step ran with input, vars (automation's and investigation's) and its credential
    assert results["lookup"]["status"] == "succeeded"
    assert results["lookup"]["outputs"]["owner"] == "ann"
    assert results["lookup"]["outputs"]["status_code"] == 200
    assert results["lookup"]["outputs"]["who"] == "ann-from-investigation"
    assert results["lookup"]["outputs"]["case"] == "C-1"
    # the key the target echoed back is redacted from the outputs
    assert results["lookup"]["outputs"]["key_seen"] == "[REDACTED]"
    assert results["lookup"]["started_at"]
    # `when` was falsy: skipped, and its credential was never fetched
    assert results["escalate"]["status"] == "skipped"
    assert results["escalate"]["error"] is None
    # the failure carries a clear error with every form of the password redacted
    failed = results["portal"]
    assert failed["status"] == "failed"
    assert failed["error"].startswith(f"HTTP 500 from GET {url}/target/fail: boom: got Basic ")
    assert PASSWORD not in failed["error"]
    assert base64.b64encode(f"analyst:{PASSWORD}".encode()).decode() not in failed["error"]
    assert failed["error"].count("[REDACTED]") == 2
    # after the failure the backend said done: the loop stopped, the last step never ran
    assert "after" not in results
    assert backend.credential_fetches == ["api", "portal"]
    assert backend.target_hits == ["ok", "fail"]
    assert backend.heartbeats >= 1
    # every call carried the worker key and the investigation header
    assert backend.worker_calls and all(
        c.authorization == f"Bearer {KEY}" and c.investigation == INVESTIGATION
        for c in backend.worker_calls
    )
    assert time.monotonic() - started < 10


async def test_step_errors_and_timeouts_fail_the_step_not_the_worker() -> None:
    backend = FakeBackend(
        automation=_automation(
            [
                {
                    "id": "typo",
                    "kind": "http",
                    "request": {"url": "{{ vars.base }}/target/{{ input.nope }}"},
                },
            ]
        )
    )
    async with serve(backend.app()) as url:
        backend.automation.vars["base"] = url
        await asyncio.wait_for(_loop(url).run(), 20)
    assert backend.results["typo"]["status"] == "failed"
    assert backend.results["typo"]["error"] == (
        "template '{{ vars.base }}/target/{{ input.nope }}': 'dict object' has no attribute 'nope'"
    )
    assert backend.target_hits == []


async def test_step_timeout_and_missing_credential() -> None:
    # The fake stops at the first failure, so each case gets its own backend.
    slow = FakeBackend(
        automation=_automation(
            [
                {
                    "id": "slow",
                    "kind": "http",
                    "timeout_seconds": 0.5,
                    "request": {"url": "{{ vars.base }}/target/slow"},
                }
            ]
        )
    )
    async with serve(slow.app()) as url:
        slow.automation.vars["base"] = url
        started = time.monotonic()
        await asyncio.wait_for(_loop(url).run(), 20)
        assert time.monotonic() - started < 5
    assert slow.results["slow"]["status"] == "failed"
    assert slow.results["slow"]["error"] == "step timed out after 0.5s"

    missing = FakeBackend(
        automation=_automation(
            [
                {
                    "id": "m",
                    "kind": "http",
                    "credential": "ghost",
                    "request": {"url": "http://x.example"},
                }
            ]
        )
    )
    async with serve(missing.app()) as url:
        await asyncio.wait_for(_loop(url).run(), 20)
    assert missing.results["m"]["status"] == "failed"
    assert missing.results["m"]["error"] == (
        "credential 'ghost': GET /worker/v1/credentials/ghost: HTTP 404: not found: "
        "no credential ghost"
    )


async def test_heartbeat_stop_ends_the_loop_during_a_running_step() -> None:
    backend = FakeBackend(
        automation=_automation(
            [{"id": "slow", "kind": "http", "request": {"url": "{{ vars.base }}/target/slow"}}]
        ),
        stop_after_heartbeats=2,
    )
    async with serve(backend.app()) as url:
        backend.automation.vars["base"] = url
        started = time.monotonic()
        await asyncio.wait_for(_loop(url, interval=0.2).run(), 20)
        elapsed = time.monotonic() - started
    assert backend.heartbeats == 2
    assert backend.target_hits == ["slow"]  # the step was running ...
    assert backend.results == {}  # ... and was abandoned, not reported
    assert elapsed < 3


async def test_backend_refusing_the_key_ends_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    backend = FakeBackend(
        automation=_automation(
            [{"id": "a", "kind": "http", "request": {"url": "http://x.example"}}]
        )
    )
    async with serve(backend.app()) as url:
        start = WorkerStartRequest(investigation_id=INVESTIGATION, backend_url=url, api_key="nope")
        with caplog.at_level(logging.INFO, logger="worker_runtime.loop"):
            await asyncio.wait_for(StepLoop(start).run(), 20)
    # its first two questions, asked together, are refused; nothing more is attempted
    assert {c.path for c in backend.calls} == {"/worker/v1/investigation", "/worker/v1/steps/next"}
    assert len(backend.calls) == 2
    assert backend.results == {}
    # a revoked key is how a cancelled investigation ends: said plainly, not as an error
    assert "worker key revoked, stopping" in caplog.messages
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_result_too_large_to_submit_becomes_a_clear_failure() -> None:
    backend = FakeBackend(
        automation=_automation(
            [
                {
                    "id": "dump",
                    "kind": "http",
                    "request": {"url": "{{ vars.base }}/target/huge"},
                    "extract": {"everything": "@"},
                },
            ]
        )
    )
    async with serve(backend.app()) as url:
        backend.automation.vars["base"] = url
        await asyncio.wait_for(_loop(url).run(), 20)
    assert backend.results["dump"]["status"] == "failed"
    assert backend.results["dump"]["outputs"] == {}
    assert backend.results["dump"]["error"].endswith("the limit is 512 KiB (extract less)")
