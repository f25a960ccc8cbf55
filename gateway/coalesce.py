"""Shared rounds: callers that want the same fresh result share one run of the work.

Theory of operation: a scrape of the group's metrics (gateway.metrics_group)
must see what happened before it asked, so it cannot take the result of a
run that was already under way; yet a hundred scrapes at once must not cost a
hundred runs. :class:`Rounds` keeps one *next* round: every caller of
:meth:`Rounds.get` joins it, and :meth:`Rounds.run` (a long-lived task) starts
it as soon as the run before has ended. So at most one run is under way and
one is waiting, whatever the number of callers, and every caller gets a
result from a run that started after it called.

A run that raises is logged and its callers get None; a cancelled run ends
its round too (None), and :meth:`Rounds.close` ends a round that will never
start, so no caller waits forever.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

__all__ = ["Rounds"]

LOG = logging.getLogger("gateway.metrics")


class _Round:
    """Callers waiting for one run of a round; ``result`` None: it failed."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: bytes | None = None


class Rounds:
    """Callers of :meth:`get` share one run of ``work`` that starts after they call.

    :meth:`run` (a long-lived task) does the runs, one at a time.

    Args:
        work: the run; None or an exception (logged) is a failed round.
        what: the work's name in log lines.
    """

    def __init__(self, work: Callable[[], Awaitable[bytes | None]], what: str) -> None:
        self._work = work
        self._what = what
        self._next: _Round | None = None
        self._wanted = trio.Event()
        self._closed = False

    async def get(self) -> bytes | None:
        if self._closed:
            return None
        if self._next is None:
            self._next = _Round()
            self._wanted.set()
        current = self._next
        await current.done.wait()
        return current.result

    def close(self) -> None:
        """No more runs: a round that has not started ends now, empty-handed."""
        self._closed = True
        if self._next is not None:
            self._next.done.set()
            self._next = None

    async def run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            current, self._next = self._next, None
            if current is None:  # closed meanwhile
                continue
            try:
                current.result = await self._work()
            except Exception:
                LOG.exception("%s failed", self._what)
            finally:
                current.done.set()
