"""Parsing request bodies: strict JSON, bounded YAML, and the route class that makes every
JSON body route use them.

Strict means what RFC 8259 says: ``NaN`` and ``Infinity`` are not JSON (Python's parser
takes them, and they then fail far from the request). Bounded means a YAML document is
measured as it would be once its aliases are expanded, before it is built, so a few KiB of
anchors cannot become gigabytes. Nothing here logs or echoes a body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

import yaml
from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

# A JSON string, or a constant Python's parser accepts but JSON has not.
_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)', re.DOTALL)


class _NotJSON(Exception):
    pass


def _refuse(name: str) -> Any:
    raise _NotJSON(name)


def loads(raw: bytes | str) -> Any:
    """``json.loads`` without NaN/Infinity. Raises ``JSONDecodeError`` (or another
    ``ValueError`` for bytes that are not text, ``RecursionError`` when nested too deep)."""
    text = raw.decode(json.detect_encoding(raw), "surrogatepass") if isinstance(raw, bytes) else raw
    try:
        return json.loads(text, parse_constant=_refuse)
    except _NotJSON as exc:
        # The parser got this far, so the first constant outside a string is the culprit.
        found = next(m for m in _CONSTANT.finditer(text) if m.group(1))
        raise json.JSONDecodeError(f"{exc} is not a JSON value", text, found.start(1)) from None


def not_json(exc: json.JSONDecodeError) -> str:
    return f"not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class TooLarge(Exception):
    """A YAML document that expands beyond the limit it was loaded with."""


def load_yaml(raw: bytes, limit: int) -> Any:
    """``yaml.safe_load`` of a document whose expanded size (about its JSON size) is at
    most ``limit`` bytes. Raises ``yaml.YAMLError``, ``TooLarge`` or ``RecursionError``."""
    loader = yaml.SafeLoader(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}, limit) > limit:
            raise TooLarge(limit)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int], limit: int) -> int:
    """An alias is the same node object as its anchor: each node is measured once, and a
    node met again while being measured is a recursive alias, counted as too large."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = limit + 1
    if isinstance(node, yaml.ScalarNode):
        size = len(node.value) + 2
    elif isinstance(node, yaml.SequenceNode):
        size = 2 + sum(_expanded_size(item, sizes, limit) for item in node.value)
    else:
        assert isinstance(node, yaml.MappingNode)
        size = 2 + sum(
            _expanded_size(key, sizes, limit) + _expanded_size(value, sizes, limit)
            for key, value in node.value
        )
    sizes[id(node)] = size
    return size


class _StrictRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class JSONRoute(APIRoute):
    """A route whose body, if it takes one, is JSON: any other media type is a 415 (FastAPI
    would try to validate the raw bytes), and NaN/Infinity are a 422 like any bad JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def strict_handler(request: Request) -> Response:
            request = _StrictRequest(request.scope, request.receive)
            if await request.body() and not is_json(request.headers.get("content-type")):
                raise HTTPException(415, "send the body as JSON (Content-Type: application/json)")
            return await handler(request)

        return strict_handler
