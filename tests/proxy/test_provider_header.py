"""``x-gateway-provider`` and the access line's path fields: which provider answered,
after retries and fallbacks, and how it was reached (``target``, ``fallback``,
``retries``); the per-provider in-flight gauge while a provider works."""

from __future__ import annotations

import logging

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.proxy.fakes import (
    Step,
    eventually,
    openai_chunks,
    openai_reply,
    start_gateway,
    write_transformer,
)

BODY = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
STREAM = {**BODY, "stream": True}


def _provider(tdir, name, fake, **extra):
    spec = {
        "format": "openai",
        "base_url": fake.url + "/v1",
        "models": {"m": "up-model", "*": "*"},
        "retry": {"retries": 2, "backoff_s": 0.01},
        **extra,
    }
    write_transformer(tdir, name, spec)


def _err(status):
    return Step("status", status=status, body={"error": {"message": "boom", "type": "x"}})


def _gateway_lines(caplog) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "gateway.access" and getattr(r, "client_format", None) is not None
    ]


async def _access(caplog) -> list[logging.LogRecord]:
    """The gateway's access lines (the fakes log too), once the line is written: it is
    written when the request ends, which may be just after the client read its answer."""
    await eventually(lambda: bool(_gateway_lines(caplog)))
    return _gateway_lines(caplog)


def _path_fields(record: logging.LogRecord) -> dict[str, object]:
    names = ("provider", "target", "fallback", "retries")
    return {n: getattr(record, n) for n in names if hasattr(record, n)}


async def _post(gw, body, path="/v1/chat/completions"):
    async with (
        httpx.AsyncClient(base_url=gw.url, timeout=30) as client,
        client.stream("POST", path, json=body) as reply,
    ):
        await reply.aread()
    return reply


@pytest.mark.parametrize("body", [BODY, STREAM], ids=["whole", "stream"])
async def test_the_provider_that_answered_after_retries(nursery, provider, tdir, caplog, body):
    caplog.set_level(logging.INFO, logger="gateway.access")
    _provider(tdir, "p", provider)
    if body is STREAM:
        answer = Step("sse", events=openai_chunks(["third", "time"]))
    else:
        answer = Step("json", body=openai_reply("third time"))
    provider.then(_err(500), _err(502), answer)
    gw = await start_gateway(nursery, tdir)
    reply = await _post(gw, body)
    assert reply.status_code == 200
    assert reply.headers["x-gateway-provider"] == "p"
    assert reply.headers["x-request-id"]
    [line] = await _access(caplog)
    assert _path_fields(line) == {"provider": "p", "target": 0, "retries": 2}


@pytest.mark.parametrize("body", [BODY, STREAM], ids=["whole", "stream"])
async def test_a_fallback_answers_and_the_access_line_names_it(
    nursery, provider, backup, tdir, caplog, body
):
    caplog.set_level(logging.INFO, logger="gateway.access")
    _provider(
        tdir,
        "a-primary",
        provider,
        models={"m": {"model": "up-model", "fallbacks": ["b-backup/other-model"]}},
        retry={"retries": 1, "backoff_s": 0.01},
    )
    _provider(tdir, "b-backup", backup, models={"*": "*"})
    provider.then(_err(503))
    if body is STREAM:
        backup.then(Step("sse", events=openai_chunks(["from", "backup"])))
    else:
        backup.then(Step("json", body=openai_reply("from backup")))
    gw = await start_gateway(nursery, tdir)
    reply = await _post(gw, body)
    assert reply.status_code == 200
    assert b"backup" in reply.content
    assert reply.headers["x-gateway-provider"] == "b-backup"
    assert len(provider.seen) == 2  # both tries of the primary failed first
    [line] = await _access(caplog)
    assert _path_fields(line) == {
        "provider": "b-backup",
        "target": 1,
        "fallback": "b-backup/other-model",
        "retries": 0,
    }


async def test_the_second_provider_of_an_alias_is_a_later_target_not_a_fallback(
    nursery, provider, backup, tdir, caplog
):
    caplog.set_level(logging.INFO, logger="gateway.access")
    retry = {"retries": 0, "backoff_s": 0.01}
    _provider(tdir, "a", provider, models={"m": "up-model"}, retry=retry)
    _provider(tdir, "b", backup, models={"m": "up-model"}, retry=retry)
    provider.then(_err(500))  # a always fails, b always answers
    gw = await start_gateway(nursery, tdir)
    # The alias's providers take turns being first: once b is first (target 0), once a
    # is, fails, and b answers as the second target.
    for _ in range(2):
        reply = await _post(gw, BODY)
        assert reply.status_code == 200
        assert reply.headers["x-gateway-provider"] == "b"
    await eventually(lambda: len(_gateway_lines(caplog)) == 2)
    fields = [_path_fields(line) for line in _gateway_lines(caplog)]
    assert sorted(fields, key=lambda f: str(f["target"])) == [
        {"provider": "b", "target": 0, "retries": 0},
        {"provider": "b", "target": 1, "retries": 0},
    ]
    assert len(provider.seen) == 1


async def test_no_provider_answered_no_header_and_the_last_tried_is_logged(
    nursery, provider, tdir, caplog
):
    caplog.set_level(logging.INFO, logger="gateway.access")
    _provider(tdir, "p", provider)
    provider.then(_err(500))
    gw = await start_gateway(nursery, tdir)
    reply = await _post(gw, BODY)
    assert reply.status_code == 502
    assert "x-gateway-provider" not in reply.headers
    assert reply.headers["x-request-id"]
    [line] = await _access(caplog)
    assert _path_fields(line) == {"provider": "p", "target": 0, "retries": 3}


@pytest.mark.parametrize("body", [BODY, STREAM], ids=["whole", "stream"])
async def test_the_mock_and_an_emulated_stream_name_their_provider(nursery, provider, tdir, body):
    write_transformer(tdir, "mock", {"format": "mock", "models": {"mock-1": "mock-1"}})
    _provider(tdir, "emu", provider, models={"e": "up-model"}, stream="emulate")
    provider.then(Step("json", body=openai_reply("whole")))
    gw = await start_gateway(nursery, tdir)
    mock = await _post(gw, {**body, "model": "mock-1"})
    assert mock.status_code == 200
    assert mock.headers["x-gateway-provider"] == "mock"
    emulated = await _post(gw, {**body, "model": "e"})
    assert emulated.status_code == 200
    assert emulated.headers["x-gateway-provider"] == "emu"


async def test_an_estimated_count_names_the_provider_it_was_routed_to(nursery, provider, tdir):
    _provider(tdir, "p", provider)  # an OpenAI-format provider cannot count Anthropic tokens
    gw = await start_gateway(nursery, tdir)
    body = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}
    reply = await _post(gw, body, "/v1/messages/count_tokens")
    assert reply.status_code == 200
    assert reply.headers["x-gateway-token-count"] == "estimated"
    assert reply.headers["x-gateway-provider"] == "p"
    assert provider.seen == []


async def test_a_name_that_is_not_plain_ascii_is_percent_encoded(nursery, provider, tdir):
    _provider(tdir, "prövider", provider)
    gw = await start_gateway(nursery, tdir)
    reply = await _post(gw, BODY)
    assert reply.status_code == 200
    assert reply.headers["x-gateway-provider"] == "pr%C3%B6vider"


def _provider_inflight(text: str) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "gateway_provider_inflight_requests":
                out[s.labels["provider"]] = s.value
    return out


async def test_provider_inflight_counts_tries_under_way(nursery, provider, tdir):
    _provider(tdir, "p", provider, retry={"retries": 0, "backoff_s": 0.01})
    provider.then(Step("json", body=openai_reply("slow"), delay_s=0.5), Step("json"))
    gw = await start_gateway(nursery, tdir)
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        async with trio.open_nursery() as inner:
            inner.start_soon(_post, gw, BODY)
            with trio.fail_after(5):
                await provider.in_handler.wait()
            during = _provider_inflight((await client.get("/metrics")).text)
        after = _provider_inflight((await client.get("/metrics")).text)
    assert during == {"p": 1}
    assert after == {"p": 0}
    await eventually(lambda: gw.app.metrics.inflight.statistics().value() == 0)
