"""Every API error as RFC 9457 problem+json, with a stable ``type`` per kind of error.

castra's own errors (core/errors.py), request validation, Starlette HTTP errors, the
library errors that reach the edge (Temporal, MongoDB) and anything unexpected all end
here. This module must never echo or log a request body: validation problems carry only
the location and message of each error, never the offending value.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.service import RPCError, RPCStatusCode

from api import bodies
from core import errors

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://castra.dev/problems/"

_STATUS_OF: dict[type[errors.CastraError], int] = {
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.InvalidInput: 422,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.Unavailable: 503,
}

_CODE_OF_STATUS = {
    400: "bad-request",
    401: errors.Unauthenticated.code,
    403: errors.Forbidden.code,
    404: errors.NotFound.code,
    405: "method-not-allowed",
    409: errors.Conflict.code,
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: errors.InvalidInput.code,
    429: "too-many-requests",
    500: "internal-error",
    503: errors.Unavailable.code,
}

_LOST = object()  # clean_loc: the location left the submitted document

# Temporal answers that mean "the cluster cannot be reached right now".
_TEMPORAL_UNAVAILABLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
}


def problem(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    code: str | None = None,
    errors_: Sequence[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + (code or _CODE_OF_STATUS.get(status, f"http-{status}")),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    if errors_ is not None:
        body["errors"] = list(errors_)
    all_headers = dict(headers or {})
    if status == 401:
        all_headers.setdefault("WWW-Authenticate", 'Bearer realm="castra"')
    return JSONResponse(body, status_code=status, headers=all_headers, media_type=MEDIA_TYPE)


def invalid(where: str, msg: str) -> RequestValidationError:
    """A 422 naming one request field, e.g. ``invalid("query.cursor", "unknown cursor")``."""
    return RequestValidationError([{"loc": tuple(where.split(".")), "msg": msg, "type": "value"}])


def clean_loc(loc: Sequence[int | str], data: Any) -> str:
    """``("body", "steps", 0, "http", "request", "url")`` → ``steps.0.request.url``; the
    body as a whole is ``body``."""
    return _walk(loc, data)[0]


def _walk(loc: Sequence[int | str], data: Any) -> tuple[str, list[tuple[str, str]]]:
    """Pydantic puts union tags and member names into locations; walking the submitted
    document keeps only the parts a user can find in what they sent. Also returns the
    union branches taken, as ``(where, member)``."""
    items = list(loc)
    if items and items[0] == "body":
        items = items[1:]
    elif items:
        data = _LOST  # a query, path or header location: keep it as it is
    parts: list[str] = []
    branches: list[tuple[str, str]] = []
    for n, item in enumerate(items):
        last = n == len(items) - 1
        if isinstance(data, dict) and item in data:
            data = data[item]
        elif isinstance(data, list) and isinstance(item, int) and 0 <= item < len(data):
            data = data[item]
        elif data is not _LOST and isinstance(item, str) and not isinstance(data, dict | list):
            branches.append((".".join(parts), item))  # a member's name below a plain value
            continue
        elif isinstance(data, dict) and isinstance(item, str) and not last:
            branches.append((".".join(parts), item))  # a union tag or member name
            continue
        else:
            data = _LOST
        parts.append(str(item))
    if not parts and loc and loc[0] == "body":
        return "body", branches
    return ".".join(parts), branches


def _reworded(error: dict[str, Any], body: Any) -> dict[str, Any]:
    """FastAPI's own body errors, said in terms of the body: a JSON syntax error has a
    character offset for its location, and a missing body no location at all."""
    kind, loc = error.get("type"), tuple(error.get("loc", ()))
    if kind == "json_invalid" and isinstance(body, str) and len(loc) == 2:
        reason = error.get("ctx", {}).get("error", "JSON decode error")
        msg = bodies.not_json(json.JSONDecodeError(reason, body, int(loc[1])))
        return {**error, "loc": ("body",), "msg": msg}
    if kind == "missing" and loc == ("body",):
        return {**error, "msg": "a JSON body is required"}
    return error


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """Each error's location and message. For a value that matches no member of a union,
    pydantic reports every member's errors; only the members that fit best are kept
    (fewest unexpected keys, then fewest errors), so ``{goto: "{{ oops"}`` reports its
    template, not that it lacks ``click``."""
    errors_ = [_reworded(e, exc.body) for e in exc.errors()]
    walked = [(*_walk(e.get("loc", ()), exc.body), e) for e in errors_]
    scores: dict[str, dict[str, tuple[int, int]]] = {}
    for _, branches, error in walked:
        extra = int(error.get("type") == "extra_forbidden")
        for where, member in branches:
            unexpected, count = scores.setdefault(where, {}).get(member, (0, 0))
            scores[where][member] = (unexpected + extra, count + 1)
    best = {where: min(members.values()) for where, members in scores.items()}
    found: list[dict[str, str]] = []
    for path, branches, error in walked:
        if any(scores[where][member] != best[where] for where, member in branches):
            continue
        item = {"loc": path, "msg": error["msg"]}
        if item not in found:
            found.append(item)
    return found


async def _on_castra_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.CastraError)
    status = next((s for cls, s in _STATUS_OF.items() if isinstance(exc, cls)), 500)
    if status >= 500:
        log.warning("request failed: %s", exc, extra={"path": request.url.path, "code": exc.code})
    return problem(status, str(exc), instance=request.url.path, code=exc.code)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    found = _validation_errors(exc)
    first = found[0] if found else {"loc": "", "msg": "invalid request"}
    detail = f"{first['loc']}: {first['msg']}" if first["loc"] else first["msg"]
    return problem(422, detail, instance=request.url.path, errors_=found)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return problem(
        exc.status_code,
        str(exc.detail),
        instance=request.url.path,
        headers=dict(exc.headers or {}),
    )


async def _on_temporal(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RPCError)
    if exc.status in _TEMPORAL_UNAVAILABLE:
        log.warning("temporal unavailable: %s", exc.message, extra={"path": request.url.path})
        return problem(503, "Temporal is unavailable, retry later", instance=request.url.path)
    log.error("temporal call failed: %s", exc.message, extra={"path": request.url.path})
    return problem(500, "an unexpected error occurred", instance=request.url.path)


async def _on_mongo(request: Request, exc: Exception) -> JSONResponse:
    log.warning("mongodb unavailable: %s", exc, extra={"path": request.url.path})
    return problem(503, "the database is unavailable, retry later", instance=request.url.path)


class UnhandledErrors:
    """Turns any exception that escaped the handlers into a generic 500 problem, logged with
    its traceback. Unlike Starlette's own 500 handler it does not re-raise, so the error is
    logged once, here, with the request's method and path and nothing of its body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception(
                "unhandled error", extra={"method": scope.get("method"), "path": scope.get("path")}
            )
            if started:
                raise
            response = problem(500, "an unexpected error occurred", instance=scope.get("path"))
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.CastraError, _on_castra_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(RPCError, _on_temporal)
    app.add_exception_handler(ConnectionFailure, _on_mongo)
    app.add_middleware(UnhandledErrors)
