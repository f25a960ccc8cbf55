"""The RESP2 codec: commands out, replies in, split anywhere, bounded, linear."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.redis import resp
from gateway.redis.errors import RedisError, RedisProtocolError
from gateway.redis.resp import NEED_DATA, RespParser, encode_command, encode_commands


def encode_reply(value) -> bytes:
    """Replies as a server writes them (the test's side of the wire)."""
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, RedisError):
        return b"-" + value.message.encode() + b"\r\n"
    if isinstance(value, str):
        return b"+" + value.encode() + b"\r\n"
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    return b"*%d\r\n" % len(value) + b"".join(encode_reply(v) for v in value)


def parse_all(parser: RespParser, data: bytes) -> list:
    parser.feed(data)
    out = []
    for _ in range(10_000):
        reply = parser.next_reply()
        if reply is NEED_DATA:
            return out
        out.append(reply)
    raise AssertionError("the parser never asked for more data")


SAMPLE = [
    "OK",
    RedisError("ERR unknown command 'NOPE'"),
    42,
    -7,
    b"hello\r\nworld",
    b"",
    None,
    [],
    [b"a", 1, [None, "PONG", [RedisError("WRONGTYPE x")]], b""],
]
SAMPLE_BYTES = b"".join(encode_reply(v) for v in SAMPLE) + b"*-1\r\n"
EXPECTED = [*SAMPLE, None]


def test_every_reply_type():
    assert parse_all(RespParser(), SAMPLE_BYTES) == EXPECTED


def test_split_at_every_byte_boundary_in_two():
    for cut in range(len(SAMPLE_BYTES) + 1):
        parser = RespParser()
        got = parse_all(parser, SAMPLE_BYTES[:cut]) + parse_all(parser, SAMPLE_BYTES[cut:])
        assert got == EXPECTED, cut
        assert parser.buffered == 0


def test_one_byte_at_a_time():
    parser = RespParser()
    got = []
    for i in range(len(SAMPLE_BYTES)):
        got += parse_all(parser, SAMPLE_BYTES[i : i + 1])
    assert got == EXPECTED


def test_encode_command():
    assert encode_command("SET", b"k\r\n", 12, -3, 1.5) == (
        b"*5\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$2\r\n12\r\n$2\r\n-3\r\n$3\r\n1.5\r\n"
    )
    assert encode_command("é") == b"*1\r\n$2\r\n\xc3\xa9\r\n"
    assert encode_commands([("PING",), ("GET", "a")]) == (
        b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
    )


@pytest.mark.parametrize("bad", [True, None, float("nan"), float("inf"), object(), [b"a"]])
def test_encode_refuses_what_redis_would_misread(bad):
    with pytest.raises((TypeError, ValueError)):
        encode_command("SET", "k", bad)
    with pytest.raises(ValueError, match="at least its name"):
        encode_command()


args = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.text(max_size=20),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=8,
)


def _as_bytes(arg) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, int):
        return str(arg).encode()
    return repr(arg).encode()


@settings(max_examples=300, deadline=None)
@given(args)
def test_a_command_parses_back_to_its_arguments(command):
    # A command is an array of bulk strings: the reply parser reads it back.
    assert parse_all(RespParser(), encode_command(*command)) == [[_as_bytes(a) for a in command]]


line_text = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20
)
replies = st.recursive(
    st.one_of(
        st.none(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.binary(max_size=30),
        line_text,
        line_text.map(RedisError),
    ),
    lambda children: st.lists(children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(replies, min_size=1, max_size=5), st.data())
def test_replies_round_trip_however_they_are_cut(values, data):
    wire = b"".join(encode_reply(v) for v in values)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    parser = RespParser()
    got = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        got += parse_all(parser, wire[start:end])
    assert got == values


@pytest.mark.parametrize(
    "wire",
    [
        b"?what\r\n",  # no such type
        b":12a\r\n",  # not an integer
        b":1_000\r\n",  # Python's int() would take it
        b": 5\r\n",
        b":\xd9\xa3\r\n",  # an Arabic-Indic digit
        b"$3\r\nabcd\r\n",  # bulk not followed by CRLF
        b"$x\r\n",
        b"*1.5\r\n",
    ],
)
def test_not_resp_is_a_protocol_error(wire):
    with pytest.raises(RedisProtocolError):
        parse_all(RespParser(), wire)


def test_caps():
    with pytest.raises(RedisProtocolError, match="bulk string"):
        parse_all(RespParser(), b"$%d\r\n" % (resp.MAX_BULK_BYTES + 1))
    with pytest.raises(RedisProtocolError, match="longer than"):
        parse_all(RespParser(), b"+" + b"x" * (resp.MAX_LINE_BYTES + 1))
    with pytest.raises(RedisProtocolError, match="nested deeper"):
        parse_all(RespParser(), b"*1\r\n" * (resp.MAX_DEPTH + 1))
    with pytest.raises(RedisProtocolError, match="elements"):
        parse_all(RespParser(), b"*%d\r\n" % (resp.MAX_ELEMENTS + 1))
    with pytest.raises(RedisProtocolError, match="elements"):  # counted across arrays
        parse_all(RespParser(), b"*2\r\n*%d\r\n" % resp.MAX_ELEMENTS + b":1\r\n" * 10 + b"*2\r\n")
    # At the caps exactly: fine.
    parser = RespParser()
    assert parse_all(parser, b"*1\r\n" * resp.MAX_DEPTH + b":1\r\n") != []
    assert parse_all(RespParser(), b"+" + b"x" * (resp.MAX_LINE_BYTES - 1) + b"\r\n") != []


def test_a_whole_reply_is_capped(monkeypatch):
    monkeypatch.setattr(resp, "MAX_REPLY_BYTES", 1000)
    parser = RespParser()
    assert parse_all(parser, b"*3\r\n" + encode_reply(b"x" * 400) * 2) == []
    with pytest.raises(RedisProtocolError, match="larger than"):
        parse_all(parser, encode_reply(b"x" * 400))


def test_linear_in_input():
    # A 4 MiB bulk string and a 100,000-element array, each fed 1 KiB at a time: a parser
    # that re-joined or re-scanned its buffer per feed would take minutes.
    bulk = encode_reply(b"x" * (4 * 1024 * 1024))
    array = encode_reply([b"abc"] * 100_000)
    for wire in (bulk, array):
        parser = RespParser()
        started = time.perf_counter()
        got = []
        for i in range(0, len(wire), 1024):
            got += parse_all(parser, wire[i : i + 1024])
        assert len(got) == 1
        assert time.perf_counter() - started < 10
