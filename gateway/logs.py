"""Logger names, formatters, request ids and the access log.

Theory of operation: lines are formatted in the calling task and appended to a
deque; a single thread drains it in batches (every 20 ms: one write, one flush),
so a slow terminal or a full pipe never blocks the event loop, and a busy server
costs the thread a few wake-ups a second, not one per line. Access lines skip
the ``logging`` machinery entirely (they are written once per request). When
100,000 lines are waiting, new ones are dropped and counted rather than waited for.

Secrets: nothing here logs bodies or headers. Paths pass through
:func:`redact_target`, which removes the value of every credential-like query
parameter (``key=``, where Gemini clients put their API key, ``api_key=``,
``access_token=``, ... judged by the percent-decoded name, see
gateway.redact). Every finished line, access lines included, passes the
redactor the proxy installs per registry snapshot (:func:`set_log_redactor`),
so a provider key echoed anywhere never reaches the log.

Forged lines: a field's control characters (CR, LF, NUL, ESC, DEL, C1, the
Unicode line separators) are escaped (``\n``, ``\x1b``) in text lines, and a
value holding spaces, quotes or ``=`` is quoted, so no client value can start a
new line or fake a ``key=value`` pair. JSON lines are escaped by ``json.dumps``.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

import attrs

from gateway.redact import REDACTED, is_credential_name

if TYPE_CHECKING:
    from gateway.server.exchange import HttpRecord

__all__ = [
    "ACCESS",
    "LOG",
    "JsonFormatter",
    "LineWriter",
    "Sink",
    "TextFormatter",
    "dropped_log_records",
    "escape_controls",
    "new_request_id",
    "redact_line",
    "redact_target",
    "set_log_redactor",
    "setup_logging",
]

LOG = logging.getLogger("gateway")
ACCESS = logging.getLogger("gateway.access")

#: Lines waiting for the writer thread; past this they are dropped (and counted): a burst of
#: 100,000 lines is a few seconds of peak load and ~20 MB at most.
MAX_PENDING = 100_000
#: How often the writer thread drains its lines (one write and one flush per batch).
FLUSH_INTERVAL_S = 0.02

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
#: Access-log fields already spelled out in the text message.
_ACCESS_IN_MESSAGE = frozenset({"request_id", "method", "path", "status", "bytes", "duration_ms"})


def new_request_id() -> str:
    """A fresh request id: 16 random bytes as 32 hex characters."""
    return os.urandom(16).hex()


_REQUEST_ID_OK = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def accept_request_id(value: bytes | None) -> str:
    """The client's ``x-request-id`` when it is a sane token, else a new id."""
    if value:
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            return new_request_id()
        if _REQUEST_ID_OK.fullmatch(text):
            return text
    return new_request_id()


_PARAM_SEPARATOR = re.compile(r"([&;])")


def _param_name(raw: str) -> str:
    """A query parameter's name as a server would read it: ``+`` and %-escapes decoded."""
    name = raw.replace("+", " ")
    for _ in range(3):  # "%256Bey" is "%6Bey" is "key"
        decoded = unquote(name)
        if decoded == name:
            break
        name = decoded
    return name


def redact_target(target: str) -> str:
    """A request target fit for a log: the value of every credential-like parameter removed.

    Parameters are split at ``&`` and ``;``; a name counts by its decoded form
    (``%6Bey``, ``api%5Fkey``, ``KEY``), every occurrence of it is redacted, and
    so is the fragment, in case a client put a token there.
    """
    path, question, query = target.partition("?")
    if not question or "=" not in query:
        return target
    query, hash_, fragment = query.partition("#")
    parts = _PARAM_SEPARATOR.split(query)
    changed = False
    for i in range(0, len(parts), 2):
        name, eq, _value = parts[i].partition("=")
        if eq and is_credential_name(_param_name(name)):
            parts[i] = f"{name}={REDACTED}"
            changed = True
    if hash_ and fragment:
        fragment, changed = REDACTED, True
    if not changed:
        return target
    return f"{path}?{''.join(parts)}{hash_}{fragment}"


#: C0 and C1 controls, DEL and the Unicode line and paragraph separators.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NEEDS_QUOTES = re.compile('[\\s"=]')
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    return _ESCAPES.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


def escape_controls(text: str) -> str:
    """``text`` with every control character escaped: it cannot start or fake a log line."""
    return _CONTROLS.sub(_escape_one, text)


#: Anything that makes a field need escaping or quotes (one search for the common case).
_UNSAFE = re.compile('[\\s"=\x00-\x1f\x7f-\x9f\u2028\u2029]')


def _field(value: Any) -> str:
    """One ``key=value`` value of a text line: controls escaped, quoted when it has spaces."""
    if isinstance(value, str):
        raw = value
    elif isinstance(value, (int, float)):
        return str(value)
    else:
        raw = str(value)
    if _UNSAFE.search(raw) is None:
        return raw
    text = escape_controls(raw)
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


class TextFormatter(logging.Formatter):
    """``time level logger message key=value ...`` for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        # The head of the line only: a traceback after it keeps its own newlines.
        return escape_controls(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        skip = _ACCESS_IN_MESSAGE if record.name == ACCESS.name else ()
        extras = [
            f"{k}={_field(v)}"
            for k, v in record.__dict__.items()
            if k not in _RESERVED and k not in skip
        ]
        if extras:
            head, nl, tail = line.partition("\n")
            line = head + " " + " ".join(extras) + nl + tail
        return redact_line(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for containers and log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return redact_line(json.dumps(out, default=str, separators=(",", ":")))


class Sink(Protocol):
    """Where a :class:`LineWriter` puts its batches (a text stream, the audit log's file)."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> None: ...


class LineWriter:
    """Lines to a stream from a writer thread, in batches.

    ``write`` only appends to a deque (no lock, no wake-up); the thread drains it
    every ``FLUSH_INTERVAL_S`` with one write and one flush, so a busy server costs
    it a few wake-ups a second rather than one per line. Past ``max_pending``
    waiting lines new ones are dropped and counted, never waited for; so are the
    lines of a batch the stream fails to take (``OSError``). The stream is
    anything with ``write`` and ``flush``: stderr here, the audit log's rotating
    file (gateway.audit_log).
    """

    def __init__(
        self, stream: Sink, *, max_pending: int = MAX_PENDING, name: str = "gateway-log-writer"
    ) -> None:
        self._stream = stream
        self._pending: collections.deque[str] = collections.deque()
        self._max_pending = max_pending
        self._stop = threading.Event()
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def write(self, line: str) -> None:
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            return
        self._pending.append(line)

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            self._drain()
        self._drain()

    def _drain(self) -> None:
        pending = self._pending
        if not pending:
            return
        lines = [pending.popleft() for _ in range(len(pending))]
        try:
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: nothing better to do
            self.dropped += len(lines)

    def close(self) -> None:
        """Write out everything pending and stop the thread."""
        self._stop.set()
        self._thread.join(timeout=5)


class _WriterHandler(logging.Handler):
    """Formats a record in the caller and hands the line to the :class:`LineWriter`."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.write(self.format(record))
        except Exception:
            self.handleError(record)


_writer: LineWriter | None = None
_json_access = False
#: Removes provider keys from every line (gateway.redact; the proxy sets it per snapshot).
_redact_line: Callable[[str], str] | None = None


def set_log_redactor(redact: Callable[[str], str] | None) -> None:
    """Pass every log line (access lines included) through ``redact`` from now on."""
    global _redact_line
    _redact_line = redact


def redact_line(line: str) -> str:
    """``line`` with every secret the installed redactor knows removed (provider keys)."""
    redact = _redact_line
    return redact(line) if redact is not None else line


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    """Route the ``gateway`` loggers to stderr through a batching writer thread.

    Idempotent: calling it again replaces the previous setup.
    """
    global _writer, _json_access
    flush_logging()
    _writer = LineWriter(sys.stderr)
    handler = _WriterHandler(_writer)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    _json_access = fmt == "json"
    LOG.handlers[:] = [handler]
    LOG.setLevel(level.upper())
    LOG.propagate = False


def dropped_log_records() -> int:
    """Log lines dropped because the writer fell behind (for /metrics)."""
    return _writer.dropped if _writer is not None else 0


def flush_logging() -> None:
    """Write out every pending line and stop the writer (at exit)."""
    global _writer
    if _writer is not None:
        _writer.close()
        _writer = None


_stamp_cache: tuple[int, str] = (0, "")


def _asctime(now: float) -> str:
    """``logging``'s default time format, the seconds part computed once a second."""
    global _stamp_cache
    whole = int(now)
    if _stamp_cache[0] != whole:
        _stamp_cache = (whole, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(whole)))
    return f"{_stamp_cache[1]},{int((now - whole) * 1000):03d}"


def log_access(record: HttpRecord) -> None:
    """One line per request, refused ones included, written from its record.

    The HTTP fields come first (request id, method, redacted path, status,
    bytes, duration, client), then every field the app's record of the request
    holds (``record.facts``: an attrs instance, fields that are None left
    off), then ``client_gone`` when the client left and ``ttfb_ms`` when a
    response head went out. With :func:`setup_logging` in place the line is
    formatted here and goes straight to the writer (no LogRecord: this runs for
    every request); otherwise, as in tests, it goes through the
    ``gateway.access`` logger.
    """
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    status = record.status if record.status is not None else 499
    duration_ms = round(record.duration_s * 1000, 3)
    path = redact_target(record.target)
    extra = _extra_fields(record)
    if _writer is not None:
        _writer.write(
            _access_line(
                record.request_id,
                record.method,
                path,
                status,
                record.bytes_sent,
                duration_ms,
                record.client,
                extra,
            )
        )
        return
    ACCESS.info(
        "%s %s %s %d %dB %.3fms",
        record.request_id,
        record.method,
        path,
        status,
        record.bytes_sent,
        duration_ms,
        extra={
            "request_id": record.request_id,
            "method": record.method,
            "path": path,
            "status": status,
            "bytes": record.bytes_sent,
            "duration_ms": duration_ms,
            "client": record.client,
            **extra,
        },
    )


#: The field names of each attrs class seen in ``HttpRecord.facts``.
_FACT_FIELDS: dict[type, tuple[str, ...]] = {}


def _extra_fields(record: HttpRecord) -> dict[str, Any]:
    """The fields after the HTTP ones: the app's facts, ``client_gone``, ``ttfb_ms``."""
    extra: dict[str, Any] = {}
    facts = record.facts
    if facts is not None:
        names = _FACT_FIELDS.get(type(facts))
        if names is None:
            names = _FACT_FIELDS[type(facts)] = tuple(f.name for f in attrs.fields(type(facts)))
        for name in names:
            value = getattr(facts, name)
            if value is not None:
                extra[name] = value
    if record.client_gone:
        extra["client_gone"] = True
    if record.head_s is not None:
        extra["ttfb_ms"] = round(record.head_s * 1000, 3)
    return extra


def _access_line(
    request_id: str,
    method: str,
    path: str,
    status: int,
    bytes_sent: int,
    duration_ms: float,
    client: str,
    extra: dict[str, Any],
) -> str:
    now = time.time()
    if _json_access:
        fields = {
            "ts": round(now, 6),
            "level": "info",
            "logger": ACCESS.name,
            "msg": f"{request_id} {method} {path} {status}",
            "request_id": request_id,
            "method": method,
            "path": path,
            "status": status,
            "bytes": bytes_sent,
            "duration_ms": duration_ms,
            "client": client,
            **extra,
        }
        return redact_line(json.dumps(fields, default=str, separators=(",", ":")))
    tail = "".join(f" {k}={_field(v)}" for k, v in extra.items())
    return redact_line(
        f"{_asctime(now)} INFO {ACCESS.name} {request_id} {escape_controls(method)} "
        f"{escape_controls(path)} {status} {bytes_sent}B {duration_ms:.3f}ms "
        f"client={escape_controls(client)}{tail}"
    )
