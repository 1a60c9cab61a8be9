"""The http step executor against a real local HTTP server (uvicorn + a small starlette app)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
from pydantic import TypeAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from core.models import ArtifactRef, Credential, HttpStep
from tests.helpers_http import serve
from worker_runtime.http import HttpExecutor
from worker_runtime.steps import StepError, StepRun, host_allowed

CREDENTIAL = TypeAdapter[Credential](Credential)
API_KEY = "k-1234567890"
TOKEN_SECRET = "client-secret-42"


class Target:
    """The remote API a step calls; it records what it received."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.bodies: list[bytes] = []
        self.token_calls: list[dict[str, str]] = []

    def app(self) -> Starlette:
        async def record(request: Request) -> None:
            self.requests.append(request)
            self.bodies.append(await request.body())

        async def case(request: Request) -> Response:
            await record(request)
            if request.headers.get("x-api-key") != f"Key {API_KEY}":
                return JSONResponse({"error": "bad key"}, 401)
            return JSONResponse(
                {
                    "title": "Phish",
                    "severity": 3,
                    "observables": [
                        {"type": "ip", "value": "10.0.0.1"},
                        {"type": "domain", "value": "evil.example"},
                    ],
                }
            )

        async def by_query(request: Request) -> Response:
            await record(request)
            if request.query_params.get("apikey") != API_KEY:
                return JSONResponse({"error": "bad key"}, 401)
            return JSONResponse({"ok": True, "q": request.query_params.get("q")})

        async def basic(request: Request) -> Response:
            await record(request)
            expected = "Basic " + base64.b64encode(b"analyst:pa55word").decode()
            if request.headers.get("authorization") != expected:
                return PlainTextResponse(f"denied for {request.headers.get('authorization')}", 401)
            return JSONResponse({"user": "analyst"})

        async def token(request: Request) -> Response:
            # parsed by hand: starlette's form parser needs python-multipart
            form = dict(parse_qsl((await request.body()).decode()))
            auth = request.headers.get("authorization", "")
            self.token_calls.append({**form, "auth": auth})
            basic_ok = auth == "Basic " + base64.b64encode(f"cid:{TOKEN_SECRET}".encode()).decode()
            if request.path_params["mode"] == "post":
                ok = not auth and form.get("client_secret") == TOKEN_SECRET
            else:
                ok = basic_ok
            if form.get("grant_type") != "client_credentials" or not ok:
                return JSONResponse({"error": "invalid_client"}, 401)
            n = len(self.token_calls)
            return JSONResponse(
                {"access_token": f"tok-{n}-abcdef", "token_type": "Bearer", "expires_in": 3600}
            )

        async def protected(request: Request) -> Response:
            await record(request)
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Bearer tok-"):
                return JSONResponse({"error": "no token"}, 401)
            return JSONResponse({"token_seen": auth.removeprefix("Bearer ")})

        async def missing(request: Request) -> Response:
            await record(request)
            return PlainTextResponse("no such case " + "x" * 500, 404)

        async def text(request: Request) -> Response:
            await record(request)
            return PlainTextResponse("<html>not json</html>")

        async def echo(request: Request) -> Response:
            await record(request)
            return JSONResponse(
                {
                    "method": request.method,
                    "params": dict(request.query_params),
                    "header": request.headers.get("x-case"),
                    "content_type": request.headers.get("content-type"),
                    "body": (await request.body()).decode(),
                }
            )

        async def redirect(request: Request) -> Response:
            await record(request)
            return RedirectResponse("http://elsewhere.example/steal", 302)

        return Starlette(
            routes=[
                Route("/case/{id}", case),
                Route("/query", by_query),
                Route("/basic", basic),
                Route("/token/{mode}", token, methods=["POST"]),
                Route("/protected", protected),
                Route("/missing", missing),
                Route("/text", text),
                Route("/echo", echo, methods=["GET", "POST", "PUT"]),
                Route("/redirect", redirect),
            ]
        )


@pytest.fixture
async def target() -> AsyncIterator[tuple[Target, str]]:
    t = Target()
    async with serve(t.app()) as url:
        yield t, url


@pytest.fixture
async def executor() -> AsyncIterator[HttpExecutor]:
    ex = HttpExecutor()
    yield ex
    await ex.aclose()


async def _no_upload(name: str, content_type: str, data: bytes) -> ArtifactRef:
    raise AssertionError("http steps upload nothing")


def _step(**spec: Any) -> HttpStep:
    return HttpStep.model_validate({"id": "s", "kind": "http", **spec})


def _run(credential: dict[str, Any] | None = None, **context: Any) -> StepRun:
    cred = CREDENTIAL.validate_python(credential) if credential else None
    ctx = {"input": {}, "vars": {}, "steps": {}, **context}
    return StepRun("s", ctx, upload=_no_upload, credential=cred)


async def test_api_key_header_and_jmespath_extract(
    target: tuple[Target, str], executor: HttpExecutor
) -> None:
    t, url = target
    step = _step(
        request={"url": url + "/case/{{ input.case_id }}"},
        extract={
            "title": "title",
            "ips": "observables[?type=='ip'].value",
            "first_domain": "observables[?type=='domain'] | [0].value",
            "absent": "nothing.here",
        },
    )
    run = _run(
        {"kind": "api_key", "key": API_KEY, "header": "X-Api-Key", "prefix": "Key "},
        input={"case_id": "C-7"},
    )
    await executor.run(step, run)
    assert run.outputs == {
        "status_code": 200,
        "title": "Phish",
        "ips": ["10.0.0.1"],
        "first_domain": "evil.example",
        "absent": None,
    }
    assert t.requests[-1].url.path == "/case/C-7"


async def test_api_key_in_query_param(target: tuple[Target, str], executor: HttpExecutor) -> None:
    t, url = target
    step = _step(
        request={"url": url + "/query", "params": {"q": "{{ input.q }}"}}, extract={"q": "q"}
    )
    run = _run({"kind": "api_key", "key": API_KEY, "query_param": "apikey"}, input={"q": "a b"})
    await executor.run(step, run)
    assert run.outputs == {"status_code": 200, "q": "a b"}
    assert t.requests[-1].headers.get("authorization") is None


async def test_api_key_query_param_is_kept_out_of_the_error(
    target: tuple[Target, str], executor: HttpExecutor
) -> None:
    _, url = target
    step = _step(request={"url": url + "/missing"})
    run = _run({"kind": "api_key", "key": API_KEY, "query_param": "apikey"})
    with pytest.raises(StepError) as info:
        await executor.run(step, run)
    assert API_KEY not in str(info.value)
    assert str(info.value).startswith(f"HTTP 404 from GET {url}/missing: no such case")


async def test_basic_auth(target: tuple[Target, str], executor: HttpExecutor) -> None:
    _, url = target
    step = _step(request={"url": url + "/basic"}, extract={"user": "user"})
    good = _run({"kind": "basic", "username": "analyst", "password": "pa55word"})
    await executor.run(step, good)
    assert good.outputs == {"status_code": 200, "user": "analyst"}

    bad = _run({"kind": "basic", "username": "analyst", "password": "wrong-one"})
    with pytest.raises(StepError, match=rf"^HTTP 401 from GET {url}/basic: denied for Basic "):
        await executor.run(step, bad)


@pytest.mark.parametrize("mode", ["basic", "post"])
async def test_oauth2_client_credentials_token_is_fetched_once_and_sent_as_bearer(
    target: tuple[Target, str], executor: HttpExecutor, mode: str
) -> None:
    t, url = target
    cred = {
        "kind": "oauth2_client",
        "token_url": f"{url}/token/{mode}",
        "client_id": "cid",
        "client_secret": TOKEN_SECRET,
        "scope": "cases.read",
    }
    step = HttpStep.model_validate(
        {
            "id": "s",
            "kind": "http",
            "credential": "idp",
            "request": {"url": url + "/protected"},
            "extract": {"token": "token_seen"},
        }
    )
    first, second = _run(cred), _run(cred)
    await executor.run(step, first)
    await executor.run(step, second)

    assert first.outputs["status_code"] == 200
    token = first.outputs["token"]
    assert token.startswith("tok-") and second.outputs["token"] == token
    # cached for its lifetime: the second step did not ask again (in "post" mode the server
    # refuses HTTP basic client auth first, and the secret is then sent in the form)
    assert len(t.token_calls) == (1 if mode == "basic" else 2)
    assert all(c["grant_type"] == "client_credentials" for c in t.token_calls)
    assert all(c["scope"] == "cases.read" for c in t.token_calls)
    if mode == "post":
        assert t.token_calls[-1]["client_secret"] == TOKEN_SECRET
        assert t.token_calls[-1]["auth"] == ""
    # the access token is a secret the loop must redact too
    assert token in first.secret_values() and token in second.secret_values()
    assert TOKEN_SECRET in first.secret_values()


async def test_oauth2_token_refusal_fails_the_step(
    target: tuple[Target, str], executor: HttpExecutor
) -> None:
    _, url = target
    cred = {
        "kind": "oauth2_client",
        "token_url": f"{url}/token/basic",
        "client_id": "cid",
        "client_secret": "not-the-secret",
    }
    step = _step(credential="idp", request={"url": url + "/protected"})
    with pytest.raises(StepError, match=rf"^oauth2 token request to {url}/token/basic: HTTP 401"):
        await executor.run(step, _run(cred))


async def test_status_outside_expect_status_fails_with_method_url_and_body_start(
    target: tuple[Target, str], executor: HttpExecutor
) -> None:
    _, url = target
    with pytest.raises(StepError) as info:
        await executor.run(_step(request={"url": url + "/missing"}), _run())
    message = str(info.value)
    assert message.startswith(f"HTTP 404 from GET {url}/missing: no such case xxx")
    assert len(message) == len(f"HTTP 404 from GET {url}/missing: ") + 300

    run = _run()
    await executor.run(_step(request={"url": url + "/missing", "expect_status": [404]}), run)
    assert run.outputs == {"status_code": 404}

    with pytest.raises(StepError, match="^HTTP 200 from GET"):
        await executor.run(_step(request={"url": url + "/text", "expect_status": [201]}), _run())


async def test_extract_from_a_non_json_body_fails_clearly(
    target: tuple[Target, str], executor: HttpExecutor
) -> None:
    _, url = target
    step = _step(request={"url": url + "/text"}, extract={"title": "title"})
    with pytest.raises(StepError, match=r"cannot extract title: .* is not JSON \(text/plain"):
        await executor.run(step, _run())
    # without extract, a non-JSON body is fine
    run = _run()
    await executor.run(_step(request={"url": url + "/text"}), run)
    assert run.outputs == {"status_code": 200}


async def test_request_parts_are_rendered(
    target: tuple[Target, str], executor: HttpExecutor
) -> None:
    _, url = target
    step = _step(
        request={
            "method": "POST",
            "url": url + "/echo?fixed=1",
            "headers": {"X-Case": "{{ input.case_id }}"},
            "params": {"owner": "{{ steps.a.outputs.owner }}"},
            "json": {"case": "{{ input.case_id }}", "tags": ["{{ vars.tag }}", 1]},
        },
        extract={"params": "params", "header": "header", "body": "body", "ct": "content_type"},
    )
    run = _run(
        input={"case_id": "C-9"},
        vars={"tag": "phish"},
        steps={"a": {"status": "succeeded", "outputs": {"owner": "ann"}}},
    )
    await executor.run(step, run)
    assert run.outputs["params"] == {"fixed": "1", "owner": "ann"}
    assert run.outputs["header"] == "C-9"
    assert run.outputs["ct"] == "application/json"
    assert run.outputs["body"] == '{"case": "C-9", "tags": ["phish", 1]}'

    raw = _step(request={"method": "PUT", "url": url + "/echo", "body": "id={{ input.case_id }}"})
    raw_run = _run(input={"case_id": "C-9"})
    await executor.run(raw.model_copy(update={"extract": {"body": "body"}}), raw_run)
    assert raw_run.outputs["body"] == "id=C-9"


async def test_allowed_hosts_refuses_other_hosts_before_sending(
    target: tuple[Target, str], executor: HttpExecutor
) -> None:
    t, url = target
    cred = {
        "kind": "api_key",
        "key": API_KEY,
        "header": "X-Api-Key",
        "prefix": "Key ",
        "allowed_hosts": ["api.example.com", "*.corp.example"],
    }
    with pytest.raises(
        StepError, match="host '127.0.0.1' is not in the credential's allowed_hosts"
    ):
        await executor.run(_step(request={"url": url + "/case/1"}), _run(cred))
    assert t.requests == []
    # the same host listed: allowed
    run = _run({**cred, "allowed_hosts": ["127.0.0.1"]})
    await executor.run(_step(request={"url": url + "/case/1"}), run)
    assert run.outputs["status_code"] == 200


def test_host_patterns() -> None:
    patterns = ["api.example.com", "*.corp.example"]
    assert host_allowed("api.example.com", patterns)
    assert host_allowed("API.Example.com.", patterns)
    assert host_allowed("hive.corp.example", patterns)
    assert host_allowed("a.b.corp.example", patterns)
    assert not host_allowed("corp.example", patterns)
    assert not host_allowed("evilcorp.example", patterns)
    assert not host_allowed("api.example.com.evil.net", patterns)
    assert not host_allowed("example.com", patterns)


async def test_redirects_are_not_followed(
    target: tuple[Target, str], executor: HttpExecutor
) -> None:
    t, url = target
    step = _step(request={"url": url + "/redirect"})
    with pytest.raises(StepError, match=r"^HTTP 302 .*redirects are not followed.*elsewhere"):
        await executor.run(step, _run({"kind": "api_key", "key": API_KEY, "header": "X-Api-Key"}))
    assert len(t.requests) == 1


async def test_unreachable_host_fails_the_step(executor: HttpExecutor) -> None:
    step = _step(request={"url": "http://127.0.0.1:9/nothing", "timeout_seconds": 2})
    with pytest.raises(StepError, match=r"^GET http://127.0.0.1:9/nothing: ConnectError"):
        await executor.run(step, _run())
