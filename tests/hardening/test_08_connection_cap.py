"""Issue 8 item 8: the connection cap cannot be held by idle or trickling clients.

With ``max_connections`` reached by idle keep-alive connections, a new client
(a health probe) waited up to ``keep_alive_s``: now the longest-idle keep-alive
connection is reclaimed for it at once, and never a connection mid-request. A
body dripped just under ``body_timeout_s`` per byte held its slot forever: now
``server.body_total_timeout_s`` bounds the whole body (408 and close).
"""

from __future__ import annotations

import httpx
import pytest
import trio

from gateway.config import ServerConfig, load_config
from gateway.server.listen import open_listeners
from tests.server.helpers import (
    H11Client,
    Probe,
    connect_memory,
    make_server,
    read_until_closed,
)


async def _start(nursery, server) -> int:
    listeners = await open_listeners("127.0.0.1", 0)
    addresses = await nursery.start(server.serve, listeners)
    return addresses[0][1]


async def _connect(port: int) -> H11Client:
    return H11Client(await trio.open_tcp_stream("127.0.0.1", port))


async def test_idle_keep_alives_at_the_cap_are_reclaimed_for_a_new_client(nursery):
    probe = Probe()
    server = make_server(probe, max_connections=3, keep_alive_s=75)
    port = await _start(nursery, server)
    idle = []
    for _ in range(3):
        client = await _connect(port)
        assert (await client.request("GET", "/hello")).status == 200
        idle.append(client)
        await trio.sleep(0.05)  # idle[0] is the longest idle
    assert server.connections == 3
    with trio.fail_after(5):  # not keep_alive_s (75 s)
        async with httpx.AsyncClient() as fresh:
            reply = await fresh.get(f"http://127.0.0.1:{port}/hello")
    assert reply.status_code == 200
    # The longest-idle connection was the one closed; the others still work.
    with trio.fail_after(5):
        assert await read_until_closed(idle[0].stream) == b""
    for client in idle[1:]:
        assert (await client.request("GET", "/hello")).status == 200
    for client in idle:
        await client.stream.aclose()


async def test_a_connection_mid_request_is_never_reclaimed(nursery):
    probe = Probe()
    server = make_server(probe, max_connections=2, keep_alive_s=75)
    port = await _start(nursery, server)
    busy = await _connect(port)
    await busy.stream.send_all(b"GET /wait HTTP/1.1\r\nhost: t\r\n\r\n")
    with trio.fail_after(5):
        await probe.started.wait()
    idle = await _connect(port)
    assert (await idle.request("GET", "/hello")).status == 200
    fresh = await _connect(port)
    with trio.fail_after(5):  # the idle one makes room
        assert (await fresh.request("GET", "/hello")).status == 200
    assert await read_until_closed(idle.stream) == b""
    # Now both slots are taken by requests that are not idle: the next one waits ...
    await fresh.stream.send_all(b"GET /wait HTTP/1.1\r\nhost: t\r\n\r\n")
    late = await _connect(port)
    await late.stream.send_all(b"GET /hello HTTP/1.1\r\nhost: t\r\n\r\n")
    with trio.move_on_after(0.5) as waited:
        await late.stream.receive_some(100)
    assert waited.cancelled_caught
    assert not probe.cancelled.is_set()  # ... and the busy requests were not touched
    probe.release.set()
    assert (await busy.read_reply()).status == 200
    with trio.fail_after(5):
        assert (await late.read_reply()).status == 200
    for client in (busy, fresh, late):
        await client.stream.aclose()


async def test_a_dripped_body_is_bounded_as_a_whole(nursery, autojump_clock):
    probe = Probe()
    server = make_server(probe, body_timeout_s=30, body_total_timeout_s=300)
    stream = connect_memory(nursery, server)
    await stream.send_all(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 1000\r\n\r\n")
    start = trio.current_time()
    with pytest.raises(trio.BrokenResourceError):  # noqa: PT012
        for _ in range(1000):  # a byte every 29 s: never a 30 s pause
            await trio.sleep(29)
            await stream.send_all(b"x")
    assert trio.current_time() - start <= 330
    data = await read_until_closed(stream)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in data
    assert b"took more than 300 s" in data
    assert probe.bodies == []


def test_body_total_timeout_is_a_setting_with_the_design_default(tmp_path):
    assert ServerConfig().body_total_timeout_s == 300
    path = tmp_path / "c.toml"
    path.write_text("[server]\nbody_total_timeout_s = 12.5\n")
    assert load_config(str(path), env={}).server.body_total_timeout_s == 12.5
