"""The access line, written from a request's records: HTTP fields, then the app's, in order."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import attrs
import pytest

from gateway.logs import flush_logging, log_access, setup_logging
from gateway.record import CallRecord
from gateway.server.exchange import HttpRecord

RECORD = HttpRecord(
    request_id="rid-1",
    method="POST",
    target="/v1beta/models/m:generateContent?key=SECRET&alt=sse",
    client="10.0.0.1:5000",
    status=200,
    bytes_sent=321,
    duration_s=1.23456789,
    head_s=0.0456789,
    overhead_s=0.0001,
    finished=True,
)


@pytest.fixture
def real_logging() -> Iterator[None]:
    yield
    flush_logging()
    logger = logging.getLogger("gateway")
    logger.handlers[:] = []
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def _fields(caplog: pytest.LogCaptureFixture, record: HttpRecord) -> dict[str, object]:
    caplog.set_level(logging.INFO, logger="gateway.access")
    caplog.clear()
    log_access(record)
    [line] = [r for r in caplog.records if r.name == "gateway.access"]
    skip = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
    return {k: v for k, v in line.__dict__.items() if k not in skip}


def test_a_proxied_request_has_every_field_in_order(caplog: pytest.LogCaptureFixture) -> None:
    facts = CallRecord(
        "gemini",
        "m",
        "p",
        "up-m",
        key_name="team-a",
        target=1,
        fallback="p/other",
        retries=0,
        tokens_in=13,
        tokens_out=7,
        tokens_cached=3,
        tokens_reasoning=2,
    )
    fields = _fields(caplog, attrs.evolve(RECORD, facts=facts, client_gone=True))
    assert list(fields.items()) == [
        ("request_id", "rid-1"),
        ("method", "POST"),
        ("path", "/v1beta/models/m:generateContent?key=[redacted]&alt=sse"),
        ("status", 200),
        ("bytes", 321),
        ("duration_ms", 1234.568),
        ("client", "10.0.0.1:5000"),
        ("client_format", "gemini"),
        ("key_name", "team-a"),
        ("model", "m"),
        ("provider", "p"),
        ("upstream_model", "up-m"),
        ("target", 1),
        ("fallback", "p/other"),
        ("retries", 0),
        ("tokens_in", 13),
        ("tokens_out", 7),
        ("tokens_cached", 3),
        ("tokens_reasoning", 2),
        ("client_gone", True),
        ("ttfb_ms", 45.679),
    ]


def test_fields_not_known_are_left_off(caplog: pytest.LogCaptureFixture) -> None:
    fields = _fields(caplog, attrs.evolve(RECORD, facts=CallRecord("openai")))
    assert "model" not in fields
    assert "retries" not in fields
    assert "client_gone" not in fields
    assert fields["client_format"] == "openai"
    plain = _fields(caplog, attrs.evolve(RECORD, status=None, head_s=None, overhead_s=None))
    assert plain["status"] == 499
    assert "ttfb_ms" not in plain
    assert "client_format" not in plain


@pytest.mark.usefixtures("real_logging")
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_writer_path_writes_the_same_fields(
    capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    setup_logging("info", fmt)
    log_access(attrs.evolve(RECORD, facts=CallRecord("openai", "a model", "p")))
    flush_logging()
    [line] = [ln for ln in capsys.readouterr().err.splitlines() if "gateway.access" in ln]
    if fmt == "json":
        fields = json.loads(line)
        assert list(fields)[4:] == [
            "request_id",
            "method",
            "path",
            "status",
            "bytes",
            "duration_ms",
            "client",
            "client_format",
            "model",
            "provider",
            "ttfb_ms",
        ]
        assert fields["model"] == "a model"
        assert "SECRET" not in line
    else:
        assert line.endswith(
            "rid-1 POST /v1beta/models/m:generateContent?key=[redacted]&alt=sse 200 321B "
            '1234.568ms client=10.0.0.1:5000 client_format=openai model="a model" provider=p '
            "ttfb_ms=45.679"
        )
