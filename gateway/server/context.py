"""What a connection reads of the server it belongs to.

One :class:`ServerContext` per :class:`~gateway.server.listen.Server`, shared
by its connections: the settings, the endpoints, the dialects that word the
server's own errors (gateway.server.dialect), the observer of finished
requests, the memory admission, the connection slots, the CORS policy, and
whether the server drains. The connection module needs nothing else of the server, so it does
not import the listening side (which imports it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
import trio

from gateway.server.preflight import preflight_route

if TYPE_CHECKING:
    from gateway.config import ServerConfig
    from gateway.errors import GatewayError
    from gateway.server.admission import Admission
    from gateway.server.cors import CorsPolicy
    from gateway.server.dialect import Dialect, DialectForPath
    from gateway.server.exchange import HttpRecord, Request
    from gateway.server.routes import Route, Router
    from gateway.server.slots import ConnectionSlots

__all__ = ["Observer", "ServerContext"]

#: Called with the record of each finished request, after its access line.
Observer = Callable[["HttpRecord"], None]


@attrs.define(eq=False)
class ServerContext:
    """The server as its connections see it.

    Attributes:
        settings: ``config.server``.
        router: the endpoints.
        dialect: of routes that name none.
        dialect_for_path: of requests that matched no route.
        observer: gets each finished request's record (None: nobody).
        admission: the memory the requests in flight hold (gateway.server.admission).
        slots: the connection cap and the idle connections (gateway.server.slots).
        cors: the CORS policy (gateway.server.cors; None: no CORS headers, no preflights).
        draining: the server is shutting down: finish the response, then close.
        drain_started: set when ``draining`` turns true (:meth:`start_draining`):
            what a WebSocket session waits on to close with 1001 (websocket.py).
    """

    settings: ServerConfig
    router: Router
    dialect: Dialect
    dialect_for_path: DialectForPath
    observer: Observer | None
    admission: Admission
    slots: ConnectionSlots
    cors: CorsPolicy | None = None
    draining: bool = False
    drain_started: trio.Event = attrs.field(factory=trio.Event)

    def start_draining(self) -> None:
        """The listeners closed: connections finish what they do, then close."""
        self.draining = True
        self.drain_started.set()

    def preflight_route(self, request: Request, error: GatewayError) -> Route | None:
        """The route answering ``request`` when it is a CORS preflight (``error``: the
        router's refusal of its ``OPTIONS``); None otherwise, and always with CORS off."""
        if self.cors is None:
            return None
        return preflight_route(self.cors, request, error, self.dialect_for_path)
