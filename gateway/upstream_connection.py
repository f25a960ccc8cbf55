"""One HTTP/1.1 client connection on Trio, driven by h11: the wire half of the pool.

:class:`gateway.upstream_transport.PooledTransport` keeps these per origin and
hands one to each request; this module is what one connection does with it
(RFC 9112):

- *Send* the request with an h11 client: method, target with query, headers
  as httpx built them (``content-length`` when httpx set it, chunked
  otherwise, ``Host`` when a hand-made request lacks it), then the body from
  ``request.stream``. An in-memory body goes out with the head in one write; a
  streaming body is written chunk by chunk as the caller produces it. Each
  socket write runs under the ``write`` timeout.
- *Receive*: each socket read (at most :data:`RECEIVE_BYTES`) under the
  ``read`` timeout; the head is capped (h11 caps a head still incomplete, a
  head that arrived whole is measured here); 1xx responses are skipped.
- *Cycle*: after a response read to its end, h11 starts a new cycle only if
  both sides are DONE and nothing unexpected is buffered; an idle connection
  is fit for reuse only while its socket has nothing to say (no EOF, no stray
  bytes: RFC 9112 section 9.3).
- *Close* is synchronous: the socket itself is closed (``trio.socket`` wakes
  any task blocked on it), so closing never blocks, waits for a peer, or is
  interrupted by cancellation.

Errors are httpx's own exceptions, raised ``from`` the original:
``WriteError``/``WriteTimeout`` while sending, ``ReadError``/``ReadTimeout``
while receiving, ``RemoteProtocolError`` for a server that breaks HTTP/1.1,
``LocalProtocolError`` for a request h11 refuses to send.
"""

from __future__ import annotations

import h11
import httpx
import trio

__all__ = ["CONNECTION_ERRORS", "RECEIVE_BYTES", "Connection"]

RECEIVE_BYTES = 64 * 1024
"""Most bytes asked of the socket per read, so also the largest body chunk."""

#: What a broken socket raises (turned into httpx's errors by the caller's phase).
CONNECTION_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)


class Connection:
    """One HTTP/1.1 connection: a byte stream, its socket and its h11 state."""

    __slots__ = ("h11", "idle_since", "max_head", "received", "reused", "socket", "stream")

    def __init__(
        self, stream: trio.abc.Stream, socket: trio.socket.SocketType, max_head_bytes: int
    ) -> None:
        self.stream = stream
        self.socket = socket
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_head_bytes)
        self.max_head = max_head_bytes
        self.idle_since = 0.0
        self.reused = False  # served an earlier request: may be stale
        self.received = 0  # response bytes that arrived in this cycle

    def close(self) -> None:
        """Close the socket now; never blocks, safe to call again."""
        self.socket.close()

    def is_quiet_nowait(self) -> bool:
        """Whether an idle connection has nothing to read (no EOF, no stray bytes)."""
        return not self.socket.is_readable()

    def start_next_cycle_nowait(self) -> bool:
        """Reset h11 for the next request; False if the connection must close."""
        h = self.h11
        if h.our_state is not h11.DONE or h.their_state is not h11.DONE:
            return False
        h.start_next_cycle()
        data, closed = h.trailing_data
        self.received = 0
        self.reused = True
        return not data and not closed

    async def send_request(self, request: httpx.Request, timeout: float) -> None:
        """Send the head and the body of `request` (RFC 9112, sections 3 and 6)."""
        h = self.h11
        in_memory = isinstance(request.stream, httpx.ByteStream)
        head = h11.Request(
            method=request.method,
            target=request.url.raw_path,
            headers=_request_headers(request, in_memory),
        )
        out = _send_event(h, head)
        if not in_memory:
            await self._flush(out, timeout)
        async for chunk in _async_stream(request):
            out += _send_event(h, h11.Data(data=chunk))
            if not in_memory:
                await self._flush(out, timeout)
        out += _send_event(h, h11.EndOfMessage())
        await self._flush(out, timeout)

    async def _flush(self, out: list[bytes], timeout: float) -> None:
        data = b"".join(out)
        out.clear()
        if not data:
            return
        try:
            with trio.CancelScope(deadline=trio.current_time() + timeout) as scope:
                await self.stream.send_all(data)
        except CONNECTION_ERRORS as exc:
            raise httpx.WriteError(f"Sending the request failed: {exc!r}") from exc
        if scope.cancelled_caught:
            raise httpx.WriteTimeout("Timed out sending the request.") from trio.TooSlowError()

    async def next_event(self, timeout: float) -> h11.Event:
        """Next h11 event from the server, reading the socket as needed."""
        h = self.h11
        while True:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc)) from exc
            if isinstance(event, h11.Event):
                return event
            if event is h11.PAUSED:  # only after EndOfMessage, which ends our reading
                raise httpx.RemoteProtocolError("The connection was read past its response.")
            data = await self._receive(timeout)
            if not data and not self.received:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            self.received += len(data)
            h.receive_data(data)

    async def _receive(self, timeout: float) -> bytes:
        # A bare CancelScope costs less than trio.fail_after, and this is the hot path.
        try:
            with trio.CancelScope(deadline=trio.current_time() + timeout):
                # bytes() of bytes is the same object; trio's sockets give bytes.
                return bytes(await self.stream.receive_some(RECEIVE_BYTES))
        except CONNECTION_ERRORS as exc:
            raise httpx.ReadError(f"Receiving the response failed: {exc!r}") from exc
        raise httpx.ReadTimeout("Timed out waiting for the response.") from trio.TooSlowError()

    async def receive_head(self, timeout: float) -> h11.Response:
        """Wait for the final response head, skipping 1xx responses."""
        while True:
            event = await self.next_event(timeout)
            if type(event) is h11.Response:
                # h11 caps incomplete heads only; a head that arrived whole is measured here.
                if self.received - len(self.h11.trailing_data[0]) > self.max_head:
                    raise httpx.RemoteProtocolError("The response head is too large.")
                return event
            if type(event) is not h11.InformationalResponse:  # pragma: no cover (h11 order)
                raise httpx.RemoteProtocolError(f"Unexpected event before the head: {event!r}")


def _request_headers(request: httpx.Request, in_memory: bool) -> list[tuple[bytes, bytes]]:
    """httpx's headers, plus Host and chunked framing where a hand-made request lacks them."""
    headers = request.headers.raw
    names = {name.lower() for name, _ in headers}
    if b"host" not in names:
        headers = [(b"Host", request.url.netloc), *headers]
    if not in_memory and b"content-length" not in names and b"transfer-encoding" not in names:
        headers = [*headers, (b"Transfer-Encoding", b"chunked")]
    return headers


def _send_event(h: h11.Connection, event: h11.Event) -> list[bytes]:
    try:
        return h.send_with_data_passthrough(event) or []
    except h11.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(str(exc)) from exc


def _async_stream(request: httpx.Request) -> httpx.AsyncByteStream:
    stream = request.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        raise TypeError("PooledTransport needs an async request body (httpx.AsyncClient).")
    return stream
