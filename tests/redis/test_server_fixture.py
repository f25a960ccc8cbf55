"""The redis-server helper the suite shares: restartable on its port; loud when missing."""

from __future__ import annotations

import pytest

from tests.redis_server import RedisServer, redis_server_binary


def test_a_missing_redis_server_fails_saying_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on it
    with pytest.raises(AssertionError, match=r"apt-get install -y redis-server"):
        redis_server_binary()
    with pytest.raises(AssertionError, match="redis-server is not installed"):
        RedisServer(tmp_path).start()


def test_stop_and_start_again_on_the_same_port(redis_server):
    port = redis_server.port
    redis_server.cli("SET", "k", "v")
    redis_server.restart()
    assert redis_server.port == port
    assert redis_server.starts == 2
    assert redis_server.cli("EXISTS", "k") == "0"  # no persistence: a fresh server
