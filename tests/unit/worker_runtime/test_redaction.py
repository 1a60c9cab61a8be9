"""Secret values never leave the worker in a step's outputs or error."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

from pydantic import TypeAdapter

from core.models import Credential
from worker_runtime.redaction import REDACTED, Redactor, credential_secrets

CREDENTIAL = TypeAdapter[Credential](Credential)


def test_replaces_every_occurrence_in_nested_values_keys_included() -> None:
    r = Redactor(["s3cr3t-token"])
    value = {
        "a": "token=s3cr3t-token; again s3cr3t-token",
        "list": ["x", {"deep": "Bearer s3cr3t-token"}, 42, None],
        "s3cr3t-token": "as a key",
        "tuple": ("s3cr3t-token",),
    }
    assert r.value(value) == {
        "a": f"token={REDACTED}; again {REDACTED}",
        "list": ["x", {"deep": f"Bearer {REDACTED}"}, 42, None],
        REDACTED: "as a key",
        "tuple": [REDACTED],
    }


def test_url_encoded_and_json_escaped_forms_are_redacted() -> None:
    secret = 'p@ss w/rd&"x"=1'
    r = Redactor([secret])
    for form in (quote(secret, safe=""), quote_plus(secret), quote(secret), json.dumps(secret)):
        out = r.text(f"before {form} after")
        assert "p@ss" not in out and "w/rd" not in out and "rd%26" not in out, out
        assert REDACTED in out


def test_basic_credential_also_redacts_the_base64_of_username_and_password() -> None:
    cred = CREDENTIAL.validate_python(
        {"kind": "basic", "username": "analyst", "password": "correct horse"}
    )
    header = "Basic " + base64.b64encode(b"analyst:correct horse").decode()
    r = Redactor(credential_secrets(cred))
    echoed = f"you sent Authorization: {header} with password correct horse"
    out = r.text(echoed)
    assert out == f"you sent Authorization: Basic {REDACTED} with password {REDACTED}"
    # the username alone is not a secret
    assert r.text("analyst") == "analyst"


def test_secrets_of_every_credential_kind() -> None:
    api = CREDENTIAL.validate_python({"kind": "api_key", "key": "k-123456", "header": "X-Key"})
    oauth = CREDENTIAL.validate_python(
        {
            "kind": "oauth2_client",
            "token_url": "https://idp.example/token",
            "client_id": "cid",
            "client_secret": "client-secret-9",
        }
    )
    assert credential_secrets(api) == ["k-123456"]
    assert credential_secrets(oauth) == ["client-secret-9"]


def test_values_shorter_than_four_characters_are_left_alone() -> None:
    # Redacting "abc" would shred ordinary text; such a value is not redacted (and the worker
    # never logs it either).
    r = Redactor(["abc", "", "xyzw"])
    assert r.text("abcdef xyzw") == f"abcdef {REDACTED}"
    assert not Redactor(["abc"])
    assert Redactor(["abc"]).value({"k": "abc"}) == {"k": "abc"}


def test_longer_secret_wins_over_one_it_contains() -> None:
    r = Redactor(["secret", "secret-and-more"])
    assert r.text("x secret-and-more y") == f"x {REDACTED} y"


def test_regex_metacharacters_in_secrets_are_literal() -> None:
    r = Redactor(["a.b*c+"])
    assert r.text("axbbc a.b*c+") == f"axbbc {REDACTED}"


def test_non_string_scalars_pass_through() -> None:
    r = Redactor(["1234"])
    # numbers are not rewritten into strings: only strings carry secrets here
    assert r.value({"n": 1234, "f": 1.5, "b": False}) == {"n": 1234, "f": 1.5, "b": False}
