"""The Realtime WebSocket relay (issue 10 item 6) through the running gateway.

A fake provider (trio-websocket's server on 127.0.0.1) checks the handshake it
gets and plays a script; the client is trio-websocket's. Every wait is bounded
(``fail_after``), every loop counted.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import attrs
import httpx
import openai
import pytest
import trio
import trio_websocket
import trustme
from prometheus_client.parser import text_string_to_metric_families
from trio_websocket import ConnectionClosed, WebSocketConnection

from gateway.app import App
from gateway.config import AuthConfig, AuthKey, Config, ServerConfig
from gateway.errors import BadRequest, Forbidden
from gateway.proxy.realtime_upstream import realtime_url
from gateway.server.listen import open_listeners
from gateway.transformers.model import ProviderFormat, Transformer
from gateway.transformers.registry import RegistryHolder
from tests.proxy.fakes import Gateway, eventually, write_transformer

KEY = "sk-realtime-provider-key-0123456789"
KEY2 = "sk-realtime-second-key-9876543210"
ENV = {"RT_KEY": KEY, "RT_KEY2": KEY2}
#: Every wait in these tests.
LIMIT_S = 10


@attrs.define
class Handshake:
    target: str
    headers: dict[str, str]


@attrs.define
class FakeRealtime:
    """A provider's realtime WebSocket: records handshakes, messages and closes; plays ``mode``.

    Modes: ``echo`` (each message back, prefixed), ``json`` (each JSON event answered
    with ``{"type": "test.echo", "got": <its type>}``), ``reject`` (``reject_status`` with an
    OpenAI error body naming the key it got, except for ``accept_key``), ``bye``
    (sends ``last`` then closes with 4000 "bye"), ``flood`` (``flood_count`` messages of
    ``flood_size`` bytes as fast as the gateway takes them), ``drop`` (cuts its TCP),
    ``close_reason`` (closes with 4002 and a reason holding the key).
    """

    mode: str = "echo"
    reject_status: int = 401
    accept_key: str | None = None
    flood_count: int = 0
    flood_size: int = 0
    handshakes: list[Handshake] = attrs.Factory(list)
    received: list[Any] = attrs.Factory(list)
    closes: list[tuple[int, str | None]] = attrs.Factory(list)
    sent: int = 0
    accepted: trio.Event = attrs.Factory(trio.Event)
    closed: trio.Event = attrs.Factory(trio.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    async def handle(self, request: trio_websocket.WebSocketRequest) -> None:
        headers = {k.decode(): v.decode() for k, v in request.headers}
        self.handshakes.append(Handshake(request.path, headers))
        auth = headers.get("authorization", "")
        if self.mode == "reject" and auth != f"Bearer {self.accept_key}":
            body = {"error": {"message": f"Incorrect API key provided: {auth[7:]}", "type": "x"}}
            await request.reject(
                self.reject_status,
                extra_headers=[(b"content-type", b"application/json"), (b"retry-after", b"2")],
                body=json.dumps(body).encode(),
            )
            return
        ws = await request.accept()
        self.accepted.set()
        try:
            await self._play(ws)
        except ConnectionClosed as exc:
            reason = exc.reason
            self.closes.append((reason.code, reason.reason) if reason else (1006, None))
        finally:
            self.closed.set()

    async def _play(self, ws: trio_websocket.WebSocketConnection) -> None:
        if self.mode == "bye":
            await ws.send_message("last")
            await ws.aclose(4000, "bye")
            return
        if self.mode == "close_reason":
            await ws.aclose(4002, f"your key {KEY} is no good")
            return
        if self.mode == "drop":
            await ws.get_message()
            await trio.aclose_forcefully(ws._stream)  # the provider's connection breaks
            await trio.sleep_forever()
        if self.mode == "json":  # answers each event with an event naming it
            while True:
                event = json.loads(await ws.get_message())
                self.received.append(event)
                await ws.send_message(json.dumps({"type": "test.echo", "got": event["type"]}))
        if self.mode == "flood":
            for i in range(self.flood_count):
                await ws.send_message(b"%08d" % i + b"x" * (self.flood_size - 8))
                self.sent += 1
        while True:  # echo; a close from the gateway ends it with ConnectionClosed
            message = await ws.get_message()
            self.received.append(message)
            await ws.send_message(
                "echo:" + message if isinstance(message, str) else b"echo:" + message
            )


async def _closed_at_the_end(listeners: list) -> None:
    """Close ``listeners`` when the test's nursery is cancelled (no socket left to the GC)."""
    try:
        await trio.sleep_forever()
    finally:
        for listener in listeners:
            listener.socket.close()


async def _serve_fake(nursery, fake: FakeRealtime, tls: ssl.SSLContext | None = None) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(_closed_at_the_end, listeners)
    wrapped = (
        [trio.SSLListener(ln, tls, https_compatible=True) for ln in listeners] if tls else listeners
    )
    server = trio_websocket.WebSocketServer(fake.handle, wrapped, max_message_size=64 * 1024 * 1024)
    await nursery.start(server.run)
    fake.port = listeners[0].socket.getsockname()[1]


@pytest.fixture
async def upstream(nursery) -> FakeRealtime:
    fake = FakeRealtime()
    await _serve_fake(nursery, fake)
    return fake


def _write(tdir, upstream: FakeRealtime, **extra: Any) -> None:
    write_transformer(
        tdir,
        "rt",
        {
            "format": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "keys": ["${RT_KEY}"],
            "models": {"gpt-rt": "up-realtime", "*": "*"},
            "realtime_url": upstream.url,
            "retry": {"retries": 0, "backoff_s": 0},
            **extra,
        },
    )


async def _gateway(nursery, tdir, auth: AuthConfig | None = None, **settings: Any) -> Gateway:
    """The gateway on 127.0.0.1 (as tests.proxy.fakes.start_gateway), its listener closed
    at the end."""
    registry = RegistryHolder(tdir, env=ENV)
    await registry.reload()
    registry.initial_load_done.set()
    server = ServerConfig(host="127.0.0.1", port=0, **settings)
    app = App(Config(server=server, auth=auth or AuthConfig()), registry=registry)
    listeners = await open_listeners("127.0.0.1", 0)
    nursery.start_soon(_closed_at_the_end, listeners)
    await nursery.start(app.server.serve, listeners)
    return Gateway(app, registry, listeners[0].socket.getsockname()[1])


def _ws_url(gw: Gateway, model: str, path: str = "/v1/realtime") -> str:
    return f"ws://127.0.0.1:{gw.port}{path}?model={quote(model, safe='')}"


@asynccontextmanager
async def open_websocket_url(url: str, **options: Any) -> AsyncIterator[WebSocketConnection]:
    """trio-websocket's client, its socket closed after (trio-websocket leaves it open when
    the server closed first)."""
    async with trio_websocket.open_websocket_url(url, **options) as ws:
        try:
            yield ws
        finally:
            stream = ws._stream
    await trio.aclose_forcefully(stream)


#: A WebSocket handshake's headers, for clients that expect a refusal (an HTTP answer).
UPGRADE = {
    "connection": "Upgrade",
    "upgrade": "websocket",
    "sec-websocket-version": "13",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
}


async def _refused(gw: Gateway, model: str, path: str = "/v1/realtime") -> httpx.Response:
    """The gateway's answer to a WebSocket handshake it must refuse (a 101 would hang here)."""
    async with httpx.AsyncClient(base_url=gw.url) as client:
        with trio.fail_after(LIMIT_S):
            return await client.get(path, params={"model": model}, headers=UPGRADE)


CLIENT_HEADERS = [
    (b"authorization", b"Bearer client-key-never-forwarded"),
    (b"openai-beta", b"realtime=v1"),
]


async def test_text_and_binary_frames_both_ways_with_the_provider_key(nursery, tdir, upstream):
    _write(tdir, upstream)
    gw = await _gateway(nursery, tdir)
    with trio.fail_after(LIMIT_S):
        async with open_websocket_url(_ws_url(gw, "gpt-rt"), extra_headers=CLIENT_HEADERS) as ws:
            await ws.send_message("hello")
            assert await ws.get_message() == "echo:hello"
            await ws.send_message(b"\x00\x01\xff")
            assert await ws.get_message() == b"echo:\x00\x01\xff"
            big = "é" * 300_000  # several TCP reads, multi-byte text
            await ws.send_message(big)
            assert await ws.get_message() == "echo:" + big
            head = dict(ws.handshake_headers)
    assert head[b"x-gateway-provider"] == b"rt"
    assert len(head[b"x-request-id"]) == 32
    assert upstream.received == ["hello", b"\x00\x01\xff", big]
    (seen,) = upstream.handshakes
    assert seen.target == "/v1/realtime?model=up-realtime"
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.headers["openai-beta"] == "realtime=v1"
    assert seen.headers["x-request-id"] == head[b"x-request-id"].decode()
    assert all("client-key" not in value for value in seen.headers.values())


async def test_the_provider_closing_with_4000_closes_the_client_with_4000(nursery, tdir, upstream):
    upstream.mode = "bye"
    _write(tdir, upstream)
    gw = await _gateway(nursery, tdir)
    with trio.fail_after(LIMIT_S):
        async with open_websocket_url(_ws_url(gw, "gpt-rt")) as ws:
            assert await ws.get_message() == "last"  # what came before the close is passed on
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
    assert (closed.value.reason.code, closed.value.reason.reason) == (4000, "bye")


@pytest.mark.parametrize(("code", "reason"), [(1000, None), (4001, "client done")])
async def test_the_client_closing_closes_the_provider_with_its_code(
    nursery, tdir, upstream, code, reason
):
    _write(tdir, upstream)
    gw = await _gateway(nursery, tdir)
    with trio.fail_after(LIMIT_S):
        async with open_websocket_url(_ws_url(gw, "gpt-rt")) as ws:
            await ws.send_message("hi")
            assert await ws.get_message() == "echo:hi"
            await ws.aclose(code, reason)
        await upstream.closed.wait()
    assert upstream.closes == [(code, reason)]


async def test_a_provider_whose_connection_breaks_closes_the_client_with_1011(
    nursery, tdir, upstream
):
    upstream.mode = "drop"
    _write(tdir, upstream)
    gw = await _gateway(nursery, tdir)
    with trio.fail_after(LIMIT_S):
        async with open_websocket_url(_ws_url(gw, "gpt-rt")) as ws:
            await ws.send_message("go")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
    assert closed.value.reason.code == 1011


async def test_a_slow_client_holds_the_provider_back(nursery, tdir, upstream):
    """The gateway reads no further from the provider than the client takes (backpressure)."""
    size, count = 256 * 1024, 400  # 100 MiB: far more than the socket buffers on the way
    upstream.mode, upstream.flood_size, upstream.flood_count = "flood", size, count
    _write(tdir, upstream)
    gw = await _gateway(nursery, tdir)
    with trio.fail_after(LIMIT_S * 3):
        async with open_websocket_url(
            _ws_url(gw, "gpt-rt"), max_message_size=size, message_queue_size=0
        ) as ws:
            await upstream.accepted.wait()
            await trio.sleep(1.0)  # the client reads nothing
            stalled_at = upstream.sent
            await trio.sleep(0.5)
            assert upstream.sent == stalled_at  # the provider is held back ...
            assert stalled_at * size < 24 * 1024 * 1024  # ... after the socket buffers filled
            for i in range(count):
                message = await ws.get_message()
                assert message[:8] == b"%08d" % i
            assert upstream.sent == count


async def test_a_refused_handshake_is_an_http_error_in_openai_format(nursery, tdir, upstream):
    upstream.mode = "reject"
    _write(tdir, upstream)
    gw = await _gateway(nursery, tdir)
    refused = await _refused(gw, "gpt-rt")
    # The provider refused the gateway's key: 502, never 401 (SDK login flows), never a 101.
    assert refused.status_code == 502
    assert "refused the gateway's API key" in refused.json()["error"]["message"]
    assert KEY not in refused.text
    assert gw.app.proxy.keys.wait_s(gw.registry.current.transformers["rt"]) > 0  # it rests


async def test_a_refused_key_rests_and_the_next_key_serves(nursery, tdir, upstream):
    upstream.mode, upstream.accept_key = "reject", KEY2
    _write(tdir, upstream, keys=["${RT_KEY}", "${RT_KEY2}"], retry={"retries": 1, "backoff_s": 0})
    gw = await _gateway(nursery, tdir)
    with trio.fail_after(LIMIT_S):
        async with open_websocket_url(_ws_url(gw, "gpt-rt")) as ws:
            await ws.send_message("hi")
            assert await ws.get_message() == "echo:hi"
        async with open_websocket_url(_ws_url(gw, "gpt-rt")) as ws:  # the rested key is skipped
            await ws.send_message("again")
            assert await ws.get_message() == "echo:again"
    auths = [h.headers["authorization"] for h in upstream.handshakes]
    assert auths == [f"Bearer {KEY}", f"Bearer {KEY2}", f"Bearer {KEY2}"]


async def test_a_provider_rate_limit_is_a_429_with_retry_after(nursery, tdir, upstream):
    upstream.mode, upstream.reject_status = "reject", 429
    _write(tdir, upstream)
    gw = await _gateway(nursery, tdir)
    refused = await _refused(gw, "gpt-rt")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"
    assert refused.json()["error"]["type"] == "rate_limit_error"


async def test_an_unknown_model_is_a_404_before_any_upgrade(nursery, tdir, upstream):
    _write(tdir, upstream, models={"gpt-rt": "up-realtime"})
    gw = await _gateway(nursery, tdir)
    refused = await _refused(gw, "no-such-model")
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "model_not_found"
    assert upstream.handshakes == []


async def test_a_provider_without_realtime_url_is_a_400(nursery, tdir, upstream):
    write_transformer(
        tdir,
        "plain",
        {"format": "openai", "base_url": "http://127.0.0.1:9/v1", "models": {"m": "m"}},
    )
    gw = await _gateway(nursery, tdir)
    refused = await _refused(gw, "m")
    assert refused.status_code == 400
    assert "'plain'" in refused.json()["error"]["message"]
    assert "realtime_url" in refused.json()["error"]["message"]


async def test_a_model_name_reaches_the_provider_url_as_one_encoded_value(nursery, tdir, upstream):
    _write(tdir, upstream, query={"api-version": "2024-10-01"})
    gw = await _gateway(nursery, tdir)
    model = "rt/a/../../b?x=1&key=evil#frag"
    with trio.fail_after(LIMIT_S):
        async with open_websocket_url(_ws_url(gw, model)) as ws:
            await ws.send_message("hi")
            assert await ws.get_message() == "echo:hi"
    (seen,) = upstream.handshakes
    parts = urlsplit(seen.target)
    assert parts.path == "/v1/realtime"
    assert parse_qs(parts.query) == {
        "api-version": ["2024-10-01"],
        "model": ["a/../../b?x=1&key=evil#frag"],
    }
    assert seen.target.endswith("model=a%2F..%2F..%2Fb%3Fx%3D1%26key%3Devil%23frag")


async def test_426_for_an_upgrade_to_http_paths_and_for_plain_http_on_realtime(
    nursery, tdir, upstream
):
    _write(tdir, upstream)
    gw = await _gateway(nursery, tdir)
    for path in ("/v1/chat/completions", "/v1/models"):
        refused = await _refused(gw, "gpt-rt", path)
        assert refused.status_code == 426, path
        assert "does not accept WebSocket" in refused.json()["error"]["message"]
    with trio.fail_after(LIMIT_S):
        async with httpx.AsyncClient(base_url=gw.url) as client:
            plain = await client.get("/v1/realtime", params={"model": "gpt-rt"})
            after = await client.get("/v1/models")  # the connection is still good
    assert plain.status_code == 426
    assert plain.headers["upgrade"] == "websocket"
    assert "connect with a WebSocket" in plain.json()["error"]["message"]
    assert plain.json()["error"]["type"] == "invalid_request_error"
    assert after.status_code == 200
    assert upstream.handshakes == []


async def test_a_bad_handshake_is_a_400(nursery, tdir, upstream):
    _write(tdir, upstream)
    gw = await _gateway(nursery, tdir)
    headers = {"connection": "Upgrade", "upgrade": "websocket", "sec-websocket-key": "c2hvcnQ="}
    async with httpx.AsyncClient(base_url=gw.url) as client:
        for version in ("13", "8"):
            answer = await client.get(
                "/v1/realtime?model=gpt-rt", headers={**headers, "sec-websocket-version": version}
            )
            assert answer.status_code == 400
    assert upstream.handshakes == []


async def test_secrets_stay_out_of_frames_errors_and_logs(nursery, tdir, upstream, caplog):
    caplog.set_level(logging.DEBUG)
    upstream.mode = "close_reason"  # the provider echoes the key in its close reason
    _write(tdir, upstream)
    gw = await _gateway(nursery, tdir)
    with trio.fail_after(LIMIT_S):
        async with open_websocket_url(_ws_url(gw, "gpt-rt")) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
    upstream.mode = "reject"
    refused = await _refused(gw, "gpt-rt")
    assert closed.value.reason.code == 4002
    assert KEY not in (closed.value.reason.reason or "")
    assert "[redacted]" in closed.value.reason.reason
    assert refused.status_code == 502
    assert KEY not in refused.text
    assert KEY not in repr(refused.headers)
    # The gateway's own lines (trio-websocket's debug lines are not emitted: it has no handler,
    # and the last-resort handler shows warnings only).
    shown = [
        r for r in caplog.records if r.name.startswith("gateway") or r.levelno >= logging.WARNING
    ]
    assert all(KEY not in r.getMessage() and KEY not in str(r.__dict__) for r in shown)
    assert any("realtime" in r.getMessage() for r in shown)  # the log was on


async def test_the_session_is_one_request_in_the_access_line_and_the_metrics(
    nursery, tdir, upstream, caplog
):
    caplog.set_level(logging.INFO, logger="gateway.access")
    _write(tdir, upstream)
    gw = await _gateway(nursery, tdir)
    with trio.fail_after(LIMIT_S):
        async with open_websocket_url(_ws_url(gw, "gpt-rt")) as ws:
            await ws.send_message("x" * 1000)
            await ws.get_message()
            await trio.sleep(0.3)
        await eventually(
            lambda: any(r.status == 101 for r in caplog.records if hasattr(r, "status"))
        )
    (line,) = [r for r in caplog.records if getattr(r, "status", None) == 101]
    assert (line.provider, line.model, line.upstream_model) == ("rt", "gpt-rt", "up-realtime")
    assert line.bytes == 1005  # "echo:" + 1000
    assert line.duration_ms >= 300  # the session's length
    async with httpx.AsyncClient(base_url=gw.url) as client:
        text = (await client.get("/metrics")).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    labels = (("model", "gpt-rt"), ("provider", "rt"), ("status", "101"))
    assert samples[("gateway_requests_total", labels)] == 1


async def test_gateway_shutdown_closes_both_sides_with_1001(nursery, tdir, upstream):
    _write(tdir, upstream)
    gw = await _gateway(nursery, tdir, shutdown_delay_s=0, shutdown_grace_s=30)
    with trio.fail_after(LIMIT_S):
        async with open_websocket_url(_ws_url(gw, "gpt-rt")) as ws:
            await ws.send_message("hi")
            assert await ws.get_message() == "echo:hi"
            gw.app.server.begin_shutdown()
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
        await upstream.closed.wait()
    assert closed.value.reason.code == 1001
    assert upstream.closes[0][0] == 1001


async def test_admit_refuses_before_the_provider_and_settles_after(nursery, tdir, upstream):
    """The edge's hook: a refusal is an HTTP error (no provider contacted); settle at the end."""
    _write(tdir, upstream)
    settled: list[Any] = []

    async def admit(ex, model):
        if model != "gpt-rt":
            raise Forbidden(f"This key may not use {model!r}.")

        async def settle(record):
            settled.append((record.provider, record.model))

        return settle

    gw = await _gateway(nursery, tdir)
    gw.app.realtime.admit = admit
    refused = await _refused(gw, "rt/other")
    with trio.fail_after(LIMIT_S):
        async with open_websocket_url(_ws_url(gw, "gpt-rt")) as ws:
            await ws.send_message("hi")
            await ws.get_message()
        await eventually(lambda: bool(settled))
    assert refused.status_code == 403
    assert [h.target for h in upstream.handshakes] == ["/v1/realtime?model=up-realtime"]
    assert settled == [("rt", "gpt-rt")]


async def test_a_wss_provider_is_verified_with_its_ca_file(nursery, tdir, tmp_path):
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    fake = FakeRealtime()
    await _serve_fake(nursery, fake, server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    url = f"wss://127.0.0.1:{fake.port}/v1/realtime"
    _write(tdir, fake, realtime_url=url, tls_verify=str(ca_file))
    write_transformer(  # the same provider without its CA: the certificate is refused
        tdir,
        "untrusted",
        {
            "format": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "models": {"u": "u"},
            "realtime_url": url,
            "retry": {"retries": 0, "backoff_s": 0},
        },
    )
    gw = await _gateway(nursery, tdir)
    with trio.fail_after(LIMIT_S):
        async with open_websocket_url(_ws_url(gw, "gpt-rt")) as ws:
            await ws.send_message("over tls")
            assert await ws.get_message() == "echo:over tls"
    refused = await _refused(gw, "u")
    assert refused.status_code == 502
    assert "Could not reach provider 'untrusted'" in refused.json()["error"]["message"]
    assert len(fake.handshakes) == 1


async def test_an_unreachable_provider_is_a_502_after_its_retries(nursery, tdir, upstream):
    _write(
        tdir,
        upstream,
        realtime_url="ws://127.0.0.1:1/v1/realtime",
        retry={"retries": 1, "backoff_s": 0},
    )
    gw = await _gateway(nursery, tdir)
    refused = await _refused(gw, "gpt-rt")
    assert refused.status_code == 502
    assert "Could not reach provider 'rt'" in refused.json()["error"]["message"]
    async with httpx.AsyncClient(base_url=gw.url) as client:
        text = (await client.get("/metrics")).text
    assert 'gateway_upstream_errors_total{provider="rt",kind="connect"} 2' in text


@pytest.mark.parametrize(
    "model",
    ["up", "a/../../b", "x?key=INJECTED&alt=json#", "%2e%2e/x", "a b+c", "ünï/..;@=:", "..", "."],
)
def test_realtime_url_holds_the_model_as_one_query_value(model):
    t = Transformer(
        name="p",
        format=ProviderFormat("openai"),
        realtime_url="wss://h.example/v1/realtime?deployment=d",
        query=(("api-version", "2024-10-01"),),
    )
    parts = urlsplit(realtime_url(t, model))
    assert (parts.netloc, parts.path, parts.fragment) == ("h.example", "/v1/realtime", "")
    assert parse_qs(parts.query) == {
        "deployment": ["d"],
        "api-version": ["2024-10-01"],
        "model": [model],
    }


def test_an_empty_upstream_model_is_refused():
    t = Transformer(name="p", format=ProviderFormat("openai"), realtime_url="ws://h/r")
    with pytest.raises(BadRequest):
        realtime_url(t, "")


async def test_the_official_openai_sdk_realtime_client(nursery, tdir, upstream):
    """openai's own Realtime client (websockets, in a thread) through the gateway."""
    upstream.mode = "json"
    _write(tdir, upstream)
    gw = await _gateway(nursery, tdir)

    def session() -> bytes:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="client-key", max_retries=0)
        with client.realtime.connect(model="gpt-rt") as connection:
            connection.send({"type": "input_audio_buffer.clear"})
            return connection.recv_bytes()

    with trio.fail_after(LIMIT_S):
        answer = await trio.to_thread.run_sync(session, abandon_on_cancel=True)
        await upstream.closed.wait()
    assert json.loads(answer) == {"type": "test.echo", "got": "input_audio_buffer.clear"}
    (seen,) = upstream.handshakes
    assert seen.target == "/v1/realtime?model=up-realtime"
    assert seen.headers["authorization"] == f"Bearer {KEY}"  # never the client's key
    assert upstream.received == [{"type": "input_audio_buffer.clear"}]
    assert upstream.closes[0][0] == 1000


async def test_client_keys_and_limits_apply_to_sessions(nursery, tdir, upstream):
    """[auth]: no key or a wrong one is a 401 and a model outside the key's patterns a 403,
    before any provider is contacted; a key's concurrency holds a slot for the whole session."""
    _write(tdir, upstream)
    client_key = "gw-rt-Jd7Kp2Wq9Lx4Vn6Bz"
    auth = AuthConfig(keys=(AuthKey("team", client_key, concurrency=1, models=("gpt-*",)),))
    gw = await _gateway(nursery, tdir, auth=auth)
    assert (await _refused(gw, "gpt-rt")).status_code == 401
    async with httpx.AsyncClient(base_url=gw.url) as client:
        wrong = await client.get(
            "/v1/realtime",
            params={"model": "gpt-rt"},
            headers={**UPGRADE, "authorization": "Bearer gw-rt-wrong"},
        )
        not_allowed = await client.get(
            "/v1/realtime",
            params={"model": "rt/other"},
            headers={**UPGRADE, "authorization": f"Bearer {client_key}"},
        )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["type"] == "authentication_error"
    assert not_allowed.status_code == 403
    assert not upstream.handshakes
    headers = [(b"authorization", f"Bearer {client_key}".encode())]
    with trio.fail_after(LIMIT_S):
        async with open_websocket_url(_ws_url(gw, "gpt-rt"), extra_headers=headers) as ws:
            await ws.send_message("hi")
            await ws.get_message()
            async with httpx.AsyncClient(base_url=gw.url) as client:
                second = await client.get(
                    "/v1/realtime",
                    params={"model": "gpt-rt"},
                    headers={**UPGRADE, "authorization": f"Bearer {client_key}"},
                )
            assert second.status_code == 429
            assert "concurrency" in second.json()["error"]["message"]
        await eventually(lambda: bool(upstream.closes))
        # the slot is given back when the session ends
        async with open_websocket_url(_ws_url(gw, "gpt-rt"), extra_headers=headers) as ws:
            await ws.send_message("again")
            await ws.get_message()
    assert len(upstream.handshakes) == 2
    assert client_key not in json.dumps([h.headers for h in upstream.handshakes])
