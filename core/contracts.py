"""The InvestigationWorkflow's public face: its name, id scheme, input/result, updates and
queries. The API and the tests talk to the workflow through these, never by importing
``workflows/``. Models only grow: new fields get defaults.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from core.models import (
    ArtifactRef,
    AutomationDefinition,
    BrowserStep,
    HttpStep,
    InvestigationStatus,
    Model,
    StepState,
    TriggerInfo,
)

INVESTIGATION_WORKFLOW = "InvestigationWorkflow"
SUBMIT_STEP_RESULT = "submit_step_result"
NEXT_STEPS = "next_steps"
PROGRESS = "progress"

# Search attributes (all Keyword), registered by `castra up` and the orchestrator.
SEARCH_ATTRIBUTES = ("CastraTenant", "CastraAutomation", "CastraStatus", "CastraTrigger")


def investigation_workflow_id(investigation_id: str) -> str:
    return f"investigation-{investigation_id}"


class InvestigationLimits(Model):
    """Per-investigation limits and wiring, resolved from settings by whoever starts the
    workflow, so the workflow itself never reads settings."""

    backend_url: str
    provisioner: str = "process"
    investigation_timeout_seconds: float = 3600.0
    step_timeout_seconds: float = 300.0
    worker_start_timeout_seconds: float = 30.0
    worker_heartbeat_timeout_seconds: float = 30.0
    worker_heartbeat_interval_seconds: float = 5.0


class InvestigationInput(Model):
    investigation_id: str
    tenant_id: str
    automation_id: str
    automation: AutomationDefinition
    input: dict[str, Any] = Field(default_factory=dict)
    trigger: TriggerInfo = Field(default_factory=TriggerInfo)
    limits: InvestigationLimits


class InvestigationResult(Model):
    status: InvestigationStatus
    error: str | None = None
    steps: list[StepState] = Field(default_factory=list)


class StepResultInput(Model):
    """A worker's result for one step, delivered as a Temporal Update."""

    step_id: str
    status: Literal["succeeded", "failed", "skipped"]
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    artifacts: list[ArtifactRef] = Field(default_factory=list)
    started_at: datetime | None = None


class StepResultAck(Model):
    step_id: str
    status: str
    investigation_status: InvestigationStatus
    # True when no step will follow this one (it was the last, or it failed): the worker
    # stops instead of asking again with a key that is about to be revoked.
    last: bool = False


class NextSteps(Model):
    """What the worker should run next. ``done`` means: stop, nothing more will come."""

    done: bool
    status: InvestigationStatus
    steps: list[BrowserStep | HttpStep] = Field(default_factory=list)
    # outputs and statuses of the finished steps, for templates: {step_id: {status, outputs}}
    context: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Progress(Model):
    status: InvestigationStatus
    steps: list[StepState] = Field(default_factory=list)
    error: str | None = None
    worker_id: str | None = None


# --------------------------------------------------------------------------- worker API
# Every worker call carries ``Authorization: Bearer <worker key>`` and
# ``Castra-Investigation: <id>``; a key used for another investigation gets 403.

INVESTIGATION_HEADER = "Castra-Investigation"


class WorkerStartRequest(Model):
    """The orchestrator's ``POST {worker}/start``. The key appears here and nowhere else."""

    investigation_id: str
    backend_url: str
    api_key: str
    heartbeat_interval_seconds: float = 5.0


class WorkerInvestigation(Model):
    """``GET /worker/v1/investigation``."""

    id: str
    tenant_id: str
    automation: AutomationDefinition
    input: dict[str, Any] = Field(default_factory=dict)
    vars: dict[str, Any] = Field(default_factory=dict)


# The API refuses a larger result body (Temporal's payloads are capped at 2 MiB).
MAX_STEP_RESULT_BYTES = 512 * 1024


class StepResultSubmission(Model):
    """Body of ``POST /worker/v1/steps/{step_id}/result``."""

    status: Literal["succeeded", "failed", "skipped"]
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    artifacts: list[ArtifactRef] = Field(default_factory=list)
    started_at: datetime | None = None


class HeartbeatReply(Model):
    """``POST /worker/v1/heartbeat``: ``stop`` tells the worker its investigation is over."""

    stop: bool = False
    status: InvestigationStatus = InvestigationStatus.running
