"""Issue 8 item 19: ``gateway_tokens_total`` counts the usage providers report.

Every client format x provider format, streamed and not, same-format (relayed as
bytes) and converted, plus emulated streams and the mock provider: the tokens the
provider reported show up once in ``/metrics`` (read with prometheus_client's parser)
and on the access-log line. Each provider reports a prompt of 13 tokens (3 of them
read from its cache) and 7 output tokens (2 of them reasoning) in its own way:
OpenAI's final chunk (earlier ones say ``"usage": null``; ``prompt_tokens_details``,
``completion_tokens_details``), Anthropic's ``message_start`` (uncached + cache read +
cache write) then ``message_delta`` (``output_tokens_details.thinking_tokens``),
Gemini's cumulative ``usageMetadata`` on several chunks (which must not be added up;
``thoughtsTokenCount`` beside ``candidatesTokenCount``, ``cachedContentTokenCount``
inside ``promptTokenCount``). Cached tokens are a part of ``in`` (cache writes are
not cached reads), reasoning a part of ``out``.
"""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.usage import MAX_MISSES, UsageReader, clamp_tokens
from tests.proxy.fakes import Step, start_gateway, write_transformer

ENV = {"UP_KEY": "sk-provider-key-123456"}
FORMATS = ("openai", "anthropic", "gemini")
IN, OUT = 13, 7
CACHED, REASONING = 3, 2
#: Anthropic only: prompt tokens written to the cache (part of in, not of cached).
CACHE_WRITE = 4
WANT = {"in": IN, "out": OUT, "cached": CACHED, "reasoning": REASONING}


def _openai_usage():
    return {
        "prompt_tokens": IN,
        "completion_tokens": OUT,
        "total_tokens": IN + OUT,
        "prompt_tokens_details": {"cached_tokens": CACHED, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": REASONING},
    }


# -- what each provider format says ------------------------------------------------------------


def _sse(obj, event=None, crlf=False):
    end = b"\r\n\r\n" if crlf else b"\n\n"
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(obj).encode() + end


def _openai_reply():
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "up",
        "choices": [
            {
                "index": 0,
                # a "usage" key spelled inside the text must not be read as usage
                "message": {"role": "assistant", "content": 'say "usage": {"prompt_tokens": 99}'},
                "finish_reason": "stop",
            }
        ],
        "usage": _openai_usage(),
    }


def _openai_events():
    def chunk(delta, finish=None, usage=None, choices=True):
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "up",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [],
            "usage": usage,
        }

    return [
        _sse(chunk({"role": "assistant", "content": "Hel"})),
        _sse(chunk({"content": 'lo "usage":{"prompt_tokens":5}'})),
        _sse(chunk({}, "stop")),
        _sse(
            chunk(
                {},
                usage=_openai_usage(),
                choices=False,
            )
        ),
        b"data: [DONE]\n\n",
    ]


def _anthropic_usage(**extra):
    return {
        "input_tokens": IN - CACHED - CACHE_WRITE,
        "cache_read_input_tokens": CACHED,
        "cache_creation_input_tokens": CACHE_WRITE,
        **extra,
    }


def _anthropic_reply():
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "up",
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(
            output_tokens=OUT, output_tokens_details={"thinking_tokens": REASONING}
        ),
    }


def _anthropic_events():
    msg = {**_anthropic_reply(), "content": [], "stop_reason": None}
    msg["usage"] = _anthropic_usage(output_tokens=1)
    return [
        _sse({"type": "message_start", "message": msg}, "message_start"),
        _sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        _sse(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hello"},
            },
            "content_block_delta",
        ),
        _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {
                    "output_tokens": OUT,
                    "output_tokens_details": {"thinking_tokens": REASONING},
                },
            },
            "message_delta",
        ),
        _sse({"type": "message_stop"}, "message_stop"),
    ]


def _gemini_reply():
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "Hello"}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": IN,
            "cachedContentTokenCount": CACHED,
            "candidatesTokenCount": OUT - REASONING,
            "thoughtsTokenCount": REASONING,
            "totalTokenCount": IN + OUT,
        },
        "modelVersion": "up",
    }


def _gemini_events():
    def chunk(text, out, finish=None):
        cand = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        if finish:
            cand["finishReason"] = finish
        usage = {
            "promptTokenCount": IN,
            "cachedContentTokenCount": CACHED,
            "candidatesTokenCount": out - REASONING,
            "thoughtsTokenCount": REASONING,
            "totalTokenCount": IN + out,
        }
        return _sse({"candidates": [cand], "usageMetadata": usage, "modelVersion": "up"}, crlf=True)

    return [chunk("Hel", 2), chunk("lo", 5), chunk("", OUT, "STOP")]


REPLIES = {"openai": _openai_reply, "anthropic": _anthropic_reply, "gemini": _gemini_reply}
EVENTS = {"openai": _openai_events, "anthropic": _anthropic_events, "gemini": _gemini_events}
BASE = {"openai": "/v1", "anthropic": "/v1", "gemini": "/v1beta"}


def _provider_file(tdir, provider, fmt, **extra):
    write_transformer(
        tdir,
        f"p-{fmt}",
        {
            "format": fmt,
            "base_url": provider.url + BASE[fmt],
            "keys": ["${UP_KEY}"],
            "models": {f"m-{fmt}": "up"},
            "retry": {"retries": 0, "backoff_s": 0},
            **extra,
        },
    )


async def _ask(client, fmt, model, stream):
    """One request in the client format ``fmt``; the whole answer read."""
    if fmt == "openai":
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        path = "/v1/chat/completions"
    elif fmt == "anthropic":
        body = {"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
        body |= {"stream": True} if stream else {}
        path = "/v1/messages"
    else:
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        path = f"/v1beta/models/{model}:{method}"
    async with client.stream("POST", path, json=body) as reply:
        data = await reply.aread()
    assert reply.status_code == 200, data
    return data


def _tokens(text):
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "gateway_tokens_total":
                labels = s.labels
                assert labels["key"] == ""  # the gateway is open: no client key
                out[(labels["provider"], labels["model"], labels["direction"])] = s.value
    return out


async def _metrics(client):
    return _tokens((await client.get("/metrics")).text)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("upstream", FORMATS)
@pytest.mark.parametrize("client_fmt", FORMATS)
async def test_tokens_counted_for_every_format_pair(
    nursery, provider, tdir, client_fmt, upstream, stream, caplog
):
    _provider_file(tdir, provider, upstream)
    if stream:
        provider.then(Step("sse", events=EVENTS[upstream]()))
    else:
        provider.then(Step("json", body=REPLIES[upstream]()))
    gw = await start_gateway(nursery, tdir, ENV)
    model = f"m-{upstream}"
    caplog.set_level(logging.INFO, logger="gateway.access")
    async with httpx.AsyncClient(base_url=gw.url) as client:
        await _ask(client, client_fmt, model, stream)
        want = {(f"p-{upstream}", model, d): n for d, n in WANT.items()}
        assert await _metrics(client) == want
        # a second request adds the same again: nothing is double counted or left over
        await _ask(client, client_fmt, model, stream)
        assert await _metrics(client) == {k: 2 * v for k, v in want.items()}
    lines = [r for r in caplog.records if r.name == "gateway.access" and "/metrics" not in r.msg]
    proxied = [r for r in lines if getattr(r, "provider", None) == f"p-{upstream}"]
    assert proxied
    fields = ("tokens_in", "tokens_out", "tokens_cached", "tokens_reasoning")
    assert all(
        tuple(getattr(r, f, None) for f in fields) == (IN, OUT, CACHED, REASONING) for r in proxied
    )


@pytest.mark.parametrize("upstream", ["openai", "anthropic"])
async def test_emulated_streams_count_tokens(nursery, provider, tdir, upstream):
    _provider_file(tdir, provider, upstream, stream="emulate")
    provider.then(Step("json", body=REPLIES[upstream]()))
    gw = await start_gateway(nursery, tdir, ENV)
    async with httpx.AsyncClient(base_url=gw.url) as client:
        data = await _ask(client, "openai", f"m-{upstream}", True)
        assert b"[DONE]" in data
        got = await _metrics(client)
    model = f"m-{upstream}"
    assert got == {(f"p-{upstream}", model, d): n for d, n in WANT.items()}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("client_fmt", FORMATS)
async def test_mock_provider_counts_its_tokens(nursery, tdir, client_fmt, stream):
    write_transformer(tdir, "mock", {"format": "mock", "models": {"mock-1": "mock-1"}})
    gw = await start_gateway(nursery, tdir)
    async with httpx.AsyncClient(base_url=gw.url) as client:
        await _ask(client, client_fmt, "mock-1", stream)
        got = await _metrics(client)
    assert got[("mock", "mock-1", "in")] >= 1
    assert got[("mock", "mock-1", "out")] >= 1
    # The mock reads no cache and does not reason: no such series, nothing made up.
    assert set(got) == {("mock", "mock-1", "in"), ("mock", "mock-1", "out")}


async def test_a_stream_cut_short_counts_what_was_reported(nursery, provider, tdir):
    """A stream whose provider goes silent after reporting usage still counts it."""
    _provider_file(tdir, provider, "gemini", timeouts={"idle": 0.3})
    provider.then(Step("silent_after", events=_gemini_events()[:2]))
    gw = await start_gateway(nursery, tdir, ENV)
    async with httpx.AsyncClient(base_url=gw.url) as client:
        data = await _ask(client, "gemini", "m-gemini", True)
        assert b'"error"' in data
        got = await _metrics(client)
    want = {**WANT, "out": 5}
    assert got == {("p-gemini", "m-gemini", d): n for d, n in want.items()}


# -- the byte-level reader on its own ---------------------------------------------------------


def test_reader_takes_the_last_snapshot_and_skips_nulls_and_text():
    reader = UsageReader("openai")
    for event in _openai_events():
        reader.scan(event)
    assert reader.usage is not None
    assert (reader.usage.input_tokens, reader.usage.output_tokens) == (IN, OUT)
    assert (reader.usage.cached_tokens, reader.usage.reasoning_tokens) == (CACHED, REASONING)
    whole = UsageReader("openai")
    whole.read_object(json.loads(json.dumps(_openai_reply(), indent=2)))  # a decoded answer
    assert whole.usage is not None
    assert whole.usage.input_tokens == IN
    nothing = UsageReader("gemini")
    nothing.read_object(
        json.loads(b'{"candidates": [{"content": {"parts": [{"text": "\\"usageMetadata\\""}]}}]}')
    )
    assert nothing.usage is None


def test_reader_gives_up_on_a_flood_of_junk_usage_keys():
    """Hostile bytes: a million usage keys with broken objects cost little and count nothing."""
    junk = b'data: {"usage":{"prompt_tokens":[[[[' * 200_000 + b"\n\n"
    reader = UsageReader("openai")
    started = time.perf_counter()
    for _ in range(5):
        reader.scan(junk)
    assert time.perf_counter() - started < 5.0  # a few ms in practice
    assert reader.usage is None
    assert reader._misses == MAX_MISSES
    nested = UsageReader("anthropic")
    nested.scan(b'data: {"usage":' + b"[" * 100_000 + b"\n\n")
    assert nested.usage is None
    bogus = UsageReader("gemini")
    bogus.scan(b'data: {"usageMetadata":{"promptTokenCount":-5,"candidatesTokenCount":1e400}}\n\n')
    bogus.scan(b'data: {"usageMetadata":{"promptTokenCount":NaN}}\n\n')
    assert bogus.usage is None
    assert (clamp_tokens(-5), clamp_tokens(10**30)) == (0, 2**53)
