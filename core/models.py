"""Domain models shared by every castra process, the worker runtime included.

This module imports only pydantic, Jinja2 and JMESPath, so a worker image can use it
without the server side. Models only grow: a new field always gets a default, so running
Temporal histories keep decoding.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import jinja2
import jinja2.sandbox
import jmespath
import jmespath.exceptions
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- statuses


class InvestigationStatus(StrEnum):
    queued = "queued"
    provisioning = "provisioning"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    timed_out = "timed_out"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = {
    InvestigationStatus.succeeded,
    InvestigationStatus.failed,
    InvestigationStatus.cancelled,
    InvestigationStatus.timed_out,
}


class StepStatus(StrEnum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"
    cancelled = "cancelled"


class TriggerKind(StrEnum):
    api = "api"
    webhook = "webhook"
    poller = "poller"


# --------------------------------------------------------------------------- templates

# One sandboxed environment, strict about undefined names, used for validation here and
# for rendering in the worker runtime.
TEMPLATE_ENV = jinja2.sandbox.ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined, autoescape=False
)


def _check_template(value: str) -> str:
    try:
        TEMPLATE_ENV.parse(value)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"invalid template: {exc.message}") from None
    return value


def _check_expression(value: str) -> str:
    try:
        TEMPLATE_ENV.compile_expression(value)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"invalid expression: {exc.message}") from None
    return value


def _check_jmespath(value: str) -> str:
    try:
        jmespath.compile(value)
    except jmespath.exceptions.JMESPathError as exc:
        raise ValueError(f"invalid JMESPath expression: {exc}") from None
    return value


Template = Annotated[str, Field(min_length=1)]
# A credential's name: starts with a letter or digit, so "." and ".." are never names.
CREDENTIAL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
Identifier = Annotated[str, Field(pattern=_NAME)]


# --------------------------------------------------------------------------- automations


class FillSpec(Model):
    selector: Template
    value: Template

    _v = field_validator("selector", "value")(_check_template)


class ExtractSpec(Model):
    name: Identifier
    selector: Template
    attribute: str | None = None  # default: the element's text

    _v = field_validator("selector")(_check_template)


class ScreenshotSpec(Model):
    name: Identifier
    full_page: bool = False


class WaitForSpec(Model):
    selector: Template
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    _v = field_validator("selector")(_check_template)


class GotoAction(Model):
    goto: Template
    _v = field_validator("goto")(_check_template)


class FillAction(Model):
    fill: FillSpec


class ClickAction(Model):
    click: Template
    _v = field_validator("click")(_check_template)


class WaitForAction(Model):
    wait_for: Template | WaitForSpec

    @field_validator("wait_for")
    @classmethod
    def _tmpl(cls, v: str | WaitForSpec) -> str | WaitForSpec:
        return _check_template(v) if isinstance(v, str) else v


class ExtractAction(Model):
    extract: ExtractSpec


class ScreenshotAction(Model):
    screenshot: ScreenshotSpec


BrowserAction = (
    GotoAction | FillAction | ClickAction | WaitForAction | ExtractAction | ScreenshotAction
)


class _StepBase(Model):
    id: Identifier
    credential: str | None = Field(default=None, pattern=CREDENTIAL_NAME)
    when: str | None = None  # a Jinja expression; the step is skipped when it is falsy
    timeout_seconds: float | None = Field(default=None, gt=0, le=86400)

    @field_validator("when")
    @classmethod
    def _when(cls, v: str | None) -> str | None:
        return None if v is None else _check_expression(v)


class BrowserStep(_StepBase):
    kind: Literal["browser"]
    actions: list[BrowserAction] = Field(min_length=1)


class HttpRequest(Model):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: Template
    headers: dict[str, Template] = Field(default_factory=dict)
    params: dict[str, Template] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")  # strings inside are templates
    body: Template | None = None
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # Statuses that count as success; default: any 2xx.
    expect_status: list[int] | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("url", "body")
    @classmethod
    def _tmpl(cls, v: str | None) -> str | None:
        return None if v is None else _check_template(v)

    @field_validator("headers", "params")
    @classmethod
    def _tmpl_map(cls, v: dict[str, str]) -> dict[str, str]:
        for item in v.values():
            _check_template(item)
        return v

    @model_validator(mode="after")
    def _one_body(self) -> HttpRequest:
        if self.json_body is not None and self.body is not None:
            raise ValueError("a request has either json or body, not both")
        return self


class HttpStep(_StepBase):
    kind: Literal["http"]
    request: HttpRequest
    # output name -> JMESPath over the JSON response body
    extract: dict[Identifier, str] = Field(default_factory=dict)

    @field_validator("extract")
    @classmethod
    def _paths(cls, v: dict[str, str]) -> dict[str, str]:
        for path in v.values():
            _check_jmespath(path)
        return v


Step = Annotated[BrowserStep | HttpStep, Field(discriminator="kind")]


class AutomationDefinition(Model):
    """An automation as its author writes it (YAML or JSON)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")
    description: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)  # JSON Schema for the trigger input
    vars: dict[str, Any] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1, max_length=200)
    timeout_seconds: float | None = Field(default=None, gt=0, le=7 * 86400)

    @model_validator(mode="after")
    def _unique_ids(self) -> AutomationDefinition:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"duplicate step id {step.id!r}")
            seen.add(step.id)
        return self

    def step(self, step_id: str) -> BrowserStep | HttpStep:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


# --------------------------------------------------------------------------- credentials


class _CredentialBase(Model):
    allowed_hosts: list[str] = Field(default_factory=list)  # empty: any host

    def reveal(self) -> dict[str, Any]:
        """The credential with its secret values in clear, for the secret store and the
        worker only. Everything else sees SecretStr's mask."""
        out = self.model_dump(mode="python")
        for key, value in out.items():
            if isinstance(value, SecretStr):
                out[key] = value.get_secret_value()
        return out

    def secret_values(self) -> list[str]:
        """Every secret string this credential holds, for redaction."""
        values = [v.get_secret_value() for v in self.__dict__.values() if isinstance(v, SecretStr)]
        return [v for v in values if v]


class BasicCredential(_CredentialBase):
    kind: Literal["basic"]
    username: str = Field(min_length=1)
    password: SecretStr


class ApiKeyCredential(_CredentialBase):
    kind: Literal["api_key"]
    key: SecretStr
    header: str | None = "Authorization"
    prefix: str = "Bearer "
    query_param: str | None = None

    @model_validator(mode="after")
    def _where(self) -> ApiKeyCredential:
        if self.query_param:
            self.header = None
        elif not self.header:
            raise ValueError("an api_key credential needs a header or a query_param")
        return self


class OAuth2ClientCredential(_CredentialBase):
    kind: Literal["oauth2_client"]
    token_url: str = Field(pattern=r"^https?://")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scope: str | None = None


Credential = Annotated[
    BasicCredential | ApiKeyCredential | OAuth2ClientCredential, Field(discriminator="kind")
]
CredentialKind = Literal["basic", "api_key", "oauth2_client"]


# --------------------------------------------------------------------------- investigations


class ArtifactRef(Model):
    id: str
    name: str
    content_type: str = "application/octet-stream"
    size: int = 0


class StepState(Model):
    id: str
    status: StepStatus = StepStatus.pending
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    artifacts: list[ArtifactRef] = Field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class TriggerInfo(Model):
    kind: TriggerKind = TriggerKind.api
    ref: str | None = None  # poller or webhook id, delivery id, ...


class WorkerInfo(Model):
    """What the API shows of an investigation's worker (never its key)."""

    id: str
    provisioner: str
    url: str
    status: str = "starting"


NAME_RE = re.compile(CREDENTIAL_NAME)
