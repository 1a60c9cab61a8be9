"""Bad input on every tenant route and on the worker routes.

Whatever a client sends, the answer is a 4xx RFC 9457 problem naming what is wrong: never
a 500, never a trigger recorded but stuck, never a secret value in a response. One app
(lifespan and all, against the session's real Temporal and SecantusDB) serves the module.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from api import workflow as api_workflow
from core import db as dbm
from core import temporal as tc
from core.contracts import INVESTIGATION_HEADER
from core.settings import Settings
from core.tenants import create_tenant_in
from tests.integration.api.helpers import Tenant, add_worker, assert_problem, serve
from tests.integration.api.test_api_worker import StandInWorkflow
from tests.services import free_port

SECRET = "canary-5ecret-value-never-shown"
CODES = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
}
JSON = "application/json"
YAML = "application/yaml"


def assert_bad(response: httpx.Response, status: int, *mentions: str) -> dict[str, Any]:
    """A problem+json with ``status`` whose detail (or errors) names each of ``mentions``."""
    body = assert_problem(response, status, CODES[status])
    said = f"{body['detail']} {json.dumps(body.get('errors', []))}".lower()
    for word in mentions:
        assert word.lower() in said, f"{word!r} not named in {said!r}"
    assert SECRET not in response.text
    return body


def step(**changes: Any) -> dict[str, Any]:
    return {"id": "s", "kind": "http", "request": {"url": "https://x.example/"}, **changes}


def browser(*actions: Any) -> dict[str, Any]:
    return {"id": "b", "kind": "browser", "actions": list(actions)}


def definition(**changes: Any) -> dict[str, Any]:
    return {"name": f"bad-{uuid.uuid4().hex[:12]}", "steps": [step()], **changes}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# --------------------------------------------------------------------------- fixtures
# Module-scoped: one served app, two tenants, an automation and an investigation.


@pytest.fixture(scope="module")
def settings(
    tmp_path_factory: pytest.TempPathFactory, temporal_server: str, mongodb_server: str
) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("castra"),
        temporal_address=temporal_server,
        temporal_namespace="default",
        temporal_task_queue=f"test-{uuid.uuid4().hex}",  # polled only by one test's stand-in
        mongodb_uri=mongodb_server,
        mongodb_database=f"castra_test_{uuid.uuid4().hex}",
        api_port=free_port(),
        dispatch_retry_seconds=0.2,
    )


@pytest.fixture(scope="module")
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings) as client:
        yield client


@pytest.fixture(scope="module")
async def db(settings: Settings) -> AsyncIterator[dbm.Db]:
    client = dbm.mongo_client(settings)
    try:
        yield dbm.database(client, settings)
    finally:
        await client.close()


@pytest.fixture(scope="module")
async def tenant(db: dbm.Db) -> Tenant:
    return Tenant(*await create_tenant_in(db, "acme"))


@pytest.fixture(scope="module")
async def other_tenant(db: dbm.Db) -> Tenant:
    return Tenant(*await create_tenant_in(db, "globex"))


@pytest.fixture(scope="module")
async def automation_id(api: httpx.AsyncClient, tenant: Tenant) -> str:
    """An automation without an input schema: any object is a valid input."""
    response = await api.post("/v1/automations", json=definition(), headers=tenant.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def new_investigation(api: httpx.AsyncClient, tenant: Tenant, automation_id: str) -> str:
    body = {"automation_id": automation_id, "input": {}}
    response = await api.post("/v1/investigations", json=body, headers=tenant.headers)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


@pytest.fixture(scope="module")
async def investigation_id(api: httpx.AsyncClient, tenant: Tenant, automation_id: str) -> str:
    return await new_investigation(api, tenant, automation_id)


@pytest.fixture(scope="module")
async def worker_key(db: dbm.Db, tenant: Tenant, investigation_id: str) -> str:
    return (await add_worker(db, tenant, investigation_id))[1]


# --------------------------------------------------------------------------- automations

BODIES = [
    pytest.param(b'{"name": ', JSON, 422, ["JSON"], id="malformed-json"),
    pytest.param(b"", JSON, 422, ["JSON"], id="empty-json"),
    pytest.param(b"", YAML, 422, ["mapping"], id="empty-yaml"),
    pytest.param(b"[]", JSON, 422, ["mapping"], id="json-array"),
    pytest.param(b'"steps"', JSON, 422, ["mapping"], id="json-string"),
    pytest.param(b"null", JSON, 422, ["mapping"], id="json-null"),
    pytest.param(b"42", JSON, 422, ["mapping"], id="json-number"),
    pytest.param(b"- id: a\n- id: b\n", YAML, 422, ["mapping"], id="yaml-list"),
    pytest.param(b"just a string", "text/yaml", 422, ["mapping"], id="yaml-scalar"),
    pytest.param(b"name: x\nsteps: [\n", YAML, 422, ["YAML", "line"], id="invalid-yaml"),
    pytest.param(b"a: b\n\tc: d\n", YAML, 422, ["YAML"], id="yaml-tab"),
    pytest.param(
        b'!!python/object/apply:os.system ["true"]', YAML, 422, ["YAML"], id="yaml-python-tag"
    ),
    pytest.param(b"name: \xff\xfe\n", YAML, 422, ["YAML"], id="yaml-not-utf8"),
    pytest.param(b'{"name": "\xff"}', JSON, 422, ["JSON"], id="json-not-utf8"),
    pytest.param(b"name: x", "text/plain", 415, ["JSON", "YAML"], id="text-plain"),
    pytest.param(b"name=x", "application/x-www-form-urlencoded", 415, ["JSON"], id="form"),
    pytest.param(b"<a/>", "application/xml", 415, ["JSON"], id="xml"),
    pytest.param(
        f'{{"vars": {{"a": {nested(100_000)}}}}}'.encode(), JSON, 422, ["JSON"], id="deep-json"
    ),
    pytest.param(f"vars: {nested(20_000)}\n".encode(), YAML, 422, ["YAML"], id="deep-yaml"),
    pytest.param(
        b'{"name": "nan", "vars": {"x": NaN}, "steps": [{"id": "s", "kind": "http", '
        b'"request": {"url": "https://x.example/"}}]}',
        JSON,
        422,
        ["JSON"],
        id="json-nan",
    ),
]


@pytest.mark.parametrize(("content", "content_type", "status", "mentions"), BODIES)
async def test_automation_bodies_that_are_not_a_definition(
    api: httpx.AsyncClient,
    tenant: Tenant,
    content: bytes,
    content_type: str,
    status: int,
    mentions: list[str],
) -> None:
    response = await api.post(
        "/v1/automations",
        content=content,
        headers={**tenant.headers, "Content-Type": content_type},
    )
    assert_bad(response, status, *mentions)


_D = [step(id="a"), step(id="a")]
DEFINITIONS = [
    pytest.param({"steps": _D}, ["duplicate step id", "'a'"], id="duplicate-step-ids"),
    pytest.param({"steps": []}, ["steps", "at least 1"], id="empty-steps"),
    pytest.param({"steps": None}, ["steps"], id="null-steps"),
    pytest.param({"steps": {"id": "a"}}, ["steps", "list"], id="steps-not-a-list"),
    pytest.param({"steps": [step()] * 201}, ["steps", "at most 200"], id="too-many-steps"),
    pytest.param({"steps": ["a"]}, ["steps.0"], id="step-not-an-object"),
    pytest.param({"steps": [step(kind="ssh")]}, ["steps.0", "'browser'"], id="unknown-kind"),
    pytest.param(
        {"steps": [{"id": "a", "request": {"url": "u"}}]}, ["steps.0", "kind"], id="no-kind"
    ),
    pytest.param({"steps": [step(retries=3)]}, ["steps.0.retries"], id="unknown-step-field"),
    pytest.param({"stepz": []}, ["stepz"], id="unknown-top-level-field"),
    pytest.param({"steps": [browser({"hover": "#x"})]}, ["hover"], id="unknown-action"),
    pytest.param({"steps": [browser()]}, ["steps.0.actions"], id="no-actions"),
    pytest.param(
        {"steps": [browser({"goto": "{{ oops"})]}, ["steps.0.actions.0", "template"], id="goto"
    ),
    pytest.param(
        {"steps": [browser({"fill": {"selector": "#u", "value": "{% if %}"}})]},
        ["steps.0.actions.0.fill.value", "template"],
        id="fill-template",
    ),
    pytest.param(
        {"steps": [browser({"wait_for": {"selector": "#x", "timeout_seconds": 601}})]},
        ["steps.0.actions.0.wait_for.timeout_seconds"],
        id="wait-for-timeout",
    ),
    pytest.param(
        {"steps": [browser({"extract": {"name": "my-out", "selector": "#x"}})]},
        ["steps.0.actions.0.extract.name"],
        id="extract-name",
    ),
    pytest.param(
        {"steps": [step(request={"url": "https://x/{{ input.id"})]},
        ["steps.0.request.url", "template"],
        id="url-template",
    ),
    pytest.param(
        {"steps": [step(request={"url": "u", "headers": {"X": "{{ }}"}})]},
        ["steps.0.request.headers", "template"],
        id="header-template",
    ),
    pytest.param(
        {"steps": [step(request={"url": "u", "headers": {"X": 1}})]},
        ["steps.0.request.headers.X"],
        id="header-not-a-string",
    ),
    pytest.param(
        {"steps": [step(request={"url": "u", "method": "TRACE"})]},
        ["steps.0.request.method"],
        id="method",
    ),
    pytest.param(
        {"steps": [step(request={"url": "u", "expect_status": ["ok"]})]},
        ["steps.0.request.expect_status.0"],
        id="expect-status",
    ),
    pytest.param(
        {"steps": [step(when="steps.a.outputs.x ==")]}, ["steps.0.when", "expression"], id="when"
    ),
    pytest.param(
        {"steps": [step(extract={"sev": "items[?"})]}, ["steps.0.extract", "JMESPath"], id="jmes"
    ),
    pytest.param(
        {"steps": [step(extract={"1sev": "severity"})]}, ["steps.0.extract"], id="extract-key"
    ),
    pytest.param({"steps": [step(id="1abc")]}, ["steps.0.id"], id="step-id-digit"),
    pytest.param({"steps": [step(id="a-b")]}, ["steps.0.id"], id="step-id-dash"),
    pytest.param({"steps": [step(id="x" * 65)]}, ["steps.0.id"], id="step-id-too-long"),
    pytest.param({"steps": [step(id=7)]}, ["steps.0.id"], id="step-id-number"),
    pytest.param({"steps": [step(credential="../x/y")]}, ["steps.0.credential"], id="cred"),
    pytest.param({"steps": [step(timeout_seconds=0)]}, ["steps.0.timeout_seconds"], id="t0"),
    pytest.param({"timeout_seconds": -1}, ["timeout_seconds"], id="negative-timeout"),
    pytest.param({"timeout_seconds": "soon"}, ["timeout_seconds"], id="timeout-string"),
    pytest.param({"name": "Owner Lookup"}, ["name"], id="name-space-upper"),
    pytest.param({"name": ""}, ["name"], id="name-empty"),
    pytest.param({"name": "-x"}, ["name"], id="name-dash-first"),
    pytest.param({"name": "../etc/passwd"}, ["name"], id="name-traversal"),
    pytest.param({"name": "ä"}, ["name"], id="name-unicode"),
    pytest.param({"name": "x" * 101}, ["name"], id="name-too-long"),
    pytest.param({"name": "x" * 200_000}, ["name"], id="name-huge"),
    pytest.param({"name": 123}, ["name", "string"], id="name-number"),
    pytest.param({"name": None}, ["name"], id="name-null"),
    pytest.param({"description": ["x"]}, ["description"], id="description-list"),
    pytest.param({"vars": []}, ["vars"], id="vars-list"),
    pytest.param({"inputs": "object"}, ["inputs"], id="inputs-not-an-object"),
    # values MongoDB cannot store
    pytest.param({"vars": {"n": 10**30}}, ["vars.n"], id="int-beyond-64-bits"),
    pytest.param({"vars": {"a\u0000b": 1}}, ["vars"], id="nul-in-key"),
]


@pytest.mark.parametrize(("changes", "mentions"), DEFINITIONS)
async def test_invalid_automation_definitions_are_422_naming_the_field(
    api: httpx.AsyncClient, tenant: Tenant, changes: dict[str, Any], mentions: list[str]
) -> None:
    response = await api.post("/v1/automations", json=definition(**changes), headers=tenant.headers)
    assert_bad(response, 422, *mentions)


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param({"type": "nope"}, id="unknown-type"),
        pytest.param({"required": "case_id"}, id="required-not-a-list"),
        pytest.param({"$ref": "#/$defs/missing"}, id="unresolvable-ref"),
        pytest.param({"properties": {"a": {"pattern": "("}}}, id="bad-regex"),
    ],
)
async def test_an_invalid_input_schema_is_refused_when_registered(
    api: httpx.AsyncClient, tenant: Tenant, schema: dict[str, Any]
) -> None:
    """`inputs` is a JSON Schema: one that is not valid must be refused at once, not by
    every trigger that meets it."""
    created = await api.post(
        "/v1/automations", json=definition(inputs=schema), headers=tenant.headers
    )
    if created.status_code == 201:
        body = {"automation_id": created.json()["id"], "input": {"a": "x"}}
        response = await api.post("/v1/investigations", json=body, headers=tenant.headers)
        assert response.status_code != 500, f"registered, then every trigger is a 500: {schema}"
    assert_bad(created, 422, "inputs")


async def test_an_oversized_definition_is_413(api: httpx.AsyncClient, tenant: Tenant) -> None:
    big = definition(description="x" * (1024 * 1024))
    response = await api.post("/v1/automations", json=big, headers=tenant.headers)
    assert_bad(response, 413, "512 KiB")


async def test_a_yaml_alias_bomb_is_refused(api: httpx.AsyncClient, tenant: Tenant) -> None:
    """A few KiB of YAML anchors expand to a document far beyond MongoDB's 16 MiB."""
    refs = ", ".join(["*a"] * 10)
    yaml_text = (
        f"name: bomb-{uuid.uuid4().hex[:8]}\n"
        f"vars:\n"
        f"  a: &a ['{'x' * 20_000}']\n"
        f"  b: &b [{refs}]\n"
        f"  c: &c [{refs.replace('a', 'b')}]\n"
        f"  d: [{refs.replace('a', 'c')}]\n"
        "steps: [{id: s, kind: http, request: {url: 'https://x.example/'}}]\n"
    )
    response = await api.post(
        "/v1/automations", content=yaml_text, headers={**tenant.headers, "Content-Type": YAML}
    )
    assert response.status_code in (413, 422), response.text
    assert_bad(response, response.status_code)


async def test_a_json_schema_with_dollar_keywords_is_a_valid_definition(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    inputs = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {"id": {"type": "string"}},
        "type": "object",
        "properties": {"case.id": {"$ref": "#/$defs/id"}},
    }
    response = await api.post(
        "/v1/automations", json=definition(inputs=inputs), headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["definition"]["inputs"] == inputs


@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        pytest.param({"limit": 0}, ["query.limit"], id="limit-0"),
        pytest.param({"limit": 501}, ["query.limit"], id="limit-501"),
        pytest.param({"limit": "ten"}, ["query.limit"], id="limit-word"),
        pytest.param({"limit": ""}, ["query.limit"], id="limit-empty"),
    ],
)
async def test_list_automations_bad_query(
    api: httpx.AsyncClient, tenant: Tenant, params: dict[str, Any], mentions: list[str]
) -> None:
    response = await api.get("/v1/automations", params=params, headers=tenant.headers)
    assert_bad(response, 422, *mentions)


@pytest.mark.parametrize("unknown", ["aut_nope", "x" * 2000, "%2E%2E", "aut_%00", '{"$ne":1}'])
async def test_unknown_automation_is_404(
    api: httpx.AsyncClient, tenant: Tenant, unknown: str
) -> None:
    response = await api.get(f"/v1/automations/{unknown}", headers=tenant.headers)
    assert_bad(response, 404, "not found")


# --------------------------------------------------------------------------- triggers

TRIGGER_BODIES = [
    pytest.param(b'{"automation_id": ', JSON, 422, ["JSON"], id="malformed-json"),
    pytest.param(b"", JSON, 422, ["body"], id="empty-json"),
    pytest.param(b"", None, 422, ["body"], id="empty-no-content-type"),
    pytest.param(b"[]", JSON, 422, ["object"], id="array"),
    pytest.param(b'"aut_x"', JSON, 422, ["object"], id="string"),
    pytest.param(b"null", JSON, 422, ["object"], id="null"),
    pytest.param(b'{"automation_id": "\xff"}', JSON, 400, ["body"], id="not-utf8"),
    pytest.param(b'{"automation_id": "a"}', "text/plain", 415, ["JSON"], id="text-plain"),
    pytest.param(b"automation_id=a", "application/x-www-form-urlencoded", 415, [], id="form"),
    pytest.param(
        f'{{"input": {{"a": {nested(50_000)}}}}}'.encode(), JSON, 400, ["body"], id="deep"
    ),
]


@pytest.mark.parametrize(("content", "content_type", "status", "mentions"), TRIGGER_BODIES)
async def test_trigger_bodies_that_are_not_a_trigger(
    api: httpx.AsyncClient,
    tenant: Tenant,
    content: bytes,
    content_type: str | None,
    status: int,
    mentions: list[str],
) -> None:
    headers = {**tenant.headers, **({"Content-Type": content_type} if content_type else {})}
    response = await api.post("/v1/investigations", content=content, headers=headers)
    body = assert_bad(response, status, *mentions)
    if status == 422 and body.get("errors"):
        assert not str(body["errors"][0]["loc"]).isdigit(), body  # a field, not a char offset


TRIGGER_FIELDS = [
    pytest.param({"automation_id": 123}, ["automation_id", "string"], id="id-number"),
    pytest.param({"automation_id": {"$ne": None}}, ["automation_id"], id="id-operator"),
    pytest.param({"automation_id": ""}, ["automation_id"], id="id-empty"),
    pytest.param({"automation_id": "a" * 65}, ["automation_id"], id="id-too-long"),
    pytest.param({"input": []}, ["input", "dict"], id="input-list"),
    pytest.param({"input": "case 1"}, ["input"], id="input-string"),
    pytest.param({"input": 1}, ["input"], id="input-number"),
    pytest.param({"input": None}, ["input"], id="input-null"),
    pytest.param({"inputs": {}}, ["inputs"], id="unknown-field"),
    pytest.param({"input": {"n": 10**30}}, ["input"], id="int-beyond-64-bits"),
    pytest.param({"input": {"a\u0000b": 1}}, ["input"], id="nul-in-key"),
]


@pytest.mark.parametrize(("changes", "mentions"), TRIGGER_FIELDS)
async def test_trigger_fields_of_the_wrong_kind(
    api: httpx.AsyncClient,
    tenant: Tenant,
    db: dbm.Db,
    automation_id: str,
    changes: dict[str, Any],
    mentions: list[str],
) -> None:
    before = await db[dbm.INVESTIGATIONS].count_documents({"tenant_id": tenant.id})
    body = {"automation_id": automation_id, "input": {}, **changes}
    response = await api.post("/v1/investigations", json=body, headers=tenant.headers)
    assert_bad(response, 422, *mentions)
    assert await db[dbm.INVESTIGATIONS].count_documents({"tenant_id": tenant.id}) == before


async def test_trigger_with_nan_is_not_json(
    api: httpx.AsyncClient, tenant: Tenant, automation_id: str
) -> None:
    content = f'{{"automation_id": "{automation_id}", "input": {{"score": NaN}}}}'
    response = await api.post(
        "/v1/investigations", content=content, headers={**tenant.headers, "Content-Type": JSON}
    )
    assert_bad(response, 422, "JSON")


async def test_trigger_input_keys_mongodb_treats_specially_round_trip(
    api: httpx.AsyncClient, tenant: Tenant, automation_id: str
) -> None:
    data = {"$where": "1", "a.b": {"$gt": ""}, "": "empty"}
    body = {"automation_id": automation_id, "input": data}
    response = await api.post("/v1/investigations", json=body, headers=tenant.headers)
    assert response.status_code == 202, response.text
    assert response.json()["input"] == data


@pytest.mark.parametrize("size", [3 * 1024 * 1024, 17 * 1024 * 1024], ids=["3MiB", "17MiB"])
async def test_a_huge_trigger_input_is_413_not_a_stuck_trigger(
    api: httpx.AsyncClient, tenant: Tenant, db: dbm.Db, automation_id: str, size: int
) -> None:
    unstarted = {"tenant_id": tenant.id, "workflow_started": False, "status": "queued"}
    before = await db[dbm.INVESTIGATIONS].count_documents(unstarted)
    body = {"automation_id": automation_id, "input": {"blob": "x" * size}}
    response = await api.post("/v1/investigations", json=body, headers=tenant.headers)
    stuck = await db[dbm.INVESTIGATIONS].count_documents(unstarted) - before
    await db[dbm.INVESTIGATIONS].delete_many({**unstarted, "input.blob": {"$exists": True}})
    assert stuck == 0, f"{response.status_code}: recorded as queued, Temporal can never start it"
    assert_bad(response, 413, "input")


async def test_an_unstartable_trigger_does_not_hold_up_the_ones_behind_it(
    db: dbm.Db, investigation_id: str
) -> None:
    """Recorded triggers wait for the dispatcher while Temporal is away. One that Temporal
    refuses for good (its input is beyond Temporal's payload limit) must not keep the
    dispatcher from starting the ones recorded after it."""
    template = await db[dbm.INVESTIGATIONS].find_one({"_id": investigation_id})
    assert template is not None
    queued = {"status": "queued", "workflow_started": False}
    now = dbm.utcnow()
    poison = {**template, **queued, "_id": dbm.new_id("inv"), "created_at": now - timedelta(1)}
    poison["input"] = {"blob": "x" * 3 * 1024 * 1024}
    behind = {**template, **queued, "_id": dbm.new_id("inv"), "created_at": now}
    await db[dbm.INVESTIGATIONS].insert_many([poison, behind])
    try:
        started = False
        async with asyncio.timeout(5):
            while not started:
                await asyncio.sleep(0.1)
                doc = await db[dbm.INVESTIGATIONS].find_one({"_id": behind["_id"]})
                started = bool(doc and doc["workflow_started"])
    except TimeoutError:
        pass
    finally:
        await db[dbm.INVESTIGATIONS].delete_one({"_id": poison["_id"]})
    assert started, "a trigger behind an unstartable one is never started"


async def test_trigger_another_tenants_automation_is_404(
    api: httpx.AsyncClient, other_tenant: Tenant, automation_id: str
) -> None:
    body = {"automation_id": automation_id, "input": {}}
    response = await api.post("/v1/investigations", json=body, headers=other_tenant.headers)
    assert_bad(response, 404, automation_id)


async def test_an_input_schema_error_names_the_input_field(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    inputs = {"type": "object", "properties": {"host": {"type": "string", "maxLength": 5}}}
    created = await api.post(
        "/v1/automations", json=definition(inputs=inputs), headers=tenant.headers
    )
    body = {"automation_id": created.json()["id"], "input": {"host": "WS-0142-LONG"}}
    response = await api.post("/v1/investigations", json=body, headers=tenant.headers)
    assert_bad(response, 422, "host")


# --------------------------------------------------------------------------- Idempotency-Key


@pytest.mark.parametrize("key", ["k" * 256, ""], ids=["256-chars", "empty"])
async def test_idempotency_key_out_of_bounds(
    api: httpx.AsyncClient, tenant: Tenant, automation_id: str, key: str
) -> None:
    response = await api.post(
        "/v1/investigations",
        json={"automation_id": automation_id, "input": {}},
        headers={**tenant.headers, "Idempotency-Key": key},
    )
    assert_bad(response, 422, "Idempotency-Key")


async def test_idempotency_key_of_255_chars_is_fine(
    api: httpx.AsyncClient, tenant: Tenant, automation_id: str
) -> None:
    headers = {**tenant.headers, "Idempotency-Key": uuid.uuid4().hex + "k" * 223}
    body = {"automation_id": automation_id, "input": {}}
    first = await api.post("/v1/investigations", json=body, headers=headers)
    again = await api.post("/v1/investigations", json=body, headers=headers)
    assert first.status_code == again.status_code == 202, first.text
    assert first.json()["id"] == again.json()["id"]


async def test_idempotency_key_reused_with_a_different_body_is_refused(
    api: httpx.AsyncClient, tenant: Tenant, automation_id: str
) -> None:
    headers = {**tenant.headers, "Idempotency-Key": f"alert-{uuid.uuid4().hex}"}
    first = await api.post(
        "/v1/investigations",
        json={"automation_id": automation_id, "input": {"host": "WS-1"}},
        headers=headers,
    )
    assert first.status_code == 202, first.text
    other = await api.post(
        "/v1/investigations",
        json={"automation_id": automation_id, "input": {"host": "WS-2"}},
        headers=headers,
    )
    # draft-ietf-httpapi-idempotency-key-header: a key reused with another payload is 422
    assert_bad(other, 422, "Idempotency-Key")


async def test_idempotency_keys_are_per_tenant(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, automation_id: str
) -> None:
    key = f"shared-{uuid.uuid4().hex}"
    mine = await api.post(
        "/v1/investigations",
        json={"automation_id": automation_id, "input": {}},
        headers={**tenant.headers, "Idempotency-Key": key},
    )
    created = await api.post("/v1/automations", json=definition(), headers=other_tenant.headers)
    theirs = await api.post(
        "/v1/investigations",
        json={"automation_id": created.json()["id"], "input": {}},
        headers={**other_tenant.headers, "Idempotency-Key": key},
    )
    assert mine.status_code == theirs.status_code == 202, theirs.text
    assert theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["tenant_id"] == other_tenant.id


# --------------------------------------------------------------------------- investigations

LIST_QUERIES = [
    pytest.param({"limit": 0}, ["query.limit"], id="limit-0"),
    pytest.param({"limit": -1}, ["query.limit"], id="limit-negative"),
    pytest.param({"limit": 201}, ["query.limit"], id="limit-201"),
    pytest.param({"limit": "1.5"}, ["query.limit"], id="limit-float"),
    pytest.param({"limit": "all"}, ["query.limit"], id="limit-word"),
    pytest.param({"status": "QUEUED"}, ["query.status", "queued"], id="status-upper"),
    pytest.param({"status": ""}, ["query.status"], id="status-empty"),
    pytest.param({"status": "done"}, ["query.status"], id="status-unknown"),
    pytest.param({"cursor": ""}, ["query.cursor"], id="cursor-empty"),
    pytest.param({"cursor": "!!!"}, ["query.cursor"], id="cursor-not-base64"),
    pytest.param({"cursor": cursor_of({})}, ["query.cursor"], id="cursor-object"),
    pytest.param({"cursor": cursor_of("ab")}, ["query.cursor"], id="cursor-two-chars"),
    pytest.param({"cursor": cursor_of([1, 2])}, ["query.cursor"], id="cursor-numbers"),
    pytest.param(
        {"cursor": cursor_of(["2024-01-01T00:00:00", "inv_x"])},
        ["query.cursor"],
        id="cursor-naive-time",
    ),
    pytest.param(
        {"cursor": cursor_of(["2024-01-01T00:00:00+00:00", {"$gt": ""}])},
        ["query.cursor"],
        id="cursor-operator",
    ),
    pytest.param(
        {"cursor": base64.urlsafe_b64encode(b"\xff\xfe[").decode()},
        ["query.cursor"],
        id="cursor-not-utf8",
    ),
    pytest.param(
        {"cursor": base64.urlsafe_b64encode(nested(5000).encode()).decode()},
        ["query.cursor"],
        id="cursor-deep",
    ),
]


@pytest.mark.parametrize(("params", "mentions"), LIST_QUERIES)
async def test_list_investigations_bad_query(
    api: httpx.AsyncClient, tenant: Tenant, params: dict[str, Any], mentions: list[str]
) -> None:
    response = await api.get("/v1/investigations", params=params, headers=tenant.headers)
    assert_bad(response, 422, *mentions)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/investigations/inv_nope"),
        ("GET", "/v1/investigations/" + "i" * 3000),
        ("POST", "/v1/investigations/inv_nope/cancel"),
        ("GET", "/v1/investigations/inv_nope/artifacts/65f0c0ffee0000000000beef"),
    ],
    ids=["get", "get-long-id", "cancel", "artifact"],
)
async def test_unknown_investigation_is_404(
    api: httpx.AsyncClient, tenant: Tenant, method: str, path: str
) -> None:
    assert_bad(await api.request(method, path, headers=tenant.headers), 404, "not found")


@pytest.mark.parametrize(
    "artifact",
    ["nope", "zzzzzzzzzzzzzzzzzzzzzzzz", "abcdefghijkl", "65f0c0ffee0000000000beef00", "0" * 24],
)
async def test_artifact_ids_that_are_not_an_artifact_are_404(
    api: httpx.AsyncClient, tenant: Tenant, investigation_id: str, artifact: str
) -> None:
    path = f"/v1/investigations/{investigation_id}/artifacts/{artifact}"
    assert_bad(await api.get(path, headers=tenant.headers), 404, "artifact")


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled", "timed_out"])
async def test_cancel_a_finished_investigation_is_409(
    api: httpx.AsyncClient,
    tenant: Tenant,
    db: dbm.Db,
    automation_id: str,
    status: str,
) -> None:
    investigation = await new_investigation(api, tenant, automation_id)
    await db[dbm.INVESTIGATIONS].update_one(
        {"_id": investigation}, {"$set": {"status": status, "finished_at": dbm.utcnow()}}
    )
    response = await api.post(f"/v1/investigations/{investigation}/cancel", headers=tenant.headers)
    assert_bad(response, 409, status)


async def test_cancel_with_a_body_or_twice_is_harmless(
    api: httpx.AsyncClient, tenant: Tenant, automation_id: str
) -> None:
    investigation = await new_investigation(api, tenant, automation_id)
    path = f"/v1/investigations/{investigation}/cancel"
    first = await api.post(path, content=b"{not json", headers=tenant.headers)
    assert first.status_code == 202, first.text
    again = await api.post(path, headers=tenant.headers)
    assert again.status_code in (202, 409), again.text
    if again.status_code == 409:
        assert_bad(again, 409)


# --------------------------------------------------------------------------- credentials


def basic(**changes: Any) -> dict[str, Any]:
    return {"kind": "basic", "username": "analyst", "password": SECRET, **changes}


def api_key(**changes: Any) -> dict[str, Any]:
    return {"kind": "api_key", "key": SECRET, **changes}


def oauth(**changes: Any) -> dict[str, Any]:
    return {
        "kind": "oauth2_client",
        "token_url": "https://login.example/token",
        "client_id": "app",
        "client_secret": SECRET,
        **changes,
    }


def without(body: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != field}


CREDENTIAL_BODIES = [
    pytest.param(without(basic(), "password"), ["password", "required"], id="basic-no-password"),
    pytest.param(without(basic(), "username"), ["username", "required"], id="basic-no-username"),
    pytest.param(basic(username=""), ["username"], id="basic-empty-username"),
    pytest.param(basic(password=12345), ["password", "string"], id="basic-password-number"),
    pytest.param(basic(key=SECRET), ["key", "extra"], id="basic-with-api-key-field"),
    pytest.param(without(api_key(), "key"), ["key", "required"], id="api-key-no-key"),
    pytest.param(api_key(header=""), ["header", "query_param"], id="api-key-nowhere"),
    pytest.param(api_key(header=None), ["header", "query_param"], id="api-key-header-null"),
    pytest.param(api_key(prefix=1), ["prefix"], id="api-key-prefix-number"),
    pytest.param(without(oauth(), "token_url"), ["token_url"], id="oauth-no-token-url"),
    pytest.param(without(oauth(), "client_id"), ["client_id"], id="oauth-no-client-id"),
    pytest.param(without(oauth(), "client_secret"), ["client_secret"], id="oauth-no-secret"),
    pytest.param(oauth(token_url="ftp://login.example"), ["token_url"], id="oauth-ftp"),
    pytest.param(oauth(token_url="file:///etc/passwd"), ["token_url"], id="oauth-file"),
    pytest.param(oauth(scope=["a"]), ["scope"], id="oauth-scope-list"),
    pytest.param(without(basic(), "kind"), ["kind"], id="no-kind"),
    pytest.param(basic(kind="ssh"), ["kind"], id="unknown-kind"),
    pytest.param(basic(kind=1), ["kind"], id="kind-number"),
    pytest.param(basic(kind="Basic"), ["kind"], id="kind-case"),
    pytest.param(basic(allowed_hosts="portal.example"), ["allowed_hosts"], id="hosts-string"),
    pytest.param(basic(allowed_hosts=[1]), ["allowed_hosts.0"], id="hosts-number"),
    pytest.param([basic()], [], id="list"),
    pytest.param(SECRET, [], id="string"),
    pytest.param(None, [], id="null"),
]


@pytest.mark.parametrize(("body", "mentions"), CREDENTIAL_BODIES)
async def test_invalid_credential_bodies_are_422_without_the_secret(
    api: httpx.AsyncClient, tenant: Tenant, body: Any, mentions: list[str]
) -> None:
    response = await api.put("/v1/credentials/portal", json=body, headers=tenant.headers)
    assert_bad(response, 422, *mentions)  # checks the secret is not echoed too


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        pytest.param(f'{{"kind": "basic", "password": "{SECRET}"'.encode(), JSON, 422, id="bad"),
        pytest.param(b"", JSON, 422, id="empty"),
        pytest.param(f"kind: basic\npassword: {SECRET}".encode(), "text/plain", 415, id="text"),
        pytest.param(f"kind=basic&password={SECRET}".encode(), "multipart/form-data", 415, id="mp"),
    ],
)
async def test_credential_bodies_that_are_not_json(
    api: httpx.AsyncClient, tenant: Tenant, content: bytes, content_type: str, status: int
) -> None:
    response = await api.put(
        "/v1/credentials/portal",
        content=content,
        headers={**tenant.headers, "Content-Type": content_type},
    )
    assert_bad(response, status)


@pytest.mark.parametrize(
    ("name", "status"),
    [
        pytest.param("a" * 129, 422, id="too-long"),
        pytest.param("p%C3%B6rtal", 422, id="unicode"),
        pytest.param("a%00b", 422, id="nul"),
        pytest.param("%20", 422, id="space"),
        pytest.param("a;b", 422, id="semicolon"),
        pytest.param("%2E%2E", 422, id="dot-dot"),
        pytest.param("%2E", 422, id="dot"),
        pytest.param("..%2F..%2Fsecrets", 404, id="traversal-slash"),
        pytest.param("a%2Fb", 404, id="encoded-slash"),
    ],
)
@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_bad_credential_names(
    api: httpx.AsyncClient, tenant: Tenant, method: str, name: str, status: int
) -> None:
    path = f"/v1/credentials/{name}"
    if method == "DELETE":  # make sure there is something to refuse to delete
        await api.put(path, json=api_key(), headers=tenant.headers)
    try:
        response = await api.request(
            method, path, json=api_key() if method == "PUT" else None, headers=tenant.headers
        )
        assert_bad(response, status, *(["path.name"] if status == 422 else []))
    finally:
        await api.delete(path, headers=tenant.headers)


async def test_a_128_char_credential_name_is_fine_and_never_shows_its_secret(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    name = "a" * 128
    put = await api.put(f"/v1/credentials/{name}", json=oauth(), headers=tenant.headers)
    assert put.status_code == 200, put.text
    listed = await api.get("/v1/credentials", headers=tenant.headers)
    assert SECRET not in put.text + listed.text
    assert (await api.delete(f"/v1/credentials/{name}", headers=tenant.headers)).status_code == 204


async def test_a_huge_credential_value_is_refused(api: httpx.AsyncClient, tenant: Tenant) -> None:
    huge = api_key(key="k" * (17 * 1024 * 1024))
    try:
        response = await api.put("/v1/credentials/huge", json=huge, headers=tenant.headers)
    finally:
        await api.delete("/v1/credentials/huge", headers=tenant.headers)
    assert response.status_code in (413, 422), response.status_code
    assert_bad(response, response.status_code, "key")


# --------------------------------------------------------------------------- worker API

WORKER_ROUTES = [
    ("GET", "/worker/v1/investigation", None),
    ("GET", "/worker/v1/steps/next", None),
    ("POST", "/worker/v1/steps/s/result", {"status": "succeeded"}),
    ("POST", "/worker/v1/heartbeat", None),
    ("GET", "/worker/v1/credentials/portal", None),
    ("POST", "/worker/v1/artifacts?step_id=s&name=shot", None),
]
ROUTE_IDS = ["investigation", "next", "result", "heartbeat", "credential", "artifact"]


@pytest.mark.parametrize(("method", "path", "body"), WORKER_ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    ("auth", "status"),
    [
        pytest.param(None, 401, id="no-key"),
        pytest.param("Bearer", 401, id="bearer-no-key"),
        pytest.param("Basic Y3c6eA==", 401, id="basic-scheme"),
        pytest.param("Bearer cw_\u00e9garbled", 401, id="garbled"),
        pytest.param("Bearer " + "k" * 10_000, 401, id="huge-key"),
        pytest.param("tenant", 401, id="tenant-key"),
        pytest.param("other-investigation", 403, id="other-investigation"),
        pytest.param("no-header", 403, id="no-investigation-header"),
    ],
)
async def test_worker_routes_refuse_the_wrong_key(
    api: httpx.AsyncClient,
    tenant: Tenant,
    investigation_id: str,
    worker_key: str,
    method: str,
    path: str,
    body: Any,
    auth: str | None,
    status: int,
) -> None:
    headers: dict[str, str | bytes] = {INVESTIGATION_HEADER: investigation_id}
    if auth == "tenant":
        headers["Authorization"] = f"Bearer {tenant.key}"
    elif auth == "other-investigation":
        headers = {"Authorization": f"Bearer {worker_key}", INVESTIGATION_HEADER: "inv_other"}
    elif auth == "no-header":
        headers = {"Authorization": f"Bearer {worker_key}"}
    elif auth is not None:
        headers["Authorization"] = auth.encode()
    response = await api.request(method, path, json=body, headers=headers)
    assert_bad(response, status, *([INVESTIGATION_HEADER] if status == 403 else []))


RESULT_BODIES = [
    pytest.param("s", {}, ["status", "required"], id="no-status"),
    pytest.param("s", {"status": "running"}, ["status"], id="status-running"),
    pytest.param("s", {"status": "succeeded", "outputs": []}, ["outputs"], id="outputs-list"),
    pytest.param("s", {"status": "failed", "error": {"m": 1}}, ["error"], id="error-object"),
    pytest.param("s", {"status": "succeeded", "started_at": "yesterday"}, ["started_at"], id="t"),
    pytest.param("s", {"status": "succeeded", "artifacts": [1]}, ["artifacts.0"], id="artifact"),
    pytest.param("s", {"status": "succeeded", "step_id": "t"}, ["step_id"], id="step-id-field"),
    pytest.param("s", [], [], id="array"),
    pytest.param("1s", {"status": "succeeded"}, ["path.step_id"], id="step-id-digit"),
    pytest.param("a-b", {"status": "succeeded"}, ["path.step_id"], id="step-id-dash"),
    pytest.param("x" * 65, {"status": "succeeded"}, ["path.step_id"], id="step-id-long"),
]


@pytest.mark.parametrize(("step_id", "body", "mentions"), RESULT_BODIES)
async def test_worker_step_results_that_are_not_a_result(
    api: httpx.AsyncClient,
    investigation_id: str,
    worker_key: str,
    step_id: str,
    body: Any,
    mentions: list[str],
) -> None:
    headers = {"Authorization": f"Bearer {worker_key}", INVESTIGATION_HEADER: investigation_id}
    response = await api.post(f"/worker/v1/steps/{step_id}/result", json=body, headers=headers)
    assert_bad(response, 422, *mentions)


async def test_worker_step_result_malformed_json(
    api: httpx.AsyncClient, investigation_id: str, worker_key: str
) -> None:
    headers = {
        "Authorization": f"Bearer {worker_key}",
        INVESTIGATION_HEADER: investigation_id,
        "Content-Type": JSON,
    }
    response = await api.post("/worker/v1/steps/s/result", content=b"{", headers=headers)
    body = assert_bad(response, 422, "JSON")
    assert not str(body["errors"][0]["loc"]).isdigit(), body


@pytest.mark.parametrize(
    ("path", "mentions"),
    [
        pytest.param("/worker/v1/credentials/a%20b", ["path.name"], id="credential-space"),
        pytest.param("/worker/v1/credentials/" + "a" * 129, ["path.name"], id="credential-long"),
        pytest.param("/worker/v1/artifacts?name=shot", ["query.step_id"], id="no-step-id"),
        pytest.param("/worker/v1/artifacts?step_id=s", ["query.name"], id="no-name"),
        pytest.param("/worker/v1/artifacts?step_id=s&name=a%2Fb", ["query.name"], id="slash"),
        pytest.param("/worker/v1/artifacts?step_id=1&name=x", ["query.step_id"], id="bad-step"),
    ],
)
async def test_worker_bad_names(
    api: httpx.AsyncClient,
    investigation_id: str,
    worker_key: str,
    path: str,
    mentions: list[str],
) -> None:
    headers = {"Authorization": f"Bearer {worker_key}", INVESTIGATION_HEADER: investigation_id}
    method = "POST" if "artifacts" in path else "GET"
    response = await api.request(method, path, content=b"png", headers=headers)
    assert_bad(response, 422, *mentions)


async def test_a_step_result_beyond_temporal_payload_limit_is_413_and_harmless(
    api: httpx.AsyncClient,
    tenant: Tenant,
    db: dbm.Db,
    settings: Settings,
    automation_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker's result too big for a Temporal Update is refused by the API, and the
    investigation goes on (the stand-in workflow of test_api_worker answers the contract)."""
    monkeypatch.setattr(api_workflow, "UPDATE_TIMEOUT", timedelta(seconds=5))
    monkeypatch.setattr(api_workflow, "QUERY_TIMEOUT", timedelta(seconds=5))
    async with Worker(
        await tc.connect(settings),
        task_queue=settings.temporal_task_queue,
        workflows=[StandInWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        investigation = await new_investigation(api, tenant, automation_id)
        _, key = await add_worker(db, tenant, investigation)
        headers = {"Authorization": f"Bearer {key}", INVESTIGATION_HEADER: investigation}
        body = {"status": "succeeded", "outputs": {"page": "x" * 3 * 1024 * 1024}}
        response = await api.post("/worker/v1/steps/s/result", json=body, headers=headers)
        after = await api.get("/worker/v1/steps/next", headers=headers)
    assert_bad(response, 413, "outputs")
    assert after.status_code == 200, f"the investigation is wedged: {after.text}"
