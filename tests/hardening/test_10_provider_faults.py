"""Issue 8 item 10: every provider misbehaviour reaches the client as an error in its format.

A raw socket provider (tests/hardening/rawprovider.py) answers with exact bytes; each fault is
tried from all three client formats, streamed and not, to an OpenAI-format provider (so one
format is same-format, two are converted) and where it matters to the other formats too.
The client must get a 502/503/504 (or the mapped status: 429 for a rate limit) in its own
format before the status is sent, or an in-stream error after it: never a 500, never a cut
connection (httpx raises RemoteProtocolError on a cut body, which fails the test).
"""

from __future__ import annotations

import email.utils
import gzip
import json
import time

import pytest

from gateway.failures import (
    MAX_KEY_REST_S,
    MAX_RETRY_AFTER_S,
    classify_status,
    retry_after_s,
)
from gateway.formats import FORMAT_NAMES, FORMATS
from tests.hardening.rawprovider import (
    CLIENT_FORMATS,
    RawProvider,
    answer,
    assert_error_answer,
    assert_failed,
    call,
    head,
    provider_file,
    raw,
    sse,
    stream_events,
)
from tests.proxy.fakes import openai_chunks, openai_reply, start_gateway

FAILED = (502, 503, 504)


@pytest.fixture
async def raw_provider(nursery) -> RawProvider:
    fake = RawProvider()
    await nursery.start(fake.serve)
    return fake


async def _every_client(gw, fmt_statuses=FAILED, *, streams=(False, True)) -> list[str]:
    messages = []
    for fmt in CLIENT_FORMATS:
        for stream in streams:
            reply = await call(gw.url, fmt, stream)
            statuses = tuple(529 if s == 503 and fmt == "anthropic" else s for s in fmt_statuses)
            messages.append(assert_failed(reply, fmt, stream, statuses))
    return messages


# -- Retry-After -------------------------------------------------------------------------------


def _http_date(offset_s: float) -> str:
    return email.utils.formatdate(time.time() + offset_s, usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("0.5", 0.5),
        ("NaN", None),
        ("nan", None),
        ("inf", None),
        ("-inf", None),
        ("-1", 0.0),
        ("1e308", MAX_RETRY_AFTER_S),
        ("1e999", MAX_RETRY_AFTER_S),
        ("9" * 5000, MAX_RETRY_AFTER_S),
        ("", None),
        ("soon", None),
        ("0x10", None),
        ("1_000", None),
        ("\u0663", None),  # an Arabic-Indic 3: float() accepts it, HTTP does not
    ],
)
def test_retry_after_seconds_is_finite_and_capped(value, expected):
    assert retry_after_s({"retry-after": value}) == expected
    ms = retry_after_s({"retry-after-ms": value})
    if expected is None:
        assert ms is None
    else:
        assert ms is not None
        assert 0 <= ms <= MAX_RETRY_AFTER_S


def test_retry_after_http_dates():
    assert retry_after_s({"retry-after": _http_date(-3600)}) == 0.0
    future = retry_after_s({"retry-after": _http_date(10)})
    assert future is not None
    assert 8 <= future <= 11
    assert retry_after_s({"retry-after": _http_date(10**7)}) == MAX_RETRY_AFTER_S
    assert retry_after_s({"retry-after": "Sun, 99 Foo 2026 99:99:99 GMT"}) is None


@pytest.mark.parametrize("value", ["NaN", "inf", "-1", "1e999", "-1e999", "9" * 400, "x"])
@pytest.mark.parametrize("status", [429, 503, 500])
def test_classify_status_with_odd_retry_after(status, value):
    failure = classify_status(
        "p", status, FORMATS["openai"].read_error(status, b"{}"), {"retry-after": value}
    )
    if failure.delay_s is not None:
        assert 0 <= failure.delay_s <= MAX_RETRY_AFTER_S
    if failure.error.retry_after_s is not None:
        assert 1 <= failure.error.retry_after_s <= MAX_KEY_REST_S
    if failure.rest_s is not None:
        assert 0 <= failure.rest_s <= MAX_KEY_REST_S


@pytest.mark.parametrize("value", ["NaN", "inf", "-1", "-1e999", "-5e-324", "garbage", "past"])
@pytest.mark.parametrize("status", [429, 503, 500])
async def test_odd_retry_after_through_the_gateway(nursery, raw_provider, tmp_path, status, value):
    if value == "past":
        value = _http_date(-3600)
    body = {"error": {"message": "slow down", "type": "x"}}
    raw_provider.then(answer(status, body, [("retry-after", value)]))
    provider_file(tmp_path, raw_provider.url)  # one retry: the sleep between tries runs
    gw = await start_gateway(nursery, tmp_path)
    expected = {429: (429,), 503: (503,), 500: (502,)}[status]
    for fmt in CLIENT_FORMATS:
        for stream in (False, True):
            reply = await call(gw.url, fmt, stream)
            statuses = (529,) if status == 503 and fmt == "anthropic" else expected
            assert_error_answer(reply, fmt, statuses)
            if status == 429:
                assert 1 <= int(reply.headers["retry-after"]) <= MAX_RETRY_AFTER_S


# -- bodies that cannot be decoded ---------------------------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"error":' * 100_000 + b"1" + b"}" * 100_000


@pytest.mark.parametrize("provider_fmt", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["array", "object"])
async def test_deeply_nested_answer(nursery, raw_provider, tmp_path, provider_fmt, body):
    raw_provider.then(answer(200, body))
    provider_file(tmp_path, raw_provider.url, provider_fmt)
    gw = await start_gateway(nursery, tmp_path)
    await _every_client(gw, streams=(False,))


@pytest.mark.parametrize("status", [400, 429, 500, 503])
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["array", "object"])
async def test_deeply_nested_error_body(nursery, raw_provider, tmp_path, status, body):
    raw_provider.then(answer(status, body))
    provider_file(tmp_path, raw_provider.url, retry={"retries": 0})
    gw = await start_gateway(nursery, tmp_path)
    expected = {400: (400,), 429: (429,), 500: (502,), 503: (503,)}[status]
    await _every_client(gw, expected)


@pytest.mark.parametrize("provider_fmt", ["openai", "anthropic", "gemini"])
async def test_deeply_nested_stream_event(nursery, raw_provider, tmp_path, provider_fmt):
    raw_provider.then(sse([b"data: " + DEEP + b"\n\n"]))
    provider_file(tmp_path, raw_provider.url, provider_fmt)
    gw = await start_gateway(nursery, tmp_path)
    for fmt in CLIENT_FORMATS:
        if fmt == provider_fmt:
            continue  # relayed as bytes: the client's parser gets the provider's own event
        reply = await call(gw.url, fmt, True)
        assert_failed(reply, fmt, True, FAILED)


WRONG_TYPED_ERRORS = [
    {"error": {"details": 5}},
    {"error": {"details": "API_KEY_INVALID"}},
    {"error": {"details": [5, None, {"reason": {}}, {"reason": ["x"]}]}},
    {"error": {"message": {}}},
    {"error": {"message": {"nested": [1, 2]}, "type": 7}},
    {"error": {"message": None, "type": None}},
    {"error": 5},
    {"error": []},
    {"error": None},
    {"error": True},
    [],
    [[]],
    [5],
    5,
    None,
    "just a string",
    {"error": {"message": "x" * 100_000}},
]


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
@pytest.mark.parametrize("body", WRONG_TYPED_ERRORS, ids=lambda b: json.dumps(b)[:40])
def test_provider_message_never_raises(body, fmt):
    said = FORMATS[fmt].read_error(500, json.dumps(body).encode())
    message = said.message
    assert isinstance(message, str)
    assert message
    assert len(message) <= 2000
    assert isinstance(said.key_refused, bool)


@pytest.mark.parametrize("status", [400, 401, 429, 500])
async def test_wrong_typed_error_bodies(nursery, raw_provider, tmp_path, status):
    raw_provider.then(*(answer(status, b) for b in WRONG_TYPED_ERRORS))
    provider_file(tmp_path, raw_provider.url, retry={"retries": 0})
    gw = await start_gateway(nursery, tmp_path)
    expected = {400: (400,), 401: (502,), 429: (429,), 500: (502,)}[status]
    for _ in WRONG_TYPED_ERRORS:
        for fmt in CLIENT_FORMATS:
            assert_error_answer(await call(gw.url, fmt, False), fmt, expected)


# -- Content-Encoding ----------------------------------------------------------------------------


async def test_gzip_label_on_a_plain_body(nursery, raw_provider, tmp_path):
    plain = json.dumps(openai_reply("hi")).encode()
    raw_provider.then(answer(200, plain, [("content-encoding", "gzip")]))
    provider_file(tmp_path, raw_provider.url)
    gw = await start_gateway(nursery, tmp_path)
    messages = await _every_client(gw, streams=(False,))
    assert all("'p'" in m for m in messages), messages


async def test_gzip_label_on_a_plain_stream(nursery, raw_provider, tmp_path):
    raw_provider.then(sse(openai_chunks(["a", "b"]), [("content-encoding", "gzip")]))
    provider_file(tmp_path, raw_provider.url)
    gw = await start_gateway(nursery, tmp_path)
    await _every_client(gw, streams=(True,))


@pytest.mark.parametrize("status", [429, 500])
async def test_gzip_label_on_a_plain_error_body(nursery, raw_provider, tmp_path, status):
    raw_provider.then(answer(status, {"error": {"message": "m"}}, [("content-encoding", "gzip")]))
    provider_file(tmp_path, raw_provider.url, retry={"retries": 0})
    gw = await start_gateway(nursery, tmp_path)
    await _every_client(gw, {429: (429, 502), 500: (502,)}[status])


async def test_real_gzip_still_works(nursery, raw_provider, tmp_path):
    packed = gzip.compress(json.dumps(openai_reply("zipped")).encode())
    raw_provider.then(answer(200, packed, [("content-encoding", "gzip")]))
    provider_file(tmp_path, raw_provider.url)
    gw = await start_gateway(nursery, tmp_path)
    reply = await call(gw.url, "openai", False)
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == "zipped"


async def test_unknown_content_encoding_on_garbage(nursery, raw_provider, tmp_path):
    raw_provider.then(answer(200, b"\x1f\x8b\x00garbage", [("content-encoding", "x-weird")]))
    provider_file(tmp_path, raw_provider.url)
    gw = await start_gateway(nursery, tmp_path)
    await _every_client(gw)


# -- redirects -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 304, 307, 308, 300])
@pytest.mark.parametrize("location", [True, False])
async def test_redirects_are_never_followed(nursery, raw_provider, tmp_path, status, location):
    headers = [("location", raw_provider.url + "/elsewhere")] if location else []
    raw_provider.then(answer(status, b"" if status == 304 else b"moved", headers, "text/plain"))
    provider_file(tmp_path, raw_provider.url)
    gw = await start_gateway(nursery, tmp_path)
    for fmt in CLIENT_FORMATS:
        for stream in (False, True):
            message = assert_error_answer(await call(gw.url, fmt, stream), fmt, (502,))
            assert "'p'" in message
            assert str(status) in message
    assert all(b"/elsewhere" not in r.split(b"\r\n")[0] for r in raw_provider.requests)


# -- broken HTTP framing -------------------------------------------------------------------------


def _json_head(extra: list[tuple[str, str]]) -> bytes:
    return head(200, [("content-type", "application/json"), *extra])


FRAMING_FAULTS = {
    "content-length-longer-than-body": raw(_json_head([("content-length", "1000")]) + b'{"a":'),
    "invalid-chunk-size": raw(_json_head([("transfer-encoding", "chunked")]) + b"zz\r\n{}\r\n"),
    "chunked-cut-off": raw(_json_head([("transfer-encoding", "chunked")]) + b"ff\r\n{}"),
    "no-head-at-all": raw(b""),
    "garbage-instead-of-http": raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"),
    "head-over-the-cap": raw(b"HTTP/1.1 200 OK\r\n" + b"x-pad: " + b"a" * 200_000 + b"\r\n\r\n{}"),
    "many-headers-over-the-cap": raw(
        b"HTTP/1.1 200 OK\r\n" + b"x-pad: aaaaaaaaaaaaaaaaaaaa\r\n" * 10_000 + b"\r\n"
    ),
    "bad-status-line": raw(b"HTTP/1.1 9999 What\r\ncontent-length: 2\r\n\r\n{}"),
}


@pytest.mark.parametrize("fault", list(FRAMING_FAULTS))
async def test_broken_http_framing(nursery, raw_provider, tmp_path, fault):
    raw_provider.then(FRAMING_FAULTS[fault])
    provider_file(tmp_path, raw_provider.url)
    gw = await start_gateway(nursery, tmp_path)
    await _every_client(gw)


async def test_stream_cut_mid_chunk(nursery, raw_provider, tmp_path):
    events = openai_chunks(["a", "b", "c"])
    hs = [("content-type", "text/event-stream"), ("transfer-encoding", "chunked")]
    first = b"%x\r\n%s\r\n" % (len(events[0]), events[0])
    raw_provider.then(raw(head(200, hs), first, b'ffff\r\ndata: {"cut'))
    provider_file(tmp_path, raw_provider.url)
    gw = await start_gateway(nursery, tmp_path)
    await _every_client(gw, streams=(True,))


async def test_upstream_that_never_sends_a_head(nursery, raw_provider, tmp_path):
    raw_provider.then(raw(30.0))
    provider_file(
        tmp_path,
        raw_provider.url,
        retry={"retries": 0},
        timeouts={"connect": 5, "first_byte": 0.3, "idle": 5},
    )
    gw = await start_gateway(nursery, tmp_path)
    for fmt in CLIENT_FORMATS:
        for stream in (False, True):
            reply = await call(gw.url, fmt, stream)
            assert_error_answer(reply, fmt, (504,))


# -- bodies of the wrong kind ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe\x00{not utf-8}",
        b'{"id": "x", "choices": "\xff\xff"}',
        b"9" * 5000,
        b'{"choices": [{"message": {"content": ' + b"1" * 5000 + b"}}]}",
        b"NaN",
        b"",
    ],
    ids=["binary", "bad-utf8-in-json", "huge-int", "huge-int-inside", "nan", "empty"],
)
async def test_undecodable_non_stream_answer(nursery, raw_provider, tmp_path, body):
    raw_provider.then(answer(200, body))
    provider_file(tmp_path, raw_provider.url)
    gw = await start_gateway(nursery, tmp_path)
    await _every_client(gw, streams=(False,))


async def test_event_stream_for_a_non_stream_call(nursery, raw_provider, tmp_path):
    raw_provider.then(sse(openai_chunks(["a"])))
    provider_file(tmp_path, raw_provider.url)
    gw = await start_gateway(nursery, tmp_path)
    await _every_client(gw, streams=(False,))


async def test_json_answer_for_a_stream_call(nursery, raw_provider, tmp_path):
    raw_provider.then(answer(200, openai_reply("whole")))
    provider_file(tmp_path, raw_provider.url)
    gw = await start_gateway(nursery, tmp_path)
    await _every_client(gw, streams=(True,))


async def test_gateway_still_serves_after_the_faults(nursery, raw_provider, tmp_path):
    raw_provider.then(answer(500, DEEP), answer(200, openai_reply("fine")))
    provider_file(tmp_path, raw_provider.url, retry={"retries": 0})
    gw = await start_gateway(nursery, tmp_path)
    assert_error_answer(await call(gw.url, "openai", False), "openai", (502,))
    reply = await call(gw.url, "openai", False)
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == "fine"


# -- the class: mutated answers never make a 500 or a cut connection --------------------------

_ODD_VALUES = [None, 5, -1, 1.5, "", "x", [], {}, [1], {"a": 1}, True, 10**30, "\ud800"]


def _mutate(value, rnd):
    """``value`` with random subtrees replaced by values of the wrong type."""
    if rnd.random() < 0.12:
        return rnd.choice(_ODD_VALUES)
    if isinstance(value, dict):
        return {k: _mutate(v, rnd) for k, v in value.items()}
    if isinstance(value, list):
        return [_mutate(v, rnd) for v in value]
    return value


def _replies():
    from tests.proxy.fakes import anthropic_events, anthropic_reply, gemini_events, gemini_reply

    return {
        "openai": (openai_reply("hi"), openai_chunks(["a", "b"])),
        "anthropic": (anthropic_reply("hi"), anthropic_events(["a", "b"])),
        "gemini": (gemini_reply("hi"), gemini_events(["a", "b"])),
    }


def _mutated_events(events, rnd) -> list[bytes]:
    out = []
    for e in events:
        head_, _, data = e.partition(b"data: ")
        data = data.strip()
        if data != b"[DONE]":
            data = json.dumps(_mutate(json.loads(data), rnd)).encode()
        out.append(head_ + b"data: " + data + b"\n\n")
    return out


@pytest.mark.parametrize("provider_fmt", ["openai", "anthropic", "gemini"])
async def test_mutated_answers_never_500(nursery, raw_provider, tmp_path, provider_fmt):
    import random

    rnd = random.Random(f"item-10-{provider_fmt}")
    whole, events = _replies()[provider_fmt]

    async def mutated(stream):
        wanted = raw_provider.requests[-1]
        if b'"stream": true' in wanted or b'"stream":true' in wanted or b"streamGen" in wanted:
            await sse(_mutated_events(events, rnd))(stream)
        else:
            await answer(200, _mutate(whole, rnd))(stream)

    raw_provider.then(mutated)
    provider_file(tmp_path, raw_provider.url, provider_fmt, retry={"retries": 0})
    gw = await start_gateway(nursery, tmp_path)
    for _ in range(12):
        for fmt in CLIENT_FORMATS:
            for stream in (False, True):
                reply = await call(gw.url, fmt, stream)  # a cut body raises here
                assert reply.status_code in (200, 502), (reply.status_code, reply.text[:300])
                if reply.status_code == 502:
                    assert_error_answer(reply, fmt, (502,))
                elif stream:
                    stream_events(reply)  # every event is JSON
                else:
                    assert isinstance(reply.json(), dict)


# -- deep JSON inside provider strings -----------------------------------------------------------


def test_error_readers_and_argument_parsing_survive_deep_json():
    from gateway.convert._util import args_object
    from gateway.formats import FORMATS

    assert args_object("[" * 100_000) == ({"raw_input": "[" * 100_000}, False)
    for name in ("openai", "anthropic", "gemini"):
        _kind, message = FORMATS[name].parse_error(500, DEEP)
        assert isinstance(message, str)


def _deep_tool_call_reply() -> dict:
    reply = openai_reply("")
    reply["choices"][0]["message"]["tool_calls"] = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "f", "arguments": "[" * 50_000 + "]" * 50_000},
        }
    ]
    reply["choices"][0]["finish_reason"] = "tool_calls"
    return reply


async def test_deeply_nested_tool_arguments(nursery, raw_provider, tmp_path):
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "up-model",
        "choices": [
            {
                "index": 0,
                "delta": _deep_tool_call_reply()["choices"][0]["message"],
                "finish_reason": None,
            }
        ],
    }
    chunk["choices"][0]["delta"]["tool_calls"][0]["index"] = 0
    done = openai_chunks([])[-2:]
    events = [b"data: " + json.dumps(chunk).encode() + b"\n\n", *done]

    async def either(stream):
        wanted = raw_provider.requests[-1]
        if b'"stream": true' in wanted or b'"stream":true' in wanted or b"streamGen" in wanted:
            await sse(events)(stream)
        else:
            await answer(200, _deep_tool_call_reply())(stream)

    raw_provider.then(either)
    provider_file(tmp_path, raw_provider.url)
    gw = await start_gateway(nursery, tmp_path)
    for fmt in CLIENT_FORMATS:
        for stream in (False, True):
            reply = await call(gw.url, fmt, stream)
            assert reply.status_code in (200, 502), reply.text[:300]
            if reply.status_code == 502:
                assert_error_answer(reply, fmt, (502,))
            elif stream:
                stream_events(reply)
            else:
                assert isinstance(reply.json(), dict)
