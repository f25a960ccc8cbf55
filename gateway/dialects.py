"""The server's dialects for the gateway's endpoints: one per client wire format.

The HTTP server words its own errors (a 404, a 413, an overloaded 503, a
handler's 500) and probes a departed client inside an event stream through a
:class:`~gateway.server.dialect.Dialect` the app hands it (gateway.server
knows no LLM API). Here are the gateway's: a wire format's error body
(gateway.errors) and SSE keep-alive (gateway.relay), per format. Each client
route names its format's dialect (app.py); the plain endpoints (health,
models, metrics) speak OpenAI's, the most widely understood; a request that
matched no route is answered in the format its path looks like
(:func:`dialect_for_path`), so an SDK that mistyped a path still reads the 404.
"""

from __future__ import annotations

import attrs

from gateway.errors import GatewayError, error_response
from gateway.relay import KEEPALIVE
from gateway.server.dialect import Dialect
from gateway.server.responses import Headers, dump_json

__all__ = ["DEFAULT", "DIALECTS", "FormatDialect", "dialect_for_path", "format_for_path"]


@attrs.frozen
class FormatDialect:
    """The dialect of the clients of one wire format (``name``: openai, anthropic, gemini)."""

    name: str
    keepalive: bytes

    def error_response(self, exc: GatewayError) -> tuple[int, Headers, bytes]:
        status, body = error_response(self.name, exc)
        return status, [], dump_json(body)


DIALECTS: dict[str, FormatDialect] = {
    fmt: FormatDialect(fmt, keepalive) for fmt, keepalive in KEEPALIVE.items()
}
#: The dialect of endpoints that belong to no format (health, models, metrics).
DEFAULT = DIALECTS["openai"]


def format_for_path(path: str) -> str:
    """The wire format to answer errors in when no route matched."""
    if path.startswith(("/v1beta/", "/v1/models/")) and ":" in path:
        return "gemini"
    if path.startswith("/v1/messages"):
        return "anthropic"
    return "openai"


def dialect_for_path(path: str) -> Dialect:
    """The dialect of a request no route matched: its path's format's."""
    return DIALECTS[format_for_path(path)]
