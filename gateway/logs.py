"""Logger names, formatters, request ids and the access log.

Theory of operation: lines are formatted in the calling task and appended to a
deque; a single thread drains it in batches (every 20 ms: one write, one flush),
so a slow terminal or a full pipe never blocks the event loop, and a busy server
costs the thread a few wake-ups a second, not one per line. Access lines skip
the ``logging`` machinery entirely (they are written once per request). When
100,000 lines are waiting, new ones are dropped and counted rather than waited for.

Secrets: nothing here logs bodies or headers. Paths pass through
:func:`redact_target`, which removes a ``key=`` query parameter (Gemini
clients put their API key there).
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
from typing import Any, TextIO

__all__ = [
    "ACCESS",
    "LOG",
    "JsonFormatter",
    "TextFormatter",
    "dropped_log_records",
    "new_request_id",
    "redact_target",
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


_KEY_PARAM = re.compile(r"(?i)([?&]key=)[^&#]*")


def redact_target(target: str) -> str:
    """A request target fit for a log: the value of any ``key`` query parameter removed."""
    if "key=" not in target and "KEY=" not in target.upper():
        return target
    return _KEY_PARAM.sub(r"\1[redacted]", target)


class TextFormatter(logging.Formatter):
    """``time level logger message key=value ...`` for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        skip = _ACCESS_IN_MESSAGE if record.name == ACCESS.name else ()
        extras = [
            f"{k}={v}" for k, v in record.__dict__.items() if k not in _RESERVED and k not in skip
        ]
        if extras:
            head, nl, tail = line.partition("\n")
            line = head + " " + " ".join(extras) + nl + tail
        return line


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
        return json.dumps(out, default=str, separators=(",", ":"))


class LineWriter:
    """Lines to a stream from a writer thread, in batches.

    ``write`` only appends to a deque (no lock, no wake-up); the thread drains it
    every ``FLUSH_INTERVAL_S`` with one write and one flush, so a busy server costs
    it a few wake-ups a second rather than one per line. Past ``MAX_PENDING``
    waiting lines new ones are dropped and counted, never waited for.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._pending: collections.deque[str] = collections.deque()
        self._stop = threading.Event()
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="gateway-log-writer", daemon=True)
        self._thread.start()

    def write(self, line: str) -> None:
        if len(self._pending) >= MAX_PENDING:
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


def log_access(
    *,
    request_id: str,
    method: str,
    target: str,
    status: int,
    bytes_sent: int,
    started: float,
    client: str,
    **extra: Any,
) -> None:
    """One line per request, refused ones included.

    With :func:`setup_logging` in place the line is formatted here and goes straight
    to the writer (no LogRecord: this runs for every request); otherwise, as in
    tests, it goes through the ``gateway.access`` logger.
    """
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    duration_ms = round((time.perf_counter() - started) * 1000, 3)
    path = redact_target(target)
    if _writer is not None:
        _writer.write(
            _access_line(request_id, method, path, status, bytes_sent, duration_ms, client, extra)
        )
        return
    ACCESS.info(
        "%s %s %s %d %dB %.3fms",
        request_id,
        method,
        path,
        status,
        bytes_sent,
        duration_ms,
        extra={
            "request_id": request_id,
            "method": method,
            "path": path,
            "status": status,
            "bytes": bytes_sent,
            "duration_ms": duration_ms,
            "client": client,
            **extra,
        },
    )


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
        return json.dumps(fields, default=str, separators=(",", ":"))
    tail = "".join(f" {k}={v}" for k, v in extra.items())
    return (
        f"{_asctime(now)} INFO {ACCESS.name} {request_id} {method} {path} {status} "
        f"{bytes_sent}B {duration_ms:.3f}ms client={client}{tail}"
    )
