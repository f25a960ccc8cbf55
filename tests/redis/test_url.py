"""redis:// and rediss:// URLs: what they say, and refusals that never show the password."""

from __future__ import annotations

import pytest

from gateway.redis.url import RedisURL, parse_redis_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://localhost", RedisURL("localhost")),
        ("redis://127.0.0.1:6380/2", RedisURL("127.0.0.1", 6380, 2)),
        ("redis://h/", RedisURL("h")),
        ("REDIS://h", RedisURL("h")),
        ("rediss://redis.example:6390", RedisURL("redis.example", 6390, tls=True)),
        ("redis://:pw@h", RedisURL("h", password="pw")),
        ("redis://alice:pw@h/1", RedisURL("h", db=1, username="alice", password="pw")),
        ("redis://alice@h", RedisURL("h", username="alice")),
        ("redis://:p%40ss%2Fw%3Ard@h", RedisURL("h", password="p@ss/w:rd")),
        ("redis://:p@ss@h", RedisURL("h", password="p@ss")),  # the last @ ends the password
        ("redis://[::1]:7000/3", RedisURL("::1", 7000, 3)),
        ("redis://:pw@[::1]", RedisURL("::1", password="pw")),
    ],
)
def test_parses(url, expected):
    assert parse_redis_url(url) == expected


def test_where_and_repr_never_show_the_password():
    url = parse_redis_url("rediss://alice:s3cr3t-pw@[::1]:7000/3")
    assert url.where == "[::1]:7000"
    assert "s3cr3t" not in repr(url)
    assert url.password == "s3cr3t-pw"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("unix:///tmp/redis.sock", "redis://"),
        ("http://:s3cr3t@h", "redis://"),
        ("s3cr3t", "redis://"),
        ("redis://:s3cr3t@h?db=1", "no query string"),
        ("redis://:s3cr3t#x@h", "no query string"),  # an unencoded # in a password
        ("redis://:s3cr3t@", "host name"),
        ("redis://:s3cr3t@h:0", "1-65535"),
        ("redis://:s3cr3t@h:65536", "1-65535"),
        ("redis://:s3cr3t@h:63a", "digits"),
        ("redis://:s3cr3t@h:", "digits"),
        ("redis://:s3cr3t@h/db1", "database number"),
        ("redis://:s3cr3t@h/-1", "database number"),
        ("redis://:s3cr3t@[::1", "IPv6"),
        ("redis://:s3cr3t@[nothex]", "IPv6"),
        ("redis://:s3cr3t%ff@h", "percent-encoded"),
        ("redis://:s3cr3t@bad host", "host name"),
    ],
)
def test_refusals_name_the_part_not_the_password(url, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_redis_url(url)
    assert "s3cr3t" not in str(info.value)
