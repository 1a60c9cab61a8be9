"""An automation's ``inputs``, the JSON Schema (draft 2020-12) of its trigger input: checked
once when the automation is registered, applied to every trigger.

Server side only: core/models.py is shared with the worker and must not need jsonschema.
References are resolved within the schema alone, never fetched: a tenant's schema must not
make the server call out to a URL of its choosing.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import jsonschema
import jsonschema.exceptions
import referencing
import referencing.exceptions
from referencing.jsonschema import DRAFT202012, EMPTY_REGISTRY

from core.errors import InvalidInput
from core.models import AutomationDefinition

if TYPE_CHECKING:
    from referencing._core import Resolver  # what Registry.resolver_with_root returns

# What a schema can raise when checked, or while validating when it was stored before
# schemas were checked (or is a "$ref": "#" that loops without consuming input).
_SCHEMA_FAILURES = (
    jsonschema.exceptions.SchemaError,
    jsonschema.exceptions.UnknownType,
    referencing.exceptions.Unresolvable,
    re.error,
    RecursionError,
)


def _dotted(where: str, path: Any) -> str:
    return where + "".join(f".{p}" for p in path)


def check_schema(schema: dict[str, Any]) -> None:
    """Raises ``InvalidInput`` naming ``inputs`` (and where in it) unless ``schema`` is a
    valid JSON Schema whose references all resolve."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
        root = DRAFT202012.create_resource(schema)
        _check_refs(root, EMPTY_REGISTRY.resolver_with_root(root))
    except _SCHEMA_FAILURES as exc:
        raise InvalidInput(_reason(exc)) from None


def _reason(exc: Exception) -> str:
    """A one-line reason that does not quote the whole schema (as some of these do)."""
    if isinstance(exc, jsonschema.exceptions.SchemaError):
        return f"{_dotted('inputs', exc.path)}: {exc.message}"
    if isinstance(exc, referencing.exceptions.Unresolvable):
        return f"inputs: $ref {exc.ref!r} does not resolve within the schema"
    if isinstance(exc, jsonschema.exceptions.UnknownType):
        return f"inputs: unknown type {exc.type!r}"
    if isinstance(exc, RecursionError):
        return "inputs: nested too deeply, or its references loop without end"
    return f"inputs: {exc}"  # re.error: the pattern's problem and its position


def _check_refs(resource: referencing.Resource[Any], resolver: Resolver[Any]) -> None:
    # Walks subschemas only (not enum or const values), each with its own base URI.
    ref = resource.contents.get("$ref") if isinstance(resource.contents, dict) else None
    if isinstance(ref, str):
        try:
            resolver.lookup(ref)
        except referencing.exceptions.Unresolvable:
            # name the reference as written, not the part of it that failed
            raise referencing.exceptions.Unresolvable(ref=ref) from None
    for sub in resource.subresources():
        _check_refs(sub, resolver.in_subresource(sub))


def check_input(automation: AutomationDefinition, data: dict[str, Any]) -> None:
    """Raises ``InvalidInput`` naming the input field unless ``data`` fits the schema."""
    if not automation.inputs:
        return
    validator = jsonschema.Draft202012Validator(automation.inputs, registry=EMPTY_REGISTRY)
    try:
        error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    except _SCHEMA_FAILURES as exc:
        raise InvalidInput(_reason(exc)) from None
    if error is not None:
        where = "input" + "".join(f"[{p!r}]" for p in error.absolute_path)
        raise InvalidInput(f"{where}: {error.message}")
