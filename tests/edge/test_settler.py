"""The edge's settler: with a shared state, a request's settle leaves its path (queued for a
few settler tasks), except when it holds a concurrency lease; what is queued at shutdown is
still settled."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.lowlevel

from gateway.config import AuthConfig, AuthKey
from gateway.edge.clientkeys import ClientKeys
from gateway.edge.gate import Edge
from gateway.errors import RateLimited
from gateway.record import CallRecord
from gateway.redis import RedisClient
from gateway.state.shared import RedisState


@attrs.define
class FakeExchange:
    extra_headers: list = attrs.Factory(list)


def _edge(state, **limits) -> tuple[Edge, object]:
    keys = ClientKeys(AuthConfig(keys=(AuthKey("team", "gw-settler-key", **limits),)))
    return Edge(keys, state), keys.by_name["team"]


async def _state(redis_server) -> RedisState:
    client = RedisClient(redis_server.url, connect_timeout_s=2, command_timeout_s=2)
    return RedisState(client, prefix="settler-test:")


async def _requests(state) -> int:
    totals = await state.totals(["team"])
    return totals["team"]["day"].requests


async def test_settles_without_a_lease_are_queued_and_done_by_the_settler(redis_server):
    state = await _state(redis_server)
    edge, key = _edge(state, rpm=100, tpm=10_000)
    record = CallRecord(tokens_in=10, tokens_out=5)
    settled_in: list[object] = []
    settle = state.settle

    async def watched_settle(ticket, used):
        settled_in.append(trio.lowlevel.current_task())
        await settle(ticket, used)

    state.settle = watched_settle
    async with trio.open_nursery() as nursery:
        await nursery.start(edge.run_settler)
        for _ in range(3):
            ticket = await edge.admit_tokens(FakeExchange(), key, 20)
            assert ticket is not None
            assert ticket.lease is None
            await edge.settle(ticket, record)
        for _ in range(500):
            if await _requests(state) >= 3:
                break
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    totals = (await state.totals(["team"]))["team"]["day"]
    assert (totals.requests, totals.tokens_in, totals.tokens_out) == (3, 30, 15)
    assert len(settled_in) == 3
    assert trio.lowlevel.current_task() not in settled_in  # settled by the settler's tasks
    await state.aclose()


async def test_the_next_request_finds_the_slot_a_queued_settle_gives_back(redis_server):
    state = await _state(redis_server)
    edge, key = _edge(state, concurrency=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(edge.run_settler)
        for _ in range(20):  # each request finds the slot its predecessor gave back
            ticket = await edge.admit_tokens(FakeExchange(), key, 0)
            assert ticket is not None
            assert ticket.lease is not None
            await edge.settle(ticket, CallRecord())
        # a slot really held: the refusal comes at once, with nothing to wait for
        held = await edge.admit_tokens(FakeExchange(), key, 0)
        with trio.fail_after(0.5):
            with pytest.raises(RateLimited, match="concurrency"):
                await edge.admit_tokens(FakeExchange(), key, 0)
        await edge.settle(held, CallRecord())
        nursery.cancel_scope.cancel()
    await state.aclose()


async def test_what_is_queued_when_the_settler_stops_is_still_settled(redis_server):
    state = await _state(redis_server)
    edge, key = _edge(state, rpm=1000)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            await nursery.start(edge.run_settler)
            tickets = [await edge.admit_tokens(FakeExchange(), key, 0) for _ in range(50)]
            for ticket in tickets:
                await edge.settle(ticket, CallRecord(tokens_in=1, tokens_out=1))
            scope.cancel()  # at once: most are still queued
    assert await _requests(state) == 50
    await state.aclose()


async def test_without_a_settler_a_shared_state_settles_in_the_request(redis_server):
    state = await _state(redis_server)
    edge, key = _edge(state, rpm=1000)
    ticket = await edge.admit_tokens(FakeExchange(), key, 0)
    await edge.settle(ticket, CallRecord(tokens_in=1, tokens_out=1))
    assert await _requests(state) == 1
    await state.aclose()
