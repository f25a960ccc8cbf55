"""PooledTransport under httpx.AsyncClient: streaming, errors, timeouts, proxies."""

from __future__ import annotations

import httpx
import pytest
import trio

from gateway.upstream_transport import PooledTransport, environment_proxy_mounts
from tests.upstream_transport.servers import Exchange, Upstream, start_upstream

PROXY_VARIABLES = (
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy", "REQUEST_METHOD",
)  # fmt: skip


async def _sse(ex: Exchange) -> None:
    if ex.request.target == b"/missing":
        await ex.respond(404, b'{"error": "no such model"}')
        return
    body = b"".join(b"data: %d\n\n" % i for i in range(50))
    await ex.respond(200, body, (("content-type", "text/event-stream"),))


async def test_async_client_stream_aiter_bytes_aread_and_raise_for_status(nursery, client):
    upstream = await start_upstream(nursery, _sse)
    async with client.stream("POST", f"{upstream.url}/v1/chat", json={"stream": True}) as r:
        r.raise_for_status()
        assert r.headers["content-type"] == "text/event-stream"
        received = b"".join([chunk async for chunk in r.aiter_bytes()])
    assert received.count(b"data: ") == 50

    async with client.stream("GET", f"{upstream.url}/v1/models") as r:
        assert (await r.aread()).startswith(b"data: 0\n\n")

    async with client.stream("GET", f"{upstream.url}/missing") as r:
        await r.aread()
        with pytest.raises(httpx.HTTPStatusError) as caught:
            r.raise_for_status()
    assert caught.value.response.status_code == 404
    assert upstream.connections == 1


async def test_client_timeout_reaches_the_transport(nursery):
    async def never(ex: Exchange) -> None:
        await ex.wait_client_gone()

    upstream = await start_upstream(nursery, never)
    async with httpx.AsyncClient(transport=PooledTransport(), timeout=0.2) as client:
        with trio.fail_after(2), pytest.raises(httpx.ReadTimeout) as caught:
            await client.get(upstream.url)
    assert caught.value.request.url == upstream.url


class _CountingTransport(PooledTransport):
    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return await super().handle_async_request(request)


async def _direct(ex: Exchange) -> None:
    await ex.respond(200, b"direct")


async def _proxy(ex: Exchange) -> None:
    await ex.respond(200, b"via proxy " + ex.request.target)


@pytest.fixture
async def proxied(nursery, monkeypatch) -> tuple[Upstream, Upstream]:
    """An upstream, and a plain HTTP proxy named by HTTP_PROXY (and nothing else)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    upstream = await start_upstream(nursery, _direct)
    proxy = await start_upstream(nursery, _proxy)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    return upstream, proxy


async def test_httpx_uses_environment_proxies_without_a_transport(proxied):
    upstream, proxy = proxied
    async with httpx.AsyncClient(trust_env=True) as client:
        response = await client.get(f"{upstream.url}/v1/models")
    assert response.content == b"via proxy %s/v1/models" % upstream.url.encode()
    assert len(proxy.requests) == 1
    assert upstream.requests == []


async def test_httpx_ignores_environment_proxies_once_a_transport_is_given(proxied):
    # httpx: allow_env_proxies = trust_env and transport is None.
    upstream, proxy = proxied
    transport = _CountingTransport()
    async with httpx.AsyncClient(transport=transport, trust_env=True) as client:
        response = await client.get(upstream.url)
    assert response.content == b"direct"
    assert transport.requests == 1
    assert proxy.requests == []


async def test_environment_proxy_mounts_route_through_the_proxy(proxied):
    upstream, proxy = proxied
    transport = _CountingTransport()
    mounts = environment_proxy_mounts()
    async with httpx.AsyncClient(transport=transport, mounts=mounts) as client:
        response = await client.get(f"{upstream.url}/x?y=1")
    assert response.content == b"via proxy %s/x?y=1" % upstream.url.encode()
    assert transport.requests == 0
    assert [r.target for r in proxy.requests] == [f"{upstream.url}/x?y=1".encode()]
    assert upstream.requests == []


async def test_no_proxy_hosts_go_direct_through_the_pooled_transport(proxied, monkeypatch):
    upstream, proxy = proxied
    monkeypatch.setenv("NO_PROXY", "example.org,127.0.0.1")
    transport = _CountingTransport()
    mounts = environment_proxy_mounts()
    async with httpx.AsyncClient(transport=transport, mounts=mounts) as client:
        for _ in range(3):
            assert (await client.get(upstream.url)).content == b"direct"
    assert transport.requests == 3
    assert upstream.connections == 1
    assert proxy.requests == []
