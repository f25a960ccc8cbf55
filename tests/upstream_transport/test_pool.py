"""Connection reuse, expiry, stale connections and retries, closing and cancellation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import h11
import httpx
import pytest
import trio

from gateway.upstream_transport import STALE_RETRY_WINDOW_S, PooledTransport
from tests.upstream_transport.servers import Exchange, echo, ok, start_upstream


async def test_sequential_requests_reuse_one_connection(nursery, client):
    upstream = await start_upstream(nursery, echo)
    for i in range(20):
        response = await client.post(upstream.url, content=b"request %d" % i)
        assert response.content == b"request %d" % i
    assert upstream.connections == 1
    assert len(upstream.requests) == 20


def _barrier_app(width: int):
    """An app that answers only once `width` requests are in flight at the same time."""

    async def app(ex: Exchange) -> None:
        batch_end = (len(ex.upstream.requests) - 1) // width * width + width
        await ex.upstream.wait_for(lambda: len(ex.upstream.requests) >= batch_end)
        await ex.respond(200, b"%d" % ex.connection_index)

    return app


async def test_concurrent_requests_open_connections_then_reuse_them(nursery, client):
    upstream = await start_upstream(nursery, _barrier_app(10))

    async def get() -> None:
        assert (await client.get(upstream.url)).status_code == 200

    for _ in range(3):
        async with trio.open_nursery() as batch:
            for _ in range(10):
                batch.start_soon(get)
    assert len(upstream.requests) == 30
    assert upstream.connections == 10


async def test_idle_connections_beyond_the_cap_are_closed(nursery):
    upstream = await start_upstream(nursery, _barrier_app(5))
    async with PooledTransport(max_idle_per_origin=2) as transport:

        async def get() -> None:
            response = await transport.handle_async_request(httpx.Request("GET", upstream.url))
            await response.aread()

        async with trio.open_nursery() as batch:
            for _ in range(5):
                batch.start_soon(get)
        with trio.fail_after(1):
            await upstream.wait_for(lambda: upstream.clients_gone == 3)
        upstream.app = ok
        for _ in range(4):
            await get()
        assert upstream.connections == 5
    with trio.fail_after(1):
        await upstream.wait_for(lambda: upstream.clients_gone == 5)


async def test_expired_idle_connections_are_closed_not_reused(nursery, mock_clock):
    upstream = await start_upstream(nursery, ok)
    async with PooledTransport(idle_expiry_s=5) as transport:

        async def get() -> None:
            response = await transport.handle_async_request(httpx.Request("GET", upstream.url))
            await response.aread()
            await response.aclose()

        await get()
        mock_clock.jump(4)
        await get()
        assert upstream.connections == 1
        mock_clock.jump(5.5)
        await get()
        assert upstream.connections == 2
        await upstream.wait_for(lambda: upstream.clients_gone == 1)


async def test_oldest_idle_connections_expire_even_while_newer_ones_serve(nursery, mock_clock):
    upstream = await start_upstream(nursery, _barrier_app(3))
    async with PooledTransport(idle_expiry_s=5) as transport:

        async def get() -> None:
            response = await transport.handle_async_request(httpx.Request("GET", upstream.url))
            await response.aread()
            await response.aclose()

        async with trio.open_nursery() as batch:
            for _ in range(3):
                batch.start_soon(get)
        upstream.app = ok
        mock_clock.jump(3)
        await get()  # LIFO: the newest connection serves, the older two only age
        mock_clock.jump(3)
        await get()
        await upstream.wait_for(lambda: upstream.clients_gone == 2)
        assert upstream.connections == 3


async def _respond_then_close(ex: Exchange) -> None:
    """A keep-alive response (no Connection: close), then the server hangs up."""
    await ex.respond(200, b"bye")
    ex.close_after = True


async def test_connection_closed_by_the_server_while_idle_is_discarded(nursery, client):
    upstream = await start_upstream(nursery, _respond_then_close)

    async def body() -> AsyncIterator[bytes]:
        yield b"streamed bodies are never retried, so only the discard can save them"

    for i in range(5):
        assert (await client.post(upstream.url, content=body())).content == b"bye"
        await upstream.wait_for(lambda n=i + 1: upstream.closed_connections == n)
        await trio.sleep(0.01)  # let the FIN reach our socket
    assert upstream.connections == 5
    assert len(upstream.requests) == 5


async def test_idle_connection_with_unexpected_bytes_is_discarded(nursery, client):
    async def app(ex: Exchange) -> None:
        await ex.respond(200, b"ok")
        await ex.stream.send_all(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")

    upstream = await start_upstream(nursery, app)
    assert (await client.get(upstream.url)).content == b"ok"
    await upstream.wait_for(lambda: len(upstream.requests) == 1)
    await trio.sleep(0.01)  # let the unsolicited 408 reach our socket
    assert (await client.get(upstream.url)).content == b"ok"
    assert upstream.connections == 2
    with trio.fail_after(1):
        await upstream.wait_for(lambda: upstream.clients_gone == 1)


async def _close_on_second_request(ex: Exchange) -> None:
    """Serve one request per connection; drop the next one unanswered (the keep-alive race)."""
    if ex.conn_requests > 1:
        ex.close_after = True
        return
    await ex.respond(200, b"served by %d" % ex.connection_index)


async def test_reused_connection_that_fails_before_a_response_is_retried(nursery, client):
    upstream = await start_upstream(nursery, _close_on_second_request)
    assert (await client.post(upstream.url, content=b"a")).content == b"served by 1"
    response = await client.post(upstream.url, content=b"b")
    assert response.content == b"served by 2"
    assert [r.body for r in upstream.requests] == [b"a", b"b", b"b"]


async def test_reused_connection_failing_after_a_long_wait_is_not_retried(nursery, mock_clock):
    async def app(ex: Exchange) -> None:
        if ex.conn_requests == 1:
            await ex.respond(200, b"first")
            return
        mock_clock.jump(STALE_RETRY_WINDOW_S + 1)  # "working on it", then the server dies
        ex.close_after = True

    upstream = await start_upstream(nursery, app)
    async with httpx.AsyncClient(transport=PooledTransport()) as client:
        assert (await client.post(upstream.url, content=b"a")).content == b"first"
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(upstream.url, content=b"b")
    assert upstream.connections == 1
    assert len(upstream.requests) == 2


async def test_fresh_connection_is_never_retried(nursery, client):
    async def hang_up(ex: Exchange) -> None:
        ex.close_after = True

    upstream = await start_upstream(nursery, hang_up)
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await client.get(upstream.url)
    assert upstream.connections == 1


async def test_no_retry_once_response_bytes_arrived(nursery, client):
    async def app(ex: Exchange) -> None:
        if ex.conn_requests == 1:
            await ex.respond(200, b"first")
        else:
            await ex.send_raw(b"HTTP/1.1 200 O")

    upstream = await start_upstream(nursery, app)
    assert (await client.get(upstream.url)).content == b"first"
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(upstream.url)
    assert upstream.connections == 1
    assert len(upstream.requests) == 2


async def test_no_retry_of_a_streamed_request_body(nursery, client):
    upstream = await start_upstream(nursery, _close_on_second_request)
    await client.get(upstream.url)

    async def body() -> AsyncIterator[bytes]:
        yield b"once only"

    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        await client.post(upstream.url, content=body())
    assert upstream.connections == 1


async def _stream_forever(ex: Exchange) -> None:
    """Chunks until the client goes away."""
    await ex.send(h11.Response(status_code=200, headers=[("transfer-encoding", "chunked")]))
    async with trio.open_nursery() as nursery:

        async def watch() -> None:
            await ex.wait_client_gone()
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch)
        while True:
            await ex.send(h11.Data(data=b"tick " * 100))
            await trio.sleep(0.01)


async def test_streamed_body_arrives_chunk_by_chunk(nursery, client):
    got_first = trio.Event()

    async def app(ex: Exchange) -> None:
        await ex.send(h11.Response(status_code=200, headers=[("transfer-encoding", "chunked")]))
        await ex.send(h11.Data(data=b"chunk 1"))
        await got_first.wait()
        await ex.send(h11.Data(data=b"chunk 2"), h11.EndOfMessage())

    upstream = await start_upstream(nursery, app)
    with trio.fail_after(5):
        async with client.stream("GET", upstream.url) as response:
            chunks = response.aiter_raw()
            assert await chunks.__anext__() == b"chunk 1"
            got_first.set()
            assert [c async for c in chunks] == [b"chunk 2"]


@pytest.mark.parametrize("read_first", [True, False])
async def test_closing_a_response_early_closes_its_connection(nursery, client, read_first):
    upstream = await start_upstream(nursery, _stream_forever)
    async with client.stream("GET", upstream.url) as response:
        if read_first:
            await response.aiter_raw().__anext__()
    with trio.fail_after(1):
        await upstream.wait_for(lambda: upstream.clients_gone == 1)
    upstream.app = ok
    assert (await client.get(upstream.url)).content == b"hello"
    assert upstream.connections == 2


async def test_cancelling_mid_stream_closes_the_upstream_socket_at_once(nursery, client):
    upstream = await start_upstream(nursery, _stream_forever)
    with trio.CancelScope() as scope:
        async with client.stream("GET", upstream.url) as response:
            async for _ in response.aiter_raw():
                scope.cancel()
    assert scope.cancelled_caught
    with trio.fail_after(1):
        await upstream.wait_for(lambda: upstream.clients_gone == 1)


async def test_cancel_while_waiting_for_the_head_closes_the_socket(nursery, client):
    async def slow(ex: Exchange) -> None:
        await ex.wait_client_gone()

    upstream = await start_upstream(nursery, slow)
    with trio.move_on_after(0.2):
        await client.get(upstream.url)
    with trio.fail_after(1):
        await upstream.wait_for(lambda: upstream.clients_gone == 1)


async def test_aclose_closes_idle_connections_and_refuses_new_requests(nursery):
    upstream = await start_upstream(nursery, _barrier_app(3))
    transport = PooledTransport()

    async def get() -> None:
        response = await transport.handle_async_request(httpx.Request("GET", upstream.url))
        await response.aread()
        await response.aclose()

    async with trio.open_nursery() as batch:
        for _ in range(3):
            batch.start_soon(get)
    await transport.aclose()
    with trio.fail_after(1):
        await upstream.wait_for(lambda: upstream.clients_gone == 3)
    with pytest.raises(RuntimeError, match="closed"):
        await get()


async def test_response_finished_after_aclose_closes_its_connection(nursery):
    upstream = await start_upstream(nursery, ok)
    transport = PooledTransport()
    response = await transport.handle_async_request(httpx.Request("GET", upstream.url))
    await transport.aclose()
    assert await response.aread() == b"hello"
    await response.aclose()
    with trio.fail_after(1):
        await upstream.wait_for(lambda: upstream.clients_gone == 1)
