"""What a handler sees of one request, how it answers, and the record left behind.

A :class:`Request` is read whole (head and body) before its handler runs. The
handler answers through its :class:`Exchange`: once with :meth:`Exchange.respond`,
or :meth:`Exchange.start` then :meth:`Exchange.send` any number of times (the
connection ends the chunked body after the handler returns). The exchange
writes through the connection it belongs to (a :class:`Wire`: h11 encoding,
one ``send_all``), which raises :class:`ClientGone` when the client left: a
departed client, never a handler bug. A handler of a WebSocket route finds in
``ex.upgrade`` the way to accept the client's WebSocket instead
(:class:`Upgrade`, gateway.server.websocket): the 101 it sends is the response.

When the request is over the connection makes its :class:`HttpRecord`: the
HTTP facts (method, path, status, bytes, durations, whether the client left)
that the access line is written from (gateway.logs) and the server's observer
gets (the app's metrics). What the server does not know, the app keeps in the
exchange's ``facts`` slot: an object of its own (the LLM facts of a proxied
call: gateway.record), handed on untouched in the record's ``facts``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import h11
import trio

from gateway.server.jsonscan import DEFAULT_MAX_JSON_DEPTH
from gateway.server.responses import JSON, REASONS, Headers, dump_json, standard_headers

if sys.version_info < (3, 11):  # pragma: no cover - exercised on 3.10 only
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from attrs import AttrsInstance
    from trio_websocket import WebSocketConnection

    from gateway.server.cors import CorsPolicy
    from gateway.server.dialect import Dialect

__all__ = [
    "ClientGone",
    "Exchange",
    "HttpRecord",
    "Request",
    "Upgrade",
    "Wire",
    "only_client_gone",
]


class ClientGone(Exception):
    """The client closed its side while we were still answering."""


_GONE_ERRORS = (ClientGone, trio.BrokenResourceError, trio.ClosedResourceError, trio.Cancelled)


def only_client_gone(group: BaseExceptionGroup[BaseException]) -> bool:
    """True when every leaf of ``group`` is a departed client (or a cancellation it caused)."""
    rest = group.split(_GONE_ERRORS)[1]
    return rest is None and group.subgroup(ClientGone) is not None


class Request:
    """What a handler sees of one request. The body is read whole before dispatch."""

    __slots__ = (
        "body",
        "client",
        "headers",
        "max_json_depth",
        "method",
        "params",
        "path",
        "query",
        "request_id",
        "started",
        "target",
    )

    def __init__(
        self,
        *,
        method: str,
        target: str,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        request_id: str,
        client: str,
        started: float,
    ) -> None:
        self.method = method
        self.target = target
        path, _, query = target.partition("?")
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.request_id = request_id
        self.client = client
        self.started = started
        self.params: dict[str, Any] = {}
        self.max_json_depth = DEFAULT_MAX_JSON_DEPTH

    @classmethod
    def placeholder(cls, started: float, client: str, request_id: str) -> Request:
        """The request of an error answered before a request head was read."""
        return cls(
            method="-",
            target="-",
            headers=[],
            body=b"",
            request_id=request_id,
            client=client,
            started=started,
        )

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Wire(Protocol):
    """What an :class:`Exchange` needs of its connection."""

    @property
    def draining(self) -> bool:
        """The server is shutting down: responses carry ``connection: close``."""
        ...

    async def send_events(self, *events: h11.Event) -> None:
        """h11-encode ``events`` and write them; raises :class:`ClientGone` if it cannot."""
        ...


class Upgrade(Protocol):
    """How a WebSocket route's handler takes over its client (gateway.server.websocket)."""

    async def accept(
        self, nursery: trio.Nursery, *, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> WebSocketConnection:
        """Send the 101 (our standard headers, then ``headers``); the client's WebSocket.

        Its reader task runs in ``nursery``. Raises :class:`ClientGone` if the client left.
        """
        ...

    async def wait_going_away(self) -> None:
        """Return once the server drains: the session should close with 1001."""
        ...


class Exchange:
    """One request and its response, as a handler drives it.

    ``upstream_wait_s`` is time spent waiting on providers; it is left out of
    ``x-gateway-overhead-ms``. ``dialect`` words the errors of this request
    (the route's, see gateway.server.dialect). ``facts`` is the app's own record
    of the request, an attrs instance (None until the app puts one there; the
    server only hands it on, and the access line shows its fields). ``cors``
    adds its headers to the response head (gateway.server.cors; None: CORS is
    off). ``response_body`` is the body of a whole response (a reference, for
    the audit log's ``log_bodies``; a stream's is not kept). ``upgrade``
    is set on WebSocket routes only: the handler accepts through it.
    """

    __slots__ = (
        "_wire",
        "bytes_sent",
        "client_gone",
        "content_type",
        "cors",
        "dialect",
        "extra_headers",
        "facts",
        "finished",
        "head_only",
        "head_s",
        "overhead_at_head_s",
        "request",
        "response_body",
        "status",
        "upgrade",
        "upstream_wait_s",
    )

    def __init__(
        self, wire: Wire, request: Request, dialect: Dialect, cors: CorsPolicy | None = None
    ) -> None:
        self._wire = wire
        self.request = request
        self.dialect = dialect
        self.cors = cors
        self.response_body = b""
        self.status: int | None = None
        self.bytes_sent = 0
        self.upstream_wait_s = 0.0
        self.head_s = 0.0  # seconds from the request's start to our response head
        self.overhead_at_head_s = 0.0  # what x-gateway-overhead-ms said
        self.facts: AttrsInstance | None = None
        #: Headers the handler wants on whatever response goes out (errors included).
        self.extra_headers: list[tuple[bytes, bytes]] = []
        self.client_gone = False  # the client left before the handler was done
        self.head_only = request.method == "HEAD"  # answer with the GET's head, no body
        self.content_type = b""
        self.finished = False  # the whole response went out
        self.upgrade: Upgrade | None = None  # a WebSocket route's way to accept

    @property
    def started(self) -> bool:
        """True once the status line went out."""
        return self.status is not None

    def _standard_headers(self) -> Headers:
        """Our headers of a response head going out now (its head time and overhead)."""
        if self.status is not None:
            raise RuntimeError("this exchange already sent its response head")
        now = time.perf_counter()
        self.head_s = now - self.request.started
        self.overhead_at_head_s = max(self.head_s - self.upstream_wait_s, 0.0)
        return standard_headers(self.request.request_id, self.overhead_at_head_s)

    def switching_protocols(self, headers: Sequence[tuple[bytes, bytes]]) -> Headers:
        """The headers of the 101 a WebSocket accept sends (ours, then ``headers``).

        The 101 is this exchange's response: its status, head time and overhead.
        """
        all_headers = self._standard_headers()
        all_headers.extend(headers)
        self.status = 101
        return all_headers

    def _head(
        self, status: int, headers: Headers | None, content_type: bytes, length: int | None
    ) -> h11.Response:
        all_headers = self._standard_headers()
        if content_type:  # none on a 204
            all_headers.append((b"content-type", content_type))
        self.content_type = content_type
        if length is not None and status != 204:  # RFC 9110 section 8.6: never on a 204
            all_headers.append((b"content-length", b"%d" % length))
        if self.cors is not None:
            all_headers.extend(self.cors.response_headers(self.request.header(b"origin")))
        if headers:
            all_headers.extend(headers)
        if self.extra_headers:
            all_headers.extend(self.extra_headers)
        if self._wire.draining:
            all_headers.append((b"connection", b"close"))
        response = h11.Response(
            status_code=status, headers=all_headers, reason=REASONS.get(status, b"")
        )
        self.status = status
        return response

    async def respond(
        self,
        status: int,
        body: bytes,
        *,
        content_type: bytes = JSON,
        headers: Headers | None = None,
    ) -> None:
        """Send a whole response with a ``content-length``."""
        head = self._head(status, headers, content_type, len(body))
        self.response_body = body
        if self.head_only:
            await self._wire.send_events(head, h11.EndOfMessage())
        else:
            self.bytes_sent += len(body)
            await self._wire.send_events(head, h11.Data(data=body), h11.EndOfMessage())
        self.finished = True

    async def respond_json(self, status: int, obj: Any, *, headers: Headers | None = None) -> None:
        await self.respond(status, dump_json(obj), headers=headers)

    async def start(
        self, status: int, *, content_type: bytes, headers: Headers | None = None
    ) -> None:
        """Send the head of a streamed (chunked) response."""
        await self._wire.send_events(self._head(status, headers, content_type, None))

    async def send(self, data: bytes) -> None:
        """Send one piece of a streamed body; waits while the client reads slowly."""
        if data and not self.head_only:
            self.bytes_sent += len(data)
            await self._wire.send_events(h11.Data(data=data))


@attrs.frozen
class HttpRecord:
    """The HTTP facts of one finished request: the access line's and the observer's.

    Attributes:
        request_id: the request's id (``x-request-id``).
        method: as sent (``-`` when the head could not be read).
        target: path and query as sent (``-`` likewise); the access line redacts it.
        client: the peer's ``host:port``.
        status: the status sent, None when no response went out (logged and
            counted as 499).
        bytes_sent: body bytes written.
        duration_s: from the request's first byte to the end of its response.
        head_s: from the request's first byte to our response head (None: none sent).
        overhead_s: the figure ``x-gateway-overhead-ms`` gave (None: no head sent).
        finished: the whole response went out.
        client_gone: the client left before the handler was done.
        facts: the app's own record of the request (:attr:`Exchange.facts`).
        request_body: the request's body as read (b"" when none was read), and
        response_body: a whole response's body (b"" for a stream): references
            kept for the audit log's ``log_bodies``, never shown elsewhere.
    """

    request_id: str
    method: str
    target: str
    client: str
    status: int | None
    bytes_sent: int
    duration_s: float
    head_s: float | None = None
    overhead_s: float | None = None
    finished: bool = False
    client_gone: bool = False
    facts: AttrsInstance | None = None
    request_body: bytes = attrs.field(default=b"", repr=False)
    response_body: bytes = attrs.field(default=b"", repr=False)

    @classmethod
    def of(cls, request: Request, exchange: Exchange | None) -> HttpRecord:
        """The record of ``request`` answered (or not) through ``exchange``, made now."""
        duration_s = time.perf_counter() - request.started
        rid, method, target, client = (
            request.request_id,
            request.method,
            request.target,
            request.client,
        )
        if exchange is None:
            return cls(rid, method, target, client, None, 0, duration_s, request_body=request.body)
        responded = exchange.status is not None
        return cls(
            rid,
            method,
            target,
            client,
            exchange.status,
            exchange.bytes_sent,
            duration_s,
            exchange.head_s if responded else None,
            exchange.overhead_at_head_s if responded else None,
            exchange.finished,
            exchange.client_gone,
            exchange.facts,
            request.body,
            exchange.response_body,
        )
