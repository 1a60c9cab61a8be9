"""Credentials: stored through the tenant API, never shown by it."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.integration.api.helpers import Tenant, assert_problem

SECRET = "s3cr3t-value-that-must-never-leak"


async def test_credentials_are_stored_listed_and_deleted_without_showing_secrets(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[bytes] = []

    async def keep(response: httpx.Response) -> None:
        bodies.append(await response.aread())

    api.event_hooks["response"].append(keep)
    h = tenant.headers

    basic = await api.put(
        "/v1/credentials/portal",
        json={
            "kind": "basic",
            "username": "alice",
            "password": SECRET,
            "allowed_hosts": ["portal.example"],
        },
        headers=h,
    )
    assert basic.status_code == 200, basic.text
    assert set(basic.json()) == {"name", "kind", "allowed_hosts", "updated_at"}
    assert basic.json()["name"] == "portal"
    assert basic.json()["kind"] == "basic"
    assert basic.json()["allowed_hosts"] == ["portal.example"]

    api_key = await api.put(
        "/v1/credentials/thehive", json={"kind": "api_key", "key": SECRET}, headers=h
    )
    assert api_key.status_code == 200
    oauth = await api.put(
        "/v1/credentials/graph",
        json={
            "kind": "oauth2_client",
            "token_url": "https://login.example/token",
            "client_id": "app",
            "client_secret": SECRET,
            "scope": "Mail.Read",
        },
        headers=h,
    )
    assert oauth.status_code == 200
    # replacing keeps one entry
    again = await api.put(
        "/v1/credentials/portal",
        json={"kind": "basic", "username": "bob", "password": SECRET + "2"},
        headers=h,
    )
    assert again.status_code == 200 and again.json()["allowed_hosts"] == []

    listed = await api.get("/v1/credentials", headers=h)
    assert listed.status_code == 200
    assert [(c["name"], c["kind"]) for c in listed.json()["items"]] == [
        ("graph", "oauth2_client"),
        ("portal", "basic"),
        ("thehive", "api_key"),
    ]
    assert (await api.get("/v1/credentials", headers=other_tenant.headers)).json()["items"] == []

    # invalid ones are refused, naming the field, without echoing the value
    missing_user = await api.put(
        "/v1/credentials/portal", json={"kind": "basic", "password": SECRET}, headers=h
    )
    body = assert_problem(missing_user, 422, "invalid-input")
    assert {"loc": "username", "msg": "Field required"} in body["errors"]  # type: ignore[operator]
    bad_kind = await api.put("/v1/credentials/x", json={"kind": "ssh", "key": SECRET}, headers=h)
    assert_problem(bad_kind, 422, "invalid-input")
    bad_name = await api.put(
        "/v1/credentials/bad%20name", json={"kind": "api_key", "key": SECRET}, headers=h
    )
    assert_problem(bad_name, 422, "invalid-input")

    assert (await api.delete("/v1/credentials/portal", headers=h)).status_code == 204
    assert_problem(await api.delete("/v1/credentials/portal", headers=h), 404, "not-found")
    assert_problem(
        await api.delete("/v1/credentials/thehive", headers=other_tenant.headers), 404, "not-found"
    )
    names = [c["name"] for c in (await api.get("/v1/credentials", headers=h)).json()["items"]]
    assert names == ["graph", "thehive"]

    assert len(bodies) >= 12
    assert not any(SECRET.encode() in body for body in bodies)
    assert SECRET not in caplog.text
