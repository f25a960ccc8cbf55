from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from gateway.upstream_transport import PooledTransport

HANG_S = 20
"""A test still running after this many seconds of the trio clock has hung."""

_HERE = Path(__file__).parent


def _with_hang_limit(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    @functools.wraps(test)
    async def guarded(*args: Any, **kwargs: Any) -> None:
        with trio.fail_after(HANG_S):
            await test(*args, **kwargs)

    return guarded


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every async test in this directory runs under a hang limit (fail_after)."""
    for item in items:
        if (
            isinstance(item, pytest.Function)
            and item.path.is_relative_to(_HERE)
            and inspect.iscoroutinefunction(item.obj)
        ):
            item.obj = _with_hang_limit(item.obj)


@pytest.fixture
async def transport() -> AsyncIterator[PooledTransport]:
    async with PooledTransport() as t:
        yield t


@pytest.fixture
async def client(transport: PooledTransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=transport) as c:
        yield c
