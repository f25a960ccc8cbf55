"""The server's dialects for the gateway's endpoints: one per client wire format.

The HTTP server words its own errors (a 404, a 413, an overloaded 503, a
handler's 500) and probes a departed client inside an event stream through a
:class:`~gateway.server.dialect.Dialect` the app hands it (gateway.server
knows no LLM API). Here are the gateway's, one per wire format
(gateway.formats): the format's error body and its SSE keep-alive. Each client
route names its format's dialect (app.py); the plain endpoints (health,
metrics) speak the default format's, OpenAI's, the most widely understood; a
request that matched no route is answered in the format its path looks like
(:func:`dialect_for_path`, by each format's wire), so an SDK that mistyped a
path still reads the 404.
"""

from __future__ import annotations

import attrs

from gateway.errors import GatewayError
from gateway.formats import DEFAULT_FORMAT, FORMATS, Format, format_for_path
from gateway.server.dialect import Dialect
from gateway.server.responses import Headers, dump_json

__all__ = ["DEFAULT", "DIALECTS", "FormatDialect", "dialect_for_path"]


@attrs.frozen
class FormatDialect:
    """The dialect of the clients of one wire format."""

    format: Format

    @property
    def name(self) -> str:
        return self.format.name

    @property
    def keepalive(self) -> bytes:
        return self.format.wire.KEEPALIVE

    def error_response(self, exc: GatewayError) -> tuple[int, Headers, bytes]:
        status, body = self.format.error_response(exc)
        return status, [], dump_json(body)


DIALECTS: dict[str, FormatDialect] = {name: FormatDialect(fmt) for name, fmt in FORMATS.items()}
#: The dialect of endpoints that belong to no format (health, metrics).
DEFAULT = DIALECTS[DEFAULT_FORMAT.name]


def dialect_for_path(path: str) -> Dialect:
    """The dialect of a request no route matched: its path's format's."""
    return DIALECTS[format_for_path(path).name]
