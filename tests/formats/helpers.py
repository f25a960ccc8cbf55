"""Small fakes for the format tests: a client request and an exchange holding one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from gateway.server.jsonscan import DEFAULT_MAX_JSON_DEPTH
from gateway.transformers.model import Transformer


@attrs.define
class FakeRequest:
    """What front ends and header rules read of a client request."""

    body: bytes = b""
    path: str = "/"
    query: str = ""
    params: Mapping[str, Any] = attrs.field(factory=dict)
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH
    headers: list[tuple[bytes, bytes]] = attrs.field(factory=list)
    request_id: str = "req-1"

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@attrs.define
class FakeExchange:
    request: FakeRequest


def transformer(fmt: str, **kw: Any) -> Transformer:
    return Transformer(name="prov", format=fmt, base_url="https://up.example/v1", **kw)
