from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from gateway.upstream_transport import PooledTransport

HANG_S = 20
"""A test still running after this many seconds of the trio clock has hung."""


@pytest.fixture(autouse=True)
async def hang_guard(nursery: trio.Nursery) -> None:
    async def guard() -> None:
        await trio.sleep(HANG_S)
        raise AssertionError(f"test still running after {HANG_S} s")

    nursery.start_soon(guard)


@pytest.fixture
async def transport() -> AsyncIterator[PooledTransport]:
    async with PooledTransport() as t:
        yield t


@pytest.fixture
async def client(transport: PooledTransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=transport) as c:
        yield c
