"""Server-sent events: a sans-IO decoder and encoder (no trio, no httpx).

Theory of operation. The decoder follows the WHATWG HTML standard,
§9.2.6 "Interpreting an event stream":

* The stream is UTF-8; one leading byte-order mark is dropped.
* Lines end in CRLF, LF or CR. A CR at the end of one ``feed`` and an LF at
  the start of the next are one line end (``_skip_lf``).
* ``field:value`` with one leading space of the value removed; a line with
  no colon is a field with an empty value; a line starting with ``:`` is a
  comment. ``data`` lines accumulate, joined by ``"\\n"``; ``event`` sets the
  type; ``id`` sets the last event id (kept for later events, ignored when it
  holds NUL); ``retry`` takes ASCII digits only; other fields are ignored.
* A blank line dispatches the event if it has data, and resets data and type.

Like h11's receive buffer, the decoder keeps the unfinished tail of the
input in one ``bytearray`` and splits complete lines with
``bytes.splitlines`` (which, for bytes, breaks at CR, LF and CRLF only; the
str method would also break at U+2028 and friends). Lines are handled as
bytes: CR and LF never occur inside a multi-byte UTF-8 sequence, so
decoding each event's data at dispatch is the same as decoding the stream
incrementally, and a character split across two feeds simply waits in the
buffer. Invalid UTF-8 becomes U+FFFD, as the standard says.

One deliberate difference: at :meth:`SSEDecoder.close` an event whose blank
line never came is still dispatched (the standard drops it). A provider that
closes right after its last ``data:`` line then loses nothing; httpx's
decoders ``flush`` the same way.

Limits raise :class:`SSEError` (502) instead of truncating: a broken or
hostile upstream must not grow one stream's memory without bound.
"""

from __future__ import annotations

import re

import attrs

from gateway.errors import UpstreamError

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_LINE_BYTES",
    "Event",
    "SSEDecoder",
    "SSEError",
    "encode_comment",
    "encode_event",
]

#: Longest line, in bytes. The largest legitimate line is one streamed chunk
#: holding a generated image as base64 (Gemini image models: a few MiB);
#: 16 MiB leaves room for that and stops a stream that never sends a line end.
MAX_LINE_BYTES = 16 * 1024 * 1024

#: Most data one event may accumulate, in bytes, for the same reason: a
#: stream of ``data:`` lines without a blank line would otherwise grow forever.
#: Same-format streams, relayed undecoded, cut at the same size
#: (:class:`gateway.proxy.relay.EventFramer`); past it the client gets an in-stream error.
MAX_EVENT_BYTES = 16 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class SSEError(UpstreamError):
    """The upstream's event stream broke a limit or could not be read (502)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status_hint=502)


@attrs.frozen
class Event:
    """One dispatched event.

    Attributes:
        data: the data lines joined with ``"\\n"``.
        event: the ``event:`` type, or None (a browser would say ``"message"``).
        id: the last event id seen so far in the stream, or None.
        retry: the ``retry:`` milliseconds given in this event's lines, or None.
    """

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Incremental event-stream parser: bytes in, :class:`Event` objects out.

    Args:
        max_line_bytes: longest accepted line.
        max_event_bytes: most data bytes one event may hold.
    """

    def __init__(
        self, *, max_line_bytes: int | None = None, max_event_bytes: int | None = None
    ) -> None:
        # The module's limits are read here, not at import, so one setting serves both paths.
        self._max_line = MAX_LINE_BYTES if max_line_bytes is None else max_line_bytes
        self._max_event = MAX_EVENT_BYTES if max_event_bytes is None else max_event_bytes
        self._reset()

    def _reset(self) -> None:
        self._buffer = bytearray()
        self._at_start = True  # a BOM is still possible
        self._skip_lf = False  # the last line ended in a CR that may be half a CRLF
        self._data: list[bytes | bytearray] = []
        self._data_size = 0
        self._event: str | None = None
        self._retry: int | None = None
        self._last_id: str | None = None

    def feed(self, data: bytes) -> list[Event]:
        """Take the next bytes of the stream; return the events they complete.

        Raises:
            SSEError: a line or an event exceeds its limit.
        """
        if self._skip_lf and data:
            self._skip_lf = False
            if data[0] == 0x0A:  # LF
                data = data[1:]
        if b"\n" not in data and b"\r" not in data:
            self._buffer += data
            self._check_tail()
            return []
        self._buffer += data
        if self._at_start:
            self._strip_bom()  # cannot wait for more: the buffer holds a line end
        lines = self._buffer.splitlines(keepends=True)
        tail = lines.pop() if not lines[-1].endswith((b"\n", b"\r")) else b""
        self._skip_lf = not tail and lines[-1].endswith(b"\r")
        self._buffer = bytearray(tail)
        self._check_tail()
        events: list[Event] = []
        for line in lines:
            self._line(line.rstrip(b"\r\n"), events)
        return events

    def close(self) -> list[Event]:
        """End of stream: handle an unterminated last line and a pending event.

        The decoder is reset and can read a new stream.
        """
        events: list[Event] = []
        if self._buffer and (not self._at_start or self._strip_bom()):
            self._line(bytes(self._buffer), events)
        self._line(b"", events)
        self._reset()
        return events

    def _strip_bom(self) -> bool:
        """Drop a leading BOM; False while the buffer might still be its start."""
        if len(self._buffer) < len(_BOM) and _BOM.startswith(self._buffer):
            return False
        if self._buffer.startswith(_BOM):
            del self._buffer[: len(_BOM)]
        self._at_start = False
        return True

    def _check_tail(self) -> None:
        if len(self._buffer) > self._max_line:
            raise SSEError(
                f"upstream event stream: a line exceeds {self._max_line} bytes without a line end"
            )

    def _line(self, line: bytes | bytearray, events: list[Event]) -> None:
        if not line:
            self._dispatch(events)
            return
        if len(line) > self._max_line:
            raise SSEError(f"upstream event stream: a line exceeds {self._max_line} bytes")
        if line[0] == 0x3A:  # ":" starts a comment
            return
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
            self._data_size += len(value) + 1
            if self._data_size > self._max_event:
                raise SSEError(f"upstream event stream: an event exceeds {self._max_event} bytes")
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self._last_id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():
            self._retry = int(value)

    def _dispatch(self, events: list[Event]) -> None:
        if self._data:
            data = b"\n".join(self._data).decode("utf-8", "replace")
            events.append(Event(data, self._event or None, self._last_id, self._retry))
        self._data = []
        self._data_size = 0
        self._event = None
        self._retry = None


def encode_event(data: str, event: str | None = None) -> bytes:
    """One event in wire form, ending in its blank line.

    Each line of ``data`` (split at CRLF, CR or LF, so those become ``"\\n"`` for
    the reader) becomes its own ``data:`` line.

    Raises:
        ValueError: ``event`` holds a line break (it would inject fields).
    """
    head = ""
    if event is not None:
        if "\r" in event or "\n" in event:
            raise ValueError("an SSE event type must not contain a line break")
        head = f"event: {event}\n"
    body = "".join(f"data: {line}\n" if line else "data:\n" for line in _LINE_BREAK.split(data))
    return f"{head}{body}\n".encode()


def encode_comment(text: str) -> bytes:
    """A comment (``: text``), e.g. an OpenAI-client keep-alive; readers ignore it.

    Each line of ``text`` becomes a comment line; a blank line follows, which
    dispatches nothing.
    """
    body = "".join(f": {line}\n" if line else ":\n" for line in _LINE_BREAK.split(text))
    return f"{body}\n".encode()
