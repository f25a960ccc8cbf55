"""Issue 8 item 6: SSE framing is linear in the stream, and one event has a size cap.

The cap is the module constant ``gateway.sse.MAX_EVENT_BYTES`` (16 MiB), used by the
same-format framer (gateway/proxy/relay.py) and the converting decoder (gateway/sse.py); past it
the client gets an in-stream error in its own format, never a 500 or a cut connection.
"""

from __future__ import annotations

import json
import time

import pytest

from gateway import sse
from gateway.proxy.relay import EventFramer
from gateway.sse import SSEDecoder, SSEError
from tests.hardening.rawprovider import (
    CLIENT_FORMATS,
    RawProvider,
    assert_stream_error,
    call,
    head,
    provider_file,
    raw,
)
from tests.proxy.fakes import openai_chunks, start_gateway


def _cpu(fn, *args) -> float:
    """Best of three CPU-time runs of ``fn(*args)``."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        fn(*args)
        best = min(best, time.process_time() - start)
    return best


def _frame_one_event(size: int, chunk: int) -> None:
    framer = EventFramer(max_event_bytes=1 << 30)
    event = b"data: " + b"x" * size + b"\n\n"
    out = []
    for i in range(0, len(event), chunk):
        out.append(framer.feed(event[i : i + chunk]))
    assert b"".join(out) == event


def _decode_one_event(size: int, chunk: int) -> None:
    decoder = SSEDecoder(max_line_bytes=1 << 30, max_event_bytes=1 << 30)
    event = b"data: " + b"x" * size + b"\n\n"
    events = []
    for i in range(0, len(event), chunk):
        events += decoder.feed(event[i : i + chunk])
    assert len(events) == 1
    assert len(events[0].data) == size


@pytest.mark.parametrize("work", [_frame_one_event, _decode_one_event])
def test_one_big_event_costs_linear_time(work):
    """N and 4N bytes in 4 KiB reads: linear is ~4x, the old re-join was ~16x."""
    n = 1 << 20
    small = _cpu(work, n, 4096)
    large = _cpu(work, 4 * n, 4096)
    assert large < 8 * small + 0.05, (small, large)
    assert large < 2.0, large  # the old framer took seconds for 16 MiB


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
@pytest.mark.parametrize(
    "stream",
    [
        b"data: a\n\ndata: b\n\n",
        b"data: a\r\n\r\ndata: bb\r\n\r\n",
        b"data: a\r\rdata: b\r\r",
        b"event: x\ndata: 1\ndata: 2\n\n: c\n\ndata: 3\n\r\n",
    ],
)
def test_framer_cuts_at_boundaries_whatever_the_reads(stream, chunk):
    """Boundaries that straddle reads are found; only whole events go out."""
    framer = EventFramer()
    whole = EventFramer().feed(stream)
    out = []
    for i in range(0, len(stream), chunk):
        piece = framer.feed(stream[i : i + chunk])
        if piece:
            assert piece.endswith((b"\n\n", b"\r\r", b"\n\r\n")), piece
        out.append(piece)
    out.append(framer.flush())
    assert b"".join(out) == whole == stream


def test_framer_cap():
    framer = EventFramer(max_event_bytes=1000)
    assert framer.feed(b"data: " + b"x" * 900) == b""
    with pytest.raises(SSEError, match="1000 bytes"):
        framer.feed(b"x" * 200)
    # an event over the cap is refused even when the read that completes it ends it
    framer = EventFramer(max_event_bytes=1000)
    assert framer.feed(b"data: " + b"x" * 900) == b""
    with pytest.raises(SSEError, match="1000 bytes"):
        framer.feed(b"x" * 200 + b"\n\n")
    # ... or one read holds it whole, after a small event
    with pytest.raises(SSEError, match="1000 bytes"):
        EventFramer(max_event_bytes=1000).feed(b"data: a\n\ndata: " + b"x" * 1200 + b"\n\n")
    # events under the cap pass whatever their total
    framer = EventFramer(max_event_bytes=1000)
    for _ in range(100):
        assert framer.feed(b"data: " + b"y" * 500 + b"\n\n")


def test_one_constant_for_both_paths(monkeypatch):
    monkeypatch.setattr(sse, "MAX_EVENT_BYTES", 100)
    monkeypatch.setattr(sse, "MAX_LINE_BYTES", 100)
    with pytest.raises(SSEError):
        EventFramer().feed(b"data: " + b"x" * 200)
    with pytest.raises(SSEError):
        SSEDecoder().feed(b"data: " + b"x" * 200 + b"\n")


# -- through a running gateway -----------------------------------------------------------------


@pytest.fixture
async def raw_provider(nursery) -> RawProvider:
    fake = RawProvider()
    await nursery.start(fake.serve)
    return fake


def _stream_with_a_big_event(size: int) -> object:
    """An OpenAI stream: one good chunk, then one event of ``size`` bytes in 64 KiB chunks."""
    hs = [("content-type", "text/event-stream"), ("transfer-encoding", "chunked")]
    first = openai_chunks(["hello"])[0]
    big = b'data: {"choices":[{"index":0,"delta":{"content":"' + b"x" * size + b'"}}]}\n\n'
    parts = [head(200, hs), b"%x\r\n%s\r\n" % (len(first), first)]
    for i in range(0, len(big), 65536):
        piece = big[i : i + 65536]
        parts.append(b"%x\r\n%s\r\n" % (len(piece), piece))
    parts.append(b"0\r\n\r\n")
    return raw(b"".join(parts))


async def test_event_over_the_cap_is_an_in_stream_error(
    nursery, raw_provider, tmp_path, monkeypatch
):
    """Same-format (openai) and converted (anthropic, gemini) clients, cap lowered to 256 KiB."""
    monkeypatch.setattr(sse, "MAX_EVENT_BYTES", 256 * 1024)
    monkeypatch.setattr(sse, "MAX_LINE_BYTES", 256 * 1024)
    raw_provider.then(_stream_with_a_big_event(1024 * 1024))
    provider_file(tmp_path, raw_provider.url)
    gw = await start_gateway(nursery, tmp_path)
    for fmt in CLIENT_FORMATS:
        reply = await call(gw.url, fmt, True)
        message = assert_stream_error(reply, fmt)
        assert str(256 * 1024) in message, message
        assert "'p'" in message
        assert "x" * 1000 not in reply.text  # nothing of the big event went out
        assert "hello" in reply.text  # the event before it did


async def test_event_under_the_cap_passes(nursery, raw_provider, tmp_path, monkeypatch):
    monkeypatch.setattr(sse, "MAX_EVENT_BYTES", 256 * 1024)
    monkeypatch.setattr(sse, "MAX_LINE_BYTES", 256 * 1024)
    body = b"".join(openai_chunks(["a" * 100_000, "b"]))
    hs = [("content-type", "text/event-stream"), ("content-length", str(len(body)))]
    raw_provider.then(raw(head(200, hs) + body))
    provider_file(tmp_path, raw_provider.url)
    gw = await start_gateway(nursery, tmp_path)
    for fmt in CLIENT_FORMATS:
        reply = await call(gw.url, fmt, True)
        assert reply.status_code == 200
        assert "a" * 100_000 in reply.text
        assert '"error"' not in reply.text


async def test_real_cap_same_format(nursery, raw_provider, tmp_path):
    """The default cap (16 MiB) is enforced, quickly, on a same-format stream."""
    raw_provider.then(_stream_with_a_big_event(sse.MAX_EVENT_BYTES + 1024))
    provider_file(tmp_path, raw_provider.url)
    gw = await start_gateway(nursery, tmp_path)
    start = time.monotonic()
    reply = await call(gw.url, "openai", True, timeout_s=60)
    message = assert_stream_error(reply, "openai")
    assert str(sse.MAX_EVENT_BYTES) in message
    assert time.monotonic() - start < 20
    assert json.loads(reply.text.split("\n\n")[0][5:])["choices"][0]["delta"]["content"] == "hello"
