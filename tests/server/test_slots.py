"""The connection cap's bookkeeping: which idle connection is reclaimed, when room is made."""

from __future__ import annotations

import attrs
import trio
import trio.testing

from gateway.server.slots import ConnectionSlots


@attrs.define(eq=False)
class FakeConn:
    served: int
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    waiting: bool = True  # its idle_scope is set

    @property
    def idle_scope(self) -> trio.CancelScope | None:
        return self.scope if self.waiting else None


async def test_the_longest_idle_keep_alive_is_reclaimed_once() -> None:
    slots = ConnectionSlots(3)
    fresh, old, young = FakeConn(served=0), FakeConn(served=2), FakeConn(served=1)
    for conn in (fresh, old, young):
        await slots.acquire()
        slots.idle(conn)
    assert slots.at_cap
    assert slots.reclaim_idle()
    assert old.scope.cancel_called
    assert not fresh.scope.cancel_called  # never a fresh one
    assert slots.reclaim_idle()  # the next one, not the same again
    assert young.scope.cancel_called
    assert not slots.reclaim_idle()  # only the fresh connection is left


async def test_a_busy_connection_is_never_reclaimed() -> None:
    slots = ConnectionSlots(1)
    conn = FakeConn(served=3)
    slots.idle(conn)
    slots.busy(conn)
    assert not slots.reclaim_idle()


async def test_room_is_made_when_a_keep_alive_turns_idle_at_the_cap_or_a_slot_frees() -> None:
    slots = ConnectionSlots(1)
    await slots.acquire()
    woken = []

    async def waiter() -> None:
        await slots.wait_room()
        woken.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        slots.idle(FakeConn(served=0))  # a fresh connection cannot make room
        await trio.testing.wait_all_tasks_blocked()
        assert woken == []
        slots.idle(FakeConn(served=1))  # an idle keep-alive at the cap can
    assert len(woken) == 1
    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        slots.release()
    assert len(woken) == 2
    assert not slots.at_cap


async def test_close_idle_cancels_every_idle_wait() -> None:
    slots = ConnectionSlots(4)
    conns = [FakeConn(served=0), FakeConn(served=5), FakeConn(served=1, waiting=False)]
    for conn in conns:
        slots.idle(conn)
    slots.close_idle()
    assert [conn.scope.cancel_called for conn in conns] == [True, True, False]
