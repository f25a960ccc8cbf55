"""Issue 8 item 13: key cool-downs escalate at most once per rest; Retry-After sets the rest;
the steps are the transformer setting ``cooldown_s`` (validated)."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from gateway.failures import MAX_KEY_REST_S
from gateway.keys import KeyPool
from gateway.transformers import TransformerError, parse_transformer
from gateway.transformers.model import DEFAULT_COOLDOWN_S, Transformer
from tests.proxy.fakes import Step, openai_reply, start_gateway, write_transformer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _t(keys=("k1",), cooldown_s=DEFAULT_COOLDOWN_S) -> Transformer:
    return Transformer(name="p", format="openai", keys=keys, cooldown_s=cooldown_s)


def test_concurrent_failures_strike_once():
    clock, t = Clock(), _t()
    pool = KeyPool(clock)
    for _ in range(10):  # ten requests in flight on the key all fail at about the same time
        pool.cool(t, "k1", 1.0)
    assert pool.wait_s(t) == pytest.approx(1.0)
    clock.now += 1.01
    assert pool.pick(t) == "k1"
    # the next failure, after the rest, is the second strike: its step when no Retry-After
    assert pool.cool(t, "k1") == 30.0


def test_without_retry_after_the_steps_escalate_once_per_rest():
    clock = Clock()
    pool, t = KeyPool(clock), _t()
    rests = []
    for _ in range(5):
        rests.append(pool.cool(t, "k1"))
        for _ in range(3):  # more failures while it rests: no new strike, no longer rest
            clock.now += 1
            pool.cool(t, "k1")
        clock.now += rests[-1]  # the rest is over
    assert rests == [10.0, 30.0, 120.0, 120.0, 120.0]


def test_retry_after_sets_the_rest_shorter_or_longer_than_the_step():
    clock = Clock()
    pool, t = KeyPool(clock), _t()
    assert pool.cool(t, "k1", 2.0) == 2.0
    assert pool.wait_s(t) == pytest.approx(2.0)
    pool.cool(t, "k1", 5.0)  # a longer Retry-After while resting lengthens the rest
    assert pool.wait_s(t) == pytest.approx(5.0)
    pool.cool(t, "k1", 1.0)  # a shorter one never shortens it
    assert pool.wait_s(t) == pytest.approx(5.0)
    clock.now += 5
    assert pool.cool(t, "k1", 10**6) == MAX_KEY_REST_S


def test_retry_after_zero_uses_the_step():
    pool, t = KeyPool(Clock()), _t()
    assert pool.cool(t, "k1", 0.0) == 10.0


def test_success_clears_the_record():
    clock = Clock()
    pool, t = KeyPool(clock), _t()
    pool.cool(t, "k1")
    clock.now += 10
    pool.succeeded(t, "k1")
    assert pool.cool(t, "k1") == 10.0


def test_cooldown_s_steps_come_from_the_transformer():
    clock = Clock()
    pool, t = KeyPool(clock), _t(cooldown_s=(1.0, 2.5))
    rests = []
    for _ in range(4):
        rests.append(pool.cool(t, "k1"))
        clock.now += rests[-1]
    assert rests == [1.0, 2.5, 2.5, 2.5]


def test_keys_rest_apart():
    clock = Clock()
    pool, t = KeyPool(clock), _t(keys=("k1", "k2"))
    pool.cool(t, "k1")
    assert pool.pick(t) == "k2"
    assert pool.pick(t) == "k2"
    pool.cool(t, "k2", 3.0)
    assert pool.pick(t) is None
    assert pool.wait_s(t) == pytest.approx(3.0)


# -- the setting ---------------------------------------------------------------------------


def _parse(**extra):
    spec = {"format": "openai", "base_url": "http://x/v1", "models": {"m": "m"}, **extra}
    return parse_transformer(json.dumps(spec).encode(), "p.json", {})


def test_cooldown_s_default_and_given():
    assert _parse().cooldown_s == (10.0, 30.0, 120.0)
    assert _parse(cooldown_s=[1, 1, 2.5]).cooldown_s == (1.0, 1.0, 2.5)
    assert _parse(cooldown_s=[60]).cooldown_s == (60.0,)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ([], "at least one"),
        ([0], "greater than 0"),
        ([-1, 5], "greater than 0"),
        ([10, 5], "shorter than the step before"),
        (["10"], "number"),
        ([True], "number"),
        (10, "array"),
        ({"a": 1}, "array"),
    ],
)
def test_cooldown_s_is_validated(value, says):
    with pytest.raises(TransformerError) as info:
        _parse(cooldown_s=value)
    text = str(info.value)
    assert "cooldown_s" in text
    assert says in text


# -- through a gateway -------------------------------------------------------------------------


async def test_ten_concurrent_429s_rest_the_key_for_its_retry_after(nursery, provider, tmp_path):
    """The scenario of the issue: a single-key provider, ten 429s with Retry-After: 1 at once."""
    write_transformer(
        tmp_path,
        "p",
        {
            "format": "openai",
            "base_url": provider.url + "/v1",
            "keys": ["${K1}"],
            "models": {"m": "up-model"},
            "retry": {"retries": 0, "backoff_s": 0.01},
        },
    )
    limited = Step(
        "status",
        status=429,
        body={"error": {"message": "slow down", "type": "rate_limit"}},
        headers=[(b"retry-after", b"1")],
        delay_s=0.3,  # hold every request so that all ten are in flight together
    )
    provider.then(*[limited] * 10, Step("json", body=openai_reply("back")))
    gw = await start_gateway(nursery, tmp_path, {"K1": "key-one-1111"})
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=gw.url, timeout=30, trust_env=False) as client:

        async def one() -> None:
            reply = await client.post("/v1/chat/completions", json=body)
            statuses.append(reply.status_code)

        async with trio.open_nursery() as inner:
            for _ in range(10):
                inner.start_soon(one)
        assert statuses == [429] * 10
        assert len(provider.seen) == 10
        t = gw.registry.current.transformers["p"]
        assert gw.app.proxy.keys.wait_s(t) <= 1.0
        await trio.sleep(1.1)
        reply = await client.post("/v1/chat/completions", json=body)
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"] == "back"


def test_a_429s_retry_after_is_the_keys_rest_up_to_the_cap():
    from gateway.failures import MAX_RETRY_AFTER_S, classify_status
    from gateway.formats import FORMATS

    read_error = FORMATS["openai"].read_error

    failure = classify_status("p", 429, read_error(429, b"{}"), {"retry-after": "60"})
    assert failure.delay_s == MAX_RETRY_AFTER_S  # the longest the request itself waits
    assert failure.rest_s == 60.0  # the key rests as long as the provider said
    assert failure.error.retry_after_s == 60
    failure = classify_status("p", 429, read_error(429, b"{}"), {"retry-after": "100000"})
    assert failure.rest_s == MAX_KEY_REST_S
    assert classify_status("p", 429, read_error(429, b"{}"), {}).rest_s is None
    assert classify_status("p", 429, read_error(429, b"{}"), {"retry-after": "NaN"}).rest_s is None


async def test_long_retry_after_rests_the_key_and_tells_the_client(nursery, provider, tmp_path):
    write_transformer(
        tmp_path,
        "p",
        {
            "format": "openai",
            "base_url": provider.url + "/v1",
            "keys": ["${K1}"],
            "models": {"m": "up-model"},
            "retry": {"retries": 0, "backoff_s": 0.01},
        },
    )
    provider.then(
        Step(
            "status",
            status=429,
            body={"error": {"message": "daily limit", "type": "rate_limit"}},
            headers=[(b"retry-after", b"90")],
        )
    )
    gw = await start_gateway(nursery, tmp_path, {"K1": "key-one-1111"})
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    async with httpx.AsyncClient(base_url=gw.url, timeout=30, trust_env=False) as client:
        first = await client.post("/v1/chat/completions", json=body)
        assert first.status_code == 429
        assert first.headers["retry-after"] == "90"
        again = await client.post("/v1/chat/completions", json=body)
        assert again.status_code == 429  # the key rests: the provider is not asked again
        assert 80 <= int(again.headers["retry-after"]) <= 90
    assert len(provider.seen) == 1
