"""The one module of scripts/ that imports the gateway's internals.

The benchmarks measure the gateway's own code paths (the convert benchmark in process,
the echo server around the real ``main()``, the transport benchmark's pooled client), so
they need its internal names. Those names move as the package is reorganised: this module
is the one place to fix, and its small functions are the gateway's API as the benchmarks
use it.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

import gateway.app as app_module
from gateway.__main__ import main as gateway_main
from gateway.call import Call
from gateway.convert.memo import Memo
from gateway.formats import convert_request, convert_response
from gateway.frontends import parse_json_object
from gateway.proxy.adapters import make_adapter
from gateway.routing import Target
from gateway.server.routes import Route
from gateway.transformers.parse import parse_transformer
from gateway.upstream_transport import PooledTransport

__all__ = [
    "Memo",
    "PooledTransport",
    "Route",
    "adapter",
    "app_module",
    "call",
    "gateway_main",
    "in_format",
    "response_in_format",
    "target",
]

#: The operation of a chat request in each client format.
OPS = {"openai": "chat", "anthropic": "messages", "gemini": "generate"}


def target(fmt: str, model: str) -> Target:
    """A provider of format ``fmt`` (never called: an unroutable base URL), as routed."""
    spec = {"format": fmt, "base_url": "http://127.0.0.1:9/v1", "models": {"*": "*"}}
    t = parse_transformer(json.dumps(spec).encode(), f"{fmt}.json", {})
    return Target(t, "up-model", t.models["*"], model)


def call(fmt: str, raw: bytes, model: str, *, stream: bool = False, sized: bool = False) -> Call:
    """What the front end makes of a client body ``raw`` (json.loads included); Gemini
    names its model and stream in the URL, so there they are ``model`` and ``stream``.
    ``sized``: with the body's size, as the proxy passes it (the memo weighs by it)."""
    body = parse_json_object(raw)
    if fmt != "gemini":
        model, stream = body["model"], bool(body.get("stream"))
    made = Call(fmt, OPS[fmt], model, stream, body)
    return attrs.evolve(made, size=len(raw)) if sized else made


def adapter(made: Call, to: Target, memo: Memo | None = None) -> Any:
    """The proxy's adapter: ``.body`` to send, ``.response(answer)``, ``.relay()``."""
    return make_adapter(made, to, memo)


def in_format(body: dict[str, Any], fmt: str) -> dict[str, Any]:
    """An Anthropic request body in ``fmt``, by the gateway's converters."""
    if fmt == "anthropic":
        return body
    return convert_request(body, "anthropic", fmt, upstream_model=body["model"])[0]


def response_in_format(body: dict[str, Any], fmt: str) -> dict[str, Any]:
    """An Anthropic answer in ``fmt``, by the gateway's converters."""
    if fmt == "anthropic":
        return body
    return convert_response(body, "anthropic", fmt, model=body["model"])
