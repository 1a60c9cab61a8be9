"""The tenant API's request and response bodies.

They are separate from the workflow's models (core/contracts.py) and from the stored
documents (core/db.py); routes convert between them. Response models ignore unknown
fields, so whatever else a stored document carries (hashes, internal flags) never leaks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core import db as dbm
from core.models import ArtifactRef, InvestigationStatus, StepStatus, TriggerInfo


class Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- automations


class AutomationOut(Out):
    id: str
    name: str
    definition: dict[str, Any]
    created_at: datetime
    # things worth fixing before the first trigger, e.g. credentials not stored yet
    warnings: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, doc: dbm.Document, stored_credentials: set[str]) -> AutomationOut:
        out = cls.model_validate({**doc, "id": doc["_id"]})
        named = {s.get("credential") for s in doc["definition"]["steps"]} - {None}
        out.warnings = [
            f"credential {name!r} is not stored yet (PUT /v1/credentials/{name})"
            for name in sorted(named - stored_credentials)
        ]
        return out


class AutomationList(Out):
    items: list[AutomationOut]


# --------------------------------------------------------------------------- investigations


class TriggerRequest(In):
    automation_id: str = Field(min_length=1, max_length=64)
    input: dict[str, Any] = Field(default_factory=dict)


class StepOut(Out):
    id: str
    status: StepStatus
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    artifacts: list[ArtifactRef] = Field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class WorkerOut(Out):
    id: str
    provisioner: str
    url: str
    status: str = "starting"


class Links(Out):
    self: str
    temporal_ui: str


class InvestigationOut(Out):
    id: str
    tenant_id: str
    automation_id: str
    status: InvestigationStatus
    trigger: TriggerInfo
    input: dict[str, Any]
    steps: list[StepOut]
    worker: WorkerOut | None = None
    created_at: datetime
    finished_at: datetime | None = None
    # beyond the contract's fields
    error: str | None = None
    automation_name: str | None = None
    links: Links


class InvestigationPage(Out):
    items: list[InvestigationOut]
    next_cursor: str | None = None


# --------------------------------------------------------------------------- credentials


class CredentialOut(Out):
    name: str
    kind: str
    allowed_hosts: list[str] = Field(default_factory=list)
    updated_at: datetime


class CredentialList(Out):
    items: list[CredentialOut]


# --------------------------------------------------------------------------- health


class Health(Out):
    ok: bool
    temporal: bool
    mongodb: bool
