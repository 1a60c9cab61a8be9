"""MongoDB writes on the workflow's behalf: the queryable record of an investigation.

Workflows never touch MongoDB; they hand these activities a full snapshot of their state,
so every write is idempotent and the last one always carries the newest state.
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
    steps: list[StepState] = Field(default_factory=list)
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
        fields = arg.model_dump(mode="python", exclude={"investigation_id"}, exclude_none=True)
        fields["steps"] = [s.model_dump(mode="python") for s in arg.steps]
        fields["error"] = arg.error
        # once Temporal runs the workflow, the trigger is no longer pending dispatch
        fields["workflow_started"] = True
        result = await self._db[dbm.INVESTIGATIONS].update_one(
            {"_id": arg.investigation_id}, {"$set": fields}
        )
        return SaveProgressResult(matched=result.matched_count == 1)
