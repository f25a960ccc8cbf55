"""Issue 8 item 2: no provider key (whole or as a printed prefix/suffix) reaches a client or log.

The provider here is hostile or careless: it echoes its key in an in-stream
error event (same-format and converted streams), in a 200 answer, and in an
error status body, whole and in the shapes real providers print
(first 12 + last 6 characters around ``...`` or ``****``). A forwarded client
credential is protected the same way. The key is deliberately not shaped like
an OpenAI/Google key, so the old "looks like a key" regex cannot catch it.
"""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest
import trio

from gateway.logs import flush_logging, setup_logging
from gateway.redact import Redactor
from tests.proxy.fakes import (
    Step,
    anthropic_events,
    openai_chunks,
    openai_reply,
    start_gateway,
    write_transformer,
)

KEY = "prov-key-ABCDEFGH0123456789-wxyz12"
SECOND = "other-provider-secret-9876543210zz"
CLIENT = "client-own-credential-1234567890qq"
SHORT = "k7Q2"  # too short for partial matching: only redacted whole


def echoes(key: str) -> list[str]:
    return [key, f"{key[:12]}...{key[-6:]}", f"{key[:12]}****{key[-6:]}", f"****{key[-6:]}"]


def leaks(text: str, keys: tuple[str, ...] = (KEY, SECOND, CLIENT)) -> list[str]:
    """The secret fragments found in ``text``."""
    found = []
    for key in keys:
        for fragment in (key, key[:12], "*" + key[-6:], "." + key[-6:]):
            if fragment in text:
                found.append(fragment)
    return found


def _error_event(message: str) -> bytes:
    body = {"error": {"message": message, "type": "server_error", "code": None}}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


ECHO_TEXT = "Incorrect API key provided: " + ", ".join(echoes(KEY) + echoes(SECOND))


@pytest.fixture
async def gw(nursery, tmp_path, provider):
    tdir = tmp_path / "t"
    tdir.mkdir()
    common = {"base_url": provider.url + "/v1", "models": {"*": "*"}, "retry": {"retries": 0}}
    write_transformer(tdir, "op", {"format": "openai", "keys": [KEY], **common})
    write_transformer(tdir, "ap", {"format": "anthropic", "keys": [KEY], **common})
    write_transformer(tdir, "other", {"format": "openai", "keys": [SECOND], **common})
    write_transformer(
        tdir, "emu", {"format": "openai", "keys": [KEY], "stream": "emulate", **common}
    )
    write_transformer(tdir, "fwd", {"format": "openai", "forward_client_key": True, **common})
    return await start_gateway(nursery, tdir)


CHAT = {"messages": [{"role": "user", "content": "hi"}]}


async def _post(gw, path: str, body: dict, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        return await client.post(path, json=body, headers=headers)


async def test_same_format_stream_error_event(gw, provider):
    events = openai_chunks(["Hello", f" {KEY} and {KEY[:12]}...{KEY[-6:]}"])[:-2]
    provider.then(Step("sse", events=[*events, _error_event(ECHO_TEXT)]))
    r = await _post(gw, "/v1/chat/completions", {"model": "op/m", "stream": True, **CHAT})
    assert r.status_code == 200
    assert "[redacted]" in r.text
    assert leaks(r.text) == [], r.text
    assert "Hello" in r.text
    assert "Incorrect API key provided" in r.text


async def test_key_split_over_two_reads_is_caught(gw, provider):
    event = _error_event(f"bad key {KEY}")
    cut = event.index(KEY.encode()) + 8
    provider.then(Step("sse", events=[event[:cut], b"<pause>", event[cut:]], delay_s=0.05))
    r = await _post(gw, "/v1/chat/completions", {"model": "op/m", "stream": True, **CHAT})
    assert leaks(r.text) == [], r.text
    assert "bad key [redacted]" in r.text


async def test_converted_stream(gw, provider):
    """An OpenAI client, an Anthropic-format provider: text deltas and the error event."""
    events = anthropic_events(["Hi ", f"{KEY[:12]}****{KEY[-6:]} ", KEY])[:-2]
    error = {"type": "error", "error": {"type": "api_error", "message": ECHO_TEXT}}
    events.append(f"event: error\ndata: {json.dumps(error)}\n\n".encode())
    provider.then(Step("sse", events=events))
    r = await _post(gw, "/v1/chat/completions", {"model": "ap/m", "stream": True, **CHAT})
    assert r.status_code == 200
    assert leaks(r.text) == [], r.text
    assert "Incorrect API key provided" in r.text


async def test_converted_stream_to_anthropic_client(gw, provider):
    events = [*openai_chunks(["a", KEY])[:-2], _error_event(ECHO_TEXT)]
    provider.then(Step("sse", events=events))
    body = {"model": "op/m", "max_tokens": 5, "stream": True, **CHAT}
    r = await _post(gw, "/v1/messages", body)
    assert r.status_code == 200
    assert leaks(r.text) == [], r.text


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
async def test_non_stream_answer(gw, provider, path):
    provider.then(Step("json", body=openai_reply(ECHO_TEXT)))
    body = {"model": "op/m", "max_tokens": 5, **CHAT}
    r = await _post(gw, path, body)
    assert r.status_code == 200, r.text
    assert leaks(r.text) == [], r.text
    assert r.json()  # still valid JSON


@pytest.mark.parametrize("status", [400, 401, 429, 500])
async def test_error_status_body(gw, provider, status):
    body = {"error": {"message": ECHO_TEXT, "type": "invalid_request_error"}}
    provider.then(Step("status", status=status, body=body))
    r = await _post(gw, "/v1/chat/completions", {"model": "op/m", **CHAT})
    assert r.status_code >= 400
    assert leaks(r.text) == [], r.text


async def test_emulated_stream(gw, provider):
    """Same provider, but "stream": "emulate": the whole answer becomes the stream."""
    provider.then(Step("json", body=openai_reply(ECHO_TEXT)))
    r = await _post(gw, "/v1/messages", {"model": "emu/m", "max_tokens": 5, "stream": True, **CHAT})
    assert r.status_code == 200
    assert "Incorrect API key provided" in r.text
    assert leaks(r.text) == [], r.text


async def test_forwarded_client_credential(gw, provider):
    text = f"your key {CLIENT} or {CLIENT[:12]}...{CLIENT[-6:]} is wrong"
    provider.then(Step("sse", events=[_error_event(text)]))
    r = await _post(
        gw,
        "/v1/chat/completions",
        {"model": "fwd/m", "stream": True, **CHAT},
        authorization=f"Bearer {CLIENT}",
    )
    assert provider.seen[-1].headers["authorization"] == f"Bearer {CLIENT}"
    assert leaks(r.text) == [], r.text
    provider.script[:] = [Step("status", status=400, body={"error": {"message": text}})]
    r = await _post(
        gw, "/v1/chat/completions", {"model": "fwd/m", **CHAT}, authorization=f"Bearer {CLIENT}"
    )
    assert r.status_code == 400
    assert leaks(r.text) == [], r.text


def _restore_logging() -> None:
    flush_logging()
    logger = logging.getLogger("gateway")
    logger.handlers[:] = []
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


async def test_logs(gw, provider, capsys):
    """The real log setup (writer thread to stderr), text lines and access lines."""
    provider.then(Step("status", status=500, body={"error": {"message": ECHO_TEXT}}))
    setup_logging("debug", "text")  # here, not in a fixture: it must write to capsys' stderr
    try:
        # a client that sends the key back as its model: the access line carries the model
        model = f"op/{KEY[:12]}...{KEY[-6:]}"
        r = await _post(gw, "/v1/chat/completions", {"model": model, **CHAT})
        assert r.status_code == 502
        await trio.sleep(1.0)  # the access line is written just after the answer went out
        logging.getLogger("gateway.proxy").warning("provider said: %s", ECHO_TEXT)
        logging.getLogger("gateway.proxy").warning("extra", extra={"echo": KEY})
    finally:
        _restore_logging()
    text = capsys.readouterr().err
    assert "provider said: Incorrect API key provided" in text
    assert "POST /v1/chat/completions" in text
    assert leaks(text) == [], text


def test_redactor_rules():
    r = Redactor([KEY, SECOND, SHORT])
    more = [f"{KEY[:12]}\u2026{KEY[-6:]}", f"\u2022\u2022\u2022{KEY[-4:]}", f"...{SECOND[-4:]}"]
    for e in echoes(KEY) + echoes(SECOND) + more:
        assert r.text(f"x {e} y") == "x [redacted] y", e
        assert r.data(f'"{e}"'.encode()) == b'"[redacted]"', e
    assert r.text(f"{SHORT} and {SHORT}x") == f"[redacted] and {SHORT}x"  # whole only
    assert r.text(SHORT[:3]) == SHORT[:3]
    assert (
        r.text("plain text... with dots **and stars**") == "plain text... with dots **and stars**"
    )
    assert not Redactor([])
    assert Redactor(["abc"]).text("abc") == "abc"  # under 4 characters: not a secret


def test_redactor_is_cheap_on_normal_text():
    """Bounded: 10,000 ordinary events with 50 secrets configured (~0.1 s; 5 s allowed)."""
    r = Redactor([f"sk-test-{i:04d}-ABCDEFGHIJKLMNOP{i:06d}" for i in range(50)])
    event = (
        b'data: {"choices":[{"delta":{"content":"Hello there, a normal sentence... 3.14"}}]}\n\n'
    )
    started = time.perf_counter()
    for _ in range(10_000):
        assert r.data(event) is event
    assert time.perf_counter() - started < 5.0
