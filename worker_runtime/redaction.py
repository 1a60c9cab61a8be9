"""Scrub secret values out of everything a step reports (outputs, error, artifact metadata)
before it leaves the worker.

A value is replaced wherever it occurs, also in the encodings it typically shows up in:
percent-encoded (a query string, a form body), JSON-escaped (an echoed request body) and,
for a basic credential, the base64 of ``username:password`` (an echoed Authorization
header).

Values shorter than ``MIN_LENGTH`` characters are not redacted: replacing every "ab" or
"1" in a page's text would shred ordinary outputs beyond use while hiding nothing worth
hiding (such a secret is guessable anyway). They are still never logged: this module never
logs at all, and nothing in the worker logs a credential.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from core.models import BasicCredential, Credential

REDACTED = "[REDACTED]"
MIN_LENGTH = 4


def credential_secrets(credential: Credential) -> list[str]:
    """The secret values of a credential, plus derived forms a server may echo back."""
    values = credential.secret_values()
    if isinstance(credential, BasicCredential):
        pair = f"{credential.username}:{credential.password.get_secret_value()}"
        values.append(base64.b64encode(pair.encode()).decode())
    return values


def _forms(value: str) -> set[str]:
    return {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }


class Redactor:
    def __init__(self, values: Iterable[str]) -> None:
        forms: set[str] = set()
        for value in values:
            if len(value) >= MIN_LENGTH:
                forms |= _forms(value)
        # Longest first, so a value is replaced whole rather than around a shorter one.
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        return value if self._pattern is None else self._pattern.sub(REDACTED, value)

    def value(self, value: Any) -> Any:
        """Redact every string in a JSON-like value (dict keys included); a tuple comes back
        as a list, other scalars unchanged."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                (self.text(k) if isinstance(k, str) else k): self.value(v) for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value
