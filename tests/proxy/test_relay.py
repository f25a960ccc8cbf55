"""gateway.proxy.relay and the stream half of gateway.proxy.adapters, without a network.

The framer and the two relays are fed the same stream split at every byte offset
and must give the same bytes (the SSE decoder's own split tests are in
tests/test_sse.py, the framer's size cap and linear cost in
tests/hardening/test_06_sse_framing.py). The relay loop runs on a fake exchange
and a fake provider body under the autojump clock.
"""

from __future__ import annotations

import json
import time
from typing import Any

import attrs
import httpx
import pytest
import trio

from gateway.call import Call
from gateway.convert.emulate import accumulate
from gateway.convert.model import Usage
from gateway.errors import ErrorKind
from gateway.formats import FORMAT_NAMES, FORMATS
from gateway.proxy.adapters import Converting, Passthrough, make_adapter, whole_as_stream
from gateway.proxy.relay import (
    ConvertingRelay,
    EventFramer,
    FramedRelay,
    relay_stream,
    stream_error,
)
from gateway.redact import Redactor
from gateway.routing import Target
from gateway.sse import SSEDecoder
from gateway.transformers import parse_transformer
from tests.proxy.fakes import (
    anthropic_events,
    anthropic_reply,
    gemini_events,
    gemini_reply,
    openai_chunks,
    openai_reply,
)

SECRET = "sk-relay-test-0123456789abcdef"
CUT_SHORT = "The upstream stream ended before the response was complete."


def _openai_usage_chunk(prompt: int, completion: int) -> bytes:
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "up-model",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _whole_stream(fmt: str, words: list[str]) -> bytes:
    """A complete provider stream of ``fmt`` (OpenAI's with a usage chunk before [DONE])."""
    if fmt == "openai":
        events = openai_chunks(words)
        events.insert(-1, _openai_usage_chunk(3, len(words)))
        return b"".join(events)
    if fmt == "anthropic":
        return b"".join(anthropic_events(words))
    return b"".join(gemini_events(words))


#: The usage each complete stream above reports.
def _expected_usage(fmt: str, words: list[str]) -> tuple[int, int]:
    return (3, 2) if fmt == "gemini" else (3, len(words))


def _in_two(data: bytes) -> list[list[bytes]]:
    """``data`` as two reads, cut at every offset."""
    return [[data[:i], data[i:]] for i in range(len(data) + 1)]


def _cut_error(fmt: str) -> bytes:
    return FORMATS[fmt].stream_error(ErrorKind.API_ERROR, CUT_SHORT, status=502)


# -- the framer --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_framer_gives_whole_events_at_every_split(fmt: str) -> None:
    stream = _whole_stream(fmt, ["Hello", " world"])
    for reads in _in_two(stream):
        framer = EventFramer()
        pieces = [framer.feed(r) for r in reads]
        for piece in pieces:
            assert not piece or piece.endswith((b"\n\n", b"\r\n\r\n")), piece
        assert b"".join(pieces) + framer.flush() == stream


@pytest.mark.parametrize(
    ("tail", "flushed"),
    [
        (b"data: [DONE]", b"data: [DONE]\n\n"),
        (b"data: [DONE]\n", b"data: [DONE]\n\n\n"),
        (b"data: x\r\n", b"data: x\r\n\r\n\r\n"),
        (b"", b""),
        (b" ", b""),
        (b" \r\n", b""),
    ],
)
def test_flush_ends_a_last_event_missing_its_blank_line(tail: bytes, flushed: bytes) -> None:
    framer = EventFramer()
    assert framer.feed(b"data: a\n\n" + tail) == b"data: a\n\n"
    assert framer.flush() == flushed
    assert framer.flush() == b""


# -- the same-format relay ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_framed_relay_passes_a_whole_stream_unchanged_at_every_split(fmt: str) -> None:
    words = ["Hello", " world"]
    stream = _whole_stream(fmt, words)
    for reads in _in_two(stream):
        relay = FramedRelay(fmt)
        out = b"".join(relay.feed(r) for r in reads) + relay.finish()
        assert out == stream
        assert relay.usage is not None
        assert (relay.usage.input_tokens, relay.usage.output_tokens) == _expected_usage(fmt, words)
        assert not relay.ended


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_framed_relay_ends_a_stream_cut_short_with_an_error_event(fmt: str) -> None:
    events = {
        "openai": openai_chunks(["a", "b"])[:2],
        "anthropic": anthropic_events(["a", "b"])[:4],
        "gemini": [json.dumps({"candidates": [{"content": {"parts": [{"text": "a"}]}}]})],
    }[fmt]
    if fmt == "gemini":
        events = [b"data: " + events[0].encode() + b"\r\n\r\n"]
    relay = FramedRelay(fmt)
    out = b"".join(relay.feed(e) for e in events)
    assert out == b"".join(events)
    assert relay.finish() == _cut_error(fmt)


@pytest.mark.parametrize(
    ("fmt", "last_events"),
    [
        # the finish chunk without [DONE] (some OpenAI-compatible servers never send it)
        ("openai", openai_chunks(["a"])[:-1]),
        # [DONE] alone after the finish chunk and a usage chunk: third from last at most
        ("openai", [*openai_chunks(["a"])[:-1], _openai_usage_chunk(1, 1), b"data: [DONE]\n\n"]),
        # message_delta without message_stop
        ("anthropic", anthropic_events(["a"])[:-1]),
        # an error event ends a stream too
        ("openai", [openai_chunks(["a"])[0], b'data: {"error": {"message": "x"}}\n\n']),
        (
            "anthropic",
            [
                anthropic_events(["a"])[0],
                b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"x"}}\n\n',
            ],
        ),
    ],
)
def test_framed_relay_knows_a_stream_is_whole(fmt: str, last_events: list[bytes]) -> None:
    relay = FramedRelay(fmt)
    for event in last_events:
        relay.feed(event)
    assert relay.finish() == b""


def test_framed_relay_reads_the_end_marker_of_an_unterminated_last_event() -> None:
    relay = FramedRelay("openai")
    first, *_ = openai_chunks(["a"])
    assert relay.feed(first + b"data: [DONE]") == first
    assert relay.finish() == b"data: [DONE]\n\n"


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_framed_relay_redacts_a_key_split_over_two_reads(fmt: str) -> None:
    stream = _whole_stream(fmt, ["your key is ", SECRET, " ok"])
    assert SECRET.encode() in stream
    redactor = Redactor([SECRET])
    for reads in _in_two(stream):
        relay = FramedRelay(fmt, redactor)
        out = b"".join(relay.feed(r) for r in reads) + relay.finish()
        assert SECRET.encode() not in out
        assert SECRET[:12].encode() not in out
        assert out == redactor.data(stream)


def test_framed_relay_error_is_the_formats_error_event_redacted() -> None:
    relay = FramedRelay("anthropic", Redactor([SECRET]))
    out = relay.error(ErrorKind.API_ERROR, 502, f"provider said {SECRET}")
    assert out == Redactor([SECRET]).data(
        stream_error("anthropic", ErrorKind.API_ERROR, 502, f"provider said {SECRET}")
    )
    assert SECRET.encode() not in out
    assert out.startswith(b"event: error\n")


# -- the converting relay ----------------------------------------------------------------------


def _converting(provider: str, client: str, redactor: Redactor | None = None) -> ConvertingRelay:
    return ConvertingRelay(
        FORMATS[provider].stream_parser(),
        FORMATS[client].stream_renderer("client-model", include_usage=True),
        *([redactor] if redactor is not None else []),
    )


PAIRS = [(p, c) for p in FORMAT_NAMES for c in FORMAT_NAMES if p != c]


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenAI chunks stamp ``created`` from the clock when the provider gave none: pin it,
    so two renderings of one stream a second boundary apart are still the same bytes."""
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.0)


@pytest.mark.parametrize(("provider", "client"), PAIRS)
def test_converting_relay_gives_the_same_bytes_at_every_split(provider: str, client: str) -> None:
    words = ["Hello", " world"]
    stream = _whole_stream(provider, words)
    whole = _converting(provider, client)
    expected = whole.feed(stream) + whole.finish()
    assert expected
    assert whole.usage is not None
    assert (whole.usage.input_tokens, whole.usage.output_tokens) == _expected_usage(provider, words)
    for reads in _in_two(stream):
        relay = _converting(provider, client)
        assert b"".join(relay.feed(r) for r in reads) + relay.finish() == expected
        assert relay.usage == whole.usage
        assert not relay.ended


def test_converting_relay_renders_the_clients_stream() -> None:
    relay = _converting("anthropic", "openai")
    out = relay.feed(_whole_stream("anthropic", ["Hel", "lo"])) + relay.finish()
    datas = [line[6:] for line in out.split(b"\n") if line.startswith(b"data: ")]
    assert datas[-1] == b"[DONE]"
    chunks = [json.loads(d) for d in datas[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello"
    assert all(c["model"] == "client-model" for c in chunks)


def test_a_provider_error_event_ends_the_converted_stream() -> None:
    relay = _converting("anthropic", "openai")
    start = anthropic_events(["a"])[:3]
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n'
    out = relay.feed(b"".join(start) + error + b"".join(anthropic_events(["b"])[2:]))
    assert relay.ended
    assert b"busy" in out
    assert b'"b"' not in out  # nothing after the error event goes out
    assert b"[DONE]" not in out


def test_converting_relay_error_ends_the_stream_in_the_clients_format() -> None:
    relay = _converting("openai", "anthropic", Redactor([SECRET]))
    out = relay.error(ErrorKind.API_ERROR, 504, f"silent {SECRET}")
    assert relay.ended
    assert out.startswith(b"event: error\n")
    assert SECRET.encode() not in out


@pytest.mark.parametrize(("provider", "client"), PAIRS)
def test_converting_relay_redacts_a_key_split_over_two_reads(provider: str, client: str) -> None:
    stream = _whole_stream(provider, ["key: ", SECRET])
    for reads in _in_two(stream)[:: max(1, len(stream) // 200)]:
        relay = _converting(provider, client, Redactor([SECRET]))
        out = b"".join(relay.feed(r) for r in reads) + relay.finish()
        assert SECRET[:12].encode() not in out


# -- whole answers as streams ("stream": "emulate") --------------------------------------------

REPLIES = {
    "openai": openai_reply("Hello there"),
    "anthropic": anthropic_reply("Hello there"),
    "gemini": gemini_reply("Hello there"),
}
BODIES = {
    "openai": {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True},
    "anthropic": {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    },
    "gemini": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
}
OPS = {"openai": "chat", "anthropic": "messages", "gemini": "generate"}


def _target(fmt: str) -> Target:
    spec = {"format": fmt, "base_url": "http://127.0.0.1:9/v1", "models": {"*": "*"}}
    t = parse_transformer(json.dumps(spec).encode(), f"{fmt}.json", {})
    return Target(t, "up-model", t.models["*"], "m")


@pytest.mark.parametrize("provider", FORMAT_NAMES)
@pytest.mark.parametrize("client", FORMAT_NAMES)
def test_whole_as_stream_is_the_clients_stream_of_the_answer(client: str, provider: str) -> None:
    # emulation asks the provider for a whole answer: the call goes upstream unstreamed
    call = Call(client, OPS[client], "m", False, BODIES[client])
    stream_call = attrs.evolve(call, stream=True)
    adapter = make_adapter(call, _target(provider), None, Redactor([SECRET]))
    assert isinstance(adapter, Passthrough if client == provider else Converting)
    answer = json.dumps(REPLIES[provider]).replace("there", SECRET).encode()
    out = whole_as_stream(stream_call, provider, answer, adapter)
    assert adapter.usage == Usage(3, 2)
    assert SECRET[:12].encode() not in out
    # read back as a client of that format would: one whole answer
    parser, decoder = FORMATS[client].stream_parser(), SSEDecoder()
    events = [c for e in decoder.feed(out) + decoder.close() for c in parser.feed(e)]
    resp = accumulate([*events, *parser.finish()])
    assert [part.text for part in resp.content] == ["Hello [redacted]"]
    assert resp.model == "m"


def test_whole_as_stream_of_an_unreadable_answer_raises_for_the_caller() -> None:
    call = Call("openai", "chat", "m", False, BODIES["openai"])
    adapter = make_adapter(call, _target("anthropic"))
    with pytest.raises(Exception, match="not valid"):
        whole_as_stream(attrs.evolve(call, stream=True), "anthropic", b"<html>", adapter)


# -- the relay loop ----------------------------------------------------------------------------


@attrs.define
class _Dialect:
    name: str


@attrs.define
class _Exchange:
    """What the relay loop uses of an Exchange: its dialect and ``send``."""

    dialect: _Dialect
    sent: list[tuple[float, bytes]] = attrs.Factory(list)

    async def send(self, data: bytes) -> None:
        self.sent.append((trio.current_time(), data))

    def body(self) -> bytes:
        return b"".join(data for _, data in self.sent)


class _Body(httpx.AsyncByteStream):
    """A provider body: (seconds to wait, bytes) steps; records whether it was closed."""

    def __init__(self, steps: list[tuple[float, bytes]]) -> None:
        self.steps = steps
        self.closed = False

    async def __aiter__(self) -> Any:
        for wait, data in self.steps:
            await trio.sleep(wait)
            yield data

    async def aclose(self) -> None:
        self.closed = True


def _provider(name: str, *, idle: float = 60, first_byte: float = 120) -> Any:
    spec = {
        "format": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "models": {"*": "*"},
        "timeouts": {"idle": idle, "first_byte": first_byte},
    }
    return parse_transformer(json.dumps(spec).encode(), f"{name}.json", {})


async def _run(steps: list[tuple[float, bytes]], *, idle: float = 60) -> _Exchange:
    ex = _Exchange(_Dialect("openai"))
    resp = httpx.Response(200, stream=_Body(steps))
    with trio.CancelScope(deadline=trio.current_time() + 120) as first_byte:
        await relay_stream(
            ex,
            _provider("p", idle=idle),
            resp,
            FramedRelay("openai"),
            first_byte,
            keepalive_s=15,
        )
    assert first_byte.deadline == float("inf")  # lifted at the first bytes
    return ex


async def test_keepalives_go_out_until_the_first_bytes(autojump_clock: Any) -> None:
    events = openai_chunks(["a"])
    start = trio.current_time()
    ex = await _run([(40, events[0]), *((1, e) for e in events[1:])])
    keepalive = FORMATS["openai"].wire.KEEPALIVE
    sent = [data for _, data in ex.sent]
    assert sent[:2] == [keepalive, keepalive]  # at 15 s and 30 s, before the token at 40 s
    assert [round(at - start) for at, _ in ex.sent[:2]] == [15, 30]
    assert keepalive not in sent[2:]
    assert b"".join(sent[2:]) == b"".join(events)


async def test_a_silent_provider_gets_an_in_stream_504(autojump_clock: Any) -> None:
    events = openai_chunks(["a", "b"])
    ex = await _run([(0, events[0]), (11, events[1])], idle=10)
    assert ex.body().startswith(events[0])
    assert ex.body().endswith(
        FORMATS["openai"].stream_error(
            ErrorKind.API_ERROR,
            "Provider 'p' went silent for longer than its idle timeout (10 s).",
            status=504,
        )
    )
    assert events[1] not in ex.body()


async def test_a_stream_cut_short_ends_with_the_relays_error(autojump_clock: Any) -> None:
    events = openai_chunks(["a", "b"])
    ex = await _run([(0, events[0]), (1, events[1])])
    assert ex.body() == events[0] + events[1] + _cut_error("openai")


async def test_an_empty_body_ends_at_once(autojump_clock: Any) -> None:
    ex = await _run([])
    assert ex.body() == _cut_error("openai")
