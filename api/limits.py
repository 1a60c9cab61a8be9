"""Request body size limits, per route, enforced before anything parses a body.

Everything the API accepts ends up in a Temporal payload (limit 2 MiB) or a MongoDB
document (limit 16 MiB); a body beyond those limits would be recorded and then never
start. Limits are checked on the declared ``Content-Length`` before the route runs, and
on the bytes actually received, for bodies sent without one (chunked). The answer is a 413
problem naming what is limited; this module never reads or logs the body itself.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem
from core.contracts import MAX_STEP_RESULT_BYTES

KiB = 1024
MiB = 1024 * KiB
ARTIFACT_BYTES = 20 * MiB

# (method, path, limit, what is limited): the first match applies. A definition and a
# trigger's input travel together in one workflow input, which Temporal caps at 2 MiB.
_LIMITS: list[tuple[str, re.Pattern[str], int, str]] = [
    ("POST", re.compile(r"/v1/automations"), 512 * KiB, "an automation definition"),
    ("POST", re.compile(r"/v1/investigations"), 512 * KiB, "a trigger (its input)"),
    (
        "POST",
        re.compile(r"/worker/v1/steps/[^/]+/result"),
        MAX_STEP_RESULT_BYTES,  # the worker checks its results against the same number
        "a step result (its outputs and error)",
    ),
    ("PUT", re.compile(r"/v1/credentials/[^/]+"), 64 * KiB, "a credential (its key or secret)"),
    ("POST", re.compile(r"/worker/v1/artifacts"), ARTIFACT_BYTES, "an artifact"),
]
_DEFAULT = (1 * MiB, "a request body")


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n % MiB == 0 else f"{n // KiB} KiB"


def limit_for(method: str, path: str) -> tuple[int, str]:
    """The limit of a route, in bytes, and what its detail says, e.g. "… is limited to 1 MiB"."""
    for route_method, pattern, limit, what in _LIMITS:
        if method == route_method and pattern.fullmatch(path):
            return limit, f"{what} is limited to {_size(limit)}"
    limit, what = _DEFAULT
    return limit, f"{what} is limited to {_size(limit)}"


class _TooLarge(HTTPException):
    """Raised from ``receive``: routes reading the body pass it to the problem handlers."""


class BodyLimits:
    """Pure ASGI middleware: answers 413 for a body beyond its route's limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, detail = limit_for(scope["method"], scope["path"])
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await problem(413, detail, instance=scope["path"])(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(413, detail)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            # read outside a route's error handling (e.g. by another middleware)
            if started:
                raise
            await problem(413, detail, instance=scope["path"])(scope, receive, send)
