"""RedisState: limits, budgets, ledger, provider slots and key rests shared through Redis.

Theory of operation:

* **One round trip per decision.** ``admit`` is one ``EVALSHA`` that checks every limit of
  the key and charges all of them or none (none for a key without limits: nothing to
  check, so no round trip, also during an outage); ``settle`` one that corrects the charge,
  releases the lease and counts the ledger; a provider slot one (``ACQUIRE``) and a
  ``ZREM``. The scripts and their clocks: gateway/state/scripts.py.
* **Keys**: ``<prefix>bucket:<key>``, ``conc:<key>``, ``use:<key>:<window>``,
  ``prov:<provider>``, ``rests`` (what each holds: gateway/state/scripts.py). Names are
  percent-encoded (``:`` too), so no name can reach into another's keys; they are
  configured names, so the key space is bounded, and every key expires (buckets when
  full again, windows an hour after they end, lease sets a minute after their last
  lease, rests with the longest one).
* **Leases expire** ``lease_s`` (600 s) after they were taken or last renewed; this
  process renews its live ones in the background (:meth:`RedisState.run`, every
  ``lease_s / 4``), so a long stream keeps its slot and the slots of a process that died
  come back on their own.
* **Cancellation.** The round trip of ``admit`` and ``acquire_provider`` is shielded (it
  is bounded by the client's command timeout): a caller cancelled meanwhile gets its
  ``Cancelled`` after the answer, and what was granted is taken back first (its lease and
  its tokens; its rpm token stays spent), so no lease is left to expire. Reports
  (``settle``, ``release_provider``, ``rest_key``) are shielded too, and never raise.
* **Outage.** Any failure to use Redis (unreachable, timed out, refusing our
  credentials, an error reply) marks the state down: logged once ("Redis unreachable at
  host:port: serving on local limits"), ``up`` False. Then ``fail_open`` serves from a
  :class:`~gateway.state.local.LocalState` (each process its own limits; tickets it
  admits are settled there) and ``fail_open = false`` raises ``StateUnavailable``
  (503). The client backs off between attempts (gateway/redis/client.py), so requests
  during an outage do not each wait for a connect timeout. The first success logs that
  Redis is back. With no traffic, :meth:`RedisState.run` pings every ``check_s``, so
  ``up`` (``/health/ready``, ``gateway_redis_up``) follows Redis on its own. What was
  counted locally during an outage stays local (it is not replayed into Redis).
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar
from urllib.parse import quote

import trio

from gateway.redis import RedisClient, RedisError, RedisUnavailable, Reply, Script
from gateway.state.local import LocalState
from gateway.state.protocol import (
    Admitted,
    Ask,
    KeyLimits,
    KeyRest,
    Refused,
    StateUnavailable,
    Ticket,
    Totals,
    Used,
)
from gateway.state.replies import LEDGER, read_admission, read_rest, read_totals
from gateway.state.rules import WindowClock, remaining, settled_use, whole_seconds
from gateway.state.scripts import ACQUIRE, ADMIT, RENEW, REST, SETTLE

__all__ = ["DEFAULT_LEASE_S", "DEFAULT_PREFIX", "RedisState"]

_log = logging.getLogger("gateway.state")
T = TypeVar("T")

DEFAULT_PREFIX = "gateway:"
DEFAULT_LEASE_S = 600.0
#: A window's hash outlives its window by this much (late settlements, a last /v1/usage).
WINDOW_GRACE_S = 3600
#: Leases renewed per ``EVALSHA`` (a script runs alone in Redis: keep each one short).
RENEW_BATCH = 1000


_NO_LIMITS = KeyLimits()


class _Down:
    """What a call to Redis gives when Redis could not be used."""


_DOWN = _Down()


@functools.lru_cache(maxsize=4096)
def _encoded(name: str) -> str:
    """A name as it goes into a Redis key: percent-encoded, ``:`` and ``/`` included."""
    return quote(name, safe="")


def _limit(value: int | None) -> int:
    """A limit as the scripts take it: -1 none, 0 (or less) nothing ever fits."""
    return -1 if value is None else max(value, 0)


def _ttl(left_s: float) -> int:
    return math.ceil(left_s) + WINDOW_GRACE_S


class RedisState:
    """The :class:`~gateway.state.protocol.State` shared by every process using one Redis.

    Args:
        client: the Redis client (its timeouts and backoff apply to every call).
        fail_open: Redis unusable: serve on local limits (True) or raise StateUnavailable.
        prefix: the start of every Redis key (several gateways can share one Redis).
        lease_s: how long a lease lives unless renewed.
        check_s: with no traffic, how often ``run`` checks that Redis answers.
        wall: wall-clock seconds (budget windows, key rests).
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        fail_open: bool = True,
        prefix: str = DEFAULT_PREFIX,
        lease_s: float = DEFAULT_LEASE_S,
        check_s: float = 2.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._fail_open = fail_open
        self._prefix = prefix
        self._lease_s = lease_s
        self._check_s = check_s
        self._windows = WindowClock(wall)
        self._local = LocalState(wall=wall)
        self._up = True
        self._last_contact = -math.inf
        self._live: dict[str, set[str]] = {}  # lease set -> this process's live leases
        self._owner = secrets.token_hex(6)  # lease ids are unique across processes
        self._ids = itertools.count(1)

    @property
    def up(self) -> bool:
        return self._up

    @property
    def where(self) -> str:
        """``host:port`` of Redis (never the password)."""
        return self._client.where

    # -- client keys --------------------------------------------------------------------------

    async def admit(self, ask: Ask) -> Admitted | Refused:
        limits, tokens = ask.limits, ask.tokens
        _, w = self._windows.now()
        if limits == _NO_LIMITS:  # nothing to check: no round trip (settle counts the ledger)
            ticket = Ticket(ask.key, limits, tokens, None, w.day, w.month, shared=self._up)
            return Admitted(ticket)
        lease = f"{self._owner}.{next(self._ids):x}" if limits.concurrency is not None else ""
        keys = (
            self._key("bucket", ask.key),
            self._key("conc", ask.key),
            self._window_key(ask.key, w.day),
            self._window_key(ask.key, w.month),
        )
        args = (
            _limit(limits.rpm),
            _limit(limits.tpm),
            _limit(limits.concurrency),
            _limit(limits.tokens_per_day),
            _limit(limits.tokens_per_month),
            tokens,
            lease,
            self._lease_s,
            w.day_left_s,
            w.month_left_s,
            _ttl(w.day_left_s),
            _ttl(w.month_left_s),
        )
        with trio.CancelScope(shield=True):
            reply = await self._script(ADMIT, keys, args)
        if isinstance(reply, _Down) or (decided := read_admission(reply)) is None:
            if not isinstance(reply, _Down):
                self._went_down(f"unexpected reply to the admission script: {reply!r:.100}")
            return self._fallback().admit_nowait(ask)
        limit, wait_ms, rpm_level, tpm_level = decided
        shown_rpm = remaining(rpm_level) if limits.rpm is not None else None
        shown_tpm = remaining(tpm_level) if limits.tpm is not None else None
        if limit is not None:
            wait = None if wait_ms < 0 else wait_ms / 1000
            return Refused(limit, whole_seconds(wait), shown_rpm, shown_tpm)
        ticket = Ticket(ask.key, limits, tokens, lease or None, w.day, w.month, shared=True)
        if lease:
            self._hold(keys[1], lease)
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                await self._settle_shared(ticket, None, count=False)
            raise
        return Admitted(ticket, shown_rpm, shown_tpm)

    async def settle(self, ticket: Ticket, used: Used | None) -> None:
        if not ticket.shared:
            self._local.settle_nowait(ticket, used)
            return
        with trio.CancelScope(shield=True):
            await self._settle_shared(ticket, used, count=True)

    async def _settle_shared(self, ticket: Ticket, used: Used | None, *, count: bool) -> None:
        conc = self._key("conc", ticket.key)
        if ticket.lease is not None:
            self._let_go(conc, ticket.lease)
        if count:
            used, delta = settled_use(ticket, used)
        else:
            used, delta = Used(), -ticket.reserved
        limits = ticket.limits
        _, w = self._windows.now()
        keys = (
            self._key("bucket", ticket.key),
            conc,
            self._window_key(ticket.key, ticket.day),
            self._window_key(ticket.key, ticket.month),
            self._window_key(ticket.key, w.day),
            self._window_key(ticket.key, w.month),
        )
        args = (
            _limit(limits.rpm),
            _limit(limits.tpm),
            delta,
            ticket.lease or "",
            int(count),
            used.tokens_in,
            used.tokens_out,
            used.cached,
            used.reasoning,
            ticket.reserved if limits.tokens_per_day is not None else 0,  # pending to take off
            ticket.reserved if limits.tokens_per_month is not None else 0,
            _ttl(w.day_left_s),
            _ttl(w.month_left_s),
        )
        await self._script(SETTLE, keys, args)  # down: dropped (the lease expires)

    async def totals(self, keys: Sequence[str]) -> dict[str, dict[str, Totals]]:
        if not keys:
            return {}
        _, w = self._windows.now()
        commands = [
            ("HMGET", self._window_key(key, window), *LEDGER)
            for key in keys
            for window in (w.day, w.month)
        ]
        replies = await self._shared(lambda: self._client.pipeline(commands))
        if isinstance(replies, _Down) or (found := read_totals(replies)) is None:
            if not isinstance(replies, _Down):
                self._went_down("unexpected reply to HMGET of the usage windows")
            return await self._fallback().totals(keys)
        return {key: {"day": found[2 * i], "month": found[2 * i + 1]} for i, key in enumerate(keys)}

    # -- providers ------------------------------------------------------------------------------

    async def acquire_provider(self, provider: str, limit: int) -> str | None:
        if limit < 1:
            raise ValueError(f"a provider's slot limit is at least 1, got {limit}")
        key = self._key("prov", provider)
        lease = f"{self._owner}.{next(self._ids):x}"
        with trio.CancelScope(shield=True):
            reply = await self._script(ACQUIRE, (key,), (limit, lease, self._lease_s))
        if isinstance(reply, _Down):
            return self._fallback().acquire_provider_nowait(provider, limit)
        if reply != 1:
            return None
        self._hold(key, lease)
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                await self.release_provider(provider, lease)
            raise
        return lease

    async def release_provider(self, provider: str, lease: str) -> None:
        key = self._key("prov", provider)
        if not self._let_go(key, lease):  # not a shared one: from the local fallback
            await self._local.release_provider(provider, lease)
            return
        with trio.CancelScope(shield=True):
            await self._shared(lambda: self._client.execute("ZREM", key, lease))

    async def rest_key(self, rest: KeyRest) -> None:
        self._local.rest_key_nowait(rest)  # what an outage falls back on
        wall = self._windows.wall()
        if rest.until <= wall:
            return
        field = f"{_encoded(rest.provider)}/{_encoded(rest.key_id)}"
        args = (field, repr(rest.until), rest.strikes, repr(wall))
        with trio.CancelScope(shield=True):
            await self._script(REST, (self._prefix + "rests",), args)

    async def key_rests(self) -> list[KeyRest]:
        reply = await self._shared(lambda: self._client.execute("HGETALL", self._prefix + "rests"))
        if isinstance(reply, _Down) or not isinstance(reply, list):
            return await self._local.key_rests()
        wall = self._windows.wall()
        rests = []
        for field, value in zip(reply[::2], reply[1::2], strict=True):
            rest = read_rest(field, value)
            if rest is not None and rest.until > wall:
                rests.append(rest)
        return rests

    # -- background -------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Renew this process's leases every ``lease_s / 4``; ping Redis when nothing else
        has for ``check_s`` (so ``up`` follows Redis without traffic). Runs until cancelled."""
        await self._ping()  # says at start-up if Redis cannot be reached
        task_status.started()
        renewed = trio.current_time()
        while True:
            await trio.sleep(self._check_s)
            now = trio.current_time()
            if self._live and now - renewed >= self._lease_s / 4:
                if await self.renew_leases():
                    renewed = now
            elif now - self._last_contact >= self._check_s:
                await self._ping()

    async def renew_leases(self) -> bool:
        """Push back the expiry of every lease this process holds; False if Redis is down."""
        batches: list[tuple[list[str], list[str | float | int]]] = [([], [self._lease_s])]
        count = 0
        for key, leases in list(self._live.items()):
            if count >= RENEW_BATCH:
                batches.append(([], [self._lease_s]))
                count = 0
            keys, args = batches[-1]
            keys.append(key)
            args += [len(leases), *leases]
            count += len(leases)
        for keys, args in batches:
            if keys and isinstance(await self._script(RENEW, keys, args), _Down):
                return False
        return True

    async def aclose(self) -> None:
        """Close the connections to Redis."""
        await self._client.aclose()

    # -- plumbing ---------------------------------------------------------------------------------

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{_encoded(name)}"

    def _window_key(self, name: str, window: str) -> str:
        return f"{self._prefix}use:{_encoded(name)}:{window}"

    def _hold(self, key: str, lease: str) -> None:
        self._live.setdefault(key, set()).add(lease)

    def _let_go(self, key: str, lease: str) -> bool:
        """Stop renewing ``lease``; whether it was a live shared lease of this process."""
        leases = self._live.get(key)
        if leases is None or lease not in leases:
            return False
        leases.discard(lease)
        if not leases:
            del self._live[key]
        return True

    def _fallback(self) -> LocalState:
        """The local state, when Redis cannot be used and ``fail_open`` allows it."""
        if not self._fail_open:
            raise StateUnavailable()  # the client is not told where Redis is
        return self._local

    async def _ping(self) -> None:
        await self._shared(lambda: self._client.execute("PING"))

    async def _script(
        self, script: Script, keys: Sequence[str], args: Sequence[str | int | float]
    ) -> Reply | _Down:
        return await self._shared(lambda: self._client.evalsha(script, keys, args))

    async def _shared(self, call: Callable[[], Awaitable[T]]) -> T | _Down:
        try:
            reply = await call()
        except RedisUnavailable as exc:
            self._went_down(str(exc))
            return _DOWN
        except RedisError as exc:
            self._went_down(f"it answered an error: {exc.message}")
            return _DOWN
        self._last_contact = trio.current_time()
        if not self._up:
            self._up = True
            _log.warning("Redis at %s is back: limits are shared again", self.where)
        return reply

    def _went_down(self, why: str) -> None:
        if not self._up:
            return
        self._up = False
        then = (
            "serving on local limits"
            if self._fail_open
            else "refusing requests (503) until it is back (fail_open = false)"
        )
        _log.warning("Redis unreachable at %s: %s (%s)", self.where, then, why)
