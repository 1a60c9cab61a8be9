"""Tenant auth, automations (JSON and YAML), and the problem+json shape of errors."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import Request

from api.app import create_app
from core.settings import Settings
from tests.integration.api.helpers import DEFINITION, Tenant, assert_problem

YAML_DEFINITION = """\
name: portal-login
vars: {portal_url: "https://portal.example"}
steps:
  - id: login
    kind: browser
    credential: portal
    actions:
      - goto: "{{ vars.portal_url }}/login"
      - fill: {selector: "#username", value: "{{ credential.username }}"}
      - click: "button[type=submit]"
      - extract: {name: owner, selector: "#owner"}
"""


async def test_requests_without_a_valid_tenant_key_are_refused(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    missing = await api.get("/v1/automations")
    assert_problem(missing, 401, "unauthenticated")
    assert missing.headers["www-authenticate"].startswith("Bearer")

    wrong = await api.get("/v1/automations", headers={"Authorization": "Bearer ck_nope"})
    assert_problem(wrong, 401, "unauthenticated")
    assert wrong.headers["www-authenticate"].startswith("Bearer")

    ok = await api.get("/v1/automations", headers=tenant.headers)
    assert ok.status_code == 200


async def test_create_get_and_list_automations_in_json_and_yaml(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await api.post("/v1/automations", json=DEFINITION, headers=tenant.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"].startswith("aut_")
    assert body["name"] == "owner-lookup"
    assert body["definition"]["steps"][0]["request"]["url"].endswith("{{ input.case_id }}")
    assert body["created_at"]
    assert body["warnings"] == [
        "credential 'thehive' is not stored yet (PUT /v1/credentials/thehive)"
    ]

    from_yaml = await api.post(
        "/v1/automations",
        content=YAML_DEFINITION,
        headers={**tenant.headers, "Content-Type": "application/yaml"},
    )
    assert from_yaml.status_code == 201, from_yaml.text
    assert from_yaml.json()["definition"]["steps"][0]["actions"][1]["fill"]["selector"] == (
        "#username"
    )

    fetched = await api.get(f"/v1/automations/{body['id']}", headers=tenant.headers)
    assert fetched.status_code == 200
    assert fetched.json() == body
    unstored = (await api.get("/v1/automations", headers=tenant.headers)).json()["items"]
    assert {a["name"]: a["warnings"] for a in unstored}["owner-lookup"] == body["warnings"]
    stored = await api.put(
        "/v1/credentials/thehive", json={"kind": "api_key", "key": "k" * 16}, headers=tenant.headers
    )
    assert stored.status_code == 200
    again = await api.get(f"/v1/automations/{body['id']}", headers=tenant.headers)
    assert again.json()["warnings"] == []
    listed_now = (await api.get("/v1/automations", headers=tenant.headers)).json()["items"]
    assert {a["name"]: a["warnings"] for a in listed_now}["owner-lookup"] == []

    listed = (await api.get("/v1/automations", headers=tenant.headers)).json()["items"]
    assert [a["name"] for a in listed] == ["portal-login", "owner-lookup"]  # newest first
    by_name = await api.get(
        "/v1/automations", params={"name": "owner-lookup"}, headers=tenant.headers
    )
    assert [a["id"] for a in by_name.json()["items"]] == [body["id"]]


async def test_invalid_definitions_are_422_naming_the_field(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    broken = {**DEFINITION, "steps": [{**DEFINITION["steps"][0], "request": {"method": "GET"}}]}  # type: ignore[dict-item]
    response = await api.post("/v1/automations", json=broken, headers=tenant.headers)
    body = assert_problem(response, 422, "invalid-input")
    assert {"loc": "steps.0.request.url", "msg": "Field required"} in body["errors"]  # type: ignore[operator]
    assert "steps.0.request.url" in str(body["detail"])

    bad_yaml = await api.post(
        "/v1/automations",
        content="name: x\nsteps: [\n",
        headers={**tenant.headers, "Content-Type": "text/yaml"},
    )
    assert_problem(bad_yaml, 422, "invalid-input")

    bad_template = {
        **DEFINITION,
        "vars": {},
        "steps": [{"id": "s", "kind": "browser", "actions": [{"goto": "{{ oops"}]}],
    }
    response = await api.post("/v1/automations", json=bad_template, headers=tenant.headers)
    body = assert_problem(response, 422, "invalid-input")
    assert any(e["loc"].startswith("steps.0.actions.0") for e in body["errors"])  # type: ignore[attr-defined]

    unsupported = await api.post(
        "/v1/automations", content=b"x", headers={**tenant.headers, "Content-Type": "text/plain"}
    )
    assert_problem(unsupported, 415, "unsupported-media-type")


async def test_a_name_is_unique_per_tenant(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    assert (
        await api.post("/v1/automations", json=DEFINITION, headers=tenant.headers)
    ).status_code == 201
    again = await api.post("/v1/automations", json=DEFINITION, headers=tenant.headers)
    assert_problem(again, 409, "conflict")
    # another tenant may use the same name, and cannot see the first tenant's automation
    theirs = await api.post("/v1/automations", json=DEFINITION, headers=other_tenant.headers)
    assert theirs.status_code == 201
    mine = (await api.get("/v1/automations", headers=tenant.headers)).json()["items"][0]
    hidden = await api.get(f"/v1/automations/{mine['id']}", headers=other_tenant.headers)
    assert_problem(hidden, 404, "not-found")


async def test_unknown_routes_and_methods_are_problems_too(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    assert_problem(await api.get("/v1/nothing-here", headers=tenant.headers), 404, "not-found")
    assert_problem(
        await api.delete("/v1/automations", headers=tenant.headers), 405, "method-not-allowed"
    )


async def test_health_and_openapi(api: httpx.AsyncClient) -> None:
    health = await api.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"ok": True, "temporal": True, "mongodb": True}
    docs = await api.get("/docs")
    assert docs.status_code == 200
    spec = (await api.get("/openapi.json")).json()
    assert "/v1/investigations/{investigation_id}/cancel" in spec["paths"]


async def test_an_unexpected_error_is_a_generic_500_logged_without_the_body(
    settings: Settings, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)

    async def boom(request: Request) -> None:
        await request.body()
        raise RuntimeError("the code broke")

    app.add_api_route("/v1/boom", boom, methods=["POST"])
    caplog.set_level(logging.DEBUG)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://castra.test") as api:
            response = await api.post(
                "/v1/boom", content=b"body-marker-7f3a", headers=tenant.headers
            )
    body = assert_problem(response, 500, "internal-error")
    assert body["detail"] == "an unexpected error occurred"
    assert "the code broke" not in response.text
    logged = [r for r in caplog.records if r.name == "api.problems"]
    assert logged and logged[0].exc_info is not None  # with its traceback
    assert "body-marker-7f3a" not in caplog.text
