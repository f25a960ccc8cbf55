"""The audit line (gateway/audit.py) and the audit file (gateway/audit_log.py), without a server."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from pathlib import Path

import attrs
import pytest

from gateway.audit import BODY_CHARS, audit_line
from gateway.audit_log import RotatingFile
from gateway.config import ConfigError, load_config
from gateway.record import CallRecord
from gateway.redact import Redactor
from gateway.server.exchange import HttpRecord

SECRET = "sk-audit-secret-0123456789abcdef"
REDACT = Redactor([SECRET]).text
RECORD = HttpRecord(
    request_id="rid-1",
    method="POST",
    target="/v1beta/models/m:generateContent?key=AIzaClientKey123&alt=sse",
    client="10.0.0.7:5123",
    status=200,
    bytes_sent=321,
    duration_s=0.25,
    head_s=0.125,
    overhead_s=0.001,
    finished=True,
    facts=CallRecord("gemini", "m", "p", "up-m", 1, 10, 20, key_name="team-a"),
    request_body=b'{"contents":"the prompt"}',
    response_body=b'{"candidates":"the answer"}',
)


def _line(record: HttpRecord = RECORD, **kw: bool) -> dict[str, object]:
    text = audit_line(record, now=1_700_000_000.5, redact=REDACT, **kw)
    assert "\n" not in text
    return json.loads(text)


def test_the_line_has_every_field_in_order_with_its_type():
    line = _line()
    assert list(line) == [
        "time",
        "request_id",
        "client_format",
        "key_name",
        "model",
        "provider",
        "upstream_model",
        "target",
        "fallback",
        "retries",
        "tokens_in",
        "tokens_out",
        "tokens_cached",
        "tokens_reasoning",
        "method",
        "path",
        "status",
        "latency_ms",
        "ttfb_ms",
        "bytes_sent",
        "client",
        "client_gone",
    ]
    # the request's arrival: the record is made at its end, 0.25 s later
    assert line["time"] == "2023-11-14T22:13:20.250Z"
    assert line["key_name"] == "team-a"
    assert (line["model"], line["provider"], line["upstream_model"]) == ("m", "p", "up-m")
    assert (line["retries"], line["tokens_in"], line["tokens_out"]) == (1, 10, 20)
    assert line["status"] == 200
    assert line["latency_ms"] == 250.0
    assert line["ttfb_ms"] == 125.0
    assert line["client_gone"] is False
    assert "AIzaClientKey123" not in json.dumps(line)  # ?key= redacted as in the access log
    assert line["path"] == "/v1beta/models/m:generateContent?key=[redacted]&alt=sse"
    assert "prompt" not in json.dumps(line)  # no content without log_bodies
    assert "answer" not in json.dumps(line)


def test_a_request_no_endpoint_took_has_the_same_keys_all_null():
    record = HttpRecord("rid-2", "GET", "/nowhere", "10.0.0.7:1", 404, 50, 0.001)
    line = _line(record)
    assert list(line) == list(_line())
    assert line["client_format"] is None
    assert line["key_name"] is None
    assert line["tokens_in"] is None
    gone = _line(attrs.evolve(record, status=None, client_gone=True, head_s=None))
    assert gone["status"] == 499
    assert gone["client_gone"] is True
    assert gone["ttfb_ms"] is None


def test_new_fields_of_the_apps_record_flow_in_without_a_change():
    @attrs.define
    class Richer:
        client_format: str | None = "openai"
        tokens_cached: int | None = 7
        tokens_reasoning: int | None = None

    line = _line(attrs.evolve(RECORD, facts=Richer()))
    assert line["tokens_cached"] == 7
    assert "tokens_reasoning" in line
    assert line["tokens_reasoning"] is None


def test_bodies_only_when_asked_redacted_and_cut():
    line = _line(bodies=True)
    assert line["request_body"] == '{"contents":"the prompt"}'
    assert line["response_body"] == '{"candidates":"the answer"}'
    assert line["bodies_truncated"] is False
    # a secret across the cut is redacted whole, not left half there
    body = b"x" * (BODY_CHARS - 6) + SECRET.encode() + b"y" * 100_000
    line = _line(attrs.evolve(RECORD, request_body=body, response_body=b""), bodies=True)
    text = line["request_body"]
    assert isinstance(text, str)
    assert len(text) == BODY_CHARS
    assert SECRET[:6] not in text
    assert text.endswith("[redac")
    assert line["response_body"] is None  # a stream's is not kept
    assert line["bodies_truncated"] is True
    # a key anywhere else in the line is redacted too
    assert SECRET not in audit_line(
        attrs.evolve(RECORD, target=f"/v1/x?note={SECRET}"), now=0.0, redact=REDACT
    )


def test_log_bodies_needs_the_audit_log():
    with pytest.raises(ConfigError, match=r"logging\.log_bodies"):
        load_config(env={"GATEWAY_LOGGING__LOG_BODIES": "true"})
    config = load_config(
        env={"GATEWAY_LOGGING__LOG_BODIES": "true", "GATEWAY_LOGGING__AUDIT_LOG": "/tmp/a.log"}
    )
    assert config.logging.log_bodies is True
    assert config.logging.audit_max_bytes == 100 * 1024 * 1024
    assert config.logging.audit_backups == 5


# -- the rotating file --------------------------------------------------------------------


def _lines(n: int, start: int = 0) -> list[str]:
    return [json.dumps({"n": i, "pad": "p" * 12}) for i in range(start, start + n)]  # 29 bytes


def _batch(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def _read(path: Path) -> list[int]:
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line)["n"] for line in text.splitlines()]  # every line whole


def test_rotation_by_size_keeps_whole_lines_and_the_backups_asked_for(tmp_path):
    path = tmp_path / "audit.log"
    f = RotatingFile(str(path), max_bytes=100, backups=2)
    for i in range(0, 20, 4):  # batches of 4 lines (116 bytes: more than a file holds)
        f.write(_batch(_lines(4, i)))
    f.close()
    files = [path, Path(f"{path}.1"), Path(f"{path}.2")]
    assert not Path(f"{path}.3").exists()
    for p in files:
        assert p.stat().st_size <= 100
    seen = _read(files[2]) + _read(files[1]) + _read(files[0])
    assert seen == list(range(20 - len(seen), 20))  # oldest first, newest in the file itself
    assert _read(path)[-1] == 19
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(f"{path}.1").stat().st_mode) == 0o600


def test_a_line_longer_than_the_limit_goes_alone_and_no_backups_starts_afresh(tmp_path):
    path = tmp_path / "audit.log"
    f = RotatingFile(str(path), max_bytes=50, backups=0)
    f.write(_batch(_lines(1)))
    f.write(_batch([json.dumps({"n": 1, "pad": "p" * 100})]))
    assert _read(path) == [1]
    f.write(_batch(_lines(1, 2)))
    f.close()
    assert _read(path) == [2]
    assert list(tmp_path.iterdir()) == [path]


def test_two_workers_share_one_file_and_lose_nothing(tmp_path):
    path = tmp_path / "audit.log"
    a = RotatingFile(str(path), max_bytes=200, backups=50)
    b = RotatingFile(str(path), max_bytes=200, backups=50)
    for i in range(0, 60, 3):
        (a if i % 2 else b).write(_batch(_lines(3, i)))
    a.close()
    b.close()
    seen = []

    def age(p: Path) -> int:  # audit.log.N is older as N grows; audit.log is the newest
        return -int(p.suffix[1:]) if p.suffix != ".log" else 0

    for p in sorted(tmp_path.iterdir(), key=age):
        assert p.stat().st_size <= 200
        seen += _read(p)
    assert seen == list(range(60))


def test_a_moved_or_deleted_file_is_followed_and_reopen_reopens(tmp_path):
    path = tmp_path / "audit.log"
    f = RotatingFile(str(path), max_bytes=10_000, backups=1)
    f.write(_batch(_lines(1)))
    path.rename(tmp_path / "moved.log")  # logrotate's move, no signal yet
    f.write(_batch(_lines(1, 1)))
    assert _read(path) == [1]
    path.unlink()
    f.write(_batch(_lines(1, 2)))
    assert _read(path) == [2]
    f.reopen()
    f.write(_batch(_lines(1, 3)))
    f.close()
    assert _read(path) == [2, 3]
    assert _read(tmp_path / "moved.log") == [0]


def test_a_failing_path_is_logged_once_until_it_works_again(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gateway.audit")
    path = tmp_path / "gone" / "audit.log"
    f = RotatingFile(str(path), max_bytes=10_000, backups=1)
    for i in range(3):
        with pytest.raises(FileNotFoundError):
            f.write(_batch(_lines(1, i)))
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert str(path) in errors[0].getMessage()
    os.mkdir(tmp_path / "gone")
    f.write(_batch(_lines(1, 9)))
    f.close()
    assert _read(path) == [9]
    assert re.search("writing again", caplog.text)
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
