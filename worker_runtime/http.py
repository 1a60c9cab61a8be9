"""The executor of ``kind: http`` steps (httpx).

It renders the request, applies the step's credential (basic, api_key in a header or a
query parameter, or an OAuth2 client-credentials token, cached per credential for its
lifetime), refuses hosts outside the credential's ``allowed_hosts``, and turns the response
into outputs: ``status_code`` plus each ``extract`` name as a JMESPath over the JSON body.

Redirects are not followed: httpx would carry a custom api-key header to whatever host a
redirect names, past ``allowed_hosts``. A 3xx therefore fails unless ``expect_status``
lists it. Error messages may hold response text; the loop redacts them before reporting.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jmespath
import jmespath.exceptions

from core.models import ApiKeyCredential, BasicCredential, HttpStep, OAuth2ClientCredential
from worker_runtime.steps import StepError, StepRun, check_url
from worker_runtime.templates import render, render_value

_BODY_SHOWN = 300
_TOKEN_MARGIN = 30.0  # seconds: refresh a token this long before it expires
_TOKEN_DEFAULT_LIFETIME = 300.0  # when the token endpoint gives no expires_in


@dataclass
class _Token:
    value: str
    expires_at: float


def _where(method: str, url: httpx.URL) -> str:
    # Without the query string: it may carry an api key.
    return f"{method} {url.copy_with(query=None, fragment=None)}"


def _snippet(response: httpx.Response) -> str:
    return response.text[:_BODY_SHOWN]


class HttpExecutor:
    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._http = client or httpx.AsyncClient(follow_redirects=False, timeout=30.0)
        self._tokens: dict[tuple[str, ...], _Token] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run(self, step: HttpStep, run: StepRun) -> None:
        spec = step.request
        ctx = run.context
        url = render(spec.url, ctx)
        check_url(url, run.credential, spec.method)
        headers = {name: render(value, ctx) for name, value in spec.headers.items()}
        params = {name: render(value, ctx) for name, value in spec.params.items()}
        if spec.json_body is not None and spec.body is not None:
            raise StepError("request has both json and body; use one")
        content: bytes | None = None
        if spec.json_body is not None:
            content = json.dumps(render_value(spec.json_body, ctx)).encode()
            headers.setdefault("Content-Type", "application/json")
        elif spec.body is not None:
            content = render(spec.body, ctx).encode()

        auth: httpx.Auth | None = None
        cred = run.credential
        if isinstance(cred, BasicCredential):
            auth = httpx.BasicAuth(cred.username, cred.password.get_secret_value())
        elif isinstance(cred, ApiKeyCredential):
            if cred.query_param:
                params[cred.query_param] = cred.key.get_secret_value()
            elif cred.header:
                headers[cred.header] = cred.prefix + cred.key.get_secret_value()

        async def send(token: str | None) -> httpx.Response:
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            # Merged by hand: httpx would drop a query string the URL template already has.
            target = httpx.URL(url).copy_merge_params(params) if params else httpx.URL(url)
            request = self._http.build_request(
                spec.method, target, headers=headers, content=content, timeout=spec.timeout_seconds
            )
            try:
                return await self._http.send(request, auth=auth)
            except httpx.TimeoutException:
                raise StepError(
                    f"{_where(spec.method, request.url)}: no response after "
                    f"{spec.timeout_seconds:g}s"
                ) from None
            except httpx.TransportError as exc:
                raise StepError(
                    f"{_where(spec.method, request.url)}: {type(exc).__name__}: {exc}"
                ) from None

        if isinstance(cred, OAuth2ClientCredential):
            response = await send(await self._token(step.credential or "", cred, run))
            if response.status_code == 401:  # revoked or expired early: one fresh token
                self._tokens.pop(self._token_key(step.credential or "", cred), None)
                response = await send(await self._token(step.credential or "", cred, run))
        else:
            response = await send(None)

        self._check_status(spec.method, response, spec.expect_status)
        run.outputs["status_code"] = response.status_code
        if step.extract:
            run.outputs.update(self._extract(spec.method, response, step.extract))

    @staticmethod
    def _check_status(method: str, response: httpx.Response, expect: list[int] | None) -> None:
        ok = response.status_code in expect if expect else response.is_success
        if ok:
            return
        message = f"HTTP {response.status_code} from {_where(method, response.request.url)}"
        if response.is_redirect:
            message += f" (redirects are not followed; Location: {response.headers['location']})"
        raise StepError(f"{message}: {_snippet(response)}")

    @staticmethod
    def _extract(method: str, response: httpx.Response, paths: dict[str, str]) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise StepError(
                f"cannot extract {', '.join(paths)}: the response of "
                f"{_where(method, response.request.url)} is not JSON ({kind}): "
                f"{_snippet(response)}"
            ) from None
        out: dict[str, Any] = {}
        for name, path in paths.items():
            try:
                out[name] = jmespath.search(path, body)
            except jmespath.exceptions.JMESPathError as exc:
                raise StepError(f"extract {name} ({path!r}): {exc}") from None
        return out

    @staticmethod
    def _token_key(name: str, cred: OAuth2ClientCredential) -> tuple[str, ...]:
        return (name, cred.token_url, cred.client_id, cred.scope or "")

    async def _token(self, name: str, cred: OAuth2ClientCredential, run: StepRun) -> str:
        key = self._token_key(name, cred)
        cached = self._tokens.get(key)
        if cached is None or cached.expires_at <= time.monotonic():
            cached = await self._fetch_token(cred)
            self._tokens[key] = cached
        run.secrets.append(cached.value)
        return cached.value

    async def _fetch_token(self, cred: OAuth2ClientCredential) -> _Token:
        """Client-credentials grant. RFC 6749 makes HTTP basic client authentication the
        one every server must accept; some (notably ones configured for
        ``client_secret_post``) refuse it, so a refusal is retried with the secret in the
        form body."""
        form = {"grant_type": "client_credentials"}
        if cred.scope:
            form["scope"] = cred.scope
        secret = cred.client_secret.get_secret_value()
        where = f"oauth2 token request to {httpx.URL(cred.token_url).copy_with(query=None)}"
        try:
            response = await self._http.post(
                cred.token_url, data=form, auth=httpx.BasicAuth(cred.client_id, secret)
            )
            if response.status_code in (400, 401):
                response = await self._http.post(
                    cred.token_url,
                    data={**form, "client_id": cred.client_id, "client_secret": secret},
                )
        except httpx.TransportError as exc:
            raise StepError(f"{where}: {type(exc).__name__}: {exc}") from None
        if not response.is_success:
            raise StepError(f"{where}: HTTP {response.status_code}: {_snippet(response)}")
        try:
            body = response.json()
            token = body["access_token"]
            lifetime = float(body.get("expires_in") or _TOKEN_DEFAULT_LIFETIME)
        except (ValueError, KeyError, TypeError):
            raise StepError(f"{where}: the reply has no access_token") from None
        if not isinstance(token, str) or not token:
            raise StepError(f"{where}: the reply has no access_token")
        expires_at = time.monotonic() + max(lifetime - _TOKEN_MARGIN, lifetime / 2)
        return _Token(token, expires_at)
