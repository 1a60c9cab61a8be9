"""castra's Temporal workflows (deterministic code only)."""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions


def sandbox_runner() -> SandboxedWorkflowRunner:
    """The sandbox every castra worker and replayer uses. Decoding an automation validates
    its templates, and Jinja2 imports lazily and takes locks while compiling: it is
    deterministic here, so it passes through the sandbox instead of being re-imported."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "jinja2", "markupsafe", "jmespath"
        )
    )
