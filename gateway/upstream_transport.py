"""A lean HTTP/1.1 keep-alive connection pool for httpx on Trio, built on h11.

Theory of operation
-------------------
httpx's default transport (httpcore) checks every idle connection of the pool
on each request, which costs more than the request itself at the rates a
gateway forwards. :class:`PooledTransport` plugs into httpx's
``AsyncBaseTransport`` seam instead: callers keep httpx's API (``AsyncClient``,
streaming responses, timeouts, exceptions) and only the connection handling
changes.

One request, step by step (steps 3 and 4 are one connection's work, in
:mod:`gateway.upstream_connection`; this module is the pool around it):

1. *Checkout.* Idle connections are kept per origin ``(scheme, host, port)``
   in a deque, most recently used last, and handed out LIFO so that a few hot
   connections serve the traffic and the rest age out. Expiry is lazy: a
   checkout first closes the connections idle for longer than
   ``idle_expiry_s`` at the old end, then pops from the new end, and discards
   a connection whose socket is readable: an idle HTTP/1.1 connection has
   nothing to say, so readable means the server closed it (EOF) or sent bytes
   no request asked for (RFC 9112, section 9.3). No background task is needed.
2. *Connect* when nothing is idle: ``trio.open_tcp_stream``, then for https a
   ``trio.SSLStream`` (SNI, certificate verification and ALPN ``http/1.1``
   from the SSL context) and its handshake, under the ``connect`` timeout.
3. *Send* the request with an h11 client: method, target with query, headers
   as httpx built them (``content-length`` when httpx set it, chunked
   otherwise), then the body from ``request.stream``. An in-memory body goes
   out with the head in one write; a streaming body is written chunk by chunk
   as the caller produces it. Each socket write runs under the ``write``
   timeout.
4. *Receive the head* (each socket read under the ``read`` timeout, the head
   capped at :data:`MAX_RESPONSE_HEAD_BYTES`; 1xx responses are skipped) and
   return an ``httpx.Response`` at once: its body is a :class:`_ResponseStream`
   that reads from the socket only when iterated, one h11 ``Data`` event per
   chunk, never the whole body.
5. *Release.* Closing the response returns the connection to the pool only if
   the body was read to its end and h11 can start a new cycle (both sides
   DONE, nothing unexpected buffered, the pool has room and is open).
   Anything else (a body not read to the end, an error, ``trio.Cancelled``)
   closes the socket.

Closing is synchronous: :meth:`~gateway.upstream_connection.Connection.close`
closes the socket itself (``trio.socket`` wakes any task blocked on it), so
closing cannot block, wait for a peer, or be interrupted by cancellation; a
TLS connection is closed without a ``close_notify`` (HTTP framing, not TLS,
marks the end of a message, RFC 9112 section 9.8). That is what lets a client
that hangs up mid-stream close the upstream socket at once.

Retry (RFC 9112, section 9.3.1): a server may close an idle keep-alive
connection just as we reuse it. If a *reused* connection fails while sending
or before any response byte arrived, promptly (within
:data:`STALE_RETRY_WINDOW_S`), and the body can be sent again (it is in
memory), the request is sent once more on a fresh connection. It is never
retried after a response byte arrived, after a timeout, after a long wait (the
server may have acted on it), or when the failed connection was fresh. Other
retries are the caller's policy.

Errors reach the caller as httpx's own exceptions, raised ``from`` the
original: ``ConnectError``/``ConnectTimeout`` while connecting,
``WriteError``/``WriteTimeout`` while sending, ``ReadError``/``ReadTimeout``
while receiving, ``RemoteProtocolError`` for a server that breaks HTTP/1.1,
and ``LocalProtocolError`` for a request h11 refuses to send. ``trio.Cancelled``
passes through unchanged.

Limits and non-goals: no HTTP/2, no proxying (see
:func:`environment_proxy_mounts`), no cap on connections in use (the
``pool`` timeout is never needed because a request never waits for a
connection; the gateway's own concurrency limits bound them), and the whole
request body is sent before the response is read.
"""

from __future__ import annotations

import collections
import math
import ssl
from typing import TYPE_CHECKING

import h11
import httpx
import trio

# httpx builds its environment proxy map with this function; reusing it keeps
# environment_proxy_mounts() identical to what httpx does without a transport.
from httpx._utils import get_environment_proxies

from gateway.upstream_connection import CONNECTION_ERRORS, Connection

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "MAX_RESPONSE_HEAD_BYTES",
    "STALE_RETRY_WINDOW_S",
    "PooledTransport",
    "environment_proxy_mounts",
]

MAX_RESPONSE_HEAD_BYTES = 64 * 1024
"""Cap on a response's status line and headers. Providers send a few KiB; a
head larger than this is a broken or hostile upstream (httpx.RemoteProtocolError)."""

STALE_RETRY_WINDOW_S = 1.0
"""A reused connection that fails within this long of being taken, before any
response byte, is retried once. A server that closed the idle connection just
as we reused it answers with EOF or a reset within one round trip; a later
failure more likely means it took the request and died working on it, and
sending that again could run (and bill) an LLM generation twice."""

_Origin = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}
_RETRYABLE = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


class _ResponseStream(httpx.AsyncByteStream):
    """The body of one response, read from the socket as the caller iterates."""

    def __init__(
        self, transport: PooledTransport, origin: _Origin, conn: Connection, timeout: float
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._conn: Connection | None = conn
        self._timeout = timeout
        self._complete = False

    def __aiter__(self) -> _ResponseStream:
        return self

    async def __anext__(self) -> bytes:
        conn = self._conn
        if self._complete:
            raise StopAsyncIteration
        if conn is None:  # closed, or failed earlier: never pass a cut body off as whole
            raise httpx.StreamClosed()
        try:
            event = await conn.next_event(self._timeout)
        except BaseException:
            self._conn = None
            conn.close()
            raise
        if type(event) is h11.Data:
            return bytes(event.data)
        self._complete = True  # h11 sends only Data, then EndOfMessage
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Pool the connection if the body was read to its end, else close it."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._transport._release_nowait(self._origin, conn, complete=self._complete)


class PooledTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive pool for ``httpx.AsyncClient`` on Trio (see module docstring).

    Args:
        ssl_context: Context for https origins; default ``ssl.create_default_context()``.
            Its ALPN protocols are set to ``["http/1.1"]`` (as httpcore does).
        max_idle_per_origin: Idle connections kept per origin; more are closed.
        idle_expiry_s: Idle connections older than this are closed, not reused.
        max_response_head_bytes: Cap on a response head; larger heads raise
            ``httpx.RemoteProtocolError``.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_idle_per_origin: int = 64,
        idle_expiry_s: float = 30.0,
        max_response_head_bytes: int = MAX_RESPONSE_HEAD_BYTES,
    ) -> None:
        if ssl_context is None:
            ssl_context = ssl.create_default_context()
        ssl_context.set_alpn_protocols(["http/1.1"])
        self._ssl_context = ssl_context
        self._max_idle = max_idle_per_origin
        self._idle_expiry_s = idle_expiry_s
        self._max_head = max_response_head_bytes
        self._idle: dict[_Origin, collections.deque[Connection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on a pooled or new connection; return once the head arrived.

        Raises:
            httpx.TransportError: the subclass that names the failure (module docstring).
            RuntimeError: the transport was closed.
        """
        if self._closed:
            raise RuntimeError("PooledTransport is closed.")
        timeouts = _Timeouts.from_request(request)
        origin = _origin(request.url)
        conn = self._checkout_nowait(origin)
        if conn is not None:
            taken = trio.current_time()
            try:
                return await self._exchange(origin, conn, request, timeouts)
            except _RETRYABLE:
                if not _lost_keep_alive_race(conn, request, taken):
                    raise
        conn = await self._connect(origin, timeouts.connect)
        return await self._exchange(origin, conn, request, timeouts)

    async def aclose(self) -> None:
        """Close every idle connection; responses still open close their own."""
        self._closed = True
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    async def _exchange(
        self, origin: _Origin, conn: Connection, request: httpx.Request, timeouts: _Timeouts
    ) -> httpx.Response:
        try:
            await conn.send_request(request, timeouts.write)
            head = await conn.receive_head(timeouts.read)
        except BaseException:
            conn.close()
            raise
        stream = _ResponseStream(self, origin, conn, timeouts.read)
        return httpx.Response(
            head.status_code,
            headers=head.headers.raw_items(),
            stream=stream,
            extensions={"http_version": b"HTTP/" + head.http_version, "reason_phrase": head.reason},
        )

    async def _connect(self, origin: _Origin, timeout: float) -> Connection:
        scheme, host, port = origin
        try:
            with trio.fail_after(timeout):
                tcp = await trio.open_tcp_stream(host, port)
                try:
                    stream = await self._start_tls(tcp, host) if scheme == "https" else tcp
                except BaseException:
                    tcp.socket.close()
                    raise
        except trio.TooSlowError as exc:
            raise httpx.ConnectTimeout(f"Timed out connecting to {host}:{port}.") from exc
        except CONNECTION_ERRORS as exc:
            raise httpx.ConnectError(f"Connecting to {host}:{port} failed: {exc!r}") from exc
        return Connection(stream, tcp.socket, self._max_head)

    async def _start_tls(
        self, tcp: trio.SocketStream, host: str
    ) -> trio.SSLStream[trio.SocketStream]:
        stream = trio.SSLStream(tcp, self._ssl_context, server_hostname=host, https_compatible=True)
        await stream.do_handshake()
        protocol = stream.selected_alpn_protocol()
        if protocol not in (None, "http/1.1"):
            raise httpx.ConnectError(f"{host} chose ALPN {protocol!r}, not http/1.1.")
        return stream

    def _checkout_nowait(self, origin: _Origin) -> Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        # Released connections are appended, so idle_since grows from left to right.
        expired_before = trio.current_time() - self._idle_expiry_s
        while idle and idle[0].idle_since <= expired_before:
            idle.popleft().close()
        while idle:
            conn = idle.pop()
            if conn.is_quiet_nowait():
                return conn
            conn.close()
        return None

    def _release_nowait(self, origin: _Origin, conn: Connection, *, complete: bool) -> None:
        if not complete or self._closed or not conn.start_next_cycle_nowait():
            conn.close()
            return
        idle = self._idle.setdefault(origin, collections.deque())
        if len(idle) >= self._max_idle:
            conn.close()
            return
        conn.idle_since = trio.current_time()
        idle.append(conn)


class _Timeouts:
    """httpx's ``timeout`` extension as seconds, ``math.inf`` where unset."""

    __slots__ = ("connect", "read", "write")

    def __init__(self, connect: float, read: float, write: float) -> None:
        self.connect = connect
        self.read = read
        self.write = write

    @classmethod
    def from_request(cls, request: httpx.Request) -> _Timeouts:
        given: Mapping[str, float | None] = request.extensions.get("timeout", {})

        def seconds(key: str) -> float:
            value = given.get(key)
            return math.inf if value is None else value

        return cls(seconds("connect"), seconds("read"), seconds("write"))


def _lost_keep_alive_race(conn: Connection, request: httpx.Request, taken: float) -> bool:
    """Whether a reused connection failed as one the server had just closed (RFC 9112, 9.3.1)."""
    return (
        not conn.received
        and isinstance(request.stream, httpx.ByteStream)  # the body can be sent again
        and trio.current_time() - taken < STALE_RETRY_WINDOW_S
    )


def _origin(url: httpx.URL) -> _Origin:
    scheme = url.scheme
    if scheme not in _DEFAULT_PORTS:
        raise httpx.UnsupportedProtocol(f"PooledTransport cannot send {scheme!r} URLs.")
    host = url.raw_host.decode("ascii")
    return scheme, host, url.port or _DEFAULT_PORTS[scheme]


def environment_proxy_mounts(
    *, ssl_context: ssl.SSLContext | None = None
) -> dict[str, httpx.AsyncBaseTransport | None]:
    """httpx ``mounts`` for the proxies that HTTP(S)_PROXY/ALL_PROXY/NO_PROXY name.

    ``httpx.AsyncClient`` ignores the proxy environment as soon as a ``transport=``
    is given (``allow_env_proxies = trust_env and transport is None``). Pass
    ``mounts=environment_proxy_mounts()`` next to ``transport=PooledTransport()``
    to get httpx's environment behaviour back: proxied URLs go through httpx's
    own proxy transports, ``NO_PROXY`` hosts (mounted as ``None``) and every
    other URL through the given transport.

    Args:
        ssl_context: Context for https through the proxies (default: httpx's).

    Returns:
        A mapping from URL pattern to a proxy transport, or ``None`` for "no proxy".
    """
    verify: ssl.SSLContext | bool = True if ssl_context is None else ssl_context
    return {
        pattern: None
        if url is None
        else httpx.AsyncHTTPTransport(proxy=httpx.Proxy(url), verify=verify)
        for pattern, url in get_environment_proxies().items()
    }
