"""WebSocket upgrades on the HTTP port (RFC 6455 section 4): the server's half.

Theory of operation. h11 reads an upgrade request like any other: the head, an
empty body, then it pauses (``MIGHT_SWITCH_PROTOCOL``) and keeps whatever
followed the head in ``trailing_data``. The connection loop (connection.py)
asks :func:`upgrade_refusal` first:

- a WebSocket upgrade (``GET`` with ``Connection: upgrade`` and ``Upgrade:
  websocket``) to a route marked ``websocket`` runs that route's handler with
  ``ex.upgrade``, a :class:`WebSocketUpgrade`, once the handshake headers are
  checked (``Sec-WebSocket-Version: 13``, a ``Sec-WebSocket-Key`` of 16 bytes
  in base64; else 400);
- any other request to such a route is a 426 with ``Upgrade: websocket``; an
  upgrade to a path whose routes speak plain HTTP is a 426 too (design.md,
  "Front-end endpoints"). Other upgrades (``h2c``) are ignored, as HTTP/1.1 allows.

The handler may refuse like any handler (raise a GatewayError): the refusal is
an ordinary response through h11, which then goes on with HTTP. Or it accepts:
:meth:`WebSocketUpgrade.accept` hands the connection's stream to
trio-websocket, which does the handshake itself with wsproto and so expects to
read the request first. The stream it gets (:class:`ReplayStream`) replays a
head with what wsproto needs of the one h11 already read (the target, the key,
the version; the handler has the rest), and once the 101 is out the bytes h11
kept after the head, then the socket's. wsproto answers with the 101, carrying
our standard headers
(:meth:`Exchange.switching_protocols <gateway.server.exchange.Exchange.switching_protocols>`:
the 101 is the request's response in the access line and the metrics, its
duration the session's). From then on the connection is the WebSocket's: its
reader task is the only reader of the socket (no disconnect watchdog on these
routes), and when the handler returns the connection closes, never going back
to HTTP.

Bounds: a message is at most :data:`MAX_MESSAGE_BYTES` (trio-websocket closes
the sender's side with 1009 past it); trio-websocket hands each message over a
channel of size 0, so a handler that stops reading stops the reads from the
socket (backpressure), and at most one message is held while it waits.
Shutdown: once the server drains, :meth:`WebSocketUpgrade.wait_going_away`
returns; the handler closes its session with 1001 ("going away").
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TYPE_CHECKING

import trio
import trio_websocket

from gateway.errors import BadRequest, GatewayError, MethodNotAllowed, UpgradeRequired, echo
from gateway.server.exchange import ClientGone
from gateway.server.sockets import READ_SIZE

if TYPE_CHECKING:
    from gateway.server.exchange import Exchange, Request
    from gateway.server.routes import Route

__all__ = [
    "MAX_MESSAGE_BYTES",
    "ReplayStream",
    "WebSocketUpgrade",
    "upgrade_refusal",
    "wants_websocket",
]

#: The largest WebSocket message taken from a client (or, by the relay, a provider):
#: 16 MiB, as an SSE event (gateway.sse.MAX_EVENT_BYTES); realtime audio arrives in
#: chunks well under 1 MiB.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: Messages trio-websocket queues between its reader and the handler: none. Its
#: reader waits until the handler takes a message, and stops reading meanwhile.
MESSAGE_QUEUE_SIZE = 0
#: The handshake with wsproto replays bytes in memory: it ends at once or never (a head
#: wsproto refused despite our checks; it answered 400 and closed). Bounded all the same.
HANDSHAKE_TIMEOUT_S = 5.0


def _tokens(request: Request, name: bytes) -> set[bytes]:
    """The comma-separated tokens of every ``name`` header, lower case."""
    return {
        token.strip().lower()
        for key, value in request.headers
        if key == name
        for token in value.split(b",")
    }


def wants_websocket(request: Request) -> bool:
    """``request`` asks for a WebSocket (RFC 6455 section 4.1: GET, Connection, Upgrade)."""
    return (
        request.method == "GET"
        and b"upgrade" in _tokens(request, b"connection")
        and b"websocket" in _tokens(request, b"upgrade")
    )


def upgrade_refusal(
    request: Request, route: Route | None, route_error: GatewayError | None
) -> GatewayError | None:
    """Why ``request`` cannot reach its route as it is (426 or 400), or None.

    Args:
        request: the request head.
        route: the route it matched (None: ``route_error`` says why not).
        route_error: the router's 404 or 405.
    """
    if route is not None and route.websocket:
        if not wants_websocket(request):
            return UpgradeRequired(
                f"{echo(request.path, quote=False)} is a WebSocket endpoint: connect with a "
                "WebSocket client (GET with 'Connection: Upgrade' and 'Upgrade: websocket').",
                upgrade="websocket",
            )
        return _handshake_problem(request)
    http_only = route is not None or isinstance(route_error, MethodNotAllowed)
    if http_only and wants_websocket(request):
        return UpgradeRequired(
            f"{echo(request.path, quote=False)} does not accept WebSocket connections; "
            "send it a plain HTTP request."
        )
    return None


def _handshake_problem(request: Request) -> GatewayError | None:
    """A 400 for a handshake wsproto would refuse (RFC 6455 section 4.2.1), or None."""
    if request.header(b"sec-websocket-version") != b"13":
        return BadRequest(
            "A WebSocket handshake needs 'Sec-WebSocket-Version: 13', "
            "the only version this gateway speaks."
        )
    key = request.header(b"sec-websocket-key") or b""
    try:
        nonce = base64.b64decode(key, validate=True)
    except binascii.Error:
        nonce = b""
    if len(nonce) != 16:
        return BadRequest(
            "A WebSocket handshake needs a 'Sec-WebSocket-Key' of 16 random bytes in base64."
        )
    return None


class ReplayStream(trio.abc.Stream):
    """The connection's stream as trio-websocket must see it: a request head first.

    Its reader gets ``head``, then nothing until :meth:`release` (the handshake is
    answered), then ``rest`` and what ``stream`` itself receives. wsproto starts
    its WebSocket after the 101 with none of the bytes read before it, so a frame
    that came early (with the head, or while the handler connected upstream) is
    held back here until then instead of being lost. Writes and closing go to
    ``stream``.
    """

    def __init__(self, stream: trio.abc.Stream, head: bytes, rest: bytes = b"") -> None:
        self._stream = stream
        self._head = head
        self._rest = rest
        self._released = trio.Event()

    def release(self) -> None:
        """The handshake is answered: what follows the head may be read."""
        self._released.set()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._head:
            await trio.lowlevel.checkpoint()
            self._head, data = _split(self._head, max_bytes)
            return data
        await self._released.wait()
        if self._rest:
            self._rest, data = _split(self._rest, max_bytes)
            return data
        return bytes(await self._stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._stream.aclose()


def _split(data: bytes, size: int | None) -> tuple[bytes, bytes]:
    """(what is left, the first ``size`` bytes of ``data``)."""
    size = size or len(data)
    return data[size:], data[:size]


def _replayed_head(request: Request) -> bytes:
    """What wsproto needs of the request head h11 read: target, key, version.

    The handshake was checked (:func:`upgrade_refusal`); the key is base64 and the
    target visible ASCII (h11), so nothing here can split a line.
    """
    key = request.header(b"sec-websocket-key") or b""
    return b"".join(
        (
            b"GET ",
            request.target.encode("ascii"),
            b" HTTP/1.1\r\nHost: gateway\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n",
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ",
            key,
            b"\r\n\r\n",
        )
    )


class WebSocketUpgrade:
    """``ex.upgrade`` on a WebSocket route: how its handler accepts the client.

    Args:
        stream: the connection's stream.
        trailing: the bytes h11 read after the request head (nobody reads the
            socket between dispatch and :meth:`accept`, so they stay all there is).
        exchange: the request's exchange (the 101 is its response).
        drain_started: set when the server starts draining.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        trailing: bytes,
        exchange: Exchange,
        drain_started: trio.Event,
    ) -> None:
        self._stream = stream
        self._trailing = trailing
        self._exchange = exchange
        self._drain_started = drain_started

    async def accept(
        self, nursery: trio.Nursery, *, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> trio_websocket.WebSocketConnection:
        """Send the 101 (our standard headers, then ``headers``); the client's WebSocket.

        Its reader task runs in ``nursery``; close it with ``aclose(code, reason)``.

        Raises:
            ClientGone: the client left before the 101 went out.
        """
        replay = ReplayStream(self._stream, _replayed_head(self._exchange.request), self._trailing)
        try:
            with trio.fail_after(HANDSHAKE_TIMEOUT_S):
                proposal = await trio_websocket.wrap_server_stream(
                    nursery,
                    replay,
                    message_queue_size=MESSAGE_QUEUE_SIZE,
                    max_message_size=MAX_MESSAGE_BYTES,
                    receive_buffer_size=READ_SIZE,
                )
        except trio.TooSlowError:
            # wsproto refused the replayed head despite upgrade_refusal (it answered 400
            # and closed the stream): nothing more can be said on this connection.
            raise ClientGone from None
        try:
            ws = await proposal.accept(extra_headers=self._exchange.switching_protocols(headers))
        except trio_websocket.ConnectionClosed:
            raise ClientGone from None
        replay.release()
        return ws

    async def wait_going_away(self) -> None:
        """Return once the server drains: the session should close with 1001."""
        await self._drain_started.wait()
