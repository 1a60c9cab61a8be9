"""A burst of triggers at once: every one is recorded and every one finishes."""

from __future__ import annotations

import asyncio

import pytest

from tests.stack import Stack

BURST = 12


@pytest.mark.timeout(240)
async def test_a_burst_of_triggers_all_finish(stack: Stack, demo_target: str) -> None:
    automation_id = await stack.create_automation(
        {
            "name": "burst",
            "steps": [{"id": "ping", "kind": "http", "request": {"url": f"{demo_target}/healthz"}}],
        }
    )
    ids = await asyncio.gather(*(stack.trigger(automation_id, {"n": n}) for n in range(BURST)))
    assert len(set(ids)) == BURST

    done = await asyncio.gather(*(stack.wait_done(i, timeout=180) for i in ids))

    assert [d["status"] for d in done] == ["succeeded"] * BURST
    listed = (await stack.api.get("/v1/investigations", params={"limit": 100})).json()
    assert {i["id"] for i in listed["items"]} == set(ids)
