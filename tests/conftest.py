"""Fixtures the whole suite may use: a real redis-server (tests/redis_server.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.redis_server import RedisServer


@pytest.fixture
def redis_factory(tmp_path_factory) -> Iterator[Callable[..., RedisServer]]:
    """Start redis-servers with options (``password=``, ``tls=``, ``extra=``); all are
    killed at the end of the test."""
    servers: list[RedisServer] = []

    def start(**options: Any) -> RedisServer:
        server = RedisServer(tmp_path_factory.mktemp("redis"), **options)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def redis_server(redis_factory) -> RedisServer:
    """A fresh redis-server on 127.0.0.1 (``.url``, ``.stop()``, ``.start()``, ``.restart()``)."""
    return redis_factory()
