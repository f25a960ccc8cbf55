"""RedisState beyond the shared semantics: several processes, outages, leases, key names."""

from __future__ import annotations

import logging
import re

import pytest
import trio

from gateway.state import Admitted, Ask, KeyLimits, Refused, StateUnavailable, Used

LOGGER = "gateway.state"


def ask(key="team-a", tokens=0, **limits) -> Ask:
    return Ask(key, KeyLimits(**limits), tokens)


async def until_up(state, limit_s: float = 5.0) -> None:
    """Call the state until it finds Redis again (bounded)."""
    with trio.fail_after(limit_s):
        for _ in range(10_000):
            await state.admit(ask("probe", rpm=10**6))
            if state.up:
                return
            await trio.sleep(0.02)


def lines(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


async def test_two_processes_share_one_limit(redis_server, make_redis_state):
    one, two = make_redis_state(redis_server.url), make_redis_state(redis_server.url)
    results = []
    for state in (one, two, one, two, one):
        results.append(await state.admit(ask(rpm=3)))
    assert [type(r) for r in results] == [Admitted] * 3 + [Refused] * 2
    # Concurrency too: a slot taken by one is missing for the other until settled.
    held = await one.admit(ask("b", concurrency=1))
    assert isinstance(held, Admitted)
    assert isinstance(await two.admit(ask("b", concurrency=1)), Refused)
    await one.settle(held.ticket, Used())
    assert isinstance(await two.admit(ask("b", concurrency=1)), Admitted)
    # And provider slots.
    assert await one.acquire_provider("p", 1) is not None
    assert await two.acquire_provider("p", 1) is None


async def test_prefixes_keep_gateways_apart(redis_server, make_redis_state):
    one = make_redis_state(redis_server.url, prefix="blue:")
    two = make_redis_state(redis_server.url, prefix="green:")
    assert isinstance(await one.admit(ask(rpm=1)), Admitted)
    assert isinstance(await two.admit(ask(rpm=1)), Admitted)
    keys = redis_server.cli("--scan").split()
    assert keys
    assert all(k.startswith(("blue:", "green:")) for k in keys)


async def test_names_cannot_reach_into_other_keys(redis_server, make_redis_state):
    state = make_redis_state(redis_server.url)
    names = ["a", "a:rpm", "a:2026-12-07", "x/y", "{tag}", "with space", "ünï", "a%3A"]
    for name in names:
        result = await state.admit(ask(name, tokens=1, rpm=1, tpm=10, concurrency=1))
        assert isinstance(result, Admitted), name
        await state.settle(result.ticket, Used(tokens_in=1))
    await state.acquire_provider("prov:x", 1)
    shape = re.compile(
        r"gateway:(bucket|conc|prov):[^:\s]+|gateway:use:[^:\s]+:\d{4}-\d{2}(-\d{2})?"
    )
    keys = redis_server.cli("--scan").split("\n")
    assert len(keys) == 3 * len(names) + 1  # the buckets, the day, the month; the provider
    for key in keys:
        assert shape.fullmatch(key), key
        assert int(redis_server.cli("TTL", key)) > 0, key  # every key expires on its own
    totals = await state.totals(names)
    assert all(totals[n]["day"].requests == 1 for n in names)


async def test_outage_fail_open_serves_locally_and_logs_once_each_way(
    redis_server, caplog, make_redis_state
):
    caplog.set_level(logging.DEBUG)
    state = make_redis_state(redis_server.url)
    shared = await state.admit(ask(concurrency=5))
    assert isinstance(shared, Admitted)
    assert shared.ticket.shared
    redis_server.stop()
    fallback = []
    for _ in range(5):
        result = await state.admit(ask(rpm=3))
        fallback.append(result)
    assert not state.up
    # Local limits: this process's own bucket of 3.
    assert [type(r) for r in fallback] == [Admitted] * 3 + [Refused] * 2
    assert not fallback[0].ticket.shared
    await state.settle(fallback[0].ticket, Used(tokens_in=5))  # settled locally
    await state.settle(shared.ticket, Used(tokens_in=5))  # dropped, never raises
    assert await state.acquire_provider("p", 1) is not None
    assert (await state.totals(["team-a"]))["team-a"]["day"].tokens_in == 5
    down = lines(caplog, "Redis unreachable")
    assert down == [
        f"Redis unreachable at 127.0.0.1:{redis_server.port}: serving on local limits "
        f"(cannot connect to Redis at 127.0.0.1:{redis_server.port} "
        f"(all attempts to connect to 127.0.0.1:{redis_server.port} failed))"
    ]
    redis_server.start()
    await until_up(state)
    back = await state.admit(ask(concurrency=5))
    assert isinstance(back, Admitted)
    assert back.ticket.shared
    assert lines(caplog, "is back") == [
        f"Redis at 127.0.0.1:{redis_server.port} is back: limits are shared again"
    ]
    assert len(lines(caplog, "Redis unreachable")) == 1


async def test_outage_fail_closed_raises_state_unavailable(redis_server, caplog, make_redis_state):
    state = make_redis_state(redis_server.url, fail_open=False)
    held = await state.admit(ask(concurrency=1))
    redis_server.stop()
    with pytest.raises(StateUnavailable, match="shared state") as refused:
        await state.admit(ask(rpm=10))
    assert str(redis_server.port) not in str(refused.value)  # a client is not told where
    with pytest.raises(StateUnavailable):
        await state.acquire_provider("p", 1)
    with pytest.raises(StateUnavailable):
        await state.totals(["team-a"])
    assert not state.up
    await state.settle(held.ticket, None)  # reports never raise
    await state.release_provider("p", "nothing")
    assert await state.key_rests() == []
    assert "refusing requests (503)" in lines(caplog, "Redis unreachable")[0]
    redis_server.start()
    with trio.fail_after(5):
        for _ in range(10_000):
            try:
                await state.admit(ask(rpm=10))
                break
            except StateUnavailable:
                await trio.sleep(0.02)
    assert state.up


async def test_no_password_in_any_log_line(redis_factory, caplog, make_redis_state):
    caplog.set_level(logging.DEBUG)
    server = redis_factory(password="pw-4f7a9-never-logged")
    state = make_redis_state(server.url)
    await state.admit(ask(rpm=10))
    server.stop()
    await state.admit(ask(rpm=10))
    server.start()
    await until_up(state)
    wrong = make_redis_state(f"redis://:pw-other-never-logged@127.0.0.1:{server.port}")
    await wrong.admit(ask(rpm=10))
    assert not wrong.up
    assert "refused the credentials" in lines(caplog, "Redis unreachable")[-1]
    text = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert "never-logged" not in text
    assert "pw-" not in text


async def test_leases_are_renewed_while_held_and_expire_when_not(redis_server, make_redis_state):
    alive = make_redis_state(redis_server.url, lease_s=1.0, check_s=0.05)
    dead = make_redis_state(redis_server.url, lease_s=1.0)  # never runs: a process that died
    other = make_redis_state(redis_server.url)
    async with trio.open_nursery() as nursery:
        await nursery.start(alive.run)
        kept = await alive.admit(ask("a", concurrency=1))
        lost = await dead.admit(ask("b", concurrency=1))
        slot = await alive.acquire_provider("p", 1)
        assert None not in (slot,)
        await trio.sleep(2.0)  # twice the lease
        assert isinstance(await other.admit(ask("a", concurrency=1)), Refused)  # renewed
        assert await other.acquire_provider("p", 1) is None
        assert isinstance(await other.admit(ask("b", concurrency=1)), Admitted)  # expired
        await alive.settle(kept.ticket, Used())
        await alive.release_provider("p", slot)
        assert isinstance(await other.admit(ask("a", concurrency=1)), Admitted)
        assert await other.acquire_provider("p", 1) is not None
        nursery.cancel_scope.cancel()
    assert lost.ticket.shared


async def test_run_notices_an_outage_and_the_return_without_traffic(redis_server, make_redis_state):
    state = make_redis_state(redis_server.url, check_s=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(state.run)
        assert state.up
        redis_server.stop()
        with trio.fail_after(5):
            for _ in range(1000):
                if not state.up:
                    break
                await trio.sleep(0.02)
        redis_server.start()
        with trio.fail_after(5):
            for _ in range(1000):
                if state.up:
                    break
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()


async def test_a_cancelled_admission_is_taken_back(redis_server, make_redis_state):
    state = make_redis_state(redis_server.url)
    with trio.CancelScope() as scope:
        scope.cancel()  # cancelled before the answer can be used
        await state.admit(ask(tokens=50, concurrency=1, tpm=100))
    assert scope.cancelled_caught
    result = await state.admit(ask(tokens=100, concurrency=1, tpm=100))
    assert isinstance(result, Admitted)  # the slot and the 50 tokens came back
    with trio.CancelScope() as scope:
        scope.cancel()
        await state.acquire_provider("p", 1)
    assert await state.acquire_provider("p", 1) is not None


async def test_an_admission_during_the_outage_is_settled_where_it_was_made(
    redis_server, make_redis_state
):
    state = make_redis_state(redis_server.url)
    redis_server.stop()
    local = await state.admit(ask(concurrency=1))
    assert not local.ticket.shared
    slot = await state.acquire_provider("p", 1)
    redis_server.start()
    await until_up(state)
    await state.settle(local.ticket, Used())
    await state.release_provider("p", slot)
    # The local fallback's slot and lease are free again (shown the next outage).
    redis_server.stop()
    assert isinstance(await state.admit(ask(concurrency=1)), Admitted)
    assert await state.acquire_provider("p", 1) is not None


async def test_keys_of_the_wrong_type_are_an_outage_not_a_crash(
    redis_server, caplog, make_redis_state
):
    state = make_redis_state(redis_server.url)
    redis_server.cli("SET", "gateway:bucket:team-a", "not a hash")
    today = (await state.admit(ask("other"))).ticket.day
    redis_server.cli("SET", f"gateway:use:team-a:{today}", "not a hash either")
    result = await state.admit(ask(rpm=5))
    assert isinstance(result, Admitted)  # served on local limits
    assert not result.ticket.shared
    assert not state.up
    assert "it answered an error: " in lines(caplog, "Redis unreachable")[0]
    assert "WRONGTYPE" in lines(caplog, "Redis unreachable")[0]
    redis_server.cli("DEL", "gateway:bucket:team-a")
    await until_up(state)
    assert (await state.totals(["team-a"]))["team-a"]["day"].requests == 0  # locally: none
    assert not state.up  # the window's hash is not a hash: totals could not be read
    strict = make_redis_state(redis_server.url, fail_open=False)
    with pytest.raises(StateUnavailable):
        await strict.totals(["team-a"])


async def test_a_key_without_limits_costs_no_round_trip_to_admit(redis_server, make_redis_state):
    state = make_redis_state(redis_server.url)
    for _ in range(5):
        result = await state.admit(ask(tokens=10))
        assert isinstance(result, Admitted)
        await state.settle(result.ticket, Used(tokens_in=3))
    stats = redis_server.cli("INFO", "commandstats")
    assert "cmdstat_evalsha:calls=5," in stats  # the five settlements only
    assert (await state.totals(["team-a"]))["team-a"]["day"].tokens_in == 15
