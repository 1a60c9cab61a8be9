"""Templates and ``when`` in the worker: rendered under the automation's strict sandbox."""

from __future__ import annotations

import pytest

from worker_runtime.templates import TemplateError, evaluate_when, render, render_value

CTX = {
    "input": {"case_id": "C-7", "tags": ["phish", "urgent"]},
    "vars": {"portal_url": "https://portal.example"},
    "steps": {"login": {"status": "succeeded", "outputs": {"owner": "ann", "count": 3}}},
}


def test_render_uses_input_vars_and_step_outputs() -> None:
    assert render("{{ vars.portal_url }}/case/{{ input.case_id }}", CTX) == (
        "https://portal.example/case/C-7"
    )
    assert render("{{ steps.login.outputs.owner | upper }}", CTX) == "ANN"
    assert render("no template here", CTX) == "no template here"


def test_render_value_renders_strings_at_any_depth_and_keeps_other_values() -> None:
    value = {
        "case": "{{ input.case_id }}",
        "nested": [{"tag": "{{ input.tags[0] }}"}, 5, None, True],
        "count": 3,
    }
    assert render_value(value, CTX) == {
        "case": "C-7",
        "nested": [{"tag": "phish"}, 5, None, True],
        "count": 3,
    }


def test_undefined_name_is_an_error_naming_the_template() -> None:
    with pytest.raises(TemplateError) as info:
        render("{{ vars.portal_url }}/{{ vars.missing }}", CTX)
    message = str(info.value)
    assert "'{{ vars.portal_url }}/{{ vars.missing }}'" in message
    assert "missing" in message


def test_undefined_top_level_name_is_an_error() -> None:
    with pytest.raises(TemplateError, match="'credential' is undefined"):
        render("{{ credential.password }}", CTX)


def test_render_value_error_names_the_inner_template() -> None:
    with pytest.raises(TemplateError, match=r"\{\{ input\.nope \}\}"):
        render_value({"a": ["{{ input.nope }}"]}, CTX)


def test_sandbox_refuses_unsafe_attribute_access() -> None:
    with pytest.raises(TemplateError):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}", CTX)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("steps.login.outputs.owner != ''", True),
        ("steps.login.outputs.owner == 'bob'", False),
        ("steps.login.outputs.count > 2 and 'urgent' in input.tags", True),
        ("steps.login.status == 'failed'", False),
        ("''", False),
    ],
)
def test_when_is_truthiness_of_the_expression(expression: str, expected: bool) -> None:
    assert evaluate_when(expression, CTX) is expected


def test_when_with_an_undefined_name_fails_instead_of_skipping() -> None:
    with pytest.raises(TemplateError, match=r"when 'steps\.lgoin\.status == \"succeeded\"'"):
        evaluate_when('steps.lgoin.status == "succeeded"', CTX)
    # even when the whole expression is just the undefined value
    with pytest.raises(TemplateError, match="when 'steps.login.outputs.nothing'"):
        evaluate_when("steps.login.outputs.nothing", CTX)


def test_when_can_test_definedness_explicitly() -> None:
    assert evaluate_when("steps.login.outputs.nothing is not defined", CTX) is True
