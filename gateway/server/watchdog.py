"""The disconnect watchdog: the only reader of the socket while a handler runs.

Theory of operation (trio-websocket's ``_reader_task``, hypercorn's
always-on reader): routes that wait on providers run with a watchdog task
that reads the client's socket. A reset or a failed read means the client
left, and the connection cancels the handler's scope. Other bytes are
pipelined requests: they are fed to h11 and stay buffered there (up to
``max_header_bytes``; past that the watchdog stops reading).

End of file is not departure by itself: a client may half-close
(``shutdown(SHUT_WR)``) after its request and still read the answer. A
client that closed for good answers anything we send with a reset, so at EOF
the watchdog sends one probe the client skips: an interim ``100 Continue``
before the response head (HTTP/1.1 clients must accept and skip a 1xx, RFC
9110 section 15.2; httpx, curl, urllib3, Node and Go do), the dialect's SSE
keep-alive inside a stream (gateway.server.dialect). Then it polls the
socket: a reset or a failed send means gone, EOF again means half-closed and
still reading. HTTP/1.0 clients may not get a 1xx: for them EOF means gone.
Real clients (curl, the SDKs) close for good when they give up, so
cancellation stays prompt: one round trip.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import h11
import trio

from gateway.server.exchange import ClientGone
from gateway.server.sockets import READ_SIZE, reset_pending, socket_of

if TYPE_CHECKING:
    from gateway.server.exchange import Exchange

__all__ = ["ClientWatch"]

#: After a client's EOF, how often the watchdog looks for a reset (doubling to the max).
#: The reset comes one round trip after the probe: starting at 1 ms keeps cancellation
#: prompt on a LAN or loopback (a client that left is seen within a few ms, as it was
#: when EOF alone meant gone) and costs a half-closed client ~10 wake-ups in all.
HALF_CLOSE_POLL_S = 0.001
HALF_CLOSE_POLL_MAX_S = 1.0
SSE = b"text/event-stream"


class ClientWatch:
    """Watches one connection's client while its handlers run.

    Args:
        conn: the connection's h11 state (pipelined bytes and EOF are fed to it).
        stream: the client's stream.
        max_buffered: stop reading once this many pipelined bytes wait in h11.
        send_probe: writes the probe event its argument returns (asked for at the
            moment of writing), unless the handler is writing; raises
            :class:`ClientGone` when the write fails.
    """

    __slots__ = ("_conn", "_max_buffered", "_send_probe", "_stream")

    def __init__(
        self,
        conn: h11.Connection,
        stream: trio.abc.Stream,
        max_buffered: int,
        send_probe: Callable[[Callable[[], h11.Event | None]], Awaitable[None]],
    ) -> None:
        self._conn = conn
        self._stream = stream
        self._max_buffered = max_buffered
        self._send_probe = send_probe

    async def wait_gone(self, exchange: Exchange) -> bool:
        """Read until the client is gone (True); the caller cancels this when the handler ends."""
        conn = self._conn
        while True:
            if len(conn.trailing_data[0]) > self._max_buffered:
                await trio.sleep_forever()  # enough pipelined bytes held; stop reading
            try:
                data = await self._stream.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return True
            if not data:
                if await self._half_closed_or_gone(exchange):
                    return True
                await trio.sleep_forever()  # half-closed: the handler's sends will tell
            conn.receive_data(bytes(data))

    async def _half_closed_or_gone(self, exchange: Exchange) -> bool:
        self._conn.receive_data(b"")  # h11 learns of the EOF: no request can follow
        if self._conn.their_http_version == b"1.0":
            return True
        probe = self.probe_event(exchange)
        if probe is not None:
            try:
                await self._send_probe(lambda: self.probe_event(exchange))
            except ClientGone:
                return True
        sock = socket_of(self._stream)
        if sock is None:
            return probe is None  # no socket to watch: only the probe could tell
        poll_s = HALF_CLOSE_POLL_S
        while True:
            await trio.sleep(poll_s)
            poll_s = min(poll_s * 2, HALF_CLOSE_POLL_MAX_S)
            if reset_pending(sock):
                return True

    def probe_event(self, exchange: Exchange) -> h11.Event | None:
        """Bytes the client will skip: a 1xx before the head, an SSE keep-alive in a stream."""
        state = self._conn.our_state
        if not exchange.started and state is h11.SEND_RESPONSE:
            return h11.InformationalResponse(status_code=100, headers=[])
        keepalive = exchange.dialect.keepalive
        sse = exchange.content_type == SSE and not exchange.head_only
        if sse and keepalive and state is h11.SEND_BODY:
            return h11.Data(data=keepalive)
        return None  # a whole response is going out: its own send tells
