"""Automation and credential models: what authors may write, and what is refused with a
message that names the place."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from core.models import AutomationDefinition, Credential


def _automation(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "a", "steps": list(steps), **extra}


HTTP = {"id": "s", "kind": "http", "request": {"url": "https://x/{{ input.id }}"}}


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as exc:
        AutomationDefinition.model_validate(data)
    return str(exc.value)


def test_design_example_is_valid() -> None:
    definition = AutomationDefinition.model_validate(
        _automation(
            {
                "id": "login",
                "kind": "browser",
                "credential": "portal",
                "actions": [
                    {"goto": "{{ vars.portal_url }}/login"},
                    {"fill": {"selector": "#username", "value": "{{ credential.username }}"}},
                    {"click": "button[type=submit]"},
                    {"wait_for": "#dashboard"},
                    {"wait_for": {"selector": "#x", "timeout_seconds": 5}},
                    {"extract": {"name": "owner", "selector": "#owner"}},
                    {"screenshot": {"name": "dashboard"}},
                ],
            },
            {
                **HTTP,
                "id": "case",
                "when": "steps.login.outputs.owner != ''",
                "extract": {"severity": "severity"},
            },
            vars={"portal_url": "https://portal.example"},
        )
    )
    assert [s.id for s in definition.steps] == ["login", "case"]
    assert definition.step("case").kind == "http"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (_automation(HTTP, HTTP), "duplicate step id 's'"),
        (_automation(), "steps"),
        (_automation({**HTTP, "request": {"url": "{{ oops"}}), "invalid template"),
        (_automation({**HTTP, "when": "a ==="}), "invalid expression"),
        (_automation({**HTTP, "extract": {"x": "a[?"}}), "invalid JMESPath"),
        (_automation({**HTTP, "id": "has space"}), "string_pattern_mismatch"),
        (_automation({**HTTP, "request": {"url": "u", "json": {}, "body": "b"}}), "not both"),
        (_automation({"id": "b", "kind": "browser", "actions": [{"hover": "#x"}]}), "actions.0"),
        (_automation({"id": "b", "kind": "ftp"}), "kind"),
        ({"name": "Bad Name", "steps": [HTTP]}, "name"),
    ],
)
def test_invalid_automations_are_refused(data: dict[str, Any], needle: str) -> None:
    assert needle in _error(data)


CREDENTIAL = TypeAdapter[Credential](Credential)


def test_secret_values_are_masked_but_revealable() -> None:
    cred = CREDENTIAL.validate_python({"kind": "basic", "username": "u", "password": "hunter22"})
    assert "hunter22" not in repr(cred) and "hunter22" not in cred.model_dump_json()
    assert cred.reveal()["password"] == "hunter22"
    assert cred.secret_values() == ["hunter22"]


def test_api_key_defaults_and_query_param() -> None:
    header = CREDENTIAL.validate_python({"kind": "api_key", "key": "k" * 8})
    assert header.reveal()["header"] == "Authorization" and header.reveal()["prefix"] == "Bearer "
    query = CREDENTIAL.validate_python({"kind": "api_key", "key": "k" * 8, "query_param": "token"})
    assert query.reveal()["header"] is None
    with pytest.raises(ValidationError, match="header or a query_param"):
        CREDENTIAL.validate_python({"kind": "api_key", "key": "k", "header": ""})
    with pytest.raises(ValidationError, match="token_url"):
        CREDENTIAL.validate_python(
            {
                "kind": "oauth2_client",
                "token_url": "ftp://x",
                "client_id": "c",
                "client_secret": "s",
            }
        )
