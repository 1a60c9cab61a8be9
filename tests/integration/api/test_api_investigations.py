"""Triggering, reading, listing and cancelling investigations through the tenant API."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from temporalio.client import WorkflowExecutionStatus

from core import db as dbm
from core import temporal as tc
from core.contracts import investigation_workflow_id
from core.settings import Settings
from tests.integration.api.helpers import Tenant, assert_problem, create_automation, serve, trigger
from tests.services import free_port


async def test_trigger_starts_a_workflow_and_get_shows_the_contract(
    api: httpx.AsyncClient, tenant: Tenant, settings: Settings, db: dbm.Db
) -> None:
    automation_id = await create_automation(api, tenant)
    response = await trigger(api, tenant, automation_id, {"case_id": "42"})
    assert response.status_code == 202, response.text
    created = response.json()
    investigation_id = created["id"]
    assert created["status"] == "queued"

    fetched = await api.get(f"/v1/investigations/{investigation_id}", headers=tenant.headers)
    assert fetched.status_code == 200
    body = fetched.json()
    contract = {
        "id", "tenant_id", "automation_id", "status", "trigger", "input", "steps", "worker",
        "created_at", "finished_at",
    }  # fmt: skip
    assert set(body) == contract | {"error", "automation_name", "links"}
    assert body["tenant_id"] == tenant.id
    assert body["automation_id"] == automation_id
    assert body["automation_name"] == "owner-lookup"
    assert body["input"] == {"case_id": "42"}
    assert body["trigger"]["kind"] == "api"
    assert [set(s) for s in body["steps"]] == [
        {"id", "status", "outputs", "error", "artifacts", "started_at", "finished_at"}
    ]
    assert body["steps"][0] == {
        "id": "case", "status": "pending", "outputs": {}, "error": None, "artifacts": [],
        "started_at": None, "finished_at": None,
    }  # fmt: skip
    assert body["links"]["self"].endswith(f"/v1/investigations/{investigation_id}")
    assert body["links"]["temporal_ui"] == (
        f"{settings.effective_temporal_ui_url}/namespaces/default/workflows/"
        f"investigation-{investigation_id}"
    )

    # the workflow really was started on the tenant's queue, and the record says so
    doc = await db[dbm.INVESTIGATIONS].find_one({"_id": investigation_id})
    assert doc is not None and doc["workflow_started"] is True
    client = await tc.connect(settings)
    description = await client.get_workflow_handle(
        investigation_workflow_id(investigation_id)
    ).describe()
    assert description.task_queue == settings.temporal_task_queue
    assert description.status == WorkflowExecutionStatus.RUNNING


async def test_idempotency_key_returns_the_same_investigation(
    api: httpx.AsyncClient, tenant: Tenant, db: dbm.Db
) -> None:
    automation_id = await create_automation(api, tenant)
    first = await trigger(
        api, tenant, automation_id, {"case_id": "1"}, **{"Idempotency-Key": "k-1"}
    )
    again = await trigger(
        api, tenant, automation_id, {"case_id": "1"}, **{"Idempotency-Key": "k-1"}
    )
    other = await trigger(
        api, tenant, automation_id, {"case_id": "1"}, **{"Idempotency-Key": "k-2"}
    )
    assert first.status_code == again.status_code == other.status_code == 202
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    assert await db[dbm.INVESTIGATIONS].count_documents({"tenant_id": tenant.id}) == 2


async def test_input_is_checked_against_the_automation_schema(
    api: httpx.AsyncClient, tenant: Tenant, db: dbm.Db
) -> None:
    automation_id = await create_automation(api, tenant)
    response = await trigger(api, tenant, automation_id, {"wrong": 1})
    body = assert_problem(response, 422, "invalid-input")
    assert "case_id" in str(body["detail"])
    assert await db[dbm.INVESTIGATIONS].count_documents({}) == 0

    unknown = await trigger(api, tenant, "aut_nope", {"case_id": "1"})
    assert_problem(unknown, 404, "not-found")
    missing_field = await api.post("/v1/investigations", json={"input": {}}, headers=tenant.headers)
    body = assert_problem(missing_field, 422, "invalid-input")
    assert body["errors"] == [{"loc": "automation_id", "msg": "Field required"}]


async def test_another_tenants_investigation_is_not_found(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    automation_id = await create_automation(api, tenant)
    investigation_id = (await trigger(api, tenant, automation_id, {"case_id": "1"})).json()["id"]
    for method, path in [
        ("GET", f"/v1/investigations/{investigation_id}"),
        ("POST", f"/v1/investigations/{investigation_id}/cancel"),
        ("GET", f"/v1/investigations/{investigation_id}/artifacts/65f0c0ffee0000000000beef"),
    ]:
        response = await api.request(method, path, headers=other_tenant.headers)
        assert_problem(response, 404, "not-found")
    listed = await api.get("/v1/investigations", headers=other_tenant.headers)
    assert listed.json() == {"items": [], "next_cursor": None}


async def test_list_is_newest_first_filtered_and_paginated(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    first = await create_automation(api, tenant)
    second = await create_automation(api, tenant, name="second")
    ids = []
    for n in range(5):
        response = await trigger(api, tenant, first if n != 2 else second, {"case_id": str(n)})
        ids.append(response.json()["id"])
    newest_first = list(reversed(ids))

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/investigations", params=params, headers=tenant.headers)).json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first
    assert pages == 3

    only_second = await api.get(
        "/v1/investigations", params={"automation_id": second}, headers=tenant.headers
    )
    assert [i["id"] for i in only_second.json()["items"]] == [ids[2]]
    queued = await api.get(
        "/v1/investigations", params={"status": "queued"}, headers=tenant.headers
    )
    assert queued.status_code == 200
    assert all(i["status"] == "queued" for i in queued.json()["items"])
    none = await api.get("/v1/investigations", params={"status": "failed"}, headers=tenant.headers)
    assert none.json()["items"] == []

    bad_status = await api.get(
        "/v1/investigations", params={"status": "nope"}, headers=tenant.headers
    )
    assert assert_problem(bad_status, 422, "invalid-input")["errors"][0]["loc"] == "query.status"  # type: ignore[index]
    bad_cursor = await api.get(
        "/v1/investigations", params={"cursor": "zzz"}, headers=tenant.headers
    )
    assert assert_problem(bad_cursor, 422, "invalid-input")["errors"][0]["loc"] == "query.cursor"  # type: ignore[index]
    too_many = await api.get("/v1/investigations", params={"limit": 201}, headers=tenant.headers)
    assert_problem(too_many, 422, "invalid-input")


async def test_cancel_a_started_investigation_cancels_its_workflow(
    api: httpx.AsyncClient, tenant: Tenant, settings: Settings, db: dbm.Db
) -> None:
    automation_id = await create_automation(api, tenant)
    investigation_id = (await trigger(api, tenant, automation_id, {"case_id": "1"})).json()["id"]
    response = await api.post(
        f"/v1/investigations/{investigation_id}/cancel", headers=tenant.headers
    )
    assert response.status_code == 202, response.text
    client = await tc.connect(settings)
    handle = client.get_workflow_handle(investigation_workflow_id(investigation_id))
    # nothing polls this queue, so the request stays pending on the workflow
    history = [e async for e in handle.fetch_history_events()]
    assert any(e.HasField("workflow_execution_cancel_requested_event_attributes") for e in history)

    # once the investigation has finished, cancelling is a conflict
    await db[dbm.INVESTIGATIONS].update_one(
        {"_id": investigation_id}, {"$set": {"status": "succeeded", "finished_at": dbm.utcnow()}}
    )
    again = await api.post(f"/v1/investigations/{investigation_id}/cancel", headers=tenant.headers)
    assert_problem(again, 409, "conflict")


async def test_triggers_are_recorded_while_temporal_is_down_and_started_later(
    settings: Settings, tenant: Tenant, db: dbm.Db
) -> None:
    down = settings.model_copy(
        update={"temporal_address": f"127.0.0.1:{free_port()}", "dispatch_retry_seconds": 0.2}
    )
    async with serve(down, wait_for_temporal=False) as api:
        health = (await api.get("/healthz")).json()
        assert health == {"ok": False, "temporal": False, "mongodb": True}
        automation_id = await create_automation(api, tenant)
        response = await trigger(api, tenant, automation_id, {"case_id": "7"})
        assert response.status_code == 202, response.text
        queued = response.json()
        assert queued["status"] == "queued"
        doc = await db[dbm.INVESTIGATIONS].find_one({"_id": queued["id"]})
        assert doc is not None and doc["workflow_started"] is False

        # a second one, cancelled before it ever starts
        cancelled_id = (await trigger(api, tenant, automation_id, {"case_id": "8"})).json()["id"]
        cancelled = await api.post(
            f"/v1/investigations/{cancelled_id}/cancel", headers=tenant.headers
        )
        assert cancelled.status_code == 202
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["finished_at"] is not None

    # Temporal is back (the real one): the dispatcher starts what was recorded, and only that
    back = settings.model_copy(update={"dispatch_retry_seconds": 0.2})
    async with serve(back):
        async with asyncio.timeout(20):
            while not (await db[dbm.INVESTIGATIONS].find_one({"_id": queued["id"]}) or {}).get(
                "workflow_started"
            ):
                await asyncio.sleep(0.1)
    client = await tc.connect(settings)
    await client.get_workflow_handle(investigation_workflow_id(queued["id"])).describe()
    doc = await db[dbm.INVESTIGATIONS].find_one({"_id": cancelled_id})
    assert doc is not None and doc["workflow_started"] is False and doc["status"] == "cancelled"


async def test_endpoints_that_need_temporal_answer_503_while_it_is_down(
    settings: Settings, tenant: Tenant, db: dbm.Db
) -> None:
    down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with serve(down, wait_for_temporal=False) as api:
        automation_id = await create_automation(api, tenant)
        investigation_id = (await trigger(api, tenant, automation_id, {"case_id": "1"})).json()[
            "id"
        ]
        # pretend it had started before Temporal went away
        await db[dbm.INVESTIGATIONS].update_one(
            {"_id": investigation_id}, {"$set": {"workflow_started": True, "status": "running"}}
        )
        response = await api.post(
            f"/v1/investigations/{investigation_id}/cancel", headers=tenant.headers
        )
        assert_problem(response, 503, "unavailable")
