"""Issue 8 item 7: requests are admitted by the memory their bodies will cost.

A 28.6 MiB body of ``{}`` objects peaked at 839 MiB; four at once at 2.5 GiB.
Each request now reserves an estimate of its decoded size; past
``server.max_inflight_bytes`` (with anything else in flight) it gets 503 with
``Retry-After`` in the caller's format. Bodiless requests (health probes) are
never refused, and every path (cancellation included) releases its share.
Big bodies are decoded in a worker thread, so the event loop keeps serving.
"""

from __future__ import annotations

import json
import time

import httpx
import trio

from gateway.config import Config, ServerConfig
from gateway.dialects import DEFAULT, DIALECTS, dialect_for_path
from gateway.server.exchange import Exchange
from gateway.server.listen import Server, open_listeners
from gateway.server.routes import Route, Router
from tests.proxy.fakes import eventually, start_gateway, write_transformer
from tests.server.helpers import H11Client

EMPTIES = b"[" + b"{}," * 100_000 + b"{}]"  # 300 KB; about 27 MB once decoded


class Hold:
    def __init__(self) -> None:
        self.started = trio.Event()
        self.release = trio.Event()
        self.cancelled = trio.Event()

    async def handler(self, ex: Exchange) -> None:
        self.started.set()
        try:
            await self.release.wait()
        except trio.Cancelled:
            self.cancelled.set()
            raise
        await ex.respond_json(200, {"bytes": len(ex.request.body)})


async def _serve(nursery: trio.Nursery, hold: Hold, **settings: object) -> tuple[Server, int]:
    async def hello(ex: Exchange) -> None:
        await ex.respond_json(200, {"hello": True})

    routes = [
        Route("POST", "/hold", hold.handler, DIALECTS["gemini"], watch_disconnect=True),
        Route("GET", "/hello", hello),
    ]
    server = Server(
        Config(server=ServerConfig(**settings)),  # type: ignore[arg-type]
        Router(routes),
        dialect=DEFAULT,
        dialect_for_path=dialect_for_path,
    )
    listeners = await open_listeners("127.0.0.1", 0)
    addresses = await nursery.start(server.serve, listeners)
    return server, addresses[0][1]


async def _client(port: int) -> H11Client:
    return H11Client(await trio.open_tcp_stream("127.0.0.1", port))


def _post(body: bytes, path: str = "/hold") -> bytes:
    return b"POST %s HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n%s" % (
        path.encode(),
        len(body),
        body,
    )


async def test_past_the_inflight_limit_requests_get_503_with_retry_after(nursery):
    hold = Hold()
    server, port = await _serve(nursery, hold, max_inflight_bytes=1_000_000)
    first = await _client(port)
    await first.stream.send_all(_post(EMPTIES))  # alone in flight: admitted, though large
    with trio.fail_after(5):
        await hold.started.wait()
    assert server.admission.total > 1_000_000

    second = await _client(port)
    reply = await second.request("POST", "/hold", b'{"a": 1}')
    assert reply.status == 503
    assert reply.headers[b"retry-after"] == b"1"
    error = reply.json()["error"]  # the route's format: google.rpc.Status
    assert error["code"] == 503
    assert error["status"] == "UNAVAILABLE"
    assert "server.max_inflight_bytes" in error["message"]
    # refused before its body was read: the connection closes
    assert reply.headers[b"connection"] == b"close"
    await second.stream.aclose()

    # Bodiless requests (health probes) are always admitted.
    third = await _client(port)
    assert (await third.request("GET", "/hello")).status == 200

    # The held request leaves (client gone: its handler is cancelled); its share is released.
    await first.stream.aclose()
    with trio.fail_after(5):
        await hold.cancelled.wait()
    await eventually(lambda: server.admission.total == 0, timeout_s=5)
    hold.release.set()
    reply = await third.request("POST", "/hold", b'{"a": 1}')
    assert reply.status == 200
    await eventually(lambda: server.admission.total == 0, timeout_s=5)
    await third.stream.aclose()


async def test_every_path_releases_its_reservation(nursery):
    hold = Hold()
    hold.release.set()
    server, port = await _serve(nursery, hold, max_inflight_bytes=1_000_000)
    client = await _client(port)
    for _ in range(3):
        assert (await client.request("POST", "/hold", EMPTIES)).status == 200
        assert (await client.request("POST", "/nowhere", EMPTIES)).status == 404
        await eventually(lambda: server.admission.total == 0, timeout_s=5)
    await client.stream.aclose()
    # a client that leaves mid-body
    quitter = await _client(port)
    await quitter.stream.send_all(
        b"POST /hold HTTP/1.1\r\nhost: t\r\ncontent-length: 500000\r\n\r\n" + b"[" * 1000
    )
    await eventually(lambda: server.admission.total > 0, timeout_s=5)
    await quitter.stream.aclose()
    await eventually(lambda: server.admission.total == 0, timeout_s=5)


async def test_the_gateway_answers_503_in_the_callers_format(nursery, tmp_path):
    write_transformer(tmp_path, "mock", {"format": "mock", "models": {"*": "*"}})
    gw = await start_gateway(nursery, tmp_path)
    assert gw.app.server.admission.limit == 268435456  # design.md's default
    gw.app.server.admission.total = gw.app.server.admission.limit  # as if bodies were in flight
    body = {"model": "mock/m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        reply = await client.post("/v1/messages", json=body)
        # Anthropic's own status for overload is 529 (errors.error_status); others get 503.
        assert reply.status_code == 529
        assert reply.headers["retry-after"] == "1"
        assert reply.json()["type"] == "error"
        assert reply.json()["error"]["type"] == "overloaded_error"
        reply = await client.post("/v1/chat/completions", json=body)
        assert reply.status_code == 503
        assert reply.headers["retry-after"] == "1"
        assert "server.max_inflight_bytes" in reply.json()["error"]["message"]
        assert (await client.get("/health/live")).status_code == 200
        gw.app.server.admission.total = 0
        assert (await client.post("/v1/messages", json=body)).status_code == 200


async def test_a_big_body_is_decoded_off_the_event_loop(nursery, tmp_path):
    write_transformer(tmp_path, "mock", {"format": "mock", "models": {"*": "*"}})
    gw = await start_gateway(nursery, tmp_path)
    pad = b"[" + b'{"a": [1, 2]},' * 1_000_000 + b"{}]"  # 15 MB of small objects
    body = b'{"model": "nowhere/x", "messages": [], "pad": %s}' % pad
    started = time.perf_counter()
    json.loads(body)
    decode_s = time.perf_counter() - started
    gaps: list[float] = []
    done = trio.Event()

    async def big() -> None:
        async with httpx.AsyncClient(base_url=gw.url, timeout=60) as client:
            reply = await client.post("/v1/chat/completions", content=body)
        assert reply.status_code == 404  # decoded whole, then routed
        done.set()

    async def probe() -> None:
        # Client and server share this event loop: a stalled loop shows as a long gap
        # between two probe answers (whether or not a probe was in flight).
        async with httpx.AsyncClient(base_url=gw.url, timeout=60) as client:
            last = time.perf_counter()
            while not done.is_set():
                assert (await client.get("/health/live")).status_code == 200
                now = time.perf_counter()
                gaps.append(now - last)
                last = now
                await trio.sleep(0.01)

    async with trio.open_nursery() as inner:
        inner.start_soon(probe)
        inner.start_soon(big)
    assert len(gaps) > 3
    # On the loop, the decode alone would make one gap as long as decode_s.
    assert max(gaps) < max(decode_s / 2, 0.2), (max(gaps), decode_s)
