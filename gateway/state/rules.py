"""The rules every State follows, as plain functions: budget windows, token buckets, which
refusal wins, what a settlement charges.

``LocalState`` calls these; ``RedisState``'s Lua scripts (``gateway/state/scripts.py``)
do the same arithmetic inside Redis, and one test suite holds both to it
(tests/state/test_semantics.py).

- **Windows** are UTC calendar days and months, named ``2026-12-07`` and ``2026-12``.
  They come from the wall clock of the process asking (replicas' clocks agree to well
  under a second under NTP); token buckets use one clock per store instead (the
  process's monotonic clock, or Redis's ``TIME``).
- **A token bucket** of capacity N holds N when new, refills at N per 60 s up to N, and
  may go below zero (a settled debt). A request costing c > 0 fits when the level is at
  least c; it waits ``(c - level) / (N / 60)`` seconds otherwise, and never fits when
  c > N (or N is 0).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

import attrs

from gateway.state.protocol import LimitName, Ticket, Used

__all__ = [
    "REFILL_S",
    "WindowClock",
    "Windows",
    "bucket_level",
    "bucket_wait",
    "budget_wait",
    "cost_of",
    "remaining",
    "settled_use",
    "whole_seconds",
    "windows_at",
    "worst_refusal",
]

#: A bucket of N refills N in this many seconds ("per minute").
REFILL_S = 60.0


@attrs.frozen
class Windows:
    """The budget windows at one moment, and the seconds left in each."""

    day: str
    month: str
    day_left_s: float
    month_left_s: float


def windows_at(wall: float) -> Windows:
    """The UTC day and month holding wall-clock time ``wall`` (``time.time()`` seconds)."""
    moment = datetime.fromtimestamp(wall, timezone.utc)
    day_start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if moment.month == 12:
        next_month = day_start.replace(year=moment.year + 1, month=1, day=1)
    else:
        next_month = day_start.replace(month=moment.month + 1, day=1)
    return Windows(
        day=f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}",
        month=f"{moment.year:04d}-{moment.month:02d}",
        day_left_s=day_start.timestamp() + 86400.0 - wall,
        month_left_s=next_month.timestamp() - wall,
    )


class WindowClock:
    """:func:`windows_at` for "now", computed once per second (it is on every request)."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self.wall = wall
        self._second = -1
        self._at = windows_at(0.0)

    def now(self) -> tuple[float, Windows]:
        """The wall-clock time and its windows (``*_left_s`` to the second)."""
        wall = self.wall()
        second = int(wall)
        if second != self._second:
            self._second, self._at = second, windows_at(float(second))
        return wall, self._at


def bucket_level(tokens: float, since_s: float, capacity: int) -> float:
    """A bucket's level ``since_s`` seconds after it held ``tokens``."""
    return min(float(capacity), tokens + max(0.0, since_s) * capacity / REFILL_S)


def bucket_wait(level: float, cost: int, capacity: int) -> float | None:
    """Seconds until a bucket at ``level`` has ``cost`` (0: now; None: never)."""
    if cost > capacity or capacity <= 0:
        return None
    if level >= cost:
        return 0.0
    return (cost - level) * REFILL_S / capacity


def budget_wait(used: int, tokens: int, budget: int, left_s: float) -> float | None:
    """Seconds until a budget with ``used`` of ``budget`` spent takes ``tokens`` more:
    0 now, the rest of the window when it is spent, None when ``tokens`` alone exceed it."""
    if tokens > budget or budget <= 0:
        return None
    if used + cost_of(tokens) <= budget:
        return 0.0
    return max(left_s, 1.0)


def cost_of(tokens: int) -> int:
    """Room an estimate needs: itself, and at least one token (a key in debt waits)."""
    return max(tokens, 1)


def worst_refusal(
    waits: Iterable[tuple[LimitName, float | None]],
) -> tuple[LimitName, float | None] | None:
    """Of the limits that refuse (wait None, or more than 0), the one that frees last.

    "Never" (None) wins over any wait, the first such in order; None when all admit.
    """
    found: tuple[LimitName, float | None] | None = None
    for name, wait in waits:
        if wait is not None and wait <= 0:
            continue
        if wait is None:
            return name, None
        if found is None or (found[1] is not None and wait > found[1]):
            found = (name, wait)
    return found


def whole_seconds(wait: float | None) -> int | None:
    """A Retry-After: whole seconds, at least 1 (None stays None)."""
    if wait is None:
        return None
    return max(1, math.ceil(wait - 1e-9))


def remaining(level: float) -> int:
    """What a bucket shows a client (``x-ratelimit-remaining-*``): whole tokens, never < 0."""
    return max(0, math.floor(level))


def settled_use(ticket: Ticket, used: Used | None) -> tuple[Used, int]:
    """What a settlement records in the ledger, and the correction to the charge (the
    actual tokens minus the reservation). ``used=None``: the estimate counts as tokens in."""
    if used is None:
        used = Used(tokens_in=ticket.reserved)
    return used, used.tokens_in + used.tokens_out - ticket.reserved
