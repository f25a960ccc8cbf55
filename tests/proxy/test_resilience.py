"""Retries, key rotation, cool-downs, fallbacks, the final error table, timeouts, keep-alives
and cancellation in every phase."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
import trio

from tests.proxy.fakes import (
    Step,
    anthropic_events,
    eventually,
    gemini_events,
    openai_chunks,
    openai_reply,
    start_gateway,
    write_transformer,
)

FORMAT_PATHS = {
    "openai": (
        "/v1/chat/completions",
        {"model": "m", "messages": [{"role": "user", "content": "x"}]},
    ),
    "anthropic": (
        "/v1/messages",
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
    ),
    "gemini": ("/v1beta/models/m:generateContent", {"contents": [{"parts": [{"text": "x"}]}]}),
}
STREAM_PATHS = {
    "openai": ("/v1/chat/completions", {**FORMAT_PATHS["openai"][1], "stream": True}),
    "anthropic": ("/v1/messages", {**FORMAT_PATHS["anthropic"][1], "stream": True}),
    "gemini": ("/v1beta/models/m:streamGenerateContent?alt=sse", FORMAT_PATHS["gemini"][1]),
}


def _provider_file(tdir, name, fake, fmt="openai", **extra):
    base = fake.url + ("/v1beta" if fmt == "gemini" else "/v1")
    spec = {
        "format": fmt,
        "base_url": base,
        "models": {"m": "up-model", "*": "*"},
        "retry": {"retries": 2, "backoff_s": 0.01},
        **extra,
    }
    write_transformer(tdir, name, spec)


async def _post(gw, path, body, **kw):
    # trust_env=False: tests that set HTTP_PROXY mean the gateway's upstream calls, not ours.
    async with httpx.AsyncClient(base_url=gw.url, timeout=30, trust_env=False) as client:
        return await client.post(path, json=body, **kw)


def _err(status, message="boom", retry_after=None):
    headers = [(b"retry-after", str(retry_after).encode())] if retry_after is not None else []
    body = {"error": {"message": message, "type": "x"}}
    return Step("status", status=status, body=body, headers=headers)


async def test_retries_then_success(nursery, provider, tdir):
    _provider_file(tdir, "p", provider)
    provider.then(_err(500), _err(502), Step("json", body=openai_reply("third time")))
    gw = await start_gateway(nursery, tdir)
    reply = await _post(gw, *FORMAT_PATHS["openai"])
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == "third time"
    assert len(provider.seen) == 3


async def test_retries_are_bounded_then_502_with_provider_message(nursery, provider, tdir):
    _provider_file(tdir, "p", provider)
    provider.then(_err(500, "internal kaboom"))
    gw = await start_gateway(nursery, tdir)
    reply = await _post(gw, *FORMAT_PATHS["openai"])
    assert reply.status_code == 502
    assert "internal kaboom" in reply.json()["error"]["message"]
    assert len(provider.seen) == 3  # "retries": 2 means at most 3 tries


async def test_429_rotates_keys_and_cools_the_failed_one(nursery, provider, tdir):
    _provider_file(tdir, "p", provider, keys=["${K1}", "${K2}"])
    provider.then(_err(429, retry_after=0), Step("json", body=openai_reply("ok")))
    gw = await start_gateway(nursery, tdir, {"K1": "key-one-1111", "K2": "key-two-2222"})
    first = await _post(gw, *FORMAT_PATHS["openai"])
    assert first.status_code == 200
    used = [s.headers["authorization"] for s in provider.seen]
    assert used == ["Bearer key-one-1111", "Bearer key-two-2222"]
    # key one rests: the next requests use key two only
    for _ in range(3):
        assert (await _post(gw, *FORMAT_PATHS["openai"])).status_code == 200
    assert {s.headers["authorization"] for s in provider.seen[2:]} == {"Bearer key-two-2222"}


async def test_refused_key_cools_down_and_answers_502_not_401(nursery, provider, tdir):
    _provider_file(tdir, "p", provider, keys=["${K1}"])
    provider.then(_err(401, "Incorrect API key provided: key-one-1111"))
    gw = await start_gateway(nursery, tdir, {"K1": "key-one-1111"})
    reply = await _post(gw, *FORMAT_PATHS["openai"])
    assert reply.status_code == 502
    message = reply.json()["error"]["message"]
    assert "refused the gateway's API key" in message
    assert "key-one-1111" not in reply.text
    assert len(provider.seen) == 1  # the only key is cooling down: no hammering
    again = await _post(gw, *FORMAT_PATHS["openai"])
    assert again.status_code == 502
    assert len(provider.seen) == 1


async def test_provider_message_echoing_a_key_is_redacted(nursery, provider, tdir):
    _provider_file(tdir, "p", provider, keys=["${K1}"])
    provider.then(_err(400, "bad request made with key-one-1111 and sk-abcdefghijklmnop"))
    gw = await start_gateway(nursery, tdir, {"K1": "key-one-1111"})
    reply = await _post(gw, *FORMAT_PATHS["openai"])
    assert reply.status_code == 400
    assert "key-one-1111" not in reply.text
    assert "sk-abcdefghijklmnop" not in reply.text
    assert "[redacted]" in reply.text


async def test_fallback_order_alias_providers_then_fallbacks(nursery, provider, backup, tdir):
    _provider_file(
        tdir,
        "a-primary",
        provider,
        models={"m": {"model": "up-model", "fallbacks": ["b-backup/other-model"]}},
        retry={"retries": 1, "backoff_s": 0.01},
    )
    _provider_file(tdir, "b-backup", backup, models={"*": "*"})
    provider.then(_err(503))
    backup.then(Step("json", body=openai_reply("from backup")))
    gw = await start_gateway(nursery, tdir)
    reply = await _post(gw, *FORMAT_PATHS["openai"])
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == "from backup"
    assert len(provider.seen) == 2
    assert backup.seen[0].body["model"] == "other-model"


async def test_a_rejected_request_does_not_fall_back(nursery, provider, backup, tdir):
    _provider_file(
        tdir, "a-primary", provider, models={"m": {"model": "up", "fallbacks": ["b-backup/x"]}}
    )
    _provider_file(tdir, "b-backup", backup, models={"*": "*"})
    provider.then(_err(422, "messages: too long"))
    gw = await start_gateway(nursery, tdir)
    reply = await _post(gw, *FORMAT_PATHS["openai"])
    assert reply.status_code == 422
    assert "too long" in reply.json()["error"]["message"]
    assert backup.seen == []
    assert len(provider.seen) == 1


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        (
            _err(400),
            {
                "openai": (400, "invalid_request_error"),
                "anthropic": (400, "invalid_request_error"),
                "gemini": (400, "INVALID_ARGUMENT"),
            },
        ),
        (
            _err(404),
            {
                "openai": (404, "invalid_request_error"),
                "anthropic": (404, "not_found_error"),
                "gemini": (404, "NOT_FOUND"),
            },
        ),
        (
            _err(429, retry_after=3),
            {
                "openai": (429, "rate_limit_error"),
                "anthropic": (429, "rate_limit_error"),
                "gemini": (429, "RESOURCE_EXHAUSTED"),
            },
        ),
        (
            _err(529),
            {
                "openai": (503, "server_error"),
                "anthropic": (529, "overloaded_error"),
                "gemini": (503, "UNAVAILABLE"),
            },
        ),
        (
            _err(503),
            {
                "openai": (503, "server_error"),
                "anthropic": (529, "overloaded_error"),
                "gemini": (503, "UNAVAILABLE"),
            },
        ),
        (
            _err(500),
            {
                "openai": (502, "server_error"),
                "anthropic": (502, "api_error"),
                "gemini": (502, "UNAVAILABLE"),
            },
        ),
        (
            _err(403),
            {
                "openai": (502, "server_error"),
                "anthropic": (502, "api_error"),
                "gemini": (502, "UNAVAILABLE"),
            },
        ),
    ],
)
async def test_final_error_table_in_each_client_format(
    nursery, provider, tdir, fmt, upstream, expected
):
    _provider_file(tdir, "p", provider, fmt=fmt, retry={"retries": 0, "backoff_s": 0})
    provider.then(upstream)
    gw = await start_gateway(nursery, tdir)
    reply = await _post(gw, *FORMAT_PATHS[fmt])
    status, kind = expected[fmt]
    assert reply.status_code == status
    body = reply.json()
    if fmt == "openai":
        assert body["error"]["type"] == kind
    elif fmt == "anthropic":
        assert body["type"] == "error"
        assert body["error"]["type"] == kind
    else:
        assert body["error"]["status"] == kind
        assert body["error"]["code"] == status
    if status == 429:
        assert reply.headers["retry-after"] == "3"


async def test_unreachable_provider_is_502_naming_it(nursery, tdir):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write_transformer(
        tdir,
        "gone",
        {
            "format": "openai",
            "base_url": f"http://127.0.0.1:{port}/v1",
            "models": {"m": "x"},
            "retry": {"retries": 1, "backoff_s": 0.01},
        },
    )
    gw = await start_gateway(nursery, tdir)
    reply = await _post(gw, *FORMAT_PATHS["openai"])
    assert reply.status_code == 502
    assert "Could not reach provider 'gone'" in reply.json()["error"]["message"]


async def test_first_byte_timeout_is_504(nursery, provider, tdir):
    _provider_file(
        tdir, "p", provider, timeouts={"first_byte": 0.3}, retry={"retries": 0, "backoff_s": 0}
    )
    provider.then(Step("hang"))
    gw = await start_gateway(nursery, tdir)
    reply = await _post(gw, *FORMAT_PATHS["openai"])
    assert reply.status_code == 504
    assert "first_byte timeout" in reply.json()["error"]["message"]
    with trio.fail_after(1):
        await provider.handler_gone.wait()  # the upstream request was abandoned, not leaked


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "gemini"])
async def test_idle_timeout_mid_stream_ends_with_an_in_stream_error(nursery, provider, tdir, fmt):
    _provider_file(tdir, "p", provider, fmt=fmt, timeouts={"idle": 0.3})
    events = {
        "openai": openai_chunks(["a", "b"]),
        "anthropic": anthropic_events(["a"]),
        "gemini": gemini_events(["a"]),
    }
    provider.then(Step("silent_after", events=events[fmt][:2]))
    gw = await start_gateway(nursery, tdir)
    reply = await _post(gw, *STREAM_PATHS[fmt])
    assert reply.status_code == 200
    last = [line for line in reply.text.splitlines() if line.startswith("data:")][-1]
    error = json.loads(last[5:])
    assert "idle timeout" in json.dumps(error)
    if fmt == "openai":
        assert "[DONE]" not in reply.text
    if fmt == "anthropic":
        assert "event: error" in reply.text


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "gemini"])
async def test_keepalives_while_waiting_for_the_first_token(nursery, provider, tdir, fmt):
    _provider_file(tdir, "p", provider, fmt=fmt)
    events = {
        "openai": openai_chunks(["hi"]),
        "anthropic": anthropic_events(["hi"]),
        "gemini": gemini_events(["hi"]),
    }
    provider.then(Step("sse", events=[b"<pause>", *events[fmt]], delay_s=0.5))

    def tweak(app):
        app.proxy.keepalive_s = 0.1

    gw = await start_gateway(nursery, tdir, tweak=tweak)
    reply = await _post(gw, *STREAM_PATHS[fmt])
    expected = {"openai": ": keep-alive\n\n", "anthropic": "event: ping\n", "gemini": "\r\n"}[fmt]
    head = reply.text.split("data:")[0]
    assert expected in head
    assert "hi" in reply.text


async def _raw_request(gw, path, body) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    data = json.dumps(body).encode()
    await stream.send_all(
        b"POST %s HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
        % (path.encode(), len(data), data)
    )
    return stream


@pytest.mark.parametrize("phase", ["headers", "first_token", "mid_stream"])
async def test_client_leaving_cancels_the_upstream_request(nursery, provider, tdir, phase):
    _provider_file(tdir, "p", provider)
    if phase == "headers":
        provider.then(Step("hang"))
    elif phase == "first_token":
        provider.then(Step("silent_after", events=[]))
    else:
        provider.then(Step("silent_after", events=openai_chunks(["a", "b", "c"])[:2]))
    gw = await start_gateway(nursery, tdir)
    stream = await _raw_request(gw, *STREAM_PATHS["openai"])
    with trio.fail_after(5):
        await provider.in_handler.wait()
        if phase != "headers":
            await stream.receive_some(1000)  # the status (and maybe events) arrived
    await stream.aclose()
    with trio.fail_after(1):
        await provider.handler_gone.wait()
    await eventually(lambda: gw.app.server.connections == 0)


async def test_client_leaving_during_a_retry_sleep_stops_the_retries(nursery, provider, tdir):
    _provider_file(tdir, "p", provider, retry={"retries": 3, "backoff_s": 0.01})
    provider.then(_err(503, retry_after=20))
    gw = await start_gateway(nursery, tdir)
    stream = await _raw_request(gw, *FORMAT_PATHS["openai"])
    with trio.fail_after(5):
        await provider.in_handler.wait()
    await trio.sleep(0.2)  # the gateway now sleeps on the provider's Retry-After
    await stream.aclose()
    await eventually(lambda: gw.app.server.connections == 0)
    await trio.sleep(0.3)
    assert len(provider.seen) == 1


async def test_hot_reload_keeps_the_request_in_flight_on_its_snapshot(
    nursery, provider, backup, tdir
):
    _provider_file(tdir, "p", provider)
    provider.then(Step("json", body=openai_reply("old provider"), delay_s=0.5))
    backup.then(Step("json", body=openai_reply("new provider")))
    gw = await start_gateway(nursery, tdir)
    results = {}

    async def slow_call():
        results["first"] = await _post(gw, *FORMAT_PATHS["openai"])

    nursery.start_soon(slow_call)
    with trio.fail_after(5):
        await provider.in_handler.wait()
    _provider_file(tdir, "p", backup)  # same provider name, new address
    await gw.registry.reload()
    second = await _post(gw, *FORMAT_PATHS["openai"])
    assert second.json()["choices"][0]["message"]["content"] == "new provider"
    await eventually(lambda: "first" in results, 5)
    assert results["first"].json()["choices"][0]["message"]["content"] == "old provider"


async def test_missing_provider_key_is_401_naming_the_variable(nursery, provider, tdir):
    _provider_file(tdir, "p", provider, keys=["${MISSING_KEY_VAR}"])
    gw = await start_gateway(nursery, tdir)
    for fmt, (path, body) in FORMAT_PATHS.items():
        reply = await _post(gw, path, body)
        assert reply.status_code == 401, fmt
        assert "MISSING_KEY_VAR" in reply.text
    assert provider.seen == []


@pytest.mark.parametrize("when", ["before_first_event", "mid_event"])
@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
async def test_provider_breaking_off_ends_the_stream_with_an_in_stream_error(
    nursery, provider, tdir, fmt, when
):
    _provider_file(tdir, "p", provider, fmt=fmt)
    events = {"openai": openai_chunks(["a", "b"]), "anthropic": anthropic_events(["a"])}[fmt]
    sent = [] if when == "before_first_event" else [events[0], events[1][:20]]  # half an event
    provider.then(Step("abort", events=sent))
    gw = await start_gateway(nursery, tdir)
    reply = await _post(gw, *STREAM_PATHS[fmt])
    assert reply.status_code == 200
    data = [line[5:] for line in reply.text.splitlines() if line.startswith("data:")]
    assert "broke" in json.loads(data[-1])["error"]["message"]
    for line in data:
        json.loads(line)  # no half event reached the client


@pytest.mark.parametrize("bypass", [False, True], ids=["via-proxy", "no-proxy"])
async def test_http_proxy_from_the_environment_is_honoured(
    nursery, provider, backup, tdir, monkeypatch, bypass
):
    monkeypatch.setenv("HTTP_PROXY", backup.url)  # the backup fake plays the forward proxy
    for name in ("http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    if bypass:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    else:
        monkeypatch.delenv("NO_PROXY", raising=False)
    _provider_file(tdir, "p", provider)
    gw = await start_gateway(nursery, tdir)
    reply = await _post(gw, *FORMAT_PATHS["openai"])
    assert reply.status_code == 200
    if bypass:
        assert len(provider.seen) == 1
        assert backup.seen == []
    else:
        assert provider.seen == []
        assert backup.seen[0].path == f"{provider.url}/v1/chat/completions"


class _NeverConnects(httpx.AsyncBaseTransport):
    """A transport whose connect never completes (a black-holed provider address)."""

    def __init__(self) -> None:
        self.started = trio.Event()
        self.cancelled = trio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.started.set()
        try:
            await trio.sleep_forever()
        finally:
            self.cancelled.set()


async def test_client_leaving_while_the_gateway_connects_cancels_the_connect(nursery, tdir):
    from gateway.upstream import UpstreamClient

    hanging = _NeverConnects()
    write_transformer(
        tdir, "p", {"format": "openai", "base_url": "http://10.255.255.1/v1", "models": {"m": "x"}}
    )

    def tweak(app):
        app.upstream = app.proxy.upstream = UpstreamClient(transport_factory=lambda _v: hanging)

    gw = await start_gateway(nursery, tdir, tweak=tweak)
    stream = await _raw_request(gw, *FORMAT_PATHS["openai"])
    with trio.fail_after(5):
        await hanging.started.wait()
    await stream.aclose()
    with trio.fail_after(1):
        await hanging.cancelled.wait()
    await eventually(lambda: gw.app.server.connections == 0)


async def test_client_leaving_during_a_fallback_cancels_the_fallback(
    nursery, provider, backup, tdir
):
    _provider_file(
        tdir,
        "a-primary",
        provider,
        models={"m": {"model": "up", "fallbacks": ["b-backup/x"]}},
        retry={"retries": 0, "backoff_s": 0},
    )
    _provider_file(tdir, "b-backup", backup, models={"*": "*"})
    provider.then(_err(503))
    backup.then(Step("hang"))
    gw = await start_gateway(nursery, tdir)
    stream = await _raw_request(gw, *FORMAT_PATHS["openai"])
    with trio.fail_after(5):
        await backup.in_handler.wait()  # the primary failed; the fallback is under way
    await stream.aclose()
    with trio.fail_after(1):
        await backup.handler_gone.wait()


@pytest.mark.parametrize("trusted", [True, False], ids=["ca-bundle", "untrusted"])
async def test_tls_verify_with_a_ca_bundle(nursery, tdir, tmp_path, trusted):
    import ssl

    import trustme

    from tests.proxy.fakes import FakeProvider

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    secure = FakeProvider(tls=server_ctx)
    await nursery.start(secure.serve)
    bundle = tmp_path / "ca.pem"
    (ca if trusted else trustme.CA()).cert_pem.write_to_path(str(bundle))
    _provider_file(tdir, "p", secure, tls_verify=str(bundle), retry={"retries": 0, "backoff_s": 0})
    secure.then(Step("json", body=openai_reply("over tls")))
    gw = await start_gateway(nursery, tdir)
    reply = await _post(gw, *FORMAT_PATHS["openai"])
    if trusted:
        assert reply.status_code == 200
        assert reply.json()["choices"][0]["message"]["content"] == "over tls"
    else:
        assert reply.status_code == 502
        assert "Could not reach provider 'p'" in reply.json()["error"]["message"]
        assert secure.seen == []


async def test_client_leaving_right_after_an_event_is_seen_before_the_next_one(
    nursery, provider, tdir
):
    """A client that reads an event and closes is gone at once, not at the next send.

    Its EOF can reach the watchdog while the handler's send of that event is still
    finishing; the probe then waits for the send to end instead of being skipped
    (which left the departure to the handler's next send: here, none ever comes).
    """
    _provider_file(tdir, "p", provider)
    gw = await start_gateway(nursery, tdir)
    body = json.dumps(
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    )
    head = "POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
    request = f"{head}content-length: {len(body)}\r\n\r\n{body}".encode()

    def read_one_event_and_close() -> None:
        # A thread, as a client in its own process: it reads the event the moment it
        # is written, before the gateway's handler has finished its send.
        with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
            sock.sendall(request)
            received = b""
            while b"data:" not in received:
                received += sock.recv(65536)

    for _ in range(6):  # the race is won about half the time: six trials all but catch it
        provider.then(Step("silent_after", events=openai_chunks(["a", "b"])[:1]))
        await trio.to_thread.run_sync(read_one_event_and_close)
        with trio.fail_after(1):  # the provider sends nothing more: only the probe can tell
            await provider.handler_gone.wait()
        provider.handler_gone = trio.Event()
