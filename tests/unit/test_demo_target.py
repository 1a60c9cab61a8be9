"""The bundled demo target (examples/demo_target.py): its login flow and its API's auth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from html.parser import HTMLParser

import httpx
import pytest

from examples.demo_target import DEFAULT_API_KEY, DEFAULT_PASSWORD, create_app


class _TextById(HTMLParser):
    """Collects the text of every element carrying an id."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: dict[str, str] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("input", "meta", "br", "img", "link"):
            element_id = dict(attrs).get("id")
            if element_id:
                self.texts[element_id] = ""
            return
        element_id = dict(attrs).get("id")
        self._open.append(element_id)
        if element_id:
            self.texts[element_id] = ""

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element_id in self._open:
            if element_id:
                self.texts[element_id] += data


def text_by_id(page: str) -> dict[str, str]:
    parser = _TextById()
    parser.feed(page)
    return {k: " ".join(v.split()) for k, v in parser.texts.items()}


def portal_client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://portal.test",
        follow_redirects=False,
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with portal_client(
        create_app(password=DEFAULT_PASSWORD, api_key=DEFAULT_API_KEY)
    ) as client:
        yield client


async def login(
    client: httpx.AsyncClient, password: str = DEFAULT_PASSWORD, next_path: str = ""
) -> httpx.Response:
    url = f"/login?next={next_path}" if next_path else "/login"
    return await client.post(url, data={"username": "analyst", "password": password})


async def test_login_page_has_the_fields_the_automation_fills(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    assert page.status_code == 200
    ids = text_by_id(page.text)
    assert {"username", "password"} <= ids.keys()
    assert 'type="password"' in page.text
    assert '<button type="submit">' in page.text


async def test_dashboard_requires_a_session(client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard?host=WS-0142")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


async def test_wrong_password_is_refused_without_a_session(client: httpx.AsyncClient) -> None:
    response = await client.post("/login", data={"username": "analyst", "password": "hunter2"})
    assert response.status_code == 401
    assert text_by_id(response.text)["login-error"] == "Invalid username or password."
    assert "portal_session" not in response.cookies
    assert (await client.get("/dashboard")).status_code == 303


async def test_login_then_dashboard_shows_the_hosts_owner(client: httpx.AsyncClient) -> None:
    response = await login(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"

    page = await client.get("/dashboard?host=WS-0142")
    assert page.status_code == 200
    ids = text_by_id(page.text)
    assert "dashboard" in ids
    assert ids["owner"] == "Dana Whitfield"
    assert "Marcus Oyelaran" in ids["assets"]


async def test_login_returns_to_the_page_first_asked_for(client: httpx.AsyncClient) -> None:
    redirect = (await client.get("/dashboard?host=SRV-DB-02")).headers["location"]
    form_page = (await client.get(redirect)).text
    action = form_page.split('action="', 1)[1].split('"', 1)[0]

    response = await client.post(action, data={"username": "analyst", "password": DEFAULT_PASSWORD})

    assert response.headers["location"] == "/dashboard?host=SRV-DB-02"
    page = await client.get(response.headers["location"])
    assert text_by_id(page.text)["owner"] == "Priya Raman"


async def test_login_never_redirects_off_site(client: httpx.AsyncClient) -> None:
    response = await login(client, next_path="//evil.example/phish")
    assert response.headers["location"] == "/dashboard"


async def test_unknown_host_leaves_owner_empty(client: httpx.AsyncClient) -> None:
    await login(client)
    ids = text_by_id((await client.get("/dashboard?host=WS-9999")).text)
    assert ids["owner"] == ""
    assert "WS-9999" in ids["not-found"]


async def test_logout_ends_the_session(client: httpx.AsyncClient) -> None:
    await login(client)
    await client.get("/logout")
    assert (await client.get("/dashboard")).status_code == 303


async def test_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_PORTAL_PASSWORD", "tr0ub4dor&3")
    async with portal_client(create_app()) as client:
        assert (await login(client, DEFAULT_PASSWORD)).status_code == 401
        assert (await login(client, "tr0ub4dor&3")).status_code == 303


async def test_api_requires_the_bearer_key(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": DEFAULT_API_KEY}):
        response = await client.get("/api/v1/hosts/WS-0142", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["status"] == 401
        assert "owner" not in response.text


async def test_api_returns_the_host(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/v1/hosts/ws-0142", headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    )
    assert response.status_code == 200
    host = response.json()
    assert host["hostname"] == "WS-0142"
    assert host["owner"] == "Dana Whitfield"
    assert host["risk"] == {"score": 87, "level": "high"}
    assert host["os"].startswith("Windows")
    assert host["last_seen"].endswith("Z")


async def test_api_unknown_host_is_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/v1/hosts/WS-9999", headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Not Found"
