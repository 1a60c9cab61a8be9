"""One log format for every castra process: the message, then the structured fields a
record carries (``extra={"tenant": ..., "investigation": ...}``) as ``key=value``.

Standard library only, so the worker runtime shares it. Never put a secret in a field.
"""

from __future__ import annotations

import logging
import sys

FIELDS = (
    "tenant",
    "investigation",
    "step",
    "worker",
    "credential",
    "status",
    "call",
    "reason",
    "address",
    "path",
    "code",
)


class FieldsFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{k}={getattr(record, k)}" for k in FIELDS if hasattr(record, k))
        return f"{line} {fields}" if fields else line


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FieldsFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO: noise, and a query string may hold an api key.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
