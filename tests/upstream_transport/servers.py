"""Loopback upstreams for the transport tests: small h11 servers on 127.0.0.1, port 0.

An :class:`Upstream` runs an *app* (``async def app(ex: Exchange) -> None``) for
each request it reads and counts what the transport did to it: connections
opened, requests read, connections the client closed.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from functools import partial

import attrs
import h11
import trio

RECEIVE_BYTES = 64 * 1024


@attrs.define(eq=False)
class Recorded:
    """One request as the upstream read it."""

    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]  # names in lower case
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


@attrs.define(eq=False)
class Exchange:
    """What an app gets: the request, and ways to answer on the raw stream."""

    upstream: Upstream
    stream: trio.abc.Stream
    conn: h11.Connection
    request: Recorded
    connection_index: int
    conn_requests: int  # this request's number on its connection, from 1
    close_after: bool = False

    async def send(self, *events: h11.Event) -> None:
        await self.stream.send_all(b"".join(self.conn.send(e) or b"" for e in events))

    async def respond(
        self, status: int = 200, body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        head = h11.Response(
            status_code=status, headers=[("content-length", str(len(body))), *headers]
        )
        await self.send(head, h11.Data(data=body), h11.EndOfMessage())

    async def send_raw(self, data: bytes) -> None:
        """Bytes outside h11's control; the connection closes after the app returns."""
        self.close_after = True
        await self.stream.send_all(data)

    async def wait_client_gone(self) -> None:
        """Read until the client closes the connection (EOF or reset)."""
        await wait_eof(self.stream)
        self.upstream.note_client_gone()


App = Callable[[Exchange], Awaitable[None]]


async def wait_eof(stream: trio.abc.ReceiveStream) -> None:
    try:
        while await stream.receive_some(RECEIVE_BYTES):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


@attrs.define(eq=False)
class Upstream:
    """A loopback HTTP/1.1 server and what it saw."""

    app: App
    scheme: str = "http"
    port: int = 0
    connections: int = 0
    closed_connections: int = 0
    clients_gone: int = 0
    requests: list[Recorded] = attrs.Factory(list)
    _changed: trio.Event = attrs.Factory(trio.Event)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def note_client_gone(self) -> None:
        self.clients_gone += 1
        self._notify()

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        """Wait until `condition()` holds; checked after each change."""
        while not condition():
            await self._changed.wait()

    async def serve_connection(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        index = self.connections
        self._notify()
        conn = h11.Connection(h11.SERVER)
        served = 0
        try:
            while True:
                request = await _read_request(conn, stream)
                if request is None:
                    self.note_client_gone()
                    break
                self.requests.append(request)
                self._notify()
                served += 1
                exchange = Exchange(self, stream, conn, request, index, served)
                await self.app(exchange)
                if exchange.close_after or conn.our_state is not h11.DONE:
                    break
                if conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            self.note_client_gone()
        finally:
            self.closed_connections += 1
            self._notify()
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)


async def _read_request(conn: h11.Connection, stream: trio.abc.Stream) -> Recorded | None:
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive_some(RECEIVE_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            conn.receive_data(data)
        elif type(event) is h11.ConnectionClosed:
            return None
        elif type(event) is h11.Request:
            head = event
        elif type(event) is h11.Data:
            body += event.data
        elif type(event) is h11.EndOfMessage:
            assert head is not None
            return Recorded(head.method, head.target, list(head.headers), bytes(body))


async def start_upstream(
    nursery: trio.Nursery, app: App, *, ssl_context: ssl.SSLContext | None = None
) -> Upstream:
    """Serve `app` on 127.0.0.1 (https with `ssl_context`) until the nursery ends."""
    upstream = Upstream(app, scheme="http" if ssl_context is None else "https")
    if ssl_context is None:
        serve = partial(trio.serve_tcp, upstream.serve_connection, 0, host="127.0.0.1")
        listeners = await nursery.start(serve)
        upstream.port = listeners[0].socket.getsockname()[1]
    else:
        serve = partial(
            trio.serve_ssl_over_tcp,
            upstream.serve_connection,
            0,
            ssl_context,
            host="127.0.0.1",
            https_compatible=True,
        )
        listeners = await nursery.start(serve)
        upstream.port = listeners[0].transport_listener.socket.getsockname()[1]
    return upstream


async def ok(ex: Exchange) -> None:
    """200 with a small body."""
    await ex.respond(200, b"hello", (("content-type", "text/plain"),))


async def echo(ex: Exchange) -> None:
    """200 echoing the request body."""
    await ex.respond(200, ex.request.body)
