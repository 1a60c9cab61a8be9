"""InvestigationWorkflow must replay the committed histories of earlier versions, and must
refuse a history whose commands differ from what it does now (a change of command sequence
needs `workflow.patched`). Histories: tests/replay/histories, recorded by tests/replay/record.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from core.temporal import DATA_CONVERTER
from workflows import sandbox_runner
from workflows.investigation import InvestigationWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"


def _history(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json("investigation-replay", (HISTORIES / name).read_text())


def _replayer() -> Replayer:
    return Replayer(
        workflows=[InvestigationWorkflow],
        data_converter=DATA_CONVERTER,
        workflow_runner=sandbox_runner(),
    )


SUCCEEDED = sorted(p.name for p in HISTORIES.glob("investigation_succeeded*.json"))


def test_every_kept_version_is_here() -> None:
    # _v1: before per-step writes to MongoDB; the unsuffixed one: today's code
    assert SUCCEEDED == ["investigation_succeeded.json", "investigation_succeeded_v1.json"]


@pytest.mark.parametrize("name", SUCCEEDED)
async def test_replays_committed_history(name: str) -> None:
    result = await _replayer().replay_workflow(_history(name))
    assert result.replay_failure is None


async def test_refuses_a_nondeterministic_history() -> None:
    with pytest.raises(NondeterminismError):
        await _replayer().replay_workflow(_history("investigation_nondeterministic.json"))
