"""Render an automation's templates and ``when`` expressions in the worker.

Everything goes through ``core.models.TEMPLATE_ENV`` (sandboxed, strict undefined), so a
template that validated at upload time renders under the same rules here. Any failure
becomes a ``TemplateError`` naming the template (never the rendered value, which may hold
a credential).
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2

from core.models import TEMPLATE_ENV
from worker_runtime.steps import StepError

_SHOWN = 200  # characters of a template quoted in an error


class TemplateError(StepError):
    pass


def _quoted(source: str) -> str:
    return repr(source if len(source) <= _SHOWN else source[:_SHOWN] + "…")


def _reason(exc: Exception) -> str:
    if isinstance(exc, jinja2.TemplateError) and exc.message:
        return exc.message
    return f"{type(exc).__name__}: {exc}"


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> jinja2.Template:
    return TEMPLATE_ENV.from_string(source)


@functools.lru_cache(maxsize=256)
def _expression(source: str) -> Any:
    return TEMPLATE_ENV.compile_expression(source, undefined_to_none=False)


def render(source: str, context: dict[str, Any]) -> str:
    try:
        return _compiled(source).render(context)
    except Exception as exc:
        raise TemplateError(f"template {_quoted(source)}: {_reason(exc)}") from None


def render_value(value: Any, context: dict[str, Any]) -> Any:
    """Render every string inside a JSON-like value; keys and other scalars stay as they are."""
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, dict):
        return {k: render_value(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(item, context) for item in value]
    return value


def evaluate_when(expression: str, context: dict[str, Any]) -> bool:
    """A step's ``when``. An undefined name is an error, not "false": a typo must not
    silently skip a step."""
    try:
        return bool(_expression(expression)(**context))
    except Exception as exc:
        raise TemplateError(f"when {_quoted(expression)}: {_reason(exc)}") from None
