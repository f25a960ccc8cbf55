"""Issue 8 item 14 (logs and echoes): no client value forges a log line or bloats an error.

Text log fields have their control characters escaped (and are quoted when they
hold spaces or ``=``), JSON lines stay valid JSON, and a client's value echoed
in an error message is cut to 80 characters.
"""

from __future__ import annotations

import json
import logging

import httpx
import pytest
import trio

from gateway.errors import BadRequest, ModelNotFound
from gateway.logs import JsonFormatter, TextFormatter, escape_controls, flush_logging, setup_logging
from tests.proxy.fakes import start_gateway, write_transformer

FORGED = "x\n2026-01-01 00:00:00,000 INFO gateway.access forged POST /admin 200 0B"


def _record(**extra) -> logging.LogRecord:
    record = logging.LogRecord(
        "gateway.access", logging.INFO, __file__, 1, "req %s", ("a\rb",), None
    )
    record.__dict__.update(extra)
    return record


@pytest.mark.parametrize(
    "value", [FORGED, "a\rb", "a\x00b", "a\x1b[2Jb", "a\x85b", "a\u2028b", "a\x7fb"]
)
def test_text_formatter_escapes_fields(value):
    line = TextFormatter().format(_record(model=value, upstream_model="ok"))
    assert "\n" not in line
    assert "\r" not in line
    assert not any(ch in line for ch in "\x00\x1b\x85\u2028\x7f")
    assert "req a\\rb" in line
    assert "upstream_model=ok" in line


def test_text_formatter_quotes_fake_pairs():
    line = TextFormatter().format(_record(model="m status=200 provider=evil"))
    assert 'model="m status=200 provider=evil"' in line


def test_text_formatter_keeps_tracebacks_multiline():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "gateway", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = TextFormatter().format(record)
    assert "Traceback" in line
    assert line.count("\n") >= 2


def test_json_formatter_stays_valid():
    line = JsonFormatter().format(_record(model=FORGED + "\ud800"))
    assert "\n" not in line
    assert json.loads(line)["model"].startswith("x\n2026")


def test_escape_controls():
    assert escape_controls("a\nb\tc\x01\x9f\u2029") == "a\\nb\\tc\\x01\\x9f\\u2029"
    assert escape_controls("plain ünïcode") == "plain ünïcode"


@pytest.fixture
async def gw(nursery, tmp_path):
    tdir = tmp_path / "t"
    tdir.mkdir()
    write_transformer(tdir, "mock", {"format": "mock", "models": {"*": "*"}})
    return await start_gateway(nursery, tdir)


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_access_lines_through_the_gateway(gw, capsys, fmt):
    """The real writer path: a model with a line separator, one with fake pairs, one with LF."""
    setup_logging("info", fmt)
    try:
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            for model in ("mock/a\u2028FORGED b", "mock/a status=200 x", "mock/a\nFORGED"):
                await client.post(
                    "/v1/chat/completions",
                    json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
                )
        await trio.sleep(1.0)  # access lines are written just after the answers
    finally:
        flush_logging()
        logger = logging.getLogger("gateway")
        logger.handlers[:] = []
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "gateway.access" in ln]
    assert len(lines) == 3
    for line in lines:
        assert not line.startswith("FORGED")
        assert "\u2028" not in line
        if fmt == "json":
            json.loads(line)
    if fmt == "text":
        assert 'model="mock/a status=200 x"' in lines[1]


async def test_long_model_is_not_echoed(gw):
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        r = await client.post(
            "/v1/chat/completions",
            json={"model": "m" * 100_000, "messages": [{"role": "user", "content": "hi"}]},
        )
        assert r.status_code == 400
        assert len(r.content) < 1000
        assert "100000 characters" in r.text
        r = await client.get("/v1/models/" + "y" * 50_000)
        assert r.status_code == 400
        assert len(r.content) < 1000
        r = await client.get("/nothing/" + "z" * 50_000)
        assert r.status_code == 404
        assert len(r.content) < 1000
        r = await client.post(
            "/v1beta/models/" + "g" * 50_000 + ":unknownMethod",
            json={"contents": []},
        )
        assert r.status_code in (400, 404)
        assert len(r.content) < 1000


async def test_model_not_found_is_cut(nursery, tmp_path):
    tdir = tmp_path / "empty"
    tdir.mkdir()
    gw = await start_gateway(nursery, tdir)
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        r = await client.post(
            "/v1/chat/completions",
            json={"model": "n" * 250, "messages": [{"role": "user", "content": "hi"}]},
        )
    assert r.status_code == 404
    assert "n" * 81 not in r.text
    assert "250 characters" in r.text


def test_messages_are_bounded():
    assert len(ModelNotFound("q" * 10_000).message) < 300
    assert len(BadRequest("w" * 1_000_000).message) <= 4096
