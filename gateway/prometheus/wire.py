"""Snapshots between processes: length-prefixed frames on a byte stream, and a compact
JSON form of a snapshot.

Theory of operation: the processes of one group (a supervisor and its workers,
gateway.metrics_group) talk over a socketpair each, both ways on one stream.
A frame is a 13-byte head (kind: 1 byte; sequence number: 8 bytes; payload
length: 4 bytes, big-endian) and its payload. :class:`FrameReader` turns
whatever the stream delivers into whole frames; :func:`send_frame` writes one.
The sequence number pairs an answer with its question, so a late answer to
an earlier question is recognised as such.

:func:`send_whole` sends a frame whole or not at all: shielded from
cancellation (a frame cut short would garble the stream for good) and bounded
by :data:`SEND_TIMEOUT_S` (a peer that does not read); when that runs out the
stream is unusable (:class:`LinkDown`) and its owner closes it.

Bounds: a payload longer than :data:`MAX_PAYLOAD_BYTES` is a protocol error
(:class:`FrameError`), so a reader never holds more than one frame and one
read; the sender checks first and never sends one. A snapshot is at most
~10 families of 10,000 label sets each (the families' cap) with label values
of at most 200 characters: about 20 MiB in the worst case, a few KiB in
practice.

:func:`encode_statistics` / :func:`decode_statistics` carry a
:class:`MetricsStatistics` as compact JSON lists (no attrs.asdict walk: a
snapshot is encoded at every scrape); the decoder checks every type and says
what it did not like (:class:`FrameError`).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import attrs
import trio

from gateway.prometheus.snapshots import (
    AGGREGATES,
    Aggregate,
    FamilyStatistics,
    MetricsStatistics,
    Series,
)

__all__ = [
    "HEAD",
    "LINK_ERRORS",
    "MAX_PAYLOAD_BYTES",
    "SEND_TIMEOUT_S",
    "Frame",
    "FrameError",
    "FrameReader",
    "LinkDown",
    "decode_statistics",
    "encode_statistics",
    "send_frame",
    "send_whole",
]

#: kind (1 byte), sequence number (8), payload length (4).
HEAD = struct.Struct(">BQI")
#: Longest payload sent or accepted (see the module docstring for the worst snapshot).
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
#: Bytes asked of the stream per read.
READ_SIZE = 64 * 1024
#: A frame not sent within this makes its stream unusable (the peer does not read).
SEND_TIMEOUT_S = 5.0


class FrameError(Exception):
    """The peer broke the framing (a payload over the cap, a truncated frame) or sent
    a payload that is not what its kind promises."""


class LinkDown(Exception):
    """A frame could not be sent within SEND_TIMEOUT_S: the stream is unusable."""


#: What makes a stream of frames unusable: broken framing, a send that timed out,
#: a closed or broken socket.
LINK_ERRORS = (FrameError, LinkDown, trio.BrokenResourceError, trio.ClosedResourceError)


@attrs.frozen
class Frame:
    kind: int
    seq: int
    payload: bytes = b""


class FrameReader:
    """Whole frames from a receive stream, one at a time (:meth:`next`)."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def next(self) -> Frame | None:
        """The next frame; None at a clean end of the stream (between frames).

        Raises:
            FrameError: the stream ended inside a frame, or a payload is too long.
        """
        while True:
            if len(self._buffer) >= HEAD.size:
                kind, seq, length = HEAD.unpack_from(self._buffer)
                if length > MAX_PAYLOAD_BYTES:
                    raise FrameError(f"a frame of {length} bytes (most: {MAX_PAYLOAD_BYTES})")
                end = HEAD.size + length
                if len(self._buffer) >= end:
                    payload = bytes(self._buffer[HEAD.size : end])
                    del self._buffer[:end]
                    return Frame(kind, seq, payload)
                wanted = end - len(self._buffer)
            else:
                wanted = HEAD.size - len(self._buffer)
            data = await self._stream.receive_some(max(READ_SIZE, min(wanted, 1024 * 1024)))
            if not data:
                if self._buffer:
                    raise FrameError("the stream ended inside a frame")
                return None
            self._buffer += data


async def send_frame(
    stream: trio.abc.SendStream, kind: int, seq: int, payload: bytes = b""
) -> None:
    """Write one frame (the caller serialises sends on a shared stream).

    Raises:
        FrameError: the payload is longer than :data:`MAX_PAYLOAD_BYTES` (nothing sent).
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise FrameError(f"a payload of {len(payload)} bytes (most: {MAX_PAYLOAD_BYTES})")
    await stream.send_all(HEAD.pack(kind, seq, len(payload)) + payload)


async def send_whole(
    stream: trio.abc.SendStream, lock: trio.StrictFIFOLock, kind: int, seq: int, payload: bytes
) -> None:
    """Send one frame whole or not at all, after the sends before it (``lock``).

    Raises:
        FrameError: the payload is too long (nothing was sent; the stream is fine).
        LinkDown: not sent within :data:`SEND_TIMEOUT_S`; close the stream.
    """
    async with lock:
        with trio.CancelScope(shield=True), trio.move_on_after(SEND_TIMEOUT_S) as scope:
            await send_frame(stream, kind, seq, payload)
        if scope.cancelled_caught:
            raise LinkDown(f"a frame was not sent within {SEND_TIMEOUT_S:g} s")


# -- snapshots as compact JSON ---------------------------------------------------------------


def encode_statistics(stats: MetricsStatistics) -> bytes:
    """``stats`` as compact JSON: one list per family, one list per series."""
    families = [
        [
            f.name,
            f.documentation,
            f.kind,
            f.labelnames,
            f.bounds,
            f.aggregate,
            [[s.labels, s.value, s.cumulative, s.sum] for s in f.series],
        ]
        for f in stats.families
    ]
    return json.dumps(families, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _strs(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FrameError(f"{what}: expected a list of strings")
    return tuple(value)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FrameError(f"{what}: expected a number")
    return value


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise FrameError(f"{what}: expected a list of integers")
    return tuple(value)


def _aggregate(value: Any, what: str) -> Aggregate:
    for known in AGGREGATES:
        if value == known:
            return known
    raise FrameError(f"{what}: unknown aggregate")


def _series(raw: Any, family: str, labels: int, buckets: int) -> Series:
    if not isinstance(raw, list) or len(raw) != 4:
        raise FrameError(f"{family}: a series is a list of four")
    values = _strs(raw[0], family)
    cumulative = _ints(raw[2], family)
    if len(values) != labels or len(cumulative) not in (0, buckets + 1):
        raise FrameError(f"{family}: a series of the wrong shape")
    return Series(values, _number(raw[1], family), cumulative, _number(raw[3], family))


def _family(raw: Any) -> FamilyStatistics:
    if not isinstance(raw, list) or len(raw) != 7:
        raise FrameError("a family is a list of seven")
    name, documentation, kind, labelnames, bounds, aggregate, series = raw
    if not isinstance(name, str) or not isinstance(documentation, str):
        raise FrameError("a family's name and help are strings")
    if kind not in ("counter", "gauge", "histogram") or not isinstance(series, list):
        raise FrameError(f"{name}: unknown kind or no series")
    if not isinstance(bounds, list):
        raise FrameError(f"{name}: bounds are a list")
    names = _strs(labelnames, name)
    return FamilyStatistics(
        name=name,
        documentation=documentation,
        kind=kind,
        labelnames=names,
        bounds=tuple(_number(b, name) for b in bounds),
        series=tuple(_series(s, name, len(names), len(bounds)) for s in series),
        aggregate=_aggregate(aggregate, name),
    )


def decode_statistics(data: bytes) -> MetricsStatistics:
    """The inverse of :func:`encode_statistics`.

    Raises:
        FrameError: not JSON, or not the shape :func:`encode_statistics` writes.
    """
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise FrameError(f"a snapshot that is not JSON ({exc})") from None
    if not isinstance(raw, list):
        raise FrameError("a snapshot is a list of families")
    return MetricsStatistics(tuple(_family(f) for f in raw))
