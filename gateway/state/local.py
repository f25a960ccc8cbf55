"""LocalState: limits, budgets, ledger, provider slots and key rests of this process alone.

The state of a gateway without ``[state] redis_url``, and what a ``RedisState`` serves
from while Redis is unreachable (``fail_open``). Every call is O(1) (but
:meth:`LocalState.key_rests`, O(resting keys)) and never waits: nothing here awaits, so a
call cannot be cancelled halfway (an admission is granted whole or not at all).

Memory is bounded by what the configuration names: per client key two buckets, its
live leases and its current day and month (a new window replaces the old one: nothing
older is kept); per provider its live slots; per provider key one rest, dropped once over.
Buckets use a monotonic clock, windows and rests the wall clock; both can be injected
(tests step them).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence

import attrs
import trio

from gateway.state.protocol import (
    Admitted,
    Ask,
    KeyRest,
    LimitName,
    Refused,
    Ticket,
    Totals,
    Used,
)
from gateway.state.rules import (
    WindowClock,
    Windows,
    bucket_level,
    bucket_wait,
    budget_wait,
    cost_of,
    remaining,
    settled_use,
    whole_seconds,
    worst_refusal,
)

__all__ = ["LocalState"]


@attrs.define
class _Bucket:
    tokens: float
    at: float  # the clock when ``tokens`` was right


@attrs.define
class _Window:
    """One key's use in one window: the ledger, and the estimates admitted and not yet
    settled (``pending``); a budget's use is ``tokens_in + tokens_out + pending``."""

    name: str
    pending: int = 0
    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cached: int = 0
    reasoning: int = 0

    def totals(self) -> Totals:
        return Totals(self.requests, self.tokens_in, self.tokens_out, self.cached, self.reasoning)

    @property
    def spent(self) -> int:
        return self.tokens_in + self.tokens_out + self.pending

    def count(self, used: Used) -> None:
        self.requests += 1
        self.tokens_in += used.tokens_in
        self.tokens_out += used.tokens_out
        self.cached += used.cached
        self.reasoning += used.reasoning


@attrs.define
class _Key:
    """Everything kept for one client key."""

    rpm: _Bucket | None = None
    tpm: _Bucket | None = None
    leases: set[str] = attrs.Factory(set)
    day: _Window = attrs.Factory(lambda: _Window(""))
    month: _Window = attrs.Factory(lambda: _Window(""))

    def window(self, kind: str, name: str) -> _Window:
        """The key's window of ``kind`` named ``name``, started afresh when it is new."""
        current: _Window = getattr(self, kind)
        if current.name != name:
            current = _Window(name)
            setattr(self, kind, current)
        return current


class LocalState:
    """The :class:`~gateway.state.protocol.State` of one process.

    Args:
        clock: monotonic seconds, for the token buckets.
        wall: wall-clock seconds (``time.time``), for budget windows and key rests.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._windows = WindowClock(wall)
        self._keys: dict[str, _Key] = {}
        self._providers: dict[str, set[str]] = {}
        self._rests: dict[tuple[str, str], KeyRest] = {}
        self._lease_ids = itertools.count(1)

    @property
    def up(self) -> bool:
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Nothing runs in the background here: ready at once (``RedisState.run``'s twin)."""
        task_status.started()

    async def aclose(self) -> None:
        """Nothing to close (``RedisState.aclose``'s twin)."""

    # -- client keys --------------------------------------------------------------------------

    async def admit(self, ask: Ask) -> Admitted | Refused:
        return self.admit_nowait(ask)

    def admit_nowait(self, ask: Ask) -> Admitted | Refused:
        """:meth:`admit`, synchronously (it never waits)."""
        limits, tokens = ask.limits, ask.tokens
        state = self._keys.get(ask.key) or self._keys.setdefault(ask.key, _Key())
        now = self._clock()
        _, windows = self._windows.now()
        waits: list[tuple[LimitName, float | None]] = []
        if limits.concurrency is not None:
            full = len(state.leases) >= limits.concurrency
            waits.append(("concurrency", None if limits.concurrency <= 0 else float(full)))
        rpm_level = tpm_level = 0.0
        if limits.rpm is not None:
            state.rpm = _refilled(state.rpm, limits.rpm, now)
            rpm_level = state.rpm.tokens
            waits.append(("rpm", bucket_wait(rpm_level, 1, limits.rpm)))
        if limits.tpm is not None:
            state.tpm = _refilled(state.tpm, limits.tpm, now)
            tpm_level = state.tpm.tokens
            waits.append(("tpm", bucket_wait(tpm_level, cost_of(tokens), limits.tpm)))
        day = state.window("day", windows.day)
        month = state.window("month", windows.month)
        waits += _budget_waits(ask, day.spent, month.spent, windows)
        shown_rpm = remaining(rpm_level) if limits.rpm is not None else None
        shown_tpm = remaining(tpm_level) if limits.tpm is not None else None
        refusal = worst_refusal(waits)
        if refusal is not None:
            return Refused(refusal[0], whole_seconds(refusal[1]), shown_rpm, shown_tpm)
        if state.rpm is not None:
            state.rpm.tokens -= 1
            shown_rpm = remaining(state.rpm.tokens)
        if state.tpm is not None:
            state.tpm.tokens -= tokens
            shown_tpm = remaining(state.tpm.tokens)
        if limits.tokens_per_day is not None:
            day.pending += tokens
        if limits.tokens_per_month is not None:
            month.pending += tokens
        lease = None
        if limits.concurrency is not None:
            lease = f"{next(self._lease_ids):x}"
            state.leases.add(lease)
        ticket = Ticket(ask.key, limits, tokens, lease, windows.day, windows.month)
        return Admitted(ticket, shown_rpm, shown_tpm)

    async def settle(self, ticket: Ticket, used: Used | None) -> None:
        self.settle_nowait(ticket, used)

    def settle_nowait(self, ticket: Ticket, used: Used | None, *, count: bool = True) -> None:
        """:meth:`settle`, synchronously. ``count=False``: take the admission back (refund
        the reservation, release the lease) without counting a request in the ledger."""
        state = self._keys.get(ticket.key)
        if state is None:
            return
        if ticket.lease is not None:
            state.leases.discard(ticket.lease)
        used, delta = settled_use(ticket, used) if count else (Used(), -ticket.reserved)
        if delta and state.tpm is not None and ticket.limits.tpm is not None:
            capacity = ticket.limits.tpm
            state.tpm = _refilled(state.tpm, capacity, self._clock())
            state.tpm.tokens = min(float(capacity), state.tpm.tokens - delta)
        limits = ticket.limits
        if limits.tokens_per_day is not None and state.day.name == ticket.day:
            state.day.pending = max(0, state.day.pending - ticket.reserved)
        if limits.tokens_per_month is not None and state.month.name == ticket.month:
            state.month.pending = max(0, state.month.pending - ticket.reserved)
        if count:
            _, windows = self._windows.now()
            state.window("day", windows.day).count(used)
            state.window("month", windows.month).count(used)

    async def totals(self, keys: Sequence[str]) -> dict[str, dict[str, Totals]]:
        _, windows = self._windows.now()
        out = {}
        for key in keys:
            state = self._keys.get(key) or _Key()
            day, month = state.day, state.month
            out[key] = {
                "day": day.totals() if day.name == windows.day else Totals(),
                "month": month.totals() if month.name == windows.month else Totals(),
            }
        return out

    # -- providers ------------------------------------------------------------------------------

    async def acquire_provider(self, provider: str, limit: int) -> str | None:
        return self.acquire_provider_nowait(provider, limit)

    def acquire_provider_nowait(self, provider: str, limit: int) -> str | None:
        """:meth:`acquire_provider`, synchronously."""
        if limit < 1:
            raise ValueError(f"a provider's slot limit is at least 1, got {limit}")
        slots = self._providers.setdefault(provider, set())
        if len(slots) >= limit:
            return None
        lease = f"{next(self._lease_ids):x}"
        slots.add(lease)
        return lease

    async def release_provider(self, provider: str, lease: str) -> None:
        self._providers.get(provider, set()).discard(lease)

    def holds_provider(self, provider: str, lease: str) -> bool:
        """Whether ``lease`` is a live slot of ``provider`` here."""
        return lease in self._providers.get(provider, ())

    async def rest_key(self, rest: KeyRest) -> None:
        self.rest_key_nowait(rest)

    def rest_key_nowait(self, rest: KeyRest) -> None:
        """:meth:`rest_key`, synchronously."""
        slot = (rest.provider, rest.key_id)
        current = self._rests.get(slot)
        if current is None or rest.until > current.until:
            self._rests[slot] = rest

    async def key_rests(self) -> list[KeyRest]:
        now = self._windows.wall()
        for slot in [s for s, rest in self._rests.items() if rest.until <= now]:
            del self._rests[slot]
        return list(self._rests.values())


def _refilled(bucket: _Bucket | None, capacity: int, now: float) -> _Bucket:
    """The bucket brought to ``now`` (a new one is full)."""
    if bucket is None:
        return _Bucket(float(capacity), now)
    bucket.tokens = bucket_level(bucket.tokens, now - bucket.at, capacity)
    bucket.at = now
    return bucket


def _budget_waits(
    ask: Ask, day_used: int, month_used: int, windows: Windows
) -> list[tuple[LimitName, float | None]]:
    limits, tokens = ask.limits, ask.tokens
    waits: list[tuple[LimitName, float | None]] = []
    if limits.tokens_per_day is not None:
        wait = budget_wait(day_used, tokens, limits.tokens_per_day, windows.day_left_s)
        waits.append(("tokens_per_day", wait))
    if limits.tokens_per_month is not None:
        wait = budget_wait(month_used, tokens, limits.tokens_per_month, windows.month_left_s)
        waits.append(("tokens_per_month", wait))
    return waits
