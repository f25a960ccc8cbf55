"""Issue 10 item 8: the audit log through the running gateway, with a fake provider behind it.

One JSON line per request (success, stream, 404, 400, a client that leaves, a
path nothing serves; not the health probes), no message content unless
``log_bodies`` (then keys redacted), and an unwritable path that costs the
requests nothing. Rotation and reopening are in tests/test_audit.py; the
SIGHUP of a real process is at the end here.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from gateway.config import AuthConfig, AuthKey, Config, LoggingConfig
from tests.process import run_gateway
from tests.proxy.configured import PROVIDER_KEY, start_configured, three_formats
from tests.proxy.fakes import Step, eventually, openai_chunks, openai_reply

PROMPT = "a-distinctive-prompt-purple-elephant-7781"
CHAT = {"model": "m-o", "messages": [{"role": "user", "content": PROMPT}]}
CLIENT_KEY = "gw-client-key-0123456789abcdef"


def _audit(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def _wait_lines(path: Path, count: int) -> list[dict[str, Any]]:
    await eventually(lambda: len(_audit(path)) >= count, timeout_s=5)
    return _audit(path)


def _config(path: Path, **logging_settings: Any) -> Config:
    return Config(logging=LoggingConfig(audit_log=str(path), **logging_settings))


async def test_one_line_per_request_with_its_facts(nursery, provider, tdir, tmp_path):
    three_formats(tdir, provider.url)
    provider.then(
        Step("json", body=openai_reply("hello")),
        Step("sse", events=openai_chunks(["a", "b"])),
    )
    path = tmp_path / "audit.log"
    gw = await start_configured(nursery, tdir, _config(path))
    async with httpx.AsyncClient(base_url=gw.url) as client:
        ok = await client.post("/v1/chat/completions", json=CHAT)
        stream = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
        missing = await client.post("/v1/chat/completions", json={**CHAT, "model": "nope"})
        bad = await client.post(
            "/v1/messages", content=b"{not json", headers={"content-type": "application/json"}
        )
        nowhere = await client.get("/v1/nothing?key=AIzaSecretInQuery123")
        for probe in ("/health/live", "/health/ready", "/metrics"):
            assert (await client.get(probe)).status_code == 200
    assert [r.status_code for r in (ok, stream, missing, bad, nowhere)] == [200, 200, 404, 400, 404]
    lines = await _wait_lines(path, 5)
    await trio.sleep(0.1)  # a line for a probe would have been written by now
    lines = _audit(path)
    assert len(lines) == 5  # the probes are not audited
    by_id = {line["request_id"]: line for line in lines}
    first = by_id[ok.headers["x-request-id"]]
    assert first["client_format"] == "openai"
    assert first["key_name"] is None  # an open gateway
    assert (first["model"], first["provider"], first["upstream_model"]) == (
        "m-o",
        "up-openai",
        "up-model",
    )
    # retries: the failed tries of the target that answered (gateway.record): none failed;
    # target 0: the first routed, no fallback
    assert (first["tokens_in"], first["tokens_out"], first["retries"]) == (3, 2, 0)
    assert (first["target"], first["fallback"]) == (0, None)
    assert (first["method"], first["path"], first["status"]) == (
        "POST",
        "/v1/chat/completions",
        200,
    )
    assert isinstance(first["latency_ms"], float)
    assert isinstance(first["ttfb_ms"], float)
    assert first["ttfb_ms"] <= first["latency_ms"]
    assert first["client"].startswith("127.0.0.1:")
    assert first["client_gone"] is False
    assert time.strptime(first["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    streamed = by_id[stream.headers["x-request-id"]]
    assert (streamed["status"], streamed["provider"]) == (200, "up-openai")
    assert by_id[missing.headers["x-request-id"]]["status"] == 404
    assert by_id[missing.headers["x-request-id"]]["model"] == "nope"
    refused = by_id[bad.headers["x-request-id"]]
    assert (refused["status"], refused["client_format"], refused["model"]) == (
        400,
        "anthropic",
        None,
    )
    lost = by_id[nowhere.headers["x-request-id"]]
    assert (lost["status"], lost["client_format"]) == (404, None)
    assert lost["path"] == "/v1/nothing?key=[redacted]"
    text = path.read_text()
    assert PROMPT not in text  # no message content by default
    assert "hello" not in text
    assert "AIzaSecretInQuery123" not in text
    assert "request_body" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_a_client_that_leaves_is_audited(nursery, provider, tdir, tmp_path):
    three_formats(tdir, provider.url)
    provider.then(Step("silent_after", events=openai_chunks(["a"])[:1]))
    path = tmp_path / "audit.log"
    gw = await start_configured(nursery, tdir, _config(path))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    data = json.dumps({**CHAT, "stream": True}).encode()
    await stream.send_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\nx-request-id: leaver-1\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(data), data)
    )
    with trio.fail_after(5):
        got = b""
        while b"data:" not in got:  # the head and the first event arrived
            chunk = await stream.receive_some(65536)
            assert chunk
            got += chunk
    await stream.aclose()
    [line] = await _wait_lines(path, 1)
    assert line["request_id"] == "leaver-1"
    assert line["client_gone"] is True
    assert line["provider"] == "up-openai"


async def test_requests_the_server_refuses_are_audited(nursery, provider, tdir, tmp_path):
    three_formats(tdir, provider.url)
    path = tmp_path / "audit.log"
    gw = await start_configured(nursery, tdir, _config(path))
    for head in (
        # a body over max_body_bytes (32 MiB): 413 before a byte of it is read
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-length: 99999999999\r\n\r\n",
        # both framings: a smuggling attempt, 400 before any route
        b"POST /v1/messages HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n"
        b"transfer-encoding: chunked\r\n\r\n",
    ):
        stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
        await stream.send_all(head)
        with trio.fail_after(5):
            while await stream.receive_some(65536):  # the answer, then the server closes
                pass
        await stream.aclose()
    lines = await _wait_lines(path, 2)
    assert sorted(line["status"] for line in lines) == [400, 413]
    too_large = next(line for line in lines if line["status"] == 413)
    assert (too_large["method"], too_large["path"]) == ("POST", "/v1/chat/completions")
    smuggled = next(line for line in lines if line["status"] == 400)
    assert (smuggled["method"], smuggled["path"]) == ("-", "-")  # refused with its head
    assert provider.seen == []


async def test_requests_refused_for_their_key_are_audited(nursery, provider, tdir, tmp_path):
    three_formats(tdir, provider.url)
    path = tmp_path / "audit.log"
    config = Config(
        logging=LoggingConfig(audit_log=str(path)),
        auth=AuthConfig(keys=(AuthKey(name="team", key=CLIENT_KEY, models=("m-o",)),)),
    )
    gw = await start_configured(nursery, tdir, config)
    good = {"authorization": f"Bearer {CLIENT_KEY}"}
    async with httpx.AsyncClient(base_url=gw.url) as client:
        wrong = await client.post(
            "/v1/messages", json=CHAT, headers={"x-api-key": "gw-wrong-key-000000000000"}
        )
        other = await client.post(
            "/v1/chat/completions", json={**CHAT, "model": "m-a"}, headers=good
        )
        ok = await client.post("/v1/chat/completions", json=CHAT, headers=good)
    assert [r.status_code for r in (wrong, other, ok)] == [401, 403, 200]
    lines = {line["request_id"]: line for line in await _wait_lines(path, 3)}
    refused = lines[wrong.headers["x-request-id"]]
    assert (refused["status"], refused["key_name"], refused["client_format"]) == (
        401,
        None,
        "anthropic",
    )
    denied = lines[other.headers["x-request-id"]]
    assert (denied["status"], denied["key_name"], denied["model"]) == (403, "team", "m-a")
    assert lines[ok.headers["x-request-id"]]["key_name"] == "team"
    assert CLIENT_KEY not in path.read_text()
    assert len(provider.seen) == 1


async def test_log_bodies_writes_bodies_with_every_key_redacted(nursery, provider, tdir, tmp_path):
    three_formats(tdir, provider.url)
    provider.then(Step("json", body=openai_reply("the answer text")))
    path = tmp_path / "audit.log"
    file_key = "gw-file-key-abcdef0123456789"
    (tmp_path / "key.txt").write_text(file_key + "\n")
    keys = (
        AuthKey(name="team", key=CLIENT_KEY),
        AuthKey(name="other", key_file=str(tmp_path / "key.txt")),
    )
    config = Config(
        logging=LoggingConfig(audit_log=str(path), log_bodies=True),
        auth=AuthConfig(keys=keys, metrics_key="gw-metrics-key-0123456789"),
    )
    gw = await start_configured(nursery, tdir, config)
    content = (
        f"{PROMPT} provider {PROVIDER_KEY} client {CLIENT_KEY} file {file_key} "
        "metrics gw-metrics-key-0123456789"
    )
    body = {"model": "m-o", "messages": [{"role": "user", "content": content}]}
    auth = {"authorization": f"Bearer {CLIENT_KEY}"}
    async with httpx.AsyncClient(base_url=gw.url, headers=auth) as client:
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
    [line] = await _wait_lines(path, 1)
    assert line["key_name"] == "team"
    assert PROMPT in line["request_body"]
    assert "the answer text" in line["response_body"]
    assert line["bodies_truncated"] is False
    text = path.read_text()
    assert PROVIDER_KEY not in text
    assert CLIENT_KEY not in text
    assert PROVIDER_KEY[:12] not in text
    assert file_key not in text
    assert "gw-metrics-key-0123456789" not in text
    assert line["request_body"].count("[redacted]") == 4


async def test_an_unwritable_path_is_logged_once_and_requests_go_on(
    nursery, provider, tdir, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="gateway.audit")
    three_formats(tdir, provider.url)
    path = tmp_path / "no-such-dir" / "audit.log"
    gw = await start_configured(nursery, tdir, _config(path))
    async with httpx.AsyncClient(base_url=gw.url) as client:
        for _ in range(3):
            assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
            await trio.sleep(0.05)  # each line in a batch of its own
        await eventually(lambda: gw.app.audit is not None and gw.app.audit.dropped >= 3)
        metrics = (await client.get("/metrics")).text
        errors = [r for r in caplog.records if r.name == "gateway.audit" and r.levelno >= 40]
        assert len(errors) == 1
        assert "cannot write" in errors[0].getMessage()
        assert "\ngateway_log_records_dropped_total 3\n" in metrics
        (tmp_path / "no-such-dir").mkdir()
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        [line] = await _wait_lines(path, 1)
    assert line["status"] == 200
    assert "writing again" in caplog.text


def test_sighup_reopens_the_audit_log_of_a_running_gateway(tmp_path):
    path = tmp_path / "audit.log"
    env = {"GATEWAY_LOGGING__AUDIT_LOG": str(path)}
    with run_gateway(tmp_path, env=env) as gw:

        def wait_for(p: Path, count: int) -> list[dict[str, Any]]:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if len(_audit(p)) >= count:
                    return _audit(p)
                time.sleep(0.02)
            raise AssertionError(f"{p}: fewer than {count} lines\n{gw.log()}")

        assert httpx.get(gw.url + "/v1/before").status_code == 404
        wait_for(path, 1)
        moved = tmp_path / "audit.log.moved"
        os.rename(path, moved)
        gw.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "reopening the audit log" not in gw.log() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert httpx.get(gw.url + "/v1/after").status_code == 404
        [after] = wait_for(path, 1)
        assert gw.terminate() == 0
    assert after["path"] == "/v1/after"
    assert [line["path"] for line in _audit(moved)] == ["/v1/before"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "reopening the audit log" in gw.log()


def test_two_workers_share_the_file_rotate_it_and_lose_no_line(tmp_path):
    path = tmp_path / "audit.log"
    env = {
        "GATEWAY_LOGGING__AUDIT_LOG": str(path),
        "GATEWAY_LOGGING__AUDIT_MAX_BYTES": "3000",  # ~7 lines a file
        "GATEWAY_LOGGING__AUDIT_BACKUPS": "100",
    }
    ids = [f"req-{i:03d}" for i in range(60)]
    with run_gateway(tmp_path, "--workers", "2", env=env) as gw:
        for rid in ids:  # a new connection each: the kernel spreads them over the workers
            with httpx.Client(base_url=gw.url) as client:
                assert client.get("/v1/x", headers={"x-request-id": rid}).status_code == 404
        assert gw.terminate() == 0  # the workers write out what is queued before they exit
    files = sorted(tmp_path.glob("audit.log*"))
    assert len(files) > 5  # it rotated
    seen = [line["request_id"] for f in files for line in _audit(f)]  # every line whole JSON
    assert sorted(seen) == ids
