"""Issue 10 item 2: per-key rpm, tpm, concurrency and budgets, and providers' max_concurrency.

The gateway runs in-process with a fake provider upstream and a local state
whose wall clock the test moves, so refill and windows are checked without
waiting. A refused request is a 429 in the caller's format with a whole-second
Retry-After, and never reaches the provider.
"""

from __future__ import annotations

import json

import httpx
import pytest
import trio
import trio.lowlevel

from gateway.config import AuthConfig, AuthKey, Config
from gateway.state.local import LocalState
from tests.proxy.fakes import Step, eventually, openai_reply, start_gateway, write_transformer

pytestmark = pytest.mark.usefixtures("provider")

KEY = "gw-limits-Rb8TqW3nYx6ZsK1pLd"


class Wall:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # a fixed day

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall():
    return Wall()


def _config(**limits) -> Config:
    return Config(auth=AuthConfig(keys=(AuthKey("team", KEY, **limits),)))


def _files(tdir, provider, **extra):
    write_transformer(
        tdir,
        "up",
        {
            "format": "openai",
            "base_url": provider.url + "/v1",
            "keys": ["sk-up-Zx9Yw8Vu7Ts6Rq5Po4"],
            "models": {"m": "up-model", "*": "*"},
            "retry": {"retries": 0},
            **extra,
        },
    )


CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
ANTHROPIC = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


async def _post(gw, path="/v1/chat/completions", body=CHAT, key=KEY):
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        return await client.post(path, json=body, headers={"authorization": f"Bearer {key}"})


async def test_rpm_admits_a_burst_then_429s_in_each_format(nursery, tdir, provider, wall):
    _files(tdir, provider)
    gw = await start_gateway(
        nursery, tdir, config=_config(rpm=3), state=LocalState(clock=wall, wall=wall)
    )
    remaining = []
    for _ in range(3):
        reply = await _post(gw)
        assert reply.status_code == 200
        assert reply.headers["x-ratelimit-limit-requests"] == "3"
        remaining.append(reply.headers["x-ratelimit-remaining-requests"])
    assert remaining == ["2", "1", "0"]
    refused = [
        await _post(gw),
        await _post(gw, "/v1/messages", ANTHROPIC),
        await _post(gw, "/v1beta/models/m:generateContent", GEMINI),
    ]
    for reply in refused:
        assert reply.status_code == 429
        assert 1 <= int(reply.headers["retry-after"]) <= 20
        assert reply.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused[0].json()["error"]["type"] == "rate_limit_error"
    assert refused[1].json()["error"]["type"] == "rate_limit_error"
    assert refused[2].json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "rpm" in refused[0].json()["error"]["message"]
    assert len(provider.seen) == 3  # refused requests never reached the provider
    wall.now += 20  # one request's worth of refill (3 per 60 s)
    assert (await _post(gw)).status_code == 200
    assert (await _post(gw)).status_code == 429
    rejections = gw.app.metrics.statistics()["gateway_limit_rejections_total"]
    assert [(s.labels, s.value) for s in rejections.series] == [(("team", "rpm"), 4)]
    async with httpx.AsyncClient(base_url=gw.url) as client:
        text = (await client.get("/metrics")).text
    assert 'gateway_limit_rejections_total{key="team",limit="rpm"} 4' in text
    assert "gateway_redis_up" not in text  # no Redis, no gauge
    assert KEY not in text


async def test_concurrency_is_held_until_the_answer_is_done(nursery, tdir, provider, wall):
    _files(tdir, provider)
    provider.then(
        Step("json", body=openai_reply("slow"), delay_s=0.5), Step("json", body=openai_reply("ok"))
    )
    gw = await start_gateway(
        nursery, tdir, config=_config(concurrency=1), state=LocalState(clock=wall, wall=wall)
    )
    first: list[httpx.Response] = []

    async def slow() -> None:
        first.append(await _post(gw))

    nursery.start_soon(slow)
    await eventually(lambda: provider.in_handler.is_set(), 5)
    second = await _post(gw)
    assert second.status_code == 429
    assert "concurrency" in second.json()["error"]["message"]
    await eventually(lambda: bool(first), 5)
    assert first[0].status_code == 200
    assert (await _post(gw)).status_code == 200


async def test_tpm_reserves_an_estimate_and_settles_from_reported_usage(
    nursery, tdir, provider, wall
):
    _files(tdir, provider)
    answer = openai_reply("ok")
    answer["usage"] = {"prompt_tokens": 900, "completion_tokens": 100, "total_tokens": 1000}
    provider.then(Step("json", body=answer))
    gw = await start_gateway(
        nursery, tdir, config=_config(tpm=1000), state=LocalState(clock=wall, wall=wall)
    )
    reply = await _post(gw)
    assert reply.status_code == 200
    assert reply.headers["x-ratelimit-limit-tokens"] == "1000"
    # the provider reported 1,000 tokens: the bucket is empty, the next request waits
    refused = await _post(gw)
    assert refused.status_code == 429
    assert "tpm" in refused.json()["error"]["message"]
    wall.now += 30  # half the bucket back
    assert (await _post(gw)).status_code == 200


async def test_a_request_larger_than_the_whole_tpm_is_refused_without_retry_after(
    nursery, tdir, provider, wall
):
    _files(tdir, provider)
    gw = await start_gateway(
        nursery, tdir, config=_config(tpm=100), state=LocalState(clock=wall, wall=wall)
    )
    big = {"model": "m", "messages": [{"role": "user", "content": "word " * 400}]}
    reply = await _post(gw, body=big)
    assert reply.status_code == 429
    assert "retry-after" not in reply.headers
    assert "larger than" in reply.json()["error"]["message"]
    assert not provider.seen


async def test_a_daily_budget_refuses_until_the_next_utc_day(nursery, tdir, provider, wall):
    _files(tdir, provider)
    answer = openai_reply("ok")
    answer["usage"] = {"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60}
    provider.then(Step("json", body=answer))
    gw = await start_gateway(
        nursery, tdir, config=_config(tokens_per_day=50), state=LocalState(clock=wall, wall=wall)
    )
    assert (await _post(gw)).status_code == 200
    refused = await _post(gw)
    assert refused.status_code == 429
    assert "tokens_per_day" in refused.json()["error"]["message"]
    to_midnight = 86400 - wall.now % 86400
    assert int(refused.headers["retry-after"]) == pytest.approx(to_midnight, abs=2)
    wall.now += to_midnight + 1
    assert (await _post(gw)).status_code == 200


async def test_streams_settle_from_the_usage_in_their_last_events(nursery, tdir, provider, wall):
    _files(tdir, provider)
    chunks = [
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"up-model",'
        b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n',
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"up-model",'
        b'"choices":[],"usage":{"prompt_tokens":700,"completion_tokens":300,"total_tokens":1000}}'
        b"\n\n",
        b"data: [DONE]\n\n",
    ]
    provider.then(Step("sse", events=chunks))
    gw = await start_gateway(
        nursery, tdir, config=_config(tpm=1000), state=LocalState(clock=wall, wall=wall)
    )
    reply = await _post(gw, body={**CHAT, "stream": True})
    assert reply.status_code == 200
    assert "[DONE]" in reply.text
    assert (await _post(gw)).status_code == 429


async def test_a_provider_at_max_concurrency_hands_over_to_the_next_target(
    nursery, tdir, provider, backup, wall
):
    write_transformer(
        tdir,
        "up",
        {
            "format": "openai",
            "base_url": provider.url + "/v1",
            "models": {"m": {"model": "up-model", "fallbacks": ["backup/backup-model"]}, "*": "*"},
            "retry": {"retries": 0},
            "max_concurrency": 1,
        },
    )
    write_transformer(
        tdir,
        "backup",
        {"format": "openai", "base_url": backup.url + "/v1", "models": {"*": "*"}},
    )
    provider.then(Step("json", body=openai_reply("slow"), delay_s=0.5))
    backup.then(Step("json", body=openai_reply("from backup")))
    gw = await start_gateway(nursery, tdir, state=LocalState(clock=wall, wall=wall))
    first: list[httpx.Response] = []

    async def slow() -> None:
        first.append(await _post(gw))

    nursery.start_soon(slow)
    await eventually(lambda: provider.in_handler.is_set(), 5)
    handed_over = await _post(gw)  # "up" is at its cap: its fallback serves
    assert handed_over.status_code == 200
    assert handed_over.json()["choices"][0]["message"]["content"] == "from backup"
    capped = await _post(gw, body={**CHAT, "model": "up/up-model"})  # no fallback: 429
    assert capped.status_code == 429
    assert capped.headers["retry-after"] == "1"
    assert "max_concurrency" in capped.json()["error"]["message"]
    await eventually(lambda: bool(first), 5)
    assert first[0].status_code == 200
    assert len(provider.seen) == 1
    assert (await _post(gw, body={**CHAT, "model": "up/up-model"})).status_code == 200


async def test_usage_is_for_admin_keys_only(nursery, tdir, provider, wall):
    _files(tdir, provider)
    config = Config(
        auth=AuthConfig(
            keys=(
                AuthKey("team", KEY, tpm=10_000),
                AuthKey("ops", "gw-ops-Mn3Bv5Cx7Zl9Kj", admin=True),
            )
        )
    )
    answer = openai_reply("ok")
    answer["usage"] = {
        "prompt_tokens": 900,
        "completion_tokens": 100,
        "total_tokens": 1000,
        "prompt_tokens_details": {"cached_tokens": 600},
        "completion_tokens_details": {"reasoning_tokens": 40},
    }
    provider.then(Step("json", body=answer))
    gw = await start_gateway(nursery, tdir, config=config, state=LocalState(clock=wall, wall=wall))
    assert (await _post(gw)).status_code == 200
    async with httpx.AsyncClient(base_url=gw.url) as client:
        denied = await client.get("/v1/usage", headers={"authorization": f"Bearer {KEY}"})
        assert denied.status_code == 403
        report = (
            await client.get("/v1/usage", headers={"x-api-key": "gw-ops-Mn3Bv5Cx7Zl9Kj"})
        ).json()
    team = next(k for k in report["keys"] if k["name"] == "team")
    assert team["day"]["requests"] == 1
    # the ledger has what the provider reported, cached and reasoning parts included
    day = team["day"]
    assert (day["tokens_in"], day["tokens_out"], day["cached"], day["reasoning"]) == (
        900,
        100,
        600,
        40,
    )
    tokens = gw.app.metrics.statistics()["gateway_tokens_total"]
    assert {s.labels: s.value for s in tokens.series} == {
        ("up", "m", "in", "team"): 900,
        ("up", "m", "out", "team"): 100,
        ("up", "m", "cached", "team"): 600,
        ("up", "m", "reasoning", "team"): 40,
    }
    assert team["limits"]["tpm"] == 10_000
    assert json.dumps(report).count(KEY) == 0


async def test_no_admin_key_no_usage_endpoint(nursery, tdir, provider, wall):
    _files(tdir, provider)
    gw = await start_gateway(
        nursery, tdir, config=_config(rpm=5), state=LocalState(clock=wall, wall=wall)
    )
    async with httpx.AsyncClient(base_url=gw.url) as client:
        assert (await client.get("/v1/usage")).status_code == 404
    await trio.lowlevel.checkpoint()


async def test_a_big_body_reserves_its_estimate(nursery, tdir, provider, wall):
    """A 2 MiB prompt under a tpm key (estimated in a worker thread) reserves about a token
    per four characters of its text."""
    _files(tdir, provider)
    gw = await start_gateway(
        nursery, tdir, config=_config(tpm=10**9), state=LocalState(clock=wall, wall=wall)
    )
    words = [{"role": "user", "content": "w " * 50} for _ in range(20_000)]
    reply = await _post(gw, body={"model": "m", "messages": words})
    assert reply.status_code == 200
    remaining = int(reply.headers["x-ratelimit-remaining-tokens"])
    assert 10**9 - remaining >= 20_000 * 100 // 4  # about four characters a token
