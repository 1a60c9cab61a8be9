"""``/v1/automations``: a tenant's automation definitions, submitted as JSON or YAML."""

from __future__ import annotations

import json
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from pymongo.errors import DuplicateKeyError

from api import bodies
from api.deps import DbDep, SecretsDep, TenantDep
from api.limits import limit_for
from api.problems import invalid
from api.schemas import AutomationList, AutomationOut
from core import db as dbm
from core.errors import Conflict, InvalidInput, NotFound
from core.inputs import check_schema
from core.models import AutomationDefinition
from core.secrets import SecretStore

router = APIRouter(prefix="/v1/automations", tags=["automations"])

YAML_TYPES = {"application/yaml", "text/yaml", "application/x-yaml", "text/x-yaml"}
# YAML can expand past what was sent: it is held to the limit the body already was
DEFINITION_BYTES, DEFINITION_LIMIT = limit_for("POST", "/v1/automations")

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "An automation definition (see DESIGN.md), as JSON or YAML.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


def _parse(raw: bytes, content_type: str) -> Any:
    media = content_type.split(";")[0].strip().lower()
    if media in YAML_TYPES:
        try:
            return bodies.load_yaml(raw, DEFINITION_BYTES)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise invalid("body", f"not valid YAML{where}") from None
        except RecursionError:
            raise invalid("body", "not valid YAML: nested too deeply") from None
        except bodies.TooLarge:
            raise HTTPException(
                413, f"{DEFINITION_LIMIT} once its YAML aliases are expanded"
            ) from None
    if media in ("", "application/json") or media.endswith("+json"):
        try:
            return bodies.loads(raw)
        except json.JSONDecodeError as exc:
            raise invalid("body", bodies.not_json(exc)) from None
        except ValueError:
            raise invalid("body", "not valid JSON: not UTF-8 text") from None
        except RecursionError:
            raise invalid("body", "not valid JSON: nested too deeply") from None
    raise HTTPException(415, f"send the definition as JSON or YAML, not {media!r}")


def definition_from(raw: bytes, content_type: str) -> AutomationDefinition:
    data = _parse(raw, content_type)
    if not isinstance(data, dict):
        raise invalid("body", "an automation definition must be a mapping")
    try:
        definition = AutomationDefinition.model_validate(data)
    except ValidationError as exc:
        found = exc.errors(include_url=False, include_input=False, include_context=False)
        for error in found:
            error["loc"] = ("body", *error["loc"])
        raise RequestValidationError(found, body=data) from None
    check_schema(definition.inputs)
    return definition


@router.post("", status_code=201, response_model=AutomationOut, openapi_extra=_BODY_DOC)
async def create_automation(
    request: Request, tenant_id: TenantDep, db: DbDep, secrets: SecretsDep
) -> AutomationOut:
    definition = definition_from(await request.body(), request.headers.get("content-type", ""))
    doc: dbm.Document = {
        "_id": dbm.new_id("aut"),
        "tenant_id": tenant_id,
        "name": definition.name,
        "definition": definition.model_dump(mode="json", by_alias=True),
        "created_at": dbm.utcnow(),
    }
    try:
        await db[dbm.AUTOMATIONS].insert_one(doc)
    except DuplicateKeyError:
        raise Conflict(f"an automation named {definition.name!r} already exists") from None
    except dbm.UNSTORABLE:
        raise InvalidInput(dbm.unstorable(doc["definition"])) from None
    return AutomationOut.of(doc, await _stored(secrets, tenant_id))


async def _stored(secrets: SecretStore, tenant_id: str) -> set[str]:
    """The tenant's credential names, to warn about automations that name others."""
    return {c.name for c in await secrets.list(tenant_id)}


@router.get("/{automation_id}", response_model=AutomationOut)
async def get_automation(
    automation_id: str, tenant_id: TenantDep, db: DbDep, secrets: SecretsDep
) -> AutomationOut:
    doc = await db[dbm.AUTOMATIONS].find_one({"_id": automation_id, "tenant_id": tenant_id})
    if doc is None:
        raise NotFound(f"automation {automation_id!r} not found")
    return AutomationOut.of(doc, await _stored(secrets, tenant_id))


@router.get("", response_model=AutomationList)
async def list_automations(
    tenant_id: TenantDep,
    db: DbDep,
    secrets: SecretsDep,
    name: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AutomationList:
    query: dbm.Document = {"tenant_id": tenant_id}
    if name is not None:
        query["name"] = name
    cursor = db[dbm.AUTOMATIONS].find(query).sort([("created_at", -1), ("_id", -1)]).limit(limit)
    stored = await _stored(secrets, tenant_id)
    return AutomationList(items=[AutomationOut.of(doc, stored) async for doc in cursor])
