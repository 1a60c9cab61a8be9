"""The worker API: its authentication, and its door onto the workflow.

The real InvestigationWorkflow lives in workflows/ and is tested there; here a small stand-in
that answers to the same contract names (core/contracts.py) runs on a real Temporal worker,
so these tests check the API's side of the door: auth, mapping, what reaches the workflow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest
from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from api import workflow as api_workflow
from core import db as dbm
from core import temporal as tc
from core.contracts import (
    INVESTIGATION_HEADER,
    INVESTIGATION_WORKFLOW,
    NEXT_STEPS,
    SUBMIT_STEP_RESULT,
    InvestigationInput,
    InvestigationResult,
    NextSteps,
    StepResultAck,
    StepResultInput,
)
from core.models import InvestigationStatus, StepState, StepStatus
from core.settings import Settings
from tests.integration.api.helpers import Tenant, add_worker, assert_problem, trigger

SECRET = "hive-api-key-never-logged"

AUTOMATION = {
    "name": "two-steps",
    "steps": [
        {
            "id": "case",
            "kind": "http",
            "credential": "thehive",
            "request": {"url": "https://hive.example/api/v1/case/1"},
        },
        {"id": "notify", "kind": "http", "request": {"url": "https://chat.example/hook"}},
    ],
}


@workflow.defn(name=INVESTIGATION_WORKFLOW)
class StandInWorkflow:
    """Hands out the steps one at a time and accepts a result only for the current one."""

    @workflow.init
    def __init__(self, arg: InvestigationInput) -> None:
        self.steps = [s.id for s in arg.automation.steps]
        self.definition = arg.automation
        self.results: dict[str, StepResultInput] = {}

    @workflow.run
    async def run(self, arg: InvestigationInput) -> InvestigationResult:
        await workflow.wait_condition(lambda: len(self.results) == len(self.steps))
        return InvestigationResult(
            status=InvestigationStatus.succeeded,
            steps=[StepState(id=i, status=StepStatus(r.status)) for i, r in self.results.items()],
        )

    def _current(self) -> str | None:
        return next((s for s in self.steps if s not in self.results), None)

    @workflow.query(name=NEXT_STEPS)
    def next_steps(self) -> NextSteps:
        current = self._current()
        return NextSteps(
            done=current is None,
            status=InvestigationStatus.running,
            steps=[self.definition.step(current)] if current else [],
        )

    @workflow.update(name=SUBMIT_STEP_RESULT)
    def submit(self, result: StepResultInput) -> StepResultAck:
        self.results[result.step_id] = result
        return StepResultAck(
            step_id=result.step_id,
            status=result.status,
            investigation_status=InvestigationStatus.running,
        )

    @submit.validator
    def _check(self, result: StepResultInput) -> None:
        if result.step_id != self._current():
            raise ValueError(f"step {result.step_id!r} is not running")


@pytest.fixture
async def stand_in(settings: Settings) -> AsyncIterator[None]:
    client = await tc.connect(settings)
    async with Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[StandInWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        yield


async def start_investigation(api: httpx.AsyncClient, tenant: Tenant) -> str:
    created = await api.post("/v1/automations", json=AUTOMATION, headers=tenant.headers)
    assert created.status_code == 201, created.text
    response = await trigger(api, tenant, created.json()["id"], {"case_id": "1"})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def worker_headers(key: str, investigation_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", INVESTIGATION_HEADER: investigation_id}


async def test_worker_keys_are_checked_and_bound_to_one_investigation(
    api: httpx.AsyncClient, tenant: Tenant, db: dbm.Db
) -> None:
    first = await start_investigation(api, tenant)
    second = (
        await trigger(
            api,
            tenant,
            (await api.get("/v1/automations", headers=tenant.headers)).json()["items"][0]["id"],
            {},
        )
    ).json()["id"]
    _, key = await add_worker(db, tenant, first)

    no_key = await api.get("/worker/v1/investigation", headers={INVESTIGATION_HEADER: first})
    assert_problem(no_key, 401, "unauthenticated")
    unknown = await api.get("/worker/v1/investigation", headers=worker_headers("cw_nope", first))
    assert_problem(unknown, 401, "unauthenticated")
    # a tenant key is not a worker key
    tenant_key = await api.get(
        "/worker/v1/investigation", headers=worker_headers(tenant.key, first)
    )
    assert_problem(tenant_key, 401, "unauthenticated")
    # a worker key is not a tenant key either
    as_tenant = await api.get("/v1/automations", headers={"Authorization": f"Bearer {key}"})
    assert_problem(as_tenant, 401, "unauthenticated")

    elsewhere = await api.get("/worker/v1/investigation", headers=worker_headers(key, second))
    assert_problem(elsewhere, 403, "forbidden")
    no_header = await api.get(
        "/worker/v1/investigation", headers={"Authorization": f"Bearer {key}"}
    )
    assert_problem(no_header, 403, "forbidden")

    mine = await api.get("/worker/v1/investigation", headers=worker_headers(key, first))
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["id"] == first
    assert body["tenant_id"] == tenant.id
    assert body["input"] == {"case_id": "1"}
    assert [s["id"] for s in body["automation"]["steps"]] == ["case", "notify"]

    # a revoked key stops working at once
    await db[dbm.WORKERS].update_one(
        {"investigation_id": first}, {"$set": {"revoked_at": dbm.utcnow()}}
    )
    revoked = await api.get("/worker/v1/investigation", headers=worker_headers(key, first))
    assert_problem(revoked, 401, "unauthenticated")


async def test_heartbeat_records_the_time_and_says_when_to_stop(
    api: httpx.AsyncClient, tenant: Tenant, db: dbm.Db
) -> None:
    investigation_id = await start_investigation(api, tenant)
    worker_id, key = await add_worker(db, tenant, investigation_id)
    before = dbm.utcnow()
    beat = await api.post("/worker/v1/heartbeat", headers=worker_headers(key, investigation_id))
    assert beat.status_code == 200, beat.text
    assert beat.json() == {"stop": False, "status": "queued"}
    doc = await db[dbm.WORKERS].find_one({"_id": worker_id})
    assert doc is not None
    assert isinstance(doc["last_heartbeat_at"], datetime) and doc["last_heartbeat_at"] >= before

    await db[dbm.INVESTIGATIONS].update_one(
        {"_id": investigation_id}, {"$set": {"status": "cancelled"}}
    )
    beat = await api.post("/worker/v1/heartbeat", headers=worker_headers(key, investigation_id))
    assert beat.json() == {"stop": True, "status": "cancelled"}


@pytest.mark.usefixtures("stand_in")
async def test_steps_results_and_credentials_go_through_the_workflow(
    api: httpx.AsyncClient, tenant: Tenant, db: dbm.Db, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    put = await api.put(
        "/v1/credentials/thehive", json={"kind": "api_key", "key": SECRET}, headers=tenant.headers
    )
    assert put.status_code == 200
    await api.put(
        "/v1/credentials/chat", json={"kind": "api_key", "key": "other"}, headers=tenant.headers
    )
    investigation_id = await start_investigation(api, tenant)
    _, key = await add_worker(db, tenant, investigation_id)
    headers = worker_headers(key, investigation_id)

    nxt = await api.get("/worker/v1/steps/next", headers=headers)
    assert nxt.status_code == 200, nxt.text
    assert nxt.json()["done"] is False
    assert [s["id"] for s in nxt.json()["steps"]] == ["case"]

    # the running step names "thehive": its value is handed out, uncached
    credential = await api.get("/worker/v1/credentials/thehive", headers=headers)
    assert credential.status_code == 200, credential.text
    assert credential.headers["cache-control"] == "no-store"
    assert credential.json()["key"] == SECRET
    assert credential.json()["kind"] == "api_key"
    # "chat" exists but no running step names it
    unused = await api.get("/worker/v1/credentials/chat", headers=headers)
    body = assert_problem(unused, 403, "forbidden")
    assert body["detail"] == "credential not used by the running step"

    # a result for a step that is not running is refused by the workflow's validator
    early = await api.post(
        "/worker/v1/steps/notify/result", json={"status": "succeeded"}, headers=headers
    )
    body = assert_problem(early, 409, "conflict")
    assert body["detail"] == "step 'notify' is not running"
    bad = await api.post("/worker/v1/steps/case/result", json={"status": "great"}, headers=headers)
    assert_problem(bad, 422, "invalid-input")

    done = await api.post(
        "/worker/v1/steps/case/result",
        json={"status": "succeeded", "outputs": {"severity": 2}},
        headers=headers,
    )
    assert done.status_code == 200, done.text
    assert done.json() == {
        "step_id": "case",
        "status": "succeeded",
        "investigation_status": "running",
        "last": False,
    }
    nxt = await api.get("/worker/v1/steps/next", headers=headers)
    assert [s["id"] for s in nxt.json()["steps"]] == ["notify"]
    # "case" is over: its credential is no longer handed out
    assert_problem(
        await api.get("/worker/v1/credentials/thehive", headers=headers), 403, "forbidden"
    )

    assert SECRET not in caplog.text


async def test_artifacts_are_stored_and_read_back_by_their_tenant_only(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, db: dbm.Db
) -> None:
    investigation_id = await start_investigation(api, tenant)
    _, key = await add_worker(db, tenant, investigation_id)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    uploaded = await api.post(
        "/worker/v1/artifacts",
        params={"step_id": "case", "name": "dashboard"},
        content=png,
        headers={**worker_headers(key, investigation_id), "Content-Type": "image/png"},
    )
    assert uploaded.status_code == 201, uploaded.text
    ref = uploaded.json()
    assert ref["name"] == "dashboard" and ref["content_type"] == "image/png"
    assert ref["size"] == len(png)

    url = f"/v1/investigations/{investigation_id}/artifacts/{ref['id']}"
    got = await api.get(url, headers=tenant.headers)
    assert got.status_code == 200
    assert got.content == png
    assert got.headers["content-type"] == "image/png"
    assert_problem(await api.get(url, headers=other_tenant.headers), 404, "not-found")
    assert_problem(
        await api.get(
            f"/v1/investigations/{investigation_id}/artifacts/nope", headers=tenant.headers
        ),
        404,
        "not-found",
    )

    too_big = await api.post(
        "/worker/v1/artifacts",
        params={"step_id": "case", "name": "huge"},
        content=b"\0" * (20 * 1024 * 1024 + 1),
        headers=worker_headers(key, investigation_id),
    )
    assert_problem(too_big, 413, "payload-too-large")


async def test_worker_calls_answer_503_when_no_orchestrator_serves_the_workflow(
    api: httpx.AsyncClient, tenant: Tenant, db: dbm.Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workflow was started, but nothing polls its task queue (the orchestrator is down):
    # the worker must get a prompt 503 to retry, not a request that hangs or a 500.
    monkeypatch.setattr(api_workflow, "QUERY_TIMEOUT", timedelta(seconds=1))
    monkeypatch.setattr(api_workflow, "UPDATE_TIMEOUT", timedelta(seconds=1))
    investigation_id = await start_investigation(api, tenant)
    _, key = await add_worker(db, tenant, investigation_id)
    headers = worker_headers(key, investigation_id)
    async with asyncio.timeout(20):
        nxt = await api.get("/worker/v1/steps/next", headers=headers)
        assert_problem(nxt, 503, "unavailable")
        result = await api.post(
            "/worker/v1/steps/case/result", json={"status": "succeeded"}, headers=headers
        )
        assert_problem(result, 503, "unavailable")
        credential = await api.get("/worker/v1/credentials/thehive", headers=headers)
        assert_problem(credential, 503, "unavailable")
