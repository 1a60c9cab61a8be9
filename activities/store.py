"""MongoDB writes on the workflow's behalf: the queryable record of an investigation.

Workflows never touch MongoDB; they hand these activities their state: the investigation's
fields in full, and each step that changed since the previous write (only those, so a long
investigation's history does not carry every output again at every write). Every write is
idempotent, and the workflow serializes them, so the last one carries the newest state.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from temporalio import activity

from core import db as dbm
from core.models import InvestigationStatus, Model, StepState, WorkerInfo


class SaveProgressInput(Model):
    investigation_id: str
    status: InvestigationStatus
    # step index -> its state, for the steps that changed since the previous write
    changed_steps: dict[int, StepState] = Field(default_factory=dict)
    worker: WorkerInfo | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class SaveProgressResult(Model):
    matched: bool


class StoreActivities:
    def __init__(self, db: dbm.Db) -> None:
        self._db = db

    @activity.defn
    async def save_progress(self, arg: SaveProgressInput) -> SaveProgressResult:
        fields = arg.model_dump(
            mode="python", exclude={"investigation_id", "changed_steps"}, exclude_none=True
        )
        for index, step in arg.changed_steps.items():
            fields[f"steps.{index}"] = step.model_dump(mode="python")
        fields["error"] = arg.error
        # once Temporal runs the workflow, the trigger is no longer pending dispatch
        fields["workflow_started"] = True
        result = await self._db[dbm.INVESTIGATIONS].update_one(
            {"_id": arg.investigation_id}, {"$set": fields}
        )
        return SaveProgressResult(matched=result.matched_count == 1)
