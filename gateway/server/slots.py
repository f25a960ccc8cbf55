"""The connection cap, and the idle keep-alive connections that can make room under it.

Theory of operation: ``max_connections`` is a semaphore the accept loop takes
*before* ``accept()``, so past the cap new connections wait in the kernel's
backlog instead of being refused. A connection waiting between requests is
*idle*: it tells :class:`ConnectionSlots` when it starts and stops waiting,
and the idle ones are kept in the order they became idle (a dict: insertion
ordered), so the longest-idle one is found from the front. At the cap, once
a client waits in the backlog, the accept loop reclaims the longest-idle
keep-alive connection (as nginx does with its reusable connections): one
idle *between* requests, never one mid-request, and never a fresh connection
still sending its first request. With nothing to reclaim it waits for
*room*: a slot that frees, or a keep-alive connection that turns idle.
"""

from __future__ import annotations

from typing import Protocol

import trio

__all__ = ["ConnectionSlots", "Idler"]


class Idler(Protocol):
    """A connection as the slots see it."""

    @property
    def served(self) -> int:
        """Requests answered so far: idle with ``served > 0`` is an idle keep-alive."""
        ...

    @property
    def idle_scope(self) -> trio.CancelScope | None:
        """The scope of its wait for the next request; cancelling it closes it quietly."""
        ...


class ConnectionSlots:
    """``limit`` connection slots and the idle connections holding some of them."""

    def __init__(self, limit: int) -> None:
        self._slots = trio.Semaphore(limit)
        self._idle: dict[Idler, None] = {}
        self._room = trio.Event()  # set (and replaced) when a slot frees or a connection idles

    # -- the accept loop's side ------------------------------------------------------------

    @property
    def at_cap(self) -> bool:
        """Every connection slot is taken."""
        return self._slots.value == 0

    async def acquire(self) -> None:
        """Take a slot for the next ``accept()``; waits while every slot is taken."""
        await self._slots.acquire()

    def release(self) -> None:
        """Give a slot back (a connection closed, or an ``accept()`` failed)."""
        self._slots.release()
        self.notify_room()

    async def wait_room(self) -> None:
        """Wait until a slot frees or a keep-alive connection turns idle."""
        await self._room.wait()

    def notify_room(self) -> None:
        """A slot freed or a keep-alive connection turned idle: wake accept loops at the cap."""
        self._room.set()
        self._room = trio.Event()

    def reclaim_idle(self) -> bool:
        """Close the longest-idle keep-alive connection (between requests); False if none.

        The first keep-alive found is the oldest; only fresh connections (no
        request served yet, gone within ``header_timeout_s``) are passed over.
        """
        for conn in self._idle:
            scope = conn.idle_scope
            if conn.served and scope is not None:
                scope.cancel()
                del self._idle[conn]  # once: the next reclaim picks another
                return True
        return False

    def close_idle(self) -> None:
        """Close every idle connection now (the server drains)."""
        for conn in list(self._idle):
            scope = conn.idle_scope
            if scope is not None:
                scope.cancel()

    # -- the connections' side -------------------------------------------------------------

    def idle(self, conn: Idler) -> None:
        """``conn`` waits for its next request (its ``idle_scope`` is set)."""
        self._idle[conn] = None
        if conn.served and self.at_cap:
            self.notify_room()  # reclaimable now

    def busy(self, conn: Idler) -> None:
        """``conn`` stopped waiting (a request came, or it closes)."""
        self._idle.pop(conn, None)
