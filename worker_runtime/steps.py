"""What the step loop hands an executor, and what the executors share.

``StepRun`` is the mutable record of one running step: the executor adds outputs,
artifacts and any secret it learns on the way (an OAuth2 access token), so the loop can
still redact and report them when the executor raises halfway through.

This module never logs and never formats a secret into a message itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from core.models import ArtifactRef, Credential
from worker_runtime.redaction import credential_secrets

# upload(name, content_type, data) -> the stored artifact's reference
Uploader = Callable[[str, str, bytes], Awaitable[ArtifactRef]]


class StepError(Exception):
    """A step failed for a reason its author can act on. The message is the step's error
    as is (the loop redacts it); any other exception is reported as ``Type: message``."""


@dataclass
class StepRun:
    step_id: str
    context: dict[str, Any]
    upload: Uploader
    credential: Credential | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    artifacts: list[ArtifactRef] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)

    def secret_values(self) -> list[str]:
        """Every value to redact from this step's outputs and error."""
        values = list(self.secrets)
        if self.credential is not None:
            values += credential_secrets(self.credential)
        return values


def host_allowed(host: str, patterns: list[str]) -> bool:
    """``patterns`` are hostnames, matched exactly, or ``*.suffix`` for any subdomain of
    ``suffix`` (not ``suffix`` itself). Case and a trailing dot do not matter."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.strip().lower().rstrip(".")
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
        if host == pattern:
            return True
    return False


def check_url(url: str, credential: Credential | None, action: str) -> None:
    """Refuse a URL that is not http(s), or whose host the step's credential does not
    allow, before anything is sent to it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StepError(f"{action} {url!r}: not an absolute http(s) URL")
    if credential is not None and credential.allowed_hosts:
        if not host_allowed(parts.hostname, credential.allowed_hosts):
            raise StepError(
                f"{action} {url!r}: host {parts.hostname!r} is not in the credential's "
                f"allowed_hosts"
            )
