"""Any client format to any provider format, through the running gateway, with the SDKs."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
import trio
from google import genai
from google.genai import types as gtypes

from tests.proxy.fakes import (
    Step,
    anthropic_events,
    anthropic_reply,
    gemini_events,
    gemini_reply,
    openai_chunks,
    openai_reply,
    start_gateway,
    write_transformer,
)

REPLIES = {
    "openai": (
        lambda t: Step("json", body=openai_reply(t)),
        lambda p: Step("sse", events=openai_chunks(p)),
    ),
    "anthropic": (
        lambda t: Step("json", body=anthropic_reply(t)),
        lambda p: Step("sse", events=anthropic_events(p)),
    ),
    "gemini": (
        lambda t: Step("json", body=gemini_reply(t)),
        lambda p: Step("sse", events=gemini_events(p)),
    ),
}
PAIRS = [
    (c, p) for c in ("openai", "anthropic", "gemini") for p in ("openai", "anthropic", "gemini")
]


def _transformer(tdir, provider, fmt):
    write_transformer(
        tdir,
        "up",
        {
            "format": fmt,
            "base_url": provider.url + ("/v1beta" if fmt == "gemini" else "/v1"),
            "keys": ["${UP_KEY}"],
            "models": {"the-model": "up-model"},
        },
    )


def _ask(client_fmt, url, stream):
    """Ask 'hello' through the SDK of ``client_fmt``; returns the answer text."""
    if client_fmt == "openai":
        with openai.OpenAI(base_url=url + "/v1", api_key="c", max_retries=0) as client:
            kwargs = {
                "model": "the-model",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hello"},
                ],
            }
            if not stream:
                return client.chat.completions.create(**kwargs).choices[0].message.content
            chunks = client.chat.completions.create(**kwargs, stream=True)
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    if client_fmt == "anthropic":
        with anthropic.Anthropic(base_url=url, api_key="c", max_retries=0) as client:
            kwargs = {
                "model": "the-model",
                "max_tokens": 64,
                "system": "be brief",
                "messages": [{"role": "user", "content": "hello"}],
            }
            if not stream:
                return client.messages.create(**kwargs).content[0].text
            with client.messages.stream(**kwargs) as s:
                return s.get_final_message().content[0].text
    client = genai.Client(
        api_key="c", http_options=gtypes.HttpOptions(base_url=url, api_version="v1beta")
    )
    try:
        config = gtypes.GenerateContentConfig(system_instruction="be brief")
        if not stream:
            return client.models.generate_content(
                model="the-model", contents="hello", config=config
            ).text
        return "".join(
            c.text or ""
            for c in client.models.generate_content_stream(
                model="the-model", contents="hello", config=config
            )
        )
    finally:
        client.close()


def _user_text_and_system(fmt, body):
    if fmt == "openai":
        system = [m["content"] for m in body["messages"] if m["role"] == "system"]
        user = [m["content"] for m in body["messages"] if m["role"] == "user"]
        return json.dumps(user), json.dumps(system)
    if fmt == "anthropic":
        return json.dumps(body["messages"]), json.dumps(body.get("system"))
    return json.dumps(body["contents"]), json.dumps(body.get("systemInstruction"))


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("client_fmt", "provider_fmt"), PAIRS)
async def test_text_round_trip(nursery, provider, tdir, client_fmt, provider_fmt, stream):
    _transformer(tdir, provider, provider_fmt)
    whole, streamed = REPLIES[provider_fmt]
    provider.then(streamed(["Hi", " there"]) if stream else whole("Hi there"))
    gw = await start_gateway(nursery, tdir, {"UP_KEY": "pk-123"})
    answer = await trio.to_thread.run_sync(lambda: _ask(client_fmt, gw.url, stream))
    assert answer == "Hi there"
    seen = provider.seen[-1]
    user, system = _user_text_and_system(provider_fmt, seen.body)
    assert "hello" in user
    assert "be brief" in system
    if provider_fmt == "gemini":
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        assert seen.path == f"/v1beta/models/up-model:{method}"
    else:
        assert seen.body["model"] == "up-model"
        assert bool(seen.body.get("stream")) == stream
    if provider_fmt == "anthropic":
        assert seen.body["max_tokens"] > 0  # Anthropic requires it: a default fills in


async def test_claude_code_path_tool_calls_stream_from_an_openai_provider(nursery, provider, tdir):
    """Anthropic client, OpenAI provider, two parallel tool calls streamed in fragments."""
    _transformer(tdir, provider, "openai")

    def chunk(delta, finish=None):
        data = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "up-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    events = [
        chunk({"role": "assistant", "content": "Let me check."}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Pa'}}]}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": '{"tz":'},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ris"}'}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": ' "CET"}'}}]}),
        chunk({}, "tool_calls"),
        b"data: [DONE]\n\n",
    ]
    provider.then(Step("sse", events=events))
    gw = await start_gateway(nursery, tdir, {"UP_KEY": "pk-123"})
    tools = [
        {
            "name": "get_weather",
            "description": "w",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {
            "name": "get_time",
            "description": "t",
            "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}},
        },
    ]

    def call():
        with (
            anthropic.Anthropic(base_url=gw.url, api_key="c", max_retries=0) as client,
            client.messages.stream(
                model="the-model",
                max_tokens=100,
                tools=tools,
                messages=[{"role": "user", "content": "weather and time?"}],
            ) as s,
        ):
            return s.get_final_message()

    final = await trio.to_thread.run_sync(call)
    assert final.stop_reason == "tool_use"
    assert final.content[0].text == "Let me check."
    uses = [b for b in final.content if b.type == "tool_use"]
    assert [(u.id, u.name, u.input) for u in uses] == [
        ("call_a", "get_weather", {"city": "Paris"}),
        ("call_b", "get_time", {"tz": "CET"}),
    ]
    sent = provider.seen[-1].body
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather", "get_time"]


async def test_upstream_error_reaches_a_converted_client_in_its_format(nursery, provider, tdir):
    _transformer(tdir, provider, "gemini")
    provider.then(
        Step(
            "status",
            status=400,
            body={"error": {"code": 400, "message": "bad schema", "status": "INVALID_ARGUMENT"}},
        )
    )
    gw = await start_gateway(nursery, tdir, {"UP_KEY": "pk-123"})
    with pytest.raises(anthropic.BadRequestError) as info:
        await trio.to_thread.run_sync(lambda: _ask("anthropic", gw.url, False))
    assert "bad schema" in str(info.value)


async def test_count_tokens_on_a_non_anthropic_provider_is_an_estimate(nursery, provider, tdir):
    _transformer(tdir, provider, "openai")
    gw = await start_gateway(nursery, tdir, {"UP_KEY": "pk-123"})

    def call():
        with anthropic.Anthropic(base_url=gw.url, api_key="c", max_retries=0) as client:
            raw = client.messages.with_raw_response.count_tokens(
                model="the-model", messages=[{"role": "user", "content": "x" * 400}]
            )
            return raw.headers.get("x-gateway-token-count"), raw.parse().input_tokens

    marker, tokens = await trio.to_thread.run_sync(call)
    assert marker == "estimated"
    assert 90 <= tokens <= 110
    assert provider.seen == []


def _emulated(tdir, provider, fmt, **extra):
    write_transformer(
        tdir,
        "up",
        {
            "format": fmt,
            "base_url": provider.url + ("/v1beta" if fmt == "gemini" else "/v1"),
            "models": {"the-model": "up-model"},
            "stream": "emulate",
            "retry": {"retries": 1, "backoff_s": 0.01},
            **extra,
        },
    )


@pytest.mark.parametrize(
    ("client_fmt", "provider_fmt"),
    [("openai", "anthropic"), ("openai", "openai"), ("anthropic", "gemini"), ("gemini", "openai")],
)
async def test_emulated_stream_from_a_provider_that_cannot_stream(
    nursery, provider, tdir, client_fmt, provider_fmt
):
    _emulated(tdir, provider, provider_fmt)
    whole, _ = REPLIES[provider_fmt]
    step = whole("Hi there")
    step.delay_s = 0.3  # the provider thinks; keep-alives go out meanwhile
    provider.then(step)

    def tweak(app):
        app.proxy.keepalive_s = 0.05

    gw = await start_gateway(nursery, tdir, tweak=tweak)
    answer = await trio.to_thread.run_sync(lambda: _ask(client_fmt, gw.url, True))
    assert answer == "Hi there"
    seen = provider.seen[-1]
    if provider_fmt == "gemini":
        assert seen.path.endswith(":generateContent")
    else:
        assert not seen.body.get("stream")  # the provider was asked for a whole answer


async def test_emulated_stream_failure_arrives_in_stream(nursery, provider, tdir):
    import httpx

    _emulated(tdir, provider, "openai")
    provider.then(Step("status", status=500, body={"error": {"message": "down for repairs"}}))
    gw = await start_gateway(nursery, tdir)
    body = {"model": "the-model", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    async with httpx.AsyncClient(base_url=gw.url) as client:
        reply = await client.post("/v1/chat/completions", json=body)
    assert reply.status_code == 200  # the status went out before the provider answered
    assert reply.headers["content-type"].startswith("text/event-stream")
    data = [line[5:] for line in reply.text.splitlines() if line.startswith("data:")]
    assert "down for repairs" in json.loads(data[-1])["error"]["message"]
    assert len(provider.seen) == 2  # retried before giving up
