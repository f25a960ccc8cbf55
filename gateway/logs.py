"""Logger names, formatters, request ids and the access log.

Theory of operation: records are formatted in the calling task (cheap, lazy
``%s`` arguments) and handed to a bounded queue; a single thread writes them
to stderr, so a slow terminal or a full pipe never blocks the event loop. When
the queue is full a record is dropped and counted rather than waiting.

Secrets: nothing here logs bodies or headers. Paths pass through
:func:`redact_target`, which removes a ``key=`` query parameter (Gemini
clients put their API key there).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import queue
import re
import sys
import time
from typing import Any

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

#: Records waiting for the writer thread; past this they are dropped (and counted).
QUEUE_SIZE = 10_000

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


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Formats in the caller, enqueues without waiting; drops (and counts) when full."""

    dropped = 0

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # Format here so the writer thread only writes; keep it a record for QueueListener.
        msg = self.format(record)
        return logging.makeLogRecord({"msg": msg, "levelno": record.levelno})

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            type(self).dropped += 1


class _RawStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    def format(self, record: logging.LogRecord) -> str:
        return str(record.msg)


_listener: logging.handlers.QueueListener | None = None


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    """Route the ``gateway`` loggers to stderr through a writer thread.

    Idempotent: calling it again replaces the previous setup.
    """
    global _listener
    if _listener is not None:
        _listener.stop()
    q: queue.Queue[logging.LogRecord] = queue.Queue(QUEUE_SIZE)
    handler = _DroppingQueueHandler(q)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    _listener = logging.handlers.QueueListener(q, _RawStreamHandler(sys.stderr))
    _listener.start()
    LOG.handlers[:] = [handler]
    LOG.setLevel(level.upper())
    LOG.propagate = False


def dropped_log_records() -> int:
    """Log records dropped because the writer thread fell behind (for /metrics)."""
    return _DroppingQueueHandler.dropped


def flush_logging() -> None:
    """Write out every queued record (at exit)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


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
    """One line per request, refused ones included."""
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    duration_ms = round((time.perf_counter() - started) * 1000, 3)
    path = redact_target(target)
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
