"""Tests for gateway.sse: WHATWG event-stream parsing at every split, limits, encoding."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import UpstreamError
from gateway.sse import (
    MAX_EVENT_BYTES,
    MAX_LINE_BYTES,
    Event,
    SSEDecoder,
    SSEError,
    encode_comment,
    encode_event,
)


def decode_all(chunks: list[bytes], **limits: int) -> list[Event]:
    decoder = SSEDecoder(**limits)
    events: list[Event] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events


def every_split(raw: bytes) -> list[list[bytes]]:
    """The whole input, 1-byte pieces, and every two-piece split."""
    splits = [[raw], [raw[i : i + 1] for i in range(len(raw))]]
    splits += [[raw[:i], raw[i:]] for i in range(1, len(raw))]
    return splits


def assert_split_invariant(raw: bytes, expected: list[Event]) -> None:
    for chunks in every_split(raw):
        assert decode_all(chunks) == expected, chunks


OPENAI_STREAM = (
    b'data: {"id":"c1","choices":[{"delta":{"content":"Hel"}}]}\n\n'
    b'data: {"id":"c1","choices":[{"delta":{"content":"lo \xe2\x82\xac\xf0\x9f\x98\x80"}}]}\n\n'
    b"data: [DONE]\n\n"
)
ANTHROPIC_STREAM = (
    b"event: message_start\r\n"
    b'data: {"type":"message_start"}\r\n'
    b"\r\n"
    b": keep-alive comment\r\n"
    b"\r\n"
    b"event: ping\r\n"
    b'data: {"type": "ping"}\r\n'
    b"\r\n"
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            OPENAI_STREAM,
            [
                Event('{"id":"c1","choices":[{"delta":{"content":"Hel"}}]}'),
                Event('{"id":"c1","choices":[{"delta":{"content":"lo \u20ac\U0001f600"}}]}'),
                Event("[DONE]"),
            ],
            id="openai-lf-utf8",
        ),
        pytest.param(
            ANTHROPIC_STREAM,
            [
                Event('{"type":"message_start"}', event="message_start"),
                Event('{"type": "ping"}', event="ping"),
            ],
            id="anthropic-crlf-comment",
        ),
        pytest.param(b"data: a\rdata: b\r\rdata: c\r\r", [Event("a\nb"), Event("c")], id="cr"),
        pytest.param(
            b"data: a\r\ndata: b\ndata: c\r\r\n\n",
            [Event("a\nb\nc")],
            id="mixed-line-ends",
        ),
        pytest.param(b"data\n\n", [Event("")], id="field-without-colon"),
        pytest.param(b"data:\n\n", [Event("")], id="empty-value"),
        pytest.param(b"data:x\n\n", [Event("x")], id="no-space"),
        pytest.param(b"data:  two\n\n", [Event(" two")], id="only-one-space-removed"),
        pytest.param(b"data: a:b: c\n\n", [Event("a:b: c")], id="colons-in-value"),
        pytest.param(b"data: \n\n", [Event("")], id="space-only"),
        pytest.param(b"data\ndata\n\n", [Event("\n")], id="two-empty-data-lines"),
        pytest.param(b"event: x\n\n", [], id="no-data-no-event"),
        pytest.param(b"event: x\n\ndata: y\n\n", [Event("y")], id="type-reset-after-blank"),
        pytest.param(b"event:\ndata: y\n\n", [Event("y")], id="empty-type-is-none"),
        pytest.param(b":comment\ndata: y\n:another\n\n", [Event("y")], id="comments"),
        pytest.param(b"foo: bar\nDATA: no\ndata: y\n\n", [Event("y")], id="unknown-fields"),
        pytest.param(
            b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
            [Event("a", id="1"), Event("b", id="1"), Event("c", id="")],
            id="last-event-id-persists",
        ),
        pytest.param(b"id: a\0b\ndata: x\n\n", [Event("x")], id="id-with-nul-ignored"),
        pytest.param(
            b"retry: 1500\ndata: a\n\nretry: 1x\ndata: b\n\nretry: \xd9\xa3\ndata: c\n\n",
            [Event("a", retry=1500), Event("b"), Event("c")],  # ASCII digits only
            id="retry",
        ),
        pytest.param(b"\xef\xbb\xbfdata: bom\n\n", [Event("bom")], id="bom"),
        pytest.param(
            b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n",
            [],  # only one BOM is dropped; the second makes the field name unknown
            id="second-bom-kept",
        ),
        pytest.param(b"data: \xff\xfe\n\n", [Event("\ufffd\ufffd")], id="invalid-utf8"),
        pytest.param(b"data: \xe2\x82\n\n", [Event("\ufffd")], id="truncated-utf8"),
        pytest.param(b"data: last", [Event("last")], id="unterminated-line-at-close"),
        pytest.param(b"data: last\n", [Event("last")], id="no-blank-line-at-close"),
        pytest.param(b"data: \xe2\x80\xa8x\n\n", [Event("\u2028x")], id="u2028-is-not-a-break"),
        pytest.param(
            b"data: a\x0bb\x0cc\x1cd\x85e\n\n", [Event("a\x0bb\x0cc\x1cd\ufffde")], id="vt-ff"
        ),
        pytest.param(b"", [], id="empty"),
        pytest.param(b"\xef\xbb", [], id="half-a-bom-then-eof"),
        pytest.param(b"\n\n\r\n\r", [], id="blank-lines-only"),
    ],
)
def test_decoder_at_every_split(raw: bytes, expected: list[Event]) -> None:
    assert_split_invariant(raw, expected)


def test_crlf_split_across_feeds_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"") == []  # an empty read keeps the pending CR
    assert decoder.feed(b"\n") == []  # the LF completes the CRLF: not a blank line
    assert decoder.feed(b"\r\n") == [Event("a")]


def test_cr_then_cr_is_a_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [Event("a")]


def test_multibyte_character_split_across_feeds() -> None:
    euro = "\u20ac".encode()
    decoder = SSEDecoder()
    assert decoder.feed(b"data: " + euro[:1]) == []
    assert decoder.feed(euro[1:2]) == []
    assert decoder.feed(euro[2:] + b"\n\n") == [Event("\u20ac")]


def test_split_bom() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef") == []
    assert decoder.feed(b"\xbb") == []
    assert decoder.feed(b"\xbfdata: x\n\n") == [Event("x")]


def test_close_resets_for_a_new_stream() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 7\ndata: a\n\ndata: partial") == [Event("a", id="7")]
    assert decoder.close() == [Event("partial", id="7")]
    assert decoder.feed(b"\xef\xbb\xbfdata: b\n\n") == [Event("b")]  # BOM and id reset too
    assert decoder.close() == []


def test_events_come_out_as_soon_as_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: 1\n\ndata: 2\n\ndata: 3") == [Event("1"), Event("2")]
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [Event("3")]


# -- limits ----------------------------------------------------------------------------------


def test_limits_are_generous_named_constants() -> None:
    assert MAX_LINE_BYTES >= 1024 * 1024
    assert MAX_EVENT_BYTES >= MAX_LINE_BYTES


@pytest.mark.parametrize(
    "chunks",
    [
        [b"data: " + b"x" * 20],  # one feed, no line end yet
        [b"data: " + b"x" * 20 + b"\n"],  # a complete line in one feed
        [b"data: ", b"x" * 10, b"x" * 10],  # grown across feeds
        [b"data: ok\n", b"x" * 30 + b"\n"],
    ],
)
def test_line_limit_raises(chunks: list[bytes]) -> None:
    with pytest.raises(SSEError, match="line exceeds 16 bytes") as info:
        decode_all(chunks, max_line_bytes=16)
    assert isinstance(info.value, UpstreamError)
    assert info.value.status_hint == 502


def test_line_limit_is_inclusive() -> None:
    decoder = SSEDecoder(max_line_bytes=8)
    assert decoder.feed(b"data: 12") == []  # exactly at the limit: fine
    with pytest.raises(SSEError):
        decoder.feed(b"3")


def test_line_at_the_limit_is_accepted() -> None:
    assert decode_all([b"data: 1234567890\n\n"], max_line_bytes=16) == [Event("1234567890")]


def test_event_limit_raises_instead_of_truncating() -> None:
    decoder = SSEDecoder(max_line_bytes=64, max_event_bytes=32)
    assert decoder.feed(b"data: " + b"a" * 15 + b"\n") == []
    assert decoder.feed(b"data: " + b"b" * 15 + b"\n") == []
    with pytest.raises(SSEError, match="event exceeds 32 bytes"):
        decoder.feed(b"data: c\n")


def test_event_limit_counts_per_event() -> None:
    chunk = b"data: " + b"a" * 20 + b"\n\n"
    events = decode_all([chunk * 10], max_line_bytes=64, max_event_bytes=32)
    assert events == [Event("a" * 20)] * 10


# -- encoding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "event", "wire"),
    [
        ("hello", None, b"data: hello\n\n"),
        ('{"a":1}', "message_start", b'event: message_start\ndata: {"a":1}\n\n'),
        ("a\nb", None, b"data: a\ndata: b\n\n"),
        ("a\r\nb\rc", None, b"data: a\ndata: b\ndata: c\n\n"),
        ("", None, b"data:\n\n"),
        ("x\n", None, b"data: x\ndata:\n\n"),
        (" lead", None, b"data:  lead\n\n"),
        ("\u20ac", None, "data: \u20ac\n\n".encode()),
    ],
)
def test_encode_event(data: str, event: str | None, wire: bytes) -> None:
    assert encode_event(data, event) == wire
    expected = data.replace("\r\n", "\n").replace("\r", "\n")
    assert decode_all([wire]) == [Event(expected, event=event)]


@pytest.mark.parametrize("event", ["a\nb", "a\rb"])
def test_encode_event_refuses_line_breaks_in_type(event: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        encode_event("x", event)


@pytest.mark.parametrize(
    ("text", "wire"),
    [("ping", b": ping\n\n"), ("", b":\n\n"), ("a\nb", b": a\n: b\n\n")],
)
def test_encode_comment(text: str, wire: bytes) -> None:
    assert encode_comment(text) == wire
    assert decode_all([wire + encode_event("after")]) == [Event("after")]


# -- property ----------------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_type = st.none() | st.text(
    st.characters(codec="utf-8", exclude_characters="\r\n", exclude_categories=("Cs",)),
    min_size=1,
    max_size=10,
).filter(lambda s: s.strip() == s)
_events = st.lists(st.tuples(_text, _type), max_size=6)


def _split(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(raw) + 1) for c in cuts})
    bounds = [0, *points, len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(events=_events, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_roundtrip_at_random_splits(events: list[tuple[str, str | None]], cuts: list[int]) -> None:
    raw = b"".join(encode_event(data, event) for data, event in events)
    expected = [
        Event(data.replace("\r\n", "\n").replace("\r", "\n"), event=event or None)
        for data, event in events
    ]
    assert decode_all(_split(raw, cuts)) == expected


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    raw=st.lists(
        st.sampled_from(
            [
                b"data",
                b"event",
                b"id",
                b"retry",
                b":",
                b" ",
                b"x",
                b"7",
                b"\r",
                b"\n",
                b"\r\n",
                b"\xef\xbb\xbf",
                b"\xe2\x82",
                b"\xac",
                b"\xff",
                b"\0",
            ]
        ),
        max_size=60,
    ).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_arbitrary_bytes_split_anywhere_decode_the_same(raw: bytes, cuts: list[int]) -> None:
    assert decode_all(_split(raw, cuts)) == decode_all([raw])
