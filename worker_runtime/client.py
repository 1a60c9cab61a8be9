"""The worker's client for the backend's worker API (``/worker/v1/...``).

Every call carries the worker key and the investigation header. Connection errors and
502/503/504 are retried with a short backoff for up to ``retry_seconds``: the API or the
orchestrator may be restarting, and a result in hand is worth waiting for. Giving up is the
backend's call, not the worker's: it tears a worker down once it has gone silent too long
or the investigation is over. Any other error status raises ``WorkerApiError`` at once.
No message built here contains the key or a credential value.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from core.contracts import (
    INVESTIGATION_HEADER,
    HeartbeatReply,
    NextSteps,
    StepResultAck,
    StepResultSubmission,
    WorkerInvestigation,
)
from core.models import ArtifactRef, Credential

logger = logging.getLogger(__name__)

_RETRY_STATUS = {502, 503, 504}
_CREDENTIAL = TypeAdapter[Credential](Credential)
M = TypeVar("M", bound=BaseModel)


class WorkerApiError(Exception):
    """The backend refused a call, or answered something unusable."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("title", "detail") if isinstance(body.get(k), str)]
        if parts:
            return ": ".join(parts)[:300]
    return str(body)[:200]


def _errors(exc: ValidationError) -> str:
    # Never the input: for a credential, that is the secret.
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False)
    )


class BackendClient:
    def __init__(
        self,
        backend_url: str,
        api_key: str,
        investigation_id: str,
        *,
        retry_seconds: float = 600.0,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.investigation_id = investigation_id
        self._retry_seconds = retry_seconds
        self._http = httpx.AsyncClient(
            base_url=backend_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", INVESTIGATION_HEADER: investigation_id},
            timeout=timeout_seconds,
        )

    async def __aenter__(self) -> BackendClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + self._retry_seconds
        delay = 0.1
        while True:
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code not in _RETRY_STATUS:
                    break
                failure = f"HTTP {response.status_code}"
            if time.monotonic() + delay > deadline:
                raise WorkerApiError(f"{method} {path}: backend unreachable ({failure})")
            logger.warning(
                "worker API call failed, retrying",
                extra={"investigation": self.investigation_id, "call": path, "reason": failure},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        if response.is_error:
            raise WorkerApiError(
                f"{method} {path}: HTTP {response.status_code}: {_problem(response)}",
                response.status_code,
            )
        return response

    async def _model(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        response = await self._call(method, path, **kwargs)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise WorkerApiError(f"{method} {path}: unexpected reply: {_errors(exc)}") from None

    async def investigation(self) -> WorkerInvestigation:
        return await self._model(WorkerInvestigation, "GET", "/worker/v1/investigation")

    async def next_steps(self) -> NextSteps:
        return await self._model(NextSteps, "GET", "/worker/v1/steps/next")

    async def submit_result(self, step_id: str, result: StepResultSubmission) -> StepResultAck:
        return await self._model(
            StepResultAck,
            "POST",
            f"/worker/v1/steps/{step_id}/result",
            content=result.model_dump_json(),
            headers={"Content-Type": "application/json"},
        )

    async def heartbeat(self) -> HeartbeatReply:
        return await self._model(HeartbeatReply, "POST", "/worker/v1/heartbeat", json={})

    async def credential(self, name: str) -> Credential:
        path = f"/worker/v1/credentials/{name}"
        response = await self._call("GET", path)
        try:
            return _CREDENTIAL.validate_json(response.content)
        except ValidationError as exc:
            raise WorkerApiError(f"GET {path}: unusable credential: {_errors(exc)}") from None

    async def upload_artifact(
        self, step_id: str, name: str, content_type: str, data: bytes
    ) -> ArtifactRef:
        return await self._model(
            ArtifactRef,
            "POST",
            "/worker/v1/artifacts",
            params={"step_id": step_id, "name": name},
            content=data,
            headers={"Content-Type": content_type},
        )
