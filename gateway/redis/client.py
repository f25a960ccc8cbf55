"""A small Redis client on Trio: a bounded pool, pipelines, Lua scripts, timeouts, backoff.

Why our own: redis-py has no Trio support (its asyncio client cannot run under Trio), and
the gateway needs little of Redis: a few commands and ``EVALSHA`` (NOTES.md, "Shared state
(Redis)").

Theory of operation:

* **Pool.** At most ``max_connections`` connections, each used by one task at a time
  (a semaphore); idle ones are kept (last used first: the warmest) and looked at before
  reuse (:meth:`Connection.reusable`: a server that restarted or closed an idle
  connection shows as a readable socket), so a restart of Redis costs no failed command.
* **One round trip per call.** :meth:`RedisClient.execute` sends one command,
  :meth:`RedisClient.pipeline` several in one write and reads their replies in order,
  :meth:`RedisClient.evalsha` runs a :class:`Script` by its SHA1 and, when Redis does not
  have it (``NOSCRIPT``: a fresh or restarted server), by ``EVAL`` of its source, which
  also caches it for the next ``EVALSHA``.
* **Timeouts.** Getting a connection (waiting for a free one, connecting, TLS, ``AUTH``,
  ``SELECT``) is bounded by ``connect_timeout_s``, the round trip by
  ``command_timeout_s``; either is a :class:`RedisUnavailable`.
* **Never reused dirty.** A connection that did not finish its round trip (broken,
  timed out, a protocol error, or the caller's task cancelled mid-command) is closed,
  never returned to the pool: a late reply would otherwise answer the next command.
* **Backoff.** After a failure (a :class:`RedisUnavailable`, not an error reply) the
  client fails fast, without touching the network, until a deadline that doubles with
  each consecutive failure (``backoff_s``: first and cap, times a jitter of 0.5-1 so
  replicas do not retry in step); then one call (the probe) tries for real while the
  others still fail fast. A success resets it. So an outage costs callers no connect
  timeouts beyond one probe per backoff step.

Error replies (``RedisError``) are raised by :meth:`execute` and :meth:`evalsha`, and
returned in place by :meth:`pipeline`. ``NOAUTH``/``WRONGPASS`` (the URL's credentials are
missing or wrong) are :class:`RedisAuthError`, an unavailability.
"""

from __future__ import annotations

import hashlib
import random
import ssl
from collections.abc import Sequence

import attrs
import trio

from gateway.redis.connection import Connection, open_connection
from gateway.redis.errors import RedisAuthError, RedisError, RedisUnavailable
from gateway.redis.resp import Arg, Reply, encode_commands
from gateway.redis.url import RedisURL, parse_redis_url

__all__ = ["RedisClient", "Script"]

_AUTH_CODES = frozenset({"NOAUTH", "WRONGPASS"})


@attrs.frozen
class Script:
    """A Lua script, known to Redis by the SHA1 of its source."""

    source: str
    sha: str = attrs.field(
        init=False,
        default=attrs.Factory(
            lambda self: hashlib.sha1(self.source.encode("utf-8")).hexdigest(), takes_self=True
        ),
    )


class RedisClient:
    """A pool of connections to one Redis server (see the module docstring).

    Args:
        url: ``redis://`` / ``rediss://`` URL, or one parsed.
        max_connections: connections open at once (callers beyond wait, within
            ``connect_timeout_s``).
        connect_timeout_s: bound on getting a connection (free one, connect, TLS, log in).
        command_timeout_s: bound on one round trip.
        ssl_context: for ``rediss://`` (default: the system's CAs, host name checked).
        backoff_s: (first, cap) seconds of fast failing after consecutive failures.
    """

    def __init__(
        self,
        url: RedisURL | str,
        *,
        max_connections: int = 16,
        connect_timeout_s: float = 1.0,
        command_timeout_s: float = 1.0,
        ssl_context: ssl.SSLContext | None = None,
        backoff_s: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        self.url = parse_redis_url(url) if isinstance(url, str) else url
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._slots = trio.Semaphore(max_connections)
        self._idle: list[Connection] = []
        self._connect_timeout = connect_timeout_s
        self._command_timeout = command_timeout_s
        self._ssl_context = ssl_context
        self._backoff = backoff_s
        self._random = random.Random()
        self._failures = 0
        self._retry_at = 0.0
        self._probing = False
        self._closed = False
        self.last_error: str | None = None

    @property
    def where(self) -> str:
        """``host:port``: how messages name the server (never with the password)."""
        return self.url.where

    @property
    def available(self) -> bool:
        """False from a failure until the next success."""
        return self._failures == 0

    # -- commands ---------------------------------------------------------------------------

    async def execute(self, *args: Arg) -> Reply:
        """One command; its reply.

        Raises:
            RedisError: Redis answered with an error.
            RedisUnavailable: no answer (see the module docstring).
        """
        (reply,) = await self._round_trip([args])
        if isinstance(reply, RedisError):
            raise reply
        return reply

    async def pipeline(self, commands: Sequence[tuple[Arg, ...]]) -> list[Reply]:
        """Several commands in one write; their replies in order, error replies in place.

        Raises:
            RedisUnavailable: no answer (no command may be assumed done or not done).
        """
        if not commands:
            return []
        return await self._round_trip(list(commands))

    async def evalsha(
        self, script: Script, keys: Sequence[Arg] = (), args: Sequence[Arg] = ()
    ) -> Reply:
        """Run ``script`` (``EVALSHA``; ``EVAL`` of its source when Redis lacks it).

        Raises:
            RedisError: the script failed, or Redis refused it.
            RedisUnavailable: no answer.
        """
        tail = (len(keys), *keys, *args)
        (reply,) = await self._round_trip([("EVALSHA", script.sha, *tail)])
        if isinstance(reply, RedisError) and reply.code == "NOSCRIPT":
            (reply,) = await self._round_trip([("EVAL", script.source, *tail)])
        if isinstance(reply, RedisError):
            raise reply
        return reply

    async def aclose(self) -> None:
        """Close every idle connection; later calls raise :class:`RedisUnavailable`."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.aclose()

    # -- the round trip -----------------------------------------------------------------------

    async def _round_trip(self, commands: list[tuple[Arg, ...]]) -> list[Reply]:
        data = encode_commands(commands)  # a bad argument fails here, before any I/O
        if self._closed:
            raise RedisUnavailable(f"the client of Redis at {self.where} is closed")
        probe = self._gate()
        try:
            replies = await self._on_a_connection(data, len(commands))
            for reply in replies:
                if isinstance(reply, RedisError) and reply.code in _AUTH_CODES:
                    raise RedisAuthError(
                        f"Redis at {self.where} refused us ({reply.message}): "
                        "check the user and password of state.redis_url"
                    )
        except RedisUnavailable as exc:
            self._failed(str(exc))
            raise
        finally:
            if probe:
                self._probing = False
        self._failures = 0
        return replies

    def _gate(self) -> bool:
        """Fail fast while backing off; True when this call is the probe that ends it."""
        if not self._failures:
            return False
        now = trio.current_time()
        if self._probing or now < self._retry_at:
            wait = max(0.0, self._retry_at - now)
            raise RedisUnavailable(f"{self.last_error} (next attempt in {wait:.1f} s)")
        self._probing = True
        return True

    def _failed(self, why: str) -> None:
        self._failures += 1
        first, cap = self._backoff
        delay = min(cap, first * 2 ** min(self._failures - 1, 30))
        self._retry_at = trio.current_time() + delay * (0.5 + self._random.random() / 2)
        self.last_error = why

    async def _on_a_connection(self, data: bytes, count: int) -> list[Reply]:
        conn = await self._checkout()
        try:
            # A bare CancelScope, not fail_after: this is every command's path, and the
            # context-manager wrapper costs a few microseconds more.
            scope = trio.CancelScope(deadline=trio.current_time() + self._command_timeout)
            try:
                with scope:
                    await conn.send(data)
                    replies = await conn.receive(count)
            except BaseException:  # only to close the connection: re-raised
                await conn.aclose()  # whatever was in flight must never answer another call
                raise
            if scope.cancelled_caught:
                await conn.aclose()
                raise RedisUnavailable(
                    f"Redis at {self.where} did not answer within {self._command_timeout:g} s"
                )
            if self._closed:
                await conn.aclose()
            else:
                self._idle.append(conn)
            return replies
        finally:
            self._slots.release()

    async def _checkout(self) -> Connection:
        """A connection to use alone (the caller releases its slot)."""
        try:
            self._slots.acquire_nowait()  # the usual case: no scope, no wait
        except trio.WouldBlock:
            with trio.move_on_after(self._connect_timeout) as waited:
                await self._slots.acquire()
            if waited.cancelled_caught:
                raise RedisUnavailable(
                    f"no free connection to Redis at {self.where} "
                    f"within {self._connect_timeout:g} s"
                ) from None
        try:
            while self._idle:
                conn = self._idle.pop()
                if conn.reusable():
                    return conn
                await conn.aclose()
            try:
                with trio.fail_after(self._connect_timeout):
                    return await open_connection(self.url, self._ssl_context)
            except trio.TooSlowError:
                raise RedisUnavailable(
                    f"no connection to Redis at {self.where} within {self._connect_timeout:g} s"
                ) from None
        except BaseException:  # only to give the slot back: re-raised
            self._slots.release()
            raise
