"""The State promises (gateway/state/protocol.py), held against LocalState and RedisState
alike (the ``rig`` fixture runs each test on both)."""

from __future__ import annotations

import pytest

from gateway.state import Admitted, Ask, KeyLimits, KeyRest, Refused, Totals, Used


def ask(key="team-a", tokens=0, **limits) -> Ask:
    return Ask(key, KeyLimits(**limits), tokens)


async def admitted(rig, request: Ask) -> Admitted:
    result = await rig.state.admit(request)
    assert isinstance(result, Admitted), result
    return result


async def refused(rig, request: Ask) -> Refused:
    result = await rig.state.admit(request)
    assert isinstance(result, Refused), result
    return result


async def test_a_bucket_of_n_admits_a_burst_of_n_then_refuses(rig):
    shown = [(await admitted(rig, ask(rpm=5))).remaining_requests for _ in range(5)]
    assert shown == [4, 3, 2, 1, 0]
    no = await refused(rig, ask(rpm=5))
    assert no.limit == "rpm"
    assert no.retry_after_s == 12  # one request of 5 per minute
    assert no.remaining_requests == 0
    assert no.remaining_tokens is None  # no tpm limit: nothing to show
    # Another key has its own bucket.
    assert (await admitted(rig, ask("team-b", rpm=5))).remaining_requests == 4


async def test_the_bucket_refills_over_time(rig):
    for _ in range(120):
        await admitted(rig, ask(rpm=120))
    no = await refused(rig, ask(rpm=120))
    assert no.retry_after_s == 1  # 2 per second
    await rig.advance(0.6)
    await admitted(rig, ask(rpm=120))  # one came back
    await refused(rig, ask(rpm=120))
    await rig.advance(1.1)
    await admitted(rig, ask(rpm=120))
    await admitted(rig, ask(rpm=120))


async def test_tpm_reserves_the_estimate_and_settles_what_was_used(rig):
    first = await admitted(rig, ask(tokens=600, tpm=1000))
    assert first.remaining_tokens == 400
    assert first.ticket.reserved == 600
    no = await refused(rig, ask(tokens=600, tpm=1000))
    assert no.limit == "tpm"
    assert no.retry_after_s == 12  # 200 tokens short at 1000/min
    assert no.remaining_tokens == 400
    await rig.state.settle(first.ticket, Used(tokens_in=100, tokens_out=50))  # 450 back
    again = await admitted(rig, ask(tokens=600, tpm=1000))
    assert 250 <= again.remaining_tokens <= 251


async def test_a_debt_delays_the_next_request(rig):
    first = await admitted(rig, ask(tokens=100, tpm=1000))
    await rig.state.settle(first.ticket, Used(tokens_in=1500, tokens_out=500))  # level -1000
    no = await refused(rig, ask(tokens=10, tpm=1000))
    assert no.limit == "tpm"
    assert 60 <= no.retry_after_s <= 61  # 1010 tokens at 1000/min
    assert no.remaining_tokens == 0  # never shown below zero
    # An estimate of 0 still waits for the debt.
    assert (await refused(rig, ask(tokens=0, tpm=1000))).limit == "tpm"


async def test_used_none_keeps_the_estimate_charged(rig):
    first = await admitted(rig, ask(tokens=300, tpm=1000))
    await rig.state.settle(first.ticket, None)
    assert (await admitted(rig, ask(tokens=0, tpm=1000))).remaining_tokens == 700
    totals = await rig.state.totals(["team-a"])
    assert totals["team-a"]["day"] == Totals(requests=1, tokens_in=300)


async def test_an_estimate_larger_than_the_whole_limit_never_fits(rig):
    no = await refused(rig, ask(tokens=101, tpm=100))
    assert (no.limit, no.retry_after_s) == ("tpm", None)
    no = await refused(rig, ask(tokens=60, tokens_per_day=50))
    assert (no.limit, no.retry_after_s) == ("tokens_per_day", None)
    no = await refused(rig, ask(tokens=60, tokens_per_month=50))
    assert (no.limit, no.retry_after_s) == ("tokens_per_month", None)
    assert (await refused(rig, ask(rpm=0))).retry_after_s is None
    for limits in ({"rpm": -1}, {"tpm": -5}, {"concurrency": 0}, {"tokens_per_day": -1}):
        assert (await refused(rig, ask(**limits))).retry_after_s is None, limits


async def test_concurrency_is_held_until_settled(rig):
    one = await admitted(rig, ask(concurrency=2))
    two = await admitted(rig, ask(concurrency=2))
    assert one.ticket.lease is not None
    assert one.ticket.lease != two.ticket.lease
    no = await refused(rig, ask(concurrency=2))
    assert (no.limit, no.retry_after_s) == ("concurrency", 1)
    await rig.state.settle(one.ticket, Used(tokens_in=1))
    three = await admitted(rig, ask(concurrency=2))
    await refused(rig, ask(concurrency=2))
    await rig.state.settle(two.ticket, None)
    await rig.state.settle(three.ticket, None)
    await admitted(rig, ask(concurrency=2))
    assert (await admitted(rig, ask())).ticket.lease is None  # no limit: no lease


async def test_a_day_budget_refuses_until_the_next_utc_day(rig):
    first = await admitted(rig, ask(tokens=600, tokens_per_day=1000))
    await rig.state.settle(first.ticket, Used(tokens_in=500, tokens_out=400))  # 900 spent
    await admitted(rig, ask(tokens=100, tokens_per_day=1000))  # exactly 1000
    no = await refused(rig, ask(tokens=0, tokens_per_day=1000))
    assert no.limit == "tokens_per_day"
    assert no.retry_after_s == 12 * 3600  # noon: half a day to go
    rig.step_wall(12 * 3600)  # midnight UTC
    second = await admitted(rig, ask(tokens=600, tokens_per_day=1000))
    assert second.ticket.day == "2026-12-08"
    assert second.ticket.month == "2026-12"


async def test_a_month_budget_spans_days(rig):
    await admitted(rig, ask(tokens=800, tokens_per_month=1000))
    rig.step_wall(86400)  # a new day, the same month
    no = await refused(rig, ask(tokens=300, tokens_per_month=1000))
    assert no.limit == "tokens_per_month"
    assert no.retry_after_s == 23 * 86400 + 12 * 3600  # Dec 8 noon to 2027-01-01
    rig.step_wall(24 * 86400)  # 2027-01-01 12:00
    ok = await admitted(rig, ask(tokens=300, tokens_per_month=1000))
    assert ok.ticket.month == "2027-01"


async def test_a_budget_set_in_mid_window_counts_what_the_window_used(rig):
    first = await admitted(rig, ask(tokens=100))  # no budget yet
    await rig.state.settle(first.ticket, Used(tokens_in=600, tokens_out=300))
    no = await refused(rig, ask(tokens=200, tokens_per_day=1000))  # 900 + 200 > 1000
    assert no.limit == "tokens_per_day"
    await admitted(rig, ask(tokens=100, tokens_per_day=1000))


async def test_a_request_settled_the_next_day(rig):
    rig.step_wall(12 * 3600 - 1)  # 23:59:59
    late = await admitted(rig, ask(tokens=600, tokens_per_day=1000))
    assert (await refused(rig, ask(tokens=600, tokens_per_day=1000))).retry_after_s == 1
    rig.step_wall(2)  # the next day
    await rig.state.settle(late.ticket, Used(tokens_in=10))
    totals = await rig.state.totals(["team-a"])
    assert totals["team-a"]["day"] == Totals(requests=1, tokens_in=10)  # counted when it ended
    await admitted(rig, ask(tokens=990, tokens_per_day=1000))  # 10 spent today


async def test_the_limit_that_frees_last_is_named(rig):
    await admitted(rig, ask(tokens=10, rpm=1, tokens_per_day=10))
    no = await refused(rig, ask(tokens=5, rpm=1, tokens_per_day=10))
    assert no.limit == "tokens_per_day"  # 12 hours beat the rpm's 60 s
    assert no.retry_after_s == 12 * 3600
    no = await refused(rig, ask(tokens=50, rpm=1, tokens_per_day=10))
    assert (no.limit, no.retry_after_s) == ("tokens_per_day", None)  # never beats any wait


async def test_a_refusal_charges_nothing(rig):
    limits = {"rpm": 3, "tpm": 100, "concurrency": 5, "tokens_per_day": 1000}
    await admitted(rig, ask(tokens=80, **limits))
    no = await refused(rig, ask(tokens=80, **limits))  # tpm refuses
    assert no.limit == "tpm"
    assert no.remaining_requests == 2  # the refusal took no request
    ok = await admitted(rig, ask(tokens=20, **limits))  # so the rest still fits
    assert ok.remaining_tokens == 0
    assert ok.remaining_requests == 1
    totals = await rig.state.totals(["team-a"])
    assert totals["team-a"]["day"] == Totals()  # nothing settled yet


async def test_totals_per_key_and_window(rig):
    a = await admitted(rig, ask("a", tokens=10))
    await rig.state.settle(a.ticket, Used(tokens_in=100, tokens_out=20, cached=60, reasoning=5))
    a = await admitted(rig, ask("a", tokens=10))
    await rig.state.settle(a.ticket, Used(tokens_in=1, tokens_out=2))
    b = await admitted(rig, ask("b:2026-12-07", tokens=10))  # a name like a window
    await rig.state.settle(b.ticket, Used(tokens_in=7))
    totals = await rig.state.totals(["a", "b:2026-12-07", "never-used"])
    expected_a = Totals(requests=2, tokens_in=101, tokens_out=22, cached=60, reasoning=5)
    assert totals["a"] == {"day": expected_a, "month": expected_a}
    assert totals["b:2026-12-07"]["day"] == Totals(requests=1, tokens_in=7)
    assert totals["never-used"] == {"day": Totals(), "month": Totals()}
    assert await rig.state.totals([]) == {}
    rig.step_wall(86400)
    totals = await rig.state.totals(["a"])
    assert totals["a"] == {"day": Totals(), "month": expected_a}  # a new day, the same month


async def test_provider_slots(rig):
    one = await rig.state.acquire_provider("openai", 2)
    two = await rig.state.acquire_provider("openai", 2)
    assert None not in (one, two)
    assert one != two
    assert await rig.state.acquire_provider("openai", 2) is None
    assert await rig.state.acquire_provider("anthropic", 1) is not None  # its own slots
    await rig.state.release_provider("openai", one)
    three = await rig.state.acquire_provider("openai", 2)
    assert three is not None
    assert await rig.state.acquire_provider("openai", 2) is None
    await rig.state.release_provider("openai", one)  # twice: no extra slot
    assert await rig.state.acquire_provider("openai", 2) is None
    with pytest.raises(ValueError, match="at least 1"):
        await rig.state.acquire_provider("openai", 0)


async def test_key_rests_the_longer_wins(rig):
    now = rig.wall.now
    await rig.state.rest_key(KeyRest("openai", "k1", now + 30, 1))
    await rig.state.rest_key(KeyRest("openai", "k1", now + 10, 2))  # shorter: ignored
    await rig.state.rest_key(KeyRest("openai/x", "k2", now + 5, 1))
    await rig.state.rest_key(KeyRest("gemini", "k3", now - 1, 1))  # already over
    rests = sorted(await rig.state.key_rests(), key=lambda r: r.key_id)
    assert rests == [
        KeyRest("openai", "k1", now + 30, 1),
        KeyRest("openai/x", "k2", now + 5, 1),
    ]
    await rig.state.rest_key(KeyRest("openai", "k1", now + 60, 3))  # longer: wins
    rig.step_wall(20)
    assert await rig.state.key_rests() == [KeyRest("openai", "k1", now + 60, 3)]
    rig.step_wall(60)
    assert await rig.state.key_rests() == []


async def test_no_limits_admit_everything_and_show_nothing(rig):
    for _ in range(50):
        result = await admitted(rig, ask(tokens=10**6))
        assert (result.remaining_requests, result.remaining_tokens) == (None, None)
    assert rig.state.up
