"""https: verified with a trustme CA, refused otherwise; keep-alive and ALPN over TLS."""

from __future__ import annotations

import ssl

import httpx
import pytest
import trio
import trustme

from gateway.upstream_transport import PooledTransport
from tests.upstream_transport.servers import Exchange, echo, start_upstream


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


def _client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_https_with_a_trusted_ca(nursery, ca):
    alpn: list[str | None] = []

    async def app(ex: Exchange) -> None:
        assert isinstance(ex.stream, trio.SSLStream)
        alpn.append(ex.stream.selected_alpn_protocol())
        await echo(ex)

    upstream = await start_upstream(
        nursery, app, ssl_context=_server_context(ca, "127.0.0.1", "localhost")
    )
    async with httpx.AsyncClient(transport=PooledTransport(ssl_context=_client_context(ca))) as c:
        for i in range(3):
            response = await c.post(f"https://localhost:{upstream.port}/", content=b"%d" % i)
            assert response.content == b"%d" % i
        payload = bytes(range(256)) * 8192
        assert (await c.post(f"{upstream.url}/big", content=payload)).content == payload
    assert upstream.connections == 2  # one per origin: localhost and 127.0.0.1
    assert alpn == ["http/1.1"] * 4


@pytest.mark.parametrize("client_trusts", ["system", "other-ca"])
async def test_untrusted_certificate_is_connect_error(nursery, ca, client_trusts):
    upstream = await start_upstream(nursery, echo, ssl_context=_server_context(ca, "127.0.0.1"))
    context = None if client_trusts == "system" else _client_context(trustme.CA())
    async with httpx.AsyncClient(transport=PooledTransport(ssl_context=context)) as c:
        with pytest.raises(httpx.ConnectError) as caught:
            await c.get(upstream.url)
    assert isinstance(caught.value.__cause__, trio.BrokenResourceError)
    assert isinstance(caught.value.__cause__.__cause__, ssl.SSLCertVerificationError)


async def test_certificate_for_another_host_is_connect_error(nursery, ca):
    upstream = await start_upstream(nursery, echo, ssl_context=_server_context(ca, "example.org"))
    async with httpx.AsyncClient(transport=PooledTransport(ssl_context=_client_context(ca))) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(upstream.url)


async def test_cancelling_a_tls_stream_closes_the_socket(nursery, ca):
    async def forever(ex: Exchange) -> None:
        await ex.send_raw(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await ex.wait_client_gone()

    upstream = await start_upstream(nursery, forever, ssl_context=_server_context(ca, "127.0.0.1"))
    async with httpx.AsyncClient(transport=PooledTransport(ssl_context=_client_context(ca))) as c:
        with trio.CancelScope() as scope:
            async with c.stream("GET", upstream.url) as response:
                async for chunk in response.aiter_raw():
                    assert chunk == b"hello"
                    scope.cancel()
        with trio.fail_after(1):
            await upstream.wait_for(lambda: upstream.clients_gone == 1)
