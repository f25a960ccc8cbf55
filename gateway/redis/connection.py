"""One connection to Redis: opening it (TCP, TLS, ``AUTH``, ``SELECT``), writing, reading replies.

A connection is only ever used by one task at a time (the pool in
:mod:`gateway.redis.client` checks it out). It knows nothing of pools or timeouts: the
client puts the cancel scopes around it and closes a connection that did not finish a
round trip cleanly, so a reply is never left unread on a pooled connection.

Every failure here is a :class:`~gateway.redis.errors.RedisUnavailable` naming the server
as ``host:port`` (never the URL: it may hold the password).
"""

from __future__ import annotations

import select
import ssl

import trio

from gateway.redis.errors import RedisAuthError, RedisError, RedisUnavailable
from gateway.redis.resp import Arg, NeedData, Reply, RespParser, encode_commands
from gateway.redis.url import RedisURL

__all__ = ["READ_SIZE", "Connection", "open_connection"]

#: Bytes asked of the socket per read. Our replies are small; a big one takes a few reads.
READ_SIZE = 64 * 1024

#: Socket-level exceptions that mean "this connection is gone".
_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


class Connection:
    """A RESP connection: :meth:`send` bytes, :meth:`receive` that many replies."""

    def __init__(self, stream: trio.abc.Stream, where: str) -> None:
        self.stream = stream
        self.where = where
        self.parser = RespParser()

    async def send(self, data: bytes) -> None:
        """Write ``data`` (one or several encoded commands)."""
        try:
            await self.stream.send_all(data)
        except _BROKEN as exc:
            raise RedisUnavailable(f"Redis at {self.where}: connection lost ({_why(exc)})") from exc

    async def receive(self, count: int) -> list[Reply]:
        """Read ``count`` replies.

        Raises:
            RedisUnavailable: the connection broke or closed before they all came.
            RedisProtocolError: the server's bytes are not RESP, or too large.
        """
        replies: list[Reply] = []
        parser = self.parser
        while len(replies) < count:
            reply = parser.next_reply()
            if isinstance(reply, NeedData):
                try:
                    data = await self.stream.receive_some(READ_SIZE)
                except _BROKEN as exc:
                    raise RedisUnavailable(
                        f"Redis at {self.where}: connection lost ({_why(exc)})"
                    ) from exc
                if not data:
                    raise RedisUnavailable(f"Redis at {self.where} closed the connection")
                parser.feed(data)
            else:
                replies.append(reply)
        return replies

    async def round_trip(self, commands: list[tuple[Arg, ...]]) -> list[Reply]:
        """Write the commands in one go and read their replies, in order."""
        await self.send(encode_commands(commands))
        return await self.receive(len(commands))

    def reusable(self) -> bool:
        """True when nothing is waiting on the idle socket: no unread byte, no EOF, no error.

        Redis sends nothing unasked on a connection like ours (no pub/sub), so anything
        readable means the server closed it (restarted, ``timeout`` reached, ``CLIENT
        KILL``) or broke the protocol: a connection to drop before it fails a command.
        """
        if self.parser.buffered:
            return False
        stream = self.stream
        if isinstance(stream, trio.SSLStream):
            stream = stream.transport_stream
        if not isinstance(stream, trio.SocketStream):
            return True  # a test's in-memory stream: nothing to look at
        poller = select.poll()
        poller.register(stream.socket.fileno(), select.POLLIN | select.POLLPRI)
        try:
            return not poller.poll(0)
        except OSError:
            return False

    async def aclose(self) -> None:
        """Close at once (no goodbye: a half-used connection has nothing to say)."""
        await trio.aclose_forcefully(self.stream)


def _why(exc: BaseException) -> str:
    """A short reason from an exception, without the socket's own chatter."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, trio.BrokenResourceError) and cause is not None:
        exc = cause
    text = str(exc) or type(exc).__name__
    return text[:200]


async def open_connection(url: RedisURL, ssl_context: ssl.SSLContext | None) -> Connection:
    """Connect to ``url`` and log in: TLS for ``rediss://``, then ``AUTH`` and ``SELECT``
    (pipelined: one round trip) when the URL asks for them.

    Raises:
        RedisUnavailable: no connection (refused, unreachable, TLS handshake failed).
        RedisAuthError: the server refused the credentials, or the database number.
    """
    where = url.where
    try:
        stream: trio.abc.Stream = await trio.open_tcp_stream(url.host, url.port)
    except OSError as exc:
        raise RedisUnavailable(f"cannot connect to Redis at {where} ({_why(exc)})") from exc
    try:
        if url.tls:
            context = ssl_context or ssl.create_default_context()
            tls = trio.SSLStream(stream, context, server_hostname=url.host)
            stream = tls
            try:
                await tls.do_handshake()
            except _BROKEN as exc:
                raise RedisUnavailable(f"TLS with Redis at {where} failed ({_why(exc)})") from exc
        conn = Connection(stream, where)
        await _log_in(conn, url)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return conn


async def _log_in(conn: Connection, url: RedisURL) -> None:
    commands: list[tuple[Arg, ...]] = []
    if url.password is not None:
        user = (url.username,) if url.username else ()
        commands.append(("AUTH", *user, url.password))
    if url.db:
        commands.append(("SELECT", url.db))
    if not commands:
        return
    for command, reply in zip(commands, await conn.round_trip(commands), strict=True):
        if isinstance(reply, RedisError):
            what = "the credentials" if command[0] == "AUTH" else f"SELECT {url.db}"
            said = reply.message
            if url.password:  # no server should echo it; if one did, it stops here
                said = said.replace(url.password, "***")
            raise RedisAuthError(f"Redis at {conn.where} refused {what}: {said}")
