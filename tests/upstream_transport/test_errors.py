"""Failures surface as httpx's own exceptions, chained to their cause."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from functools import partial

import h11
import httpx
import pytest
import trio

from tests.upstream_transport.servers import Exchange, start_upstream

TIMEOUT = httpx.Timeout(5.0, connect=0.3, read=0.3, write=0.3)


async def _silent_server(nursery: trio.Nursery) -> int:
    """A TCP server that accepts and then never reads or writes a byte."""

    async def handler(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    return listeners[0].socket.getsockname()[1]


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_connection_refused_is_connect_error(client):
    with pytest.raises(httpx.ConnectError) as caught:
        await client.get(f"http://127.0.0.1:{_unused_port()}/")
    assert isinstance(caught.value.__cause__, OSError)


async def test_stalled_tls_handshake_is_connect_timeout(nursery, client):
    port = await _silent_server(nursery)
    with trio.fail_after(2), pytest.raises(httpx.ConnectTimeout) as caught:
        await client.get(f"https://127.0.0.1:{port}/", timeout=TIMEOUT)
    assert isinstance(caught.value.__cause__, trio.TooSlowError)


async def test_no_response_head_is_read_timeout(nursery, client):
    async def never(ex: Exchange) -> None:
        await ex.wait_client_gone()

    upstream = await start_upstream(nursery, never)
    with trio.fail_after(2), pytest.raises(httpx.ReadTimeout) as caught:
        await client.get(upstream.url, timeout=TIMEOUT)
    assert isinstance(caught.value.__cause__, trio.TooSlowError)
    with trio.fail_after(1):
        await upstream.wait_for(lambda: upstream.clients_gone == 1)


async def test_stalled_body_is_read_timeout_and_closes_the_connection(nursery, client):
    async def stall(ex: Exchange) -> None:
        await ex.send(
            h11.Response(status_code=200, headers=[("content-length", "10")]),
            h11.Data(data=b"12345"),
        )
        await ex.wait_client_gone()

    upstream = await start_upstream(nursery, stall)
    with trio.fail_after(2):
        async with client.stream("GET", upstream.url, timeout=TIMEOUT) as response:
            with pytest.raises(httpx.ReadTimeout):
                await response.aread()
        await upstream.wait_for(lambda: upstream.clients_gone == 1)


async def test_body_stream_after_a_failure_is_closed_not_cut_short(nursery, transport):
    async def stall(ex: Exchange) -> None:
        await ex.send(
            h11.Response(status_code=200, headers=[("content-length", "10")]),
            h11.Data(data=b"12345"),
        )
        await ex.wait_client_gone()

    upstream = await start_upstream(nursery, stall)
    request = httpx.Request("GET", upstream.url, extensions={"timeout": TIMEOUT.as_dict()})
    response = await transport.handle_async_request(request)
    chunks = response.stream.__aiter__()
    assert await chunks.__anext__() == b"12345"
    with trio.fail_after(2), pytest.raises(httpx.ReadTimeout):
        await chunks.__anext__()
    with pytest.raises(httpx.StreamClosed):
        await chunks.__anext__()
    await response.aclose()


async def test_read_timeout_is_a_gap_between_reads_not_a_total(nursery, client):
    async def trickle(ex: Exchange) -> None:
        await ex.send(h11.Response(status_code=200, headers=[("transfer-encoding", "chunked")]))
        for _ in range(6):
            await trio.sleep(0.1)
            await ex.send(h11.Data(data=b"."))
        await ex.send(h11.EndOfMessage())

    upstream = await start_upstream(nursery, trickle)
    response = await client.get(upstream.url, timeout=TIMEOUT)
    assert response.content == b"......"


async def test_peer_that_never_reads_is_write_timeout(nursery, client):
    port = await _silent_server(nursery)
    chunk = b"x" * (1 << 20)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(256):
            yield chunk

    with trio.fail_after(5), pytest.raises(httpx.WriteTimeout) as caught:
        await client.post(f"http://127.0.0.1:{port}/", content=body(), timeout=TIMEOUT)
    assert isinstance(caught.value.__cause__, trio.TooSlowError)


async def test_peer_that_hangs_up_while_we_send_is_write_error(nursery, client):
    async def handler(stream: trio.SocketStream) -> None:
        await stream.aclose()

    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(5), pytest.raises(httpx.WriteError) as caught:
        await client.post(f"http://127.0.0.1:{port}/", content=b"x" * (16 << 20))
    assert isinstance(caught.value.__cause__, trio.BrokenResourceError)


async def test_connection_reset_mid_body_is_a_transport_error(nursery, client):
    async def reset(ex: Exchange) -> None:
        await ex.send(
            h11.Response(status_code=200, headers=[("content-length", "100")]), h11.Data(data=b"a")
        )
        sock = ex.stream.socket
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        ex.close_after = True

    upstream = await start_upstream(nursery, reset)
    async with client.stream("GET", upstream.url) as response:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await response.aread()
