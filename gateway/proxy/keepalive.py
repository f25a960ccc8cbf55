"""Keep-alives while a started response waits (design.md, "Response status and keep-alives").

A client whose response has started gets its format's keep-alive (the wire's
``KEEPALIVE``) every ``period_s`` while the gateway waits: for a stream's first
token (:func:`gateway.proxy.relay.relay_stream`), or for the whole answer of an
emulated stream (``"stream": "emulate"``, :mod:`gateway.proxy.service`).

A sibling task sends them only while the waited-for work runs; the caller
writes only after that task has stopped, so the two never write at once. A
keep-alive write is shielded (at most :data:`KEEPALIVE_SEND_S`), so
cancellation never leaves half a keep-alive on the wire. The work's exception
is re-raised outside the nursery: callers never see an ExceptionGroup.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

import trio

from gateway.formats import FORMATS

if TYPE_CHECKING:
    from gateway.server.exchange import Exchange

__all__ = ["KEEPALIVE_S", "KEEPALIVE_SEND_S", "with_keepalives"]

T = TypeVar("T")

#: Keep-alive period while a started stream waits for its first token.
KEEPALIVE_S = 15.0
#: Longest a keep-alive write may hold up cancellation.
KEEPALIVE_SEND_S = 5.0


async def _keepalive(ex: Exchange, fmt: str, period_s: float) -> None:
    """Send ``fmt``'s keep-alive every ``period_s`` until cancelled."""
    while True:
        await trio.sleep(period_s)
        # A half-written keep-alive would corrupt the stream: let it finish.
        with trio.CancelScope(shield=True), trio.move_on_after(KEEPALIVE_SEND_S):
            await ex.send(FORMATS[fmt].wire.KEEPALIVE)


async def with_keepalives(ex: Exchange, fmt: str, wait: Awaitable[T], period_s: float) -> T:
    """Await ``wait`` while ``fmt``'s keep-alives go out every ``period_s``.

    Returns:
        What ``wait`` returned.

    Raises:
        Exception: whatever ``wait`` raised, unwrapped.
    """
    done: list[T] = []
    failed: list[Exception] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_keepalive, ex, fmt, period_s)
        try:
            done.append(await wait)
        except Exception as exc:  # re-raised below, outside the nursery's ExceptionGroup
            failed.append(exc)
        nursery.cancel_scope.cancel()
    if failed:
        raise failed[0]
    return done[0]
