"""The server on real loopback sockets: shutdown, draining, the connection cap."""

from __future__ import annotations

import trio

from gateway.server.listen import open_listeners
from tests.server.helpers import H11Client, Probe, make_server, read_until_closed


async def _start(nursery: trio.Nursery, server) -> int:
    listeners = await open_listeners("127.0.0.1", 0)
    addresses = await nursery.start(server.serve, listeners)
    return addresses[0][1]


async def _connect(port: int) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", port)


async def test_graceful_shutdown_lets_the_request_in_flight_finish(nursery):
    probe = Probe()
    server = make_server(probe, shutdown_grace_s=30)
    done = trio.Event()

    async def serve_then_mark(task_status=trio.TASK_STATUS_IGNORED):
        listeners = await open_listeners("127.0.0.1", 0)
        await server.serve(listeners, task_status=task_status)
        done.set()

    port = (await nursery.start(serve_then_mark))[0][1]
    busy = await _connect(port)
    idle = H11Client(await _connect(port))
    assert (await idle.request("GET", "/hello")).status == 200
    await busy.send_all(b"GET /wait HTTP/1.1\r\nhost: t\r\n\r\n")
    with trio.fail_after(5):
        await probe.started.wait()

    server.begin_shutdown()
    with trio.fail_after(5):
        # The idle keep-alive connection is closed at once ...
        assert await read_until_closed(idle.stream) == b""
        # ... and the listener no longer takes new connections.
        while True:
            try:
                extra = await _connect(port)
            except OSError:
                break
            await extra.aclose()
            await trio.sleep(0.01)
    assert not done.is_set()  # the busy request is still running

    probe.release.set()
    with trio.fail_after(5):
        reply = await read_until_closed(busy)
        await done.wait()
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in reply
    assert probe.finished.is_set()


async def test_requests_past_the_grace_period_are_cancelled(nursery):
    probe = Probe()
    server = make_server(probe, shutdown_grace_s=0.3)
    port = await _start(nursery, server)
    busy = await _connect(port)
    await busy.send_all(b"GET /wait HTTP/1.1\r\nhost: t\r\n\r\n")
    with trio.fail_after(5):
        await probe.started.wait()
    start = trio.current_time()
    server.begin_shutdown()
    with trio.fail_after(5):
        await probe.cancelled.wait()
        await read_until_closed(busy)
    assert 0.2 <= trio.current_time() - start < 3


async def test_shutdown_delay_keeps_serving_before_closing_the_listener(nursery):
    probe = Probe()
    server = make_server(probe, shutdown_delay_s=0.5)
    port = await _start(nursery, server)
    server.begin_shutdown()
    assert server.shutting_down
    client = H11Client(await _connect(port))
    assert (await client.request("GET", "/hello")).status == 200  # still served
    with trio.fail_after(5):
        assert await read_until_closed(client.stream) == b""  # closed once draining


async def test_connections_past_the_cap_wait_until_one_closes(nursery):
    # Both slots are busy mid-request (idle keep-alives would be reclaimed: issue 8 item 8).
    probe = Probe()
    server = make_server(probe, max_connections=2)
    port = await _start(nursery, server)
    first = H11Client(await _connect(port))
    second = H11Client(await _connect(port))
    for client in (first, second):
        await client.stream.send_all(b"GET /wait HTTP/1.1\r\nhost: t\r\n\r\n")
    with trio.fail_after(5):
        await probe.started.wait()
    third = H11Client(await _connect(port))  # the kernel completes the handshake ...
    await third.stream.send_all(b"GET /hello HTTP/1.1\r\nhost: t\r\n\r\n")
    with trio.move_on_after(0.5) as waited:
        await third.stream.receive_some(100)  # ... but nobody serves it yet
    assert waited.cancelled_caught
    assert server.connections == 2
    await first.stream.aclose()
    with trio.fail_after(5):
        data = await third.stream.receive_some(1000)
    assert data.startswith(b"HTTP/1.1 200 ")
