"""Issue 8 item 15 (alt=json): ``:streamGenerateContent`` without ``alt=sse`` is a JSON array.

Gemini's default framing (no ``alt``, or ``alt=json``) is one JSON array written
element by element; the gateway answered SSE. Read here with a raw HTTP client that
parses the array: the elements arrive progressively, keep-alives and in-stream
errors keep the array valid, ``alt=sse`` stays SSE, an unknown ``alt`` is a 400.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.proxy.fakes import (
    Step,
    gemini_events,
    openai_chunks,
    start_gateway,
    write_transformer,
)

ENV = {"UP_KEY": "sk-provider-key-123456"}
BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
WORDS = ["Hel", "lo", " there"]


def _files(tdir, provider, idle_s=5.0):
    common = {"keys": ["${UP_KEY}"], "retry": {"retries": 0, "backoff_s": 0}}
    write_transformer(
        tdir,
        "gem",
        {
            "format": "gemini",
            "base_url": provider.url + "/v1beta",
            "models": {"g": "up"},
            "timeouts": {"idle": idle_s},
            **common,
        },
    )
    write_transformer(
        tdir,
        "oai",
        {"format": "openai", "base_url": provider.url + "/v1", "models": {"o": "up"}, **common},
    )
    write_transformer(tdir, "mock", {"format": "mock", "models": {"mock-1": "mock-1"}})


def _text(elements):
    return "".join(
        part.get("text", "")
        for element in elements
        for cand in element.get("candidates", [])
        for part in cand["content"]["parts"]
    )


async def _array_stream(client, model, query=""):
    """(status, content type, raw body, [(seconds since start, bytes)]) of one stream."""
    pieces = []
    started = time.perf_counter()
    path = f"/v1beta/models/{model}:streamGenerateContent{query}"
    async with client.stream("POST", path, json=BODY) as reply:
        async for chunk in reply.aiter_raw():
            pieces.append((time.perf_counter() - started, chunk))
    raw = b"".join(c for _, c in pieces)
    return reply.status_code, reply.headers["content-type"], raw, pieces


@pytest.mark.parametrize("query", ["", "?alt=json"])
async def test_same_format_stream_is_a_progressive_json_array(nursery, provider, tdir, query):
    _files(tdir, provider)
    events = gemini_events(WORDS)
    provider.then(Step("sse", events=[events[0], b"<pause>", *events[1:]], delay_s=0.5))
    gw = await start_gateway(nursery, tdir, ENV)
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        status, ctype, raw, pieces = await _array_stream(client, "g", query)
    assert status == 200
    assert ctype.startswith("application/json")
    elements = json.loads(raw)
    assert isinstance(elements, list)
    assert elements == [json.loads(e[len(b"data: ") :]) for e in events]  # unchanged chunks
    assert provider.seen[-1].path == "/v1beta/models/up:streamGenerateContent?alt=sse"
    # progressive: the first element was out (and parses on its own) before the pause ended
    first_at, first = pieces[0]
    assert first.startswith(b"[")
    assert json.loads(first[1:]) == elements[0]
    assert pieces[-1][0] - first_at >= 0.3


async def test_converted_stream_and_mock_as_arrays(nursery, provider, tdir):
    _files(tdir, provider)
    provider.then(Step("sse", events=openai_chunks(WORDS)))
    gw = await start_gateway(nursery, tdir, ENV)
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        status, _, raw, _ = await _array_stream(client, "o")
        assert status == 200
        elements = json.loads(raw)
        assert _text(elements) == "Hello there"
        assert elements[-1]["candidates"][0]["finishReason"] == "STOP"
        status, ctype, raw, _ = await _array_stream(client, "mock-1", "?alt=json")
        assert status == 200
        assert ctype.startswith("application/json")
        assert _text(json.loads(raw)) == "Echo: hi"


async def test_keepalives_and_in_stream_errors_keep_the_array_valid(nursery, provider, tdir):
    _files(tdir, provider, idle_s=0.5)
    events = gemini_events(WORDS)
    # slow to its first byte (keep-alives go out), then silent past the idle timeout
    provider.then(Step("silent_after", events=[b"<pause>", events[0]], delay_s=0.4))

    def quick_keepalives(app):
        app.proxy.keepalive_s = 0.1

    gw = await start_gateway(nursery, tdir, ENV, tweak=quick_keepalives)
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        status, _, raw, _ = await _array_stream(client, "g")
    assert status == 200
    assert raw.startswith(b"\r\n")  # keep-alives before the array: whitespace
    elements = json.loads(raw)
    assert elements[0] == json.loads(events[0][len(b"data: ") :])
    assert elements[-1]["error"]["code"] == 504
    assert "idle" in elements[-1]["error"]["message"]


async def test_alt_sse_stays_sse_and_other_alts_are_refused(nursery, provider, tdir):
    _files(tdir, provider)
    provider.then(Step("sse", events=gemini_events(WORDS)))
    gw = await start_gateway(nursery, tdir, ENV)
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        status, ctype, raw, _ = await _array_stream(client, "g", "?alt=sse")
        assert status == 200
        assert ctype.startswith("text/event-stream")
        assert raw.startswith(b"data: ")
        status, ctype, raw, _ = await _array_stream(client, "g", "?alt=proto")
        assert status == 400
        error = json.loads(raw)["error"]
        assert error["status"] == "INVALID_ARGUMENT"
        assert "alt=sse" in error["message"]
        # an error before the stream started is a plain Gemini error object
        status, _, raw, _ = await _array_stream(client, "nope")
        assert status == 404
        assert json.loads(raw)["error"]["status"] == "NOT_FOUND"
    assert len(provider.seen) == 1
