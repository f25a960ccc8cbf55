"""What goes on the wire and comes back: request framing, response framing, bodies."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import h11
import httpx
import pytest

from gateway.upstream_transport import MAX_RESPONSE_HEAD_BYTES, PooledTransport
from tests.upstream_transport.servers import Exchange, echo, ok, start_upstream


async def test_get_sends_target_with_query_and_headers(nursery, client):
    upstream = await start_upstream(nursery, ok)
    response = await client.get(f"{upstream.url}/v1/models?limit=2&q=a%20b", headers={"X-Id": "7"})
    assert response.status_code == 200
    assert response.content == b"hello"
    assert response.headers["content-type"] == "text/plain"
    assert response.http_version == "HTTP/1.1"
    assert response.reason_phrase == ""
    [seen] = upstream.requests
    assert (seen.method, seen.target) == (b"GET", b"/v1/models?limit=2&q=a%20b")
    assert seen.header(b"host") == b"127.0.0.1:%d" % upstream.port
    assert seen.header(b"x-id") == b"7"
    assert seen.header(b"content-length") is None
    assert seen.header(b"transfer-encoding") is None


async def test_post_with_content_length(nursery, client):
    upstream = await start_upstream(nursery, echo)
    response = await client.post(f"{upstream.url}/v1/chat", json={"model": "m"})
    assert response.json() == {"model": "m"}
    [seen] = upstream.requests
    assert seen.header(b"content-length") == b"%d" % len(seen.body)
    assert seen.header(b"transfer-encoding") is None


async def test_post_with_chunked_body_from_an_async_iterator(nursery, client):
    upstream = await start_upstream(nursery, echo)

    async def body() -> AsyncIterator[bytes]:
        for part in (b"one ", b"", b"two ", b"three"):
            yield part

    response = await client.post(f"{upstream.url}/upload", content=body())
    assert response.content == b"one two three"
    [seen] = upstream.requests
    assert seen.header(b"transfer-encoding") == b"chunked"
    assert seen.header(b"content-length") is None


async def test_stream_without_framing_headers_goes_chunked(nursery, transport):
    upstream = await start_upstream(nursery, echo)

    class Body(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"raw stream"

    request = httpx.Request("PUT", f"{upstream.url}/x", stream=Body())
    assert "transfer-encoding" not in request.headers
    response = await transport.handle_async_request(request)
    assert await response.aread() == b"raw stream"
    assert upstream.requests[0].header(b"transfer-encoding") == b"chunked"


async def _chunked(ex: Exchange) -> None:
    await ex.send(
        h11.Response(status_code=201, headers=[("transfer-encoding", "chunked")], reason=b"Made"),
        h11.Data(data=b"part one, "),
        h11.Data(data=b"part two"),
        h11.EndOfMessage(),
    )


async def _close_delimited(ex: Exchange) -> None:
    await ex.send_raw(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")


async def test_chunked_response(nursery, client):
    upstream = await start_upstream(nursery, _chunked)
    for _ in range(2):
        response = await client.get(upstream.url)
        assert (response.status_code, response.reason_phrase) == (201, "Made")
        assert response.content == b"part one, part two"
    assert upstream.connections == 1


async def test_close_delimited_response_is_read_to_eof_and_not_reused(nursery, client):
    upstream = await start_upstream(nursery, _close_delimited)
    for _ in range(2):
        response = await client.get(upstream.url)
        assert response.content == b"until the end"
        assert response.http_version == "HTTP/1.0"
    assert upstream.connections == 2


@pytest.mark.parametrize(("method", "status"), [("GET", 204), ("GET", 304), ("HEAD", 200)])
async def test_responses_without_a_body(nursery, client, method, status):
    async def app(ex: Exchange) -> None:
        # A HEAD/304 reply announces the length of the body it does not send.
        length = "0" if status == 204 else "1234"
        await ex.send(
            h11.Response(status_code=status, headers=[("content-length", length)]),
            h11.EndOfMessage(),
        )

    upstream = await start_upstream(nursery, app)
    for _ in range(3):
        response = await client.request(method, upstream.url)
        assert response.status_code == status
        assert response.content == b""
    assert upstream.connections == 1


async def test_informational_responses_are_skipped(nursery, client):
    async def app(ex: Exchange) -> None:
        await ex.send(h11.InformationalResponse(status_code=100, headers=[]))
        await ex.respond(200, b"final")

    upstream = await start_upstream(nursery, app)
    response = await client.post(upstream.url, content=b"x")
    assert (response.status_code, response.content) == (200, b"final")


async def test_large_bodies_round_trip_intact(nursery, client):
    upstream = await start_upstream(nursery, echo)
    payload = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32 + 7)
    response = await client.post(upstream.url, content=payload)
    assert response.content == payload

    async def streamed() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 100_000):
            yield payload[start : start + 100_000]

    async with client.stream("POST", upstream.url, content=streamed()) as response:
        chunks = [chunk async for chunk in response.aiter_raw()]
    assert b"".join(chunks) == payload
    assert max(map(len, chunks)) <= 64 * 1024
    assert upstream.connections == 1


async def test_response_head_over_the_cap_is_a_protocol_error(nursery, client):
    async def app(ex: Exchange) -> None:
        await ex.send_raw(
            b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * MAX_RESPONSE_HEAD_BYTES + b"\r\n\r\n"
        )

    upstream = await start_upstream(nursery, app)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(upstream.url)


async def test_smaller_head_cap_is_honoured(nursery):
    async def app(ex: Exchange) -> None:
        await ex.respond(200, b"", (("x-pad", "p" * 2000),))

    upstream = await start_upstream(nursery, app)
    async with PooledTransport(max_response_head_bytes=1000) as transport:
        with pytest.raises(httpx.RemoteProtocolError):
            await transport.handle_async_request(httpx.Request("GET", upstream.url))


async def test_garbage_response_is_a_protocol_error(nursery, client):
    async def app(ex: Exchange) -> None:
        await ex.send_raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    upstream = await start_upstream(nursery, app)
    with pytest.raises(httpx.RemoteProtocolError) as caught:
        await client.get(upstream.url)
    assert isinstance(caught.value.__cause__, h11.RemoteProtocolError)


async def test_body_cut_short_is_a_protocol_error(nursery, client):
    async def app(ex: Exchange) -> None:
        await ex.send_raw(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")

    upstream = await start_upstream(nursery, app)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(upstream.url)


async def test_request_body_longer_than_its_content_length_is_refused(nursery, transport):
    upstream = await start_upstream(nursery, echo)
    request = httpx.Request("POST", upstream.url, content=b"12345")
    request.headers["content-length"] = "3"
    with pytest.raises(httpx.LocalProtocolError):
        await transport.handle_async_request(request)


async def test_unsupported_scheme(transport):
    with pytest.raises(httpx.UnsupportedProtocol):
        await transport.handle_async_request(httpx.Request("GET", "ftp://127.0.0.1/x"))
