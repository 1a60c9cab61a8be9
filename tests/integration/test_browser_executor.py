"""The browser executor driving the real Debian Chromium against a small local web app:
a login form, then a dashboard that needs the session cookie."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import TypeAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from core.contracts import WorkerStartRequest
from core.models import ArtifactRef, AutomationDefinition, BrowserStep, Credential
from tests.helpers_http import INVESTIGATION, KEY, FakeBackend, serve
from worker_runtime.browser import BrowserExecutor
from worker_runtime.loop import StepLoop
from worker_runtime.steps import StepError, StepRun

CHROMIUM = os.environ.get("CASTRA_CHROMIUM_PATH", "/usr/bin/chromium")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CREDENTIAL = TypeAdapter[Credential](Credential)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}"),
]

LOGIN = """<!doctype html><title>Portal login</title>
<form method="post" action="/login">
  <input id="username" name="username"><input id="password" name="password" type="password">
  <button type="submit">Sign in</button>
</form>"""

DASHBOARD = """<!doctype html><title>Dashboard</title>
<div id="dashboard"><h1>Case {case}</h1>
  <p>Owner: <span id="owner">  Alice Analyst  </span></p>
  <a id="case-link" href="/cases/{case}">open</a>
  <div id="later" style="display:none">hidden</div>
</div>"""


class Portal:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.logins: list[tuple[str, str]] = []

    def app(self) -> Starlette:
        async def login_form(request: Request) -> Response:
            self.paths.append(request.url.path)
            return HTMLResponse(LOGIN)

        async def login(request: Request) -> Response:
            from urllib.parse import parse_qs

            form = parse_qs((await request.body()).decode())
            user, password = form.get("username", [""])[0], form.get("password", [""])[0]
            self.logins.append((user, password))
            if (user, password) != ("analyst", "s3cret-pass"):
                return HTMLResponse("<p id='error'>bad credentials</p>", 401)
            response = RedirectResponse("/dashboard?case=42", 303)
            response.set_cookie("session", "ok")
            return response

        async def dashboard(request: Request) -> Response:
            self.paths.append(request.url.path)
            if request.cookies.get("session") != "ok":
                return RedirectResponse("/login", 303)
            return HTMLResponse(DASHBOARD.format(case=request.query_params.get("case", "?")))

        return Starlette(
            routes=[
                Route("/login", login_form, methods=["GET"]),
                Route("/login", login, methods=["POST"]),
                Route("/dashboard", dashboard),
            ]
        )


@pytest.fixture
async def portal() -> AsyncIterator[tuple[Portal, str]]:
    p = Portal()
    async with serve(p.app()) as url:
        yield p, url


@pytest.fixture
async def browser() -> AsyncIterator[BrowserExecutor]:
    executor = BrowserExecutor(CHROMIUM, action_timeout=2)
    yield executor
    await executor.close()


class Uploads:
    def __init__(self) -> None:
        self.files: list[tuple[str, str, bytes]] = []

    async def __call__(self, name: str, content_type: str, data: bytes) -> ArtifactRef:
        self.files.append((name, content_type, data))
        return ArtifactRef(
            id=f"a{len(self.files)}", name=name, content_type=content_type, size=len(data)
        )


def _step(actions: list[dict[str, Any]], **extra: Any) -> BrowserStep:
    return BrowserStep.model_validate({"id": "s", "kind": "browser", "actions": actions, **extra})


def _run(url: str, uploads: Uploads, credential: dict[str, Any] | None = None) -> StepRun:
    context: dict[str, Any] = {"input": {}, "vars": {"portal": url}, "steps": {}}
    cred = CREDENTIAL.validate_python(credential) if credential else None
    if cred is not None:
        context["credential"] = cred.reveal()
    return StepRun("s", context, upload=uploads, credential=cred)


BASIC = {"kind": "basic", "username": "analyst", "password": "s3cret-pass"}


async def test_login_holds_across_steps_extract_and_screenshot(
    portal: tuple[Portal, str], browser: BrowserExecutor
) -> None:
    site, url = portal
    uploads = Uploads()
    login = _step(
        [
            {"goto": "{{ vars.portal }}/login"},
            {"fill": {"selector": "#username", "value": "{{ credential.username }}"}},
            {"fill": {"selector": "#password", "value": "{{ credential.password }}"}},
            {"click": "button[type=submit]"},
            {"wait_for": "#dashboard"},
        ]
    )
    first = _run(url, uploads, BASIC)
    await browser.run(login, first)
    assert site.logins == [("analyst", "s3cret-pass")]

    # A second step in the same investigation: the session cookie from the login holds.
    look = _step(
        [
            {"goto": "{{ vars.portal }}/dashboard?case=42"},
            {"wait_for": {"selector": "#owner", "timeout_seconds": 5}},
            {"extract": {"name": "owner", "selector": "#owner"}},
            {"extract": {"name": "link", "selector": "#case-link", "attribute": "href"}},
            {"extract": {"name": "nothing", "selector": "#case-link", "attribute": "data-x"}},
            {"screenshot": {"name": "dashboard", "full_page": True}},
        ]
    )
    second = _run(url, uploads)
    await browser.run(look, second)
    assert second.outputs == {"owner": "Alice Analyst", "link": "/cases/42", "nothing": None}
    assert site.paths[-1] == "/dashboard"  # not bounced back to /login
    assert len(uploads.files) == 1
    name, content_type, data = uploads.files[0]
    assert (name, content_type) == ("dashboard", "image/png")
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    assert [a.name for a in second.artifacts] == ["dashboard"]
    assert second.artifacts[0].size == len(data)


async def test_a_new_executor_is_a_fresh_session(
    portal: tuple[Portal, str], browser: BrowserExecutor
) -> None:
    site, url = portal
    # No login in this investigation: the dashboard bounces to /login, #dashboard never shows.
    step = _step(
        [
            {"goto": "{{ vars.portal }}/dashboard"},
            {"wait_for": {"selector": "#dashboard", "timeout_seconds": 0.5}},
        ]
    )
    with pytest.raises(StepError, match=r"^wait_for '#dashboard': timed out after 0.5s$"):
        await browser.run(step, _run(url, Uploads()))
    assert site.paths == ["/dashboard", "/login"]


async def test_missing_element_and_allowed_hosts_errors(
    portal: tuple[Portal, str], browser: BrowserExecutor
) -> None:
    site, url = portal
    uploads = Uploads()
    with pytest.raises(StepError, match=r"^click '#nope': no such element \(waited 2s\)$"):
        await browser.run(_step([{"goto": url + "/login"}, {"click": "#nope"}]), _run(url, uploads))
    with pytest.raises(StepError, match=r"^fill '#nope': no such element"):
        await browser.run(
            _step([{"fill": {"selector": "#nope", "value": "{{ credential.password }}"}}]),
            _run(url, uploads, BASIC),
        )
    with pytest.raises(StepError, match=r"^extract 'owner' from '#owner': no such element"):
        await browser.run(
            _step([{"extract": {"name": "owner", "selector": "#owner"}}]), _run(url, uploads)
        )

    visits = len(site.paths)
    limited = {**BASIC, "allowed_hosts": ["portal.example", "*.corp.example"]}
    with pytest.raises(
        StepError, match="host '127.0.0.1' is not in the credential's allowed_hosts"
    ):
        await browser.run(_step([{"goto": url + "/login"}]), _run(url, uploads, limited))
    assert len(site.paths) == visits  # refused before navigating


async def test_unreachable_page_is_a_clear_error(browser: BrowserExecutor) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    with pytest.raises(StepError, match=rf"^goto '{dead}': net::ERR_CONNECTION_REFUSED"):
        await browser.run(_step([{"goto": dead}]), _run("", Uploads()))


async def test_browser_step_through_the_step_loop(portal: tuple[Portal, str]) -> None:
    """The loop fetches the credential, runs the browser step, uploads the screenshot through
    the worker API and reports it among the step's artifacts."""
    _, portal_url = portal
    backend = FakeBackend(
        automation=AutomationDefinition.model_validate(
            {
                "name": "owner-lookup",
                "vars": {"portal_url": portal_url},
                "steps": [
                    {
                        "id": "login",
                        "kind": "browser",
                        "credential": "portal",
                        "actions": [
                            {"goto": "{{ vars.portal_url }}/login"},
                            {
                                "fill": {
                                    "selector": "#username",
                                    "value": "{{ credential.username }}",
                                }
                            },
                            {
                                "fill": {
                                    "selector": "#password",
                                    "value": "{{ credential.password }}",
                                }
                            },
                            {"click": "button[type=submit]"},
                            {"wait_for": "#dashboard"},
                            {"extract": {"name": "owner", "selector": "#owner"}},
                            {"screenshot": {"name": "dashboard"}},
                        ],
                    }
                ],
            }
        ),
        credentials={"portal": BASIC},
    )
    async with serve(backend.app()) as url:
        start = WorkerStartRequest(investigation_id=INVESTIGATION, backend_url=url, api_key=KEY)
        loop = StepLoop(start, browser=BrowserExecutor(CHROMIUM, action_timeout=5))
        await asyncio.wait_for(loop.run(), 60)

    result = backend.results["login"]
    assert result["status"] == "succeeded", result["error"]
    assert result["outputs"] == {"owner": "Alice Analyst"}
    [(step_id, name, data)] = backend.artifacts
    assert (step_id, name) == ("login", "dashboard") and data.startswith(PNG_SIGNATURE)
    assert [(a["name"], a["content_type"], a["size"]) for a in result["artifacts"]] == [
        ("dashboard", "image/png", len(data))
    ]
    assert backend.credential_fetches == ["portal"]
