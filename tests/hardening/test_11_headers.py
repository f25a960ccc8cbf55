"""Issue 8 item 11 (headers): bytes >= 0x80 or controls in a forwarded client header are a 400.

``anthropic-version``, ``anthropic-beta``, ``OpenAI-Beta`` and a forwarded client
key go into upstream headers; before, a non-ASCII byte in one was a 500.
"""

from __future__ import annotations

import json

import pytest

from tests.hardening.recording import RecordingProvider, raw_request, status_of
from tests.proxy.fakes import Step, anthropic_reply, openai_reply, start_gateway, write_transformer

OPENAI_BODY = json.dumps({"model": "op/m", "messages": [{"role": "user", "content": "hi"}]})
ANTHROPIC_BODY = json.dumps(
    {"model": "ap/m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
)


@pytest.fixture
async def rec(nursery) -> RecordingProvider:
    fake = RecordingProvider()
    await nursery.start(fake.serve)
    return fake


@pytest.fixture
async def gw(nursery, tmp_path, rec):
    tdir = tmp_path / "t"
    tdir.mkdir()
    common = {"base_url": rec.url + "/v1", "models": {"*": "*"}, "retry": {"retries": 0}}
    write_transformer(tdir, "op", {"format": "openai", "keys": ["sk-op-key-123456"], **common})
    write_transformer(tdir, "ap", {"format": "anthropic", "keys": ["sk-ap-key-123456"], **common})
    write_transformer(tdir, "fp", {"format": "openai", "forward_client_key": True, **common})
    return await start_gateway(nursery, tdir)


def _body(raw: bytes) -> dict:
    return json.loads(raw.partition(b"\r\n\r\n")[2])


@pytest.mark.parametrize("value", ["2023-06-01\xe9", "\x80", "2023\xff-06-01"])
@pytest.mark.parametrize("header", ["anthropic-version", "anthropic-beta"])
async def test_anthropic_headers(gw, rec, header, value):
    rec.then(Step("json", body=anthropic_reply("ok")))
    raw = await raw_request(
        gw.port, "POST", "/v1/messages", ANTHROPIC_BODY.encode(), **{header: value}
    )
    assert status_of(raw) == 400, raw[:400]
    body = _body(raw)
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert header in body["error"]["message"]
    assert rec.seen == []


async def test_openai_beta(gw, rec):
    rec.then(Step("json", body=openai_reply("ok")))
    raw = await raw_request(
        gw.port,
        "POST",
        "/v1/chat/completions",
        OPENAI_BODY.encode(),
        **{"openai-beta": "assistants=v2\xe9"},
    )
    assert status_of(raw) == 400, raw[:400]
    body = _body(raw)
    assert body["error"]["type"] == "invalid_request_error"
    assert "OpenAI-Beta" in body["error"]["message"]
    assert rec.seen == []


@pytest.mark.parametrize(
    ("header", "value"),
    [("authorization", "Bearer sk-caf\xe9"), ("x-api-key", "k\xff"), ("x-goog-api-key", "\x80")],
)
async def test_forwarded_client_key(gw, rec, header, value):
    rec.then(Step("json", body=openai_reply("ok")))
    body = OPENAI_BODY.replace("op/m", "fp/m").encode()
    raw = await raw_request(gw.port, "POST", "/v1/chat/completions", body, **{header: value})
    assert status_of(raw) == 400, raw[:400]
    assert _body(raw)["error"]["type"] == "invalid_request_error"
    assert rec.seen == []


async def test_ascii_headers_still_pass(gw, rec):
    rec.then(Step("json", body=anthropic_reply("ok")))
    raw = await raw_request(
        gw.port,
        "POST",
        "/v1/messages",
        ANTHROPIC_BODY.encode(),
        **{"anthropic-version": "2023-06-01", "anthropic-beta": "tools-2024-04-04"},
    )
    assert status_of(raw) == 200, raw[:400]
    assert rec.seen[0].headers["anthropic-beta"] == "tools-2024-04-04"
