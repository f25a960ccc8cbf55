"""What the server asks of the application about the language of an endpoint.

The server speaks HTTP, not any LLM API; yet an error it answers itself (a
404, a 413, a malformed head, a handler's 500, an overloaded 503) must reach
the client in the shape the client's SDK reads, and the disconnect
watchdog's probe inside an event stream must be bytes that client skips. A
:class:`Dialect` is the app's answer to both, one per family of endpoints:
each :class:`~gateway.server.routes.Route` may name one; routes that name
none use the server's default dialect, and requests that matched no route
take the dialect the app's ``dialect_for_path`` picks for their path.

Without an app (a bare :class:`~gateway.server.listen.Server`, the test
fakes) the server answers in :data:`PLAIN`: a small generic JSON error and no
stream probe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import attrs

from gateway.errors import GatewayError
from gateway.server.responses import Headers, dump_json

__all__ = ["PLAIN", "Dialect", "DialectForPath", "PlainDialect"]


class Dialect(Protocol):
    """How one family of endpoints words its errors and keeps its streams alive.

    Attributes:
        name: the app's name for it (opaque to the server, which never looks at it).
        keepalive: bytes a client of an event stream skips (the watchdog's probe
            inside a stream); ``b""`` for none.
    """

    @property
    def name(self) -> str: ...

    @property
    def keepalive(self) -> bytes: ...

    def error_response(self, exc: GatewayError) -> tuple[int, Headers, bytes]:
        """``(status, headers, body)`` answering ``exc``.

        The server adds the headers HTTP itself needs (``allow``, ``retry-after``,
        ``connection: close``); ``headers`` are the dialect's own, if any.
        """
        ...


#: Picks the dialect of a request that matched no route, by its path.
DialectForPath = Callable[[str], Dialect]


@attrs.frozen
class PlainDialect:
    """The server's own dialect: ``{"error": {"type": kind, "message": ...}}``, no probe."""

    name: str = "plain"
    keepalive: bytes = b""

    def error_response(self, exc: GatewayError) -> tuple[int, Headers, bytes]:
        body = {"error": {"type": exc.kind.value, "message": exc.message}}
        return exc.status_hint, [], dump_json(body)


PLAIN = PlainDialect()
