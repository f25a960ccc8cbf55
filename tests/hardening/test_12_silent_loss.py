"""Issue 8 item 12: what a provider fails to deliver reaches the client as an error, never as
a clean, complete-looking answer.

- ``"stream": "emulate"`` with a garbage answer: an in-stream error, not an empty stream;
- a converted stream with an undecodable ``data:`` event: an in-stream error, not a skip;
- a stream (same-format or converted) that ends without its terminal event: an in-stream
  error, not a normal stop;
- a same-format non-stream 200 that is HTML or invalid JSON: a 502 in the caller's format.
"""

from __future__ import annotations

import json

import pytest

from tests.hardening.rawprovider import (
    CLIENT_FORMATS,
    RawProvider,
    answer,
    assert_error_answer,
    assert_stream_error,
    call,
    provider_file,
    sse,
    stream_events,
)
from tests.proxy.fakes import (
    anthropic_events,
    gemini_events,
    openai_chunks,
    start_gateway,
)


@pytest.fixture
async def raw_provider(nursery) -> RawProvider:
    fake = RawProvider()
    await nursery.start(fake.serve)
    return fake


GARBAGE = {
    "html": (b"<html><body>502 Bad Gateway</body></html>", "text/html"),
    "invalid-json": (b'{"choices": [', "application/json"),
    "not-an-object": (b"[1, 2, 3]", "application/json"),
    "empty": (b"", "application/json"),
    "wrong-types": (b'{"choices": 5, "content": 7, "candidates": "x"}', "application/json"),
    "no-answer": (b'{"choices": [], "content": [5], "candidates": []}', "application/json"),
}


@pytest.mark.parametrize("provider_fmt", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("garbage", list(GARBAGE))
async def test_emulated_stream_of_a_garbage_answer_is_an_error(
    nursery, raw_provider, tmp_path, provider_fmt, garbage
):
    body, ctype = GARBAGE[garbage]
    raw_provider.then(answer(200, body, content_type=ctype))
    provider_file(tmp_path, raw_provider.url, provider_fmt, stream="emulate")
    gw = await start_gateway(nursery, tmp_path)
    for fmt in CLIENT_FORMATS:
        reply = await call(gw.url, fmt, True)
        message = assert_stream_error(reply, fmt)
        assert "'p'" in message


@pytest.mark.parametrize("provider_fmt", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("garbage", list(GARBAGE))
async def test_same_format_non_stream_garbage_is_a_502(
    nursery, raw_provider, tmp_path, provider_fmt, garbage
):
    body, ctype = GARBAGE[garbage]
    raw_provider.then(answer(200, body, content_type=ctype))
    provider_file(tmp_path, raw_provider.url, provider_fmt)
    gw = await start_gateway(nursery, tmp_path)
    reply = await call(gw.url, provider_fmt, False)
    message = assert_error_answer(reply, provider_fmt, (502,))
    assert "'p'" in message
    assert "answer" in message


_EVENTS = {
    "openai": lambda: openai_chunks(["Hello", " world"]),
    "anthropic": lambda: anthropic_events(["Hello", " world"]),
    "gemini": lambda: gemini_events(["Hello", " world"]),
}


def _broken_event(fmt: str) -> bytes:
    line = b"data: {this is not json\n\n"
    return b"event: content_block_delta\n" + line if fmt == "anthropic" else line


@pytest.mark.parametrize("provider_fmt", ["openai", "anthropic", "gemini"])
async def test_undecodable_event_in_a_converted_stream_is_an_error(
    nursery, raw_provider, tmp_path, provider_fmt
):
    events = _EVENTS[provider_fmt]()
    at = next(i for i, e in enumerate(events) if b" world" in e)
    events.insert(at, _broken_event(provider_fmt))
    raw_provider.then(sse(events))
    provider_file(tmp_path, raw_provider.url, provider_fmt)
    gw = await start_gateway(nursery, tmp_path)
    for fmt in CLIENT_FORMATS:
        if fmt == provider_fmt:
            continue  # same-format events are relayed undecoded
        reply = await call(gw.url, fmt, True)
        assert_stream_error(reply, fmt)
        assert "world" not in reply.text  # nothing after the bad event: the stream ended there


@pytest.mark.parametrize("junk", [b"data: 5\n\n", b"data: [1]\n\n", b'data: "text"\n\n'])
async def test_non_object_event_in_a_converted_stream_is_an_error(
    nursery, raw_provider, tmp_path, junk
):
    events = openai_chunks(["Hello", " world"])
    events.insert(1, junk)
    raw_provider.then(sse(events))
    provider_file(tmp_path, raw_provider.url, "openai")
    gw = await start_gateway(nursery, tmp_path)
    for fmt in ("anthropic", "gemini"):
        assert_stream_error(await call(gw.url, fmt, True), fmt)


def _cut_before_the_end(fmt: str) -> list[bytes]:
    """The provider's stream without its terminal events."""
    events = _EVENTS[fmt]()
    if fmt == "openai":
        return events[:-2]  # no finish_reason chunk, no [DONE]
    if fmt == "anthropic":
        return events[:-3]  # no content_block_stop, message_delta, message_stop
    out = []  # gemini: every chunk, without finishReason
    for e in events:
        chunk = json.loads(e[5:])
        chunk["candidates"][0].pop("finishReason", None)
        out.append(b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n")
    return out


@pytest.mark.parametrize("provider_fmt", ["openai", "anthropic", "gemini"])
async def test_stream_without_its_terminal_event_ends_in_an_error(
    nursery, raw_provider, tmp_path, provider_fmt
):
    raw_provider.then(sse(_cut_before_the_end(provider_fmt)))
    provider_file(tmp_path, raw_provider.url, provider_fmt)
    gw = await start_gateway(nursery, tmp_path)
    for fmt in CLIENT_FORMATS:
        reply = await call(gw.url, fmt, True)
        message = assert_stream_error(reply, fmt)
        assert "ended before" in message
        assert "Hello" in reply.text  # what did arrive was passed on


@pytest.mark.parametrize("provider_fmt", ["openai", "anthropic", "gemini"])
async def test_complete_streams_still_end_cleanly(nursery, raw_provider, tmp_path, provider_fmt):
    raw_provider.then(sse(_EVENTS[provider_fmt]()))
    provider_file(tmp_path, raw_provider.url, provider_fmt)
    gw = await start_gateway(nursery, tmp_path)
    for fmt in CLIENT_FORMATS:
        reply = await call(gw.url, fmt, True)
        assert reply.status_code == 200
        events = stream_events(reply)
        assert not any("error" in e for e in events), reply.text[-500:]
        assert "Hello" in reply.text


async def test_openai_stream_with_finish_reason_but_no_done_is_complete(
    nursery, raw_provider, tmp_path
):
    """Some OpenAI-compatible servers never send [DONE]: the finish_reason chunk ends the answer
    (for the converting parser and the same-format relay alike)."""
    raw_provider.then(sse(openai_chunks(["Hello", " world"])[:-1]))
    provider_file(tmp_path, raw_provider.url, "openai")
    gw = await start_gateway(nursery, tmp_path)
    for fmt in CLIENT_FORMATS:
        reply = await call(gw.url, fmt, True)
        assert reply.status_code == 200
        assert not any("error" in e for e in stream_events(reply)), reply.text[-500:]


async def test_provider_error_event_is_not_doubled(nursery, raw_provider, tmp_path):
    """A same-format stream that ends with the provider's own error event gets no second one."""
    events = openai_chunks(["Hello"])[:1]
    events.append(b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n')
    raw_provider.then(sse(events))
    provider_file(tmp_path, raw_provider.url, "openai")
    gw = await start_gateway(nursery, tmp_path)
    reply = await call(gw.url, "openai", True)
    errors = [e for e in stream_events(reply) if "error" in e]
    assert len(errors) == 1
    assert errors[0]["error"]["message"] == "overloaded"


async def test_anthropic_stream_with_stop_reason_but_no_message_stop_is_complete(
    nursery, raw_provider, tmp_path
):
    """As for OpenAI: the event with the stop reason ends the answer, in both paths."""
    raw_provider.then(sse(anthropic_events(["Hello", " world"])[:-1]))
    provider_file(tmp_path, raw_provider.url, "anthropic")
    gw = await start_gateway(nursery, tmp_path)
    for fmt in CLIENT_FORMATS:
        reply = await call(gw.url, fmt, True)
        assert reply.status_code == 200
        assert not any("error" in e for e in stream_events(reply)), reply.text[-500:]
