"""Same-format proxying with the official SDKs as clients and a fake provider upstream."""

from __future__ import annotations

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

pytestmark = pytest.mark.usefixtures("provider")


def _files(tdir, provider, **extra):
    write_transformer(
        tdir,
        "up-openai",
        {
            "format": "openai",
            "base_url": provider.url + "/v1",
            "keys": ["${UP_KEY}"],
            "headers": {"X-Org": "org-1"},
            "models": {"alias-o": "up-model", "*": "*"},
            "retry": {"retries": 2, "backoff_s": 0.01},
            **extra,
        },
    )
    write_transformer(
        tdir,
        "up-anthropic",
        {
            "format": "anthropic",
            "base_url": provider.url + "/v1",
            "keys": ["${UP_KEY}"],
            "models": {"alias-a": "up-model", "*": "*"},
            "retry": {"retries": 2, "backoff_s": 0.01},
        },
    )
    write_transformer(
        tdir,
        "up-gemini",
        {
            "format": "gemini",
            "base_url": provider.url + "/v1beta",
            "keys": ["${UP_KEY}"],
            "models": {"alias-g": "up-model", "*": "*"},
            "retry": {"retries": 2, "backoff_s": 0.01},
        },
    )


ENV = {"UP_KEY": "sk-provider-key-123456"}


_CLIENTS: list = []


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def _openai(gw):
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="client-key", max_retries=0)
    _CLIENTS.append(client)
    return client


def _anthropic(gw):
    client = anthropic.Anthropic(base_url=gw.url, api_key="client-key", max_retries=0)
    _CLIENTS.append(client)
    return client


def _genai(gw):
    client = genai.Client(
        api_key="client-key",
        http_options=gtypes.HttpOptions(base_url=gw.url, api_version="v1beta"),
    )
    _CLIENTS.append(client)
    return client


def _assert_clean_upstream_headers(seen, auth_header, auth_value):
    assert seen.headers[auth_header] == auth_value
    for name, value in seen.headers.items():
        assert "client-key" not in value, name  # the client's credential is never forwarded
    assert "accept-encoding" not in seen.headers or seen.headers["accept-encoding"] == "identity"


async def test_openai_non_stream(nursery, provider, tdir):
    _files(tdir, provider)
    provider.then(Step("json", body=openai_reply("hello there")))
    gw = await start_gateway(nursery, tdir, ENV)

    def call():
        return _openai(gw).chat.completions.create(
            model="alias-o",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"vendor_field": {"x": 1}},
            extra_headers={"x-request-id": "rid-42", "OpenAI-Beta": "assistants=v2"},
        )

    reply = await trio.to_thread.run_sync(call)
    assert reply.choices[0].message.content == "hello there"
    seen = provider.seen[-1]
    assert seen.path == "/v1/chat/completions"
    assert seen.body["model"] == "up-model"
    assert seen.body["vendor_field"] == {"x": 1}  # unknown fields pass through untouched
    assert seen.body["messages"] == [{"role": "user", "content": "hi"}]
    _assert_clean_upstream_headers(seen, "authorization", "Bearer sk-provider-key-123456")
    assert seen.headers["x-org"] == "org-1"
    assert seen.headers["x-request-id"] == "rid-42"
    assert seen.headers["openai-beta"] == "assistants=v2"


async def test_openai_stream(nursery, provider, tdir):
    _files(tdir, provider)
    provider.then(Step("sse", events=openai_chunks(["Hel", "lo", "!"])))
    gw = await start_gateway(nursery, tdir, ENV)

    def call():
        stream = _openai(gw).chat.completions.create(
            model="up-openai/some-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        return [c.choices[0].delta.content for c in stream if c.choices]

    parts = await trio.to_thread.run_sync(call)
    assert "".join(p for p in parts if p) == "Hello!"
    assert provider.seen[-1].body["model"] == "some-model"
    assert provider.seen[-1].body["stream"] is True


async def test_anthropic_non_stream_and_stream(nursery, provider, tdir):
    _files(tdir, provider)
    provider.then(
        Step("json", body=anthropic_reply("hi from claude")),
        Step("sse", events=anthropic_events(["Hi", " there"])),
    )
    gw = await start_gateway(nursery, tdir, ENV)

    def call():
        client = _anthropic(gw)
        msg = client.messages.create(
            model="alias-a",
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"anthropic-beta": "tools-2024-04-04"},
        )
        with client.messages.stream(
            model="alias-a", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            final = stream.get_final_message()
        return msg, final

    msg, final = await trio.to_thread.run_sync(call)
    assert msg.content[0].text == "hi from claude"
    assert final.content[0].text == "Hi there"
    assert final.stop_reason == "end_turn"
    first = provider.seen[0]
    assert first.path == "/v1/messages"
    assert first.body["model"] == "up-model"
    _assert_clean_upstream_headers(first, "x-api-key", "sk-provider-key-123456")
    assert (
        first.headers["anthropic-version"]
        == anthropic.Anthropic(api_key="x").default_headers["anthropic-version"]
    )  # the client's own version is forwarded
    assert first.headers["anthropic-beta"] == "tools-2024-04-04"
    assert "authorization" not in first.headers


async def test_anthropic_version_defaults_when_the_client_sends_none(nursery, provider, tdir):
    import httpx

    _files(tdir, provider)
    provider.then(Step("json", body=anthropic_reply("ok")))
    gw = await start_gateway(nursery, tdir, ENV)
    body = {"model": "alias-a", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    reply = await trio.to_thread.run_sync(
        lambda: httpx.post(gw.url + "/v1/messages", json=body, headers={"x-api-key": "client-key"})
    )
    assert reply.status_code == 200
    assert provider.seen[-1].headers["anthropic-version"] == "2023-06-01"


async def test_gemini_non_stream_and_stream(nursery, provider, tdir):
    _files(tdir, provider)
    provider.then(
        Step("json", body=gemini_reply("gemini says hi")),
        Step("sse", events=gemini_events(["Hel", "lo"])),
    )
    gw = await start_gateway(nursery, tdir, ENV)

    def call():
        client = _genai(gw)
        one = client.models.generate_content(model="alias-g", contents="hi")
        parts = [
            c.text for c in client.models.generate_content_stream(model="alias-g", contents="hi")
        ]
        return one, parts

    one, parts = await trio.to_thread.run_sync(call)
    assert one.text == "gemini says hi"
    assert "".join(parts) == "Hello"
    assert provider.seen[0].path == "/v1beta/models/up-model:generateContent"
    assert provider.seen[1].path == "/v1beta/models/up-model:streamGenerateContent?alt=sse"
    _assert_clean_upstream_headers(provider.seen[0], "x-goog-api-key", "sk-provider-key-123456")


async def test_model_max_tokens_clamps_and_fills(nursery, provider, tdir):
    write_transformer(
        tdir,
        "p",
        {
            "format": "openai",
            "base_url": provider.url + "/v1",
            "models": {"small": {"model": "up-model", "max_tokens": 50}},
        },
    )
    gw = await start_gateway(nursery, tdir, ENV)

    def call(**kw):
        return _openai(gw).chat.completions.create(
            model="small", messages=[{"role": "user", "content": "hi"}], **kw
        )

    await trio.to_thread.run_sync(lambda: call(max_tokens=1000))
    await trio.to_thread.run_sync(lambda: call(max_tokens=10))
    await trio.to_thread.run_sync(call)
    assert [s.body["max_tokens"] for s in provider.seen] == [50, 10, 50]
    assert "authorization" not in provider.seen[0].headers  # no keys listed: none sent


async def test_request_edits_apply(nursery, provider, tdir):
    _files(
        tdir,
        provider,
        request={"defaults": {"temperature": 0.1}, "override": {"user": "gw"}, "drop": ["seed"]},
    )
    gw = await start_gateway(nursery, tdir, ENV)
    await trio.to_thread.run_sync(
        lambda: _openai(gw).chat.completions.create(
            model="alias-o", messages=[{"role": "user", "content": "x"}], seed=7, user="me"
        )
    )
    body = provider.seen[-1].body
    assert body["temperature"] == 0.1
    assert body["user"] == "gw"
    assert "seed" not in body


async def test_models_listing(nursery, provider, tdir):
    _files(tdir, provider)
    gw = await start_gateway(nursery, tdir, ENV)
    models = await trio.to_thread.run_sync(lambda: _openai(gw).models.list())
    ids = {m.id: m.owned_by for m in models.data}
    assert ids == {"alias-o": "up-openai", "alias-a": "up-anthropic", "alias-g": "up-gemini"}
    one = await trio.to_thread.run_sync(lambda: _openai(gw).models.retrieve("alias-a"))
    assert one.owned_by == "up-anthropic"
    with pytest.raises(openai.NotFoundError):
        await trio.to_thread.run_sync(lambda: _openai(gw).models.retrieve("nope"))


async def test_each_sdk_survives_its_own_keepalives(nursery, provider, tdir):
    _files(tdir, provider)
    provider.then(
        Step("sse", events=[b"<pause>", *openai_chunks(["o", "k"])], delay_s=0.4),
        Step("sse", events=[b"<pause>", *anthropic_events(["o", "k"])], delay_s=0.4),
        Step("sse", events=[b"<pause>", *gemini_events(["o", "k"])], delay_s=0.4),
    )

    def tweak(app):
        app.proxy.keepalive_s = 0.05  # several keep-alives before the first token

    gw = await start_gateway(nursery, tdir, ENV, tweak=tweak)

    def call():
        stream = _openai(gw).chat.completions.create(
            model="alias-o", messages=[{"role": "user", "content": "x"}], stream=True
        )
        oai = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        with _anthropic(gw).messages.stream(
            model="alias-a", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        ) as s:
            ant = s.get_final_message().content[0].text
        gem = "".join(
            c.text or ""
            for c in _genai(gw).models.generate_content_stream(model="alias-g", contents="x")
        )
        return oai, ant, gem

    assert await trio.to_thread.run_sync(call) == ("ok", "ok", "ok")


async def test_count_tokens_is_forwarded_to_anthropic_providers(nursery, provider, tdir):
    _files(tdir, provider)
    provider.then(Step("json", body={"input_tokens": 42}))
    gw = await start_gateway(nursery, tdir, ENV)
    count = await trio.to_thread.run_sync(
        lambda: _anthropic(gw).messages.count_tokens(
            model="alias-a", messages=[{"role": "user", "content": "hi"}]
        )
    )
    assert count.input_tokens == 42
    assert provider.seen[-1].path == "/v1/messages/count_tokens"
    assert provider.seen[-1].body["model"] == "up-model"
