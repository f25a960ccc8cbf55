"""RESP2, the Redis protocol, sans-IO: a command encoder and an incremental reply parser.

Theory of operation (https://redis.io/docs/latest/develop/reference/protocol-spec/):

* A command goes out as an array of bulk strings: ``*<n>\\r\\n`` then, per argument,
  ``$<len>\\r\\n<bytes>\\r\\n``. Arguments may be ``bytes``, ``str`` (UTF-8), ``int`` or a
  finite ``float``; anything else (``bool`` included: is ``True`` 1 or "True"?) is a
  ``TypeError`` at the caller, before a byte is written.
* A reply is one of: a simple string ``+OK`` (here ``str``), an error ``-ERR ...`` (a
  :class:`~gateway.redis.errors.RedisError` *value*: inside a pipeline or an array it is
  one reply among others), an integer ``:42`` (``int``), a bulk string ``$3\\r\\nabc``
  (``bytes``; ``$-1`` is nil, ``None``) or an array ``*2`` of replies (``list``; ``*-1``
  is nil).

The parser is fed whatever the socket gave and hands out whole replies. Like
:mod:`gateway.sse` it keeps one ``bytearray`` and an offset into it, never re-joining or
re-scanning what it has read: a line's CRLF search resumes where the last one stopped, a
bulk string waits by length alone, and an array being received is a stack of open frames,
so a reply split into any number of pieces costs what it costs whole (linear). The
consumed prefix is dropped once it is at least half the buffer.

Bounds, each a :class:`~gateway.redis.errors.RedisProtocolError` (the client then closes
the connection: after a violation nothing on it can be trusted):
one bulk string at most :data:`MAX_BULK_BYTES` (Redis allows 512 MiB; nothing we ask for
comes near 16), one line (simple string, error, integer, length) :data:`MAX_LINE_BYTES`,
arrays nested at most :data:`MAX_DEPTH` deep and :data:`MAX_ELEMENTS` elements in one
reply, one reply :data:`MAX_REPLY_BYTES` in all. Integers and lengths are ASCII digits
with an optional ``-`` (Python's ``int()`` would take ``1_0``, spaces and other scripts'
digits).
"""

from __future__ import annotations

import math
import re
from typing import TypeAlias

import attrs

from gateway.redis.errors import RedisError, RedisProtocolError

__all__ = [
    "MAX_BULK_BYTES",
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "MAX_LINE_BYTES",
    "MAX_REPLY_BYTES",
    "NEED_DATA",
    "Arg",
    "NeedData",
    "Reply",
    "RespParser",
    "encode_command",
    "encode_commands",
]

#: One bulk string. Our replies are counters, hashes of a few fields and small arrays.
MAX_BULK_BYTES = 16 * 1024 * 1024
#: One line without its CRLF: a simple string, an error message, an integer or a length.
MAX_LINE_BYTES = 64 * 1024
#: Array nesting (our scripts return arrays of arrays: 2).
MAX_DEPTH = 16
#: Elements of all arrays of one reply.
MAX_ELEMENTS = 1_000_000
#: Bytes of one whole reply.
MAX_REPLY_BYTES = 64 * 1024 * 1024

Reply: TypeAlias = "str | bytes | int | RedisError | list[Reply] | None"
Arg: TypeAlias = "bytes | str | int | float"

_INTEGER = re.compile(rb"-?[0-9]{1,20}")
_COMPACT_AT = 64 * 1024


class NeedData:
    """The sentinel :meth:`RespParser.next_reply` returns when no whole reply is buffered."""

    def __repr__(self) -> str:
        return "NEED_DATA"


#: The one :class:`NeedData`.
NEED_DATA = NeedData()


def _arg_bytes(arg: Arg) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode("utf-8")
    if isinstance(arg, bool):
        raise TypeError("a Redis argument cannot be a bool: pass 1/0 or a string")
    if isinstance(arg, int):
        return b"%d" % arg
    if isinstance(arg, float):
        if not math.isfinite(arg):
            raise ValueError(f"a Redis argument must be a finite number, got {arg!r}")
        return repr(arg).encode("ascii")
    raise TypeError(f"a Redis argument is bytes, str, int or float, got {type(arg).__name__}")


def encode_command(*args: Arg) -> bytes:
    """One command as RESP: an array of bulk strings.

    Raises:
        TypeError, ValueError: an argument of another type, a bool, a NaN or infinity.
    """
    if not args:
        raise ValueError("a Redis command needs at least its name")
    out = bytearray(b"*%d\r\n" % len(args))
    for arg in args:  # the usual types inline: every command comes through here
        if isinstance(arg, str):
            data = arg.encode("utf-8")
        elif isinstance(arg, bytes):
            data = arg
        else:
            data = _arg_bytes(arg)
        out += b"$%d\r\n%b\r\n" % (len(data), data)
    return bytes(out)


def encode_commands(commands: list[tuple[Arg, ...]]) -> bytes:
    """Several commands in one buffer (a pipeline: one write)."""
    return b"".join(encode_command(*command) for command in commands)


@attrs.define
class _Frame:
    """An array being received: how many elements are still to come, and those so far."""

    remaining: int
    items: list[Reply]


class RespParser:
    """Incremental RESP2 reply parser: :meth:`feed` bytes, take :meth:`next_reply` until
    it returns :data:`NEED_DATA`."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # the first byte not yet consumed
        self._scan = 0  # where the search for the next CRLF resumes (>= _pos)
        self._bulk = -1  # length of the bulk string whose header was read, -1: none
        self._stack: list[_Frame] = []
        self._elements = 0  # array elements of the reply being received
        self._reply_bytes = 0  # bytes consumed by the reply being received

    @property
    def buffered(self) -> int:
        """Bytes received and not yet handed out as (part of) a reply."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes | bytearray) -> None:
        """Append bytes from the server."""
        pos = self._pos
        if pos and (pos == len(self._buf) or (pos >= _COMPACT_AT and 2 * pos >= len(self._buf))):
            del self._buf[:pos]
            self._scan -= pos
            self._pos = 0
        self._buf += data

    def next_reply(self) -> Reply | NeedData:
        """The next whole reply, or :data:`NEED_DATA`.

        Raises:
            RedisProtocolError: the bytes are not RESP2 or break a bound.
        """
        while True:
            if self._bulk >= 0:
                value: Reply = self._take_bulk()
                if value is None:  # not all of it yet (a nil bulk is never pending)
                    return NEED_DATA
            else:
                line = self._take_line()
                if line is None:
                    return NEED_DATA
                kind, rest = line[:1], bytes(line[1:])
                if kind == b"$":
                    length = self._integer(rest)
                    if length < 0:
                        value = None
                    else:
                        self._start_bulk(length)
                        continue
                elif kind == b"*":
                    count = self._integer(rest)
                    if count > 0:
                        self._open_array(count)
                        continue
                    value = None if count < 0 else []
                elif kind == b"+":
                    value = rest.decode("utf-8", "replace")
                elif kind == b"-":
                    value = RedisError(rest.decode("utf-8", "replace"))
                elif kind == b":":
                    value = self._integer(rest)
                else:
                    raise RedisProtocolError(f"not a RESP2 reply (type byte {bytes(kind)!r})")
            done = self._close_frames(value)
            if done is not NEED_DATA:
                return done

    # -- pieces ---------------------------------------------------------------------------

    def _take_line(self) -> bytearray | None:
        buf = self._buf
        end = buf.find(b"\r\n", self._scan)
        if end < 0:
            if len(buf) - self._pos > MAX_LINE_BYTES:
                raise RedisProtocolError(f"a RESP line longer than {MAX_LINE_BYTES} bytes")
            self._scan = max(self._pos, len(buf) - 1)  # a CR at the end may meet its LF next
            return None
        if end - self._pos > MAX_LINE_BYTES:
            raise RedisProtocolError(f"a RESP line longer than {MAX_LINE_BYTES} bytes")
        line = buf[self._pos : end]
        self._consume(end + 2 - self._pos)
        return line

    def _consume(self, n: int) -> None:
        self._pos += n
        self._scan = self._pos
        self._reply_bytes += n
        if self._reply_bytes > MAX_REPLY_BYTES:
            raise RedisProtocolError(f"a reply larger than {MAX_REPLY_BYTES} bytes")

    @staticmethod
    def _integer(text: bytes) -> int:
        if not _INTEGER.fullmatch(text):
            raise RedisProtocolError(f"not a RESP integer: {text[:40]!r}")
        return int(text)

    def _start_bulk(self, length: int) -> None:
        if length > MAX_BULK_BYTES:
            raise RedisProtocolError(f"a bulk string of {length} bytes (at most {MAX_BULK_BYTES})")
        if self._reply_bytes + length + 2 > MAX_REPLY_BYTES:
            raise RedisProtocolError(f"a reply larger than {MAX_REPLY_BYTES} bytes")
        self._bulk = length

    def _take_bulk(self) -> bytes | None:
        length, start = self._bulk, self._pos
        if len(self._buf) - start < length + 2:
            return None
        if self._buf[start + length : start + length + 2] != b"\r\n":
            raise RedisProtocolError("a bulk string not followed by CRLF")
        value = bytes(self._buf[start : start + length])
        self._bulk = -1
        self._consume(length + 2)
        return value

    def _open_array(self, count: int) -> None:
        if len(self._stack) >= MAX_DEPTH:
            raise RedisProtocolError(f"arrays nested deeper than {MAX_DEPTH}")
        self._elements += count
        if self._elements > MAX_ELEMENTS:
            raise RedisProtocolError(f"a reply of more than {MAX_ELEMENTS} elements")
        self._stack.append(_Frame(count, []))

    def _close_frames(self, value: Reply) -> Reply | NeedData:
        """Put ``value`` in its array (closing every array it completes); the whole reply
        when none is left open."""
        stack = self._stack
        while stack:
            frame = stack[-1]
            frame.items.append(value)
            frame.remaining -= 1
            if frame.remaining:
                return NEED_DATA
            stack.pop()
            value = frame.items
        self._elements = 0
        self._reply_bytes = 0
        return value
