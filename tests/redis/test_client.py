"""RedisClient against a real redis-server (and small fakes for what it will not do)."""

from __future__ import annotations

import ssl

import pytest
import trio
import trustme

from gateway.redis import (
    RedisAuthError,
    RedisClient,
    RedisError,
    RedisProtocolError,
    RedisUnavailable,
    Script,
)
from tests.redis.fakes import hangs_up, never_answers, replying, start_fake
from tests.redis_server import TLSFiles

FAST = {"connect_timeout_s": 2.0, "command_timeout_s": 2.0}


@pytest.fixture
async def make_client():
    """RedisClient(...), closed after the test (no socket left to the GC)."""
    made: list[RedisClient] = []

    def make(*args, **kwargs) -> RedisClient:
        made.append(RedisClient(*args, **kwargs))
        return made[-1]

    yield make
    for client in made:
        await client.aclose()


async def test_commands_and_pipelines(redis_server, make_client):
    client = make_client(redis_server.url, **FAST)
    assert await client.execute("SET", "k", "v") == "OK"
    assert await client.execute("GET", "k") == b"v"
    assert await client.execute("GET", "missing") is None
    assert await client.execute("INCRBY", "n", 5) == 5
    replies = await client.pipeline(
        [("INCR", "n"), ("HSET", "h", "a", 1, "b", 2.5), ("HGETALL", "h"), ("LPUSH", "k", "x")]
    )
    assert replies[:3] == [6, 2, [b"a", b"1", b"b", b"2.5"]]
    assert isinstance(replies[3], RedisError)  # in place, not raised
    assert replies[3].code == "WRONGTYPE"
    assert await client.pipeline([]) == []
    with pytest.raises(RedisError, match="WRONGTYPE") as info:
        await client.execute("LPUSH", "k", "x")
    assert info.value.code == "WRONGTYPE"
    assert await client.execute("PING") == "PONG"  # the connection still serves
    assert redis_server.cli("GET", "k") == "v"
    await client.aclose()
    with pytest.raises(RedisUnavailable, match="closed"):
        await client.execute("PING")


async def test_a_bad_argument_fails_before_anything_is_sent(redis_server, make_client):
    client = make_client(redis_server.url, **FAST)
    with pytest.raises(TypeError):
        await client.execute("SET", "k", True)
    assert client.available
    assert redis_server.cli("EXISTS", "k") == "0"


async def test_evalsha_loads_a_script_redis_lacks(redis_server, make_client):
    client = make_client(redis_server.url, **FAST)
    script = Script("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}")
    assert await client.evalsha(script, ["c"], ["x"]) == [b"c", b"x", 1]
    assert await client.execute("SCRIPT", "EXISTS", script.sha) == [1]
    assert await client.evalsha(script, ["c"], ["y"]) == [b"c", b"y", 2]
    await client.execute("SCRIPT", "FLUSH")  # as after a restart
    assert await client.evalsha(script, ["c"], ["z"]) == [b"c", b"z", 3]
    with pytest.raises(RedisError, match="boom"):
        await client.evalsha(Script("return redis.error_reply('ERR boom')"))


async def test_auth_and_a_wrong_password(redis_factory, make_client):
    server = redis_factory(password="hunter2-secret")
    client = make_client(server.url, **FAST)
    assert await client.execute("PING") == "PONG"
    wrong = make_client(f"redis://:wrong-hunter3@127.0.0.1:{server.port}", **FAST)
    with pytest.raises(RedisAuthError) as info:
        await wrong.execute("PING")
    assert "refused the credentials" in str(info.value)
    assert "WRONGPASS" in str(info.value)
    assert "hunter" not in str(info.value)
    assert not wrong.available
    none = make_client(f"redis://127.0.0.1:{server.port}", **FAST)
    with pytest.raises(RedisAuthError, match="NOAUTH"):
        await none.execute("PING")


async def test_a_user_and_a_database(redis_factory, make_client):
    server = redis_factory(extra=("--user", "alice", "on", ">alice-pw", "~*", "&*", "+@all"))
    client = make_client(f"redis://alice:alice-pw@127.0.0.1:{server.port}/3", **FAST)
    assert await client.execute("ACL", "WHOAMI") == b"alice"
    await client.execute("SET", "in-three", "yes")
    assert server.cli("-n", "3", "GET", "in-three") == "yes"
    assert server.cli("-n", "0", "EXISTS", "in-three") == "0"
    bad_db = make_client(f"redis://alice:alice-pw@127.0.0.1:{server.port}/99999", **FAST)
    with pytest.raises(RedisAuthError, match="SELECT 99999"):
        await bad_db.execute("PING")


async def test_tls(redis_factory, tmp_path, make_client):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = TLSFiles(tmp_path / "cert.pem", tmp_path / "key.pem")
    cert.cert_chain_pems[0].write_to_path(str(files.cert))
    cert.private_key_pem.write_to_path(str(files.key))
    server = redis_factory(tls=files, password="tls-pw")
    context = ssl.create_default_context()
    ca.configure_trust(context)
    client = make_client(server.url, ssl_context=context, **FAST)
    assert server.url.startswith("rediss://")
    assert await client.execute("SET", "t", "over tls") == "OK"
    assert await client.execute("GET", "t") == b"over tls"
    untrusting = make_client(server.url, **FAST)  # the system CAs do not know ours
    with pytest.raises(RedisUnavailable, match=r"TLS with Redis at 127\.0\.0\.1"):
        await untrusting.execute("PING")
    plain = make_client(f"redis://:tls-pw@127.0.0.1:{server.port}", **FAST)
    with pytest.raises(RedisUnavailable):
        await plain.execute("PING")


async def test_a_server_that_never_answers_times_out(nursery, make_client):
    fake = await start_fake(nursery, never_answers)
    client = make_client(fake.url, connect_timeout_s=1, command_timeout_s=0.2)
    started = trio.current_time()
    with pytest.raises(RedisUnavailable, match=r"did not answer within 0\.2 s"):
        await client.execute("PING")
    assert trio.current_time() - started < 2
    assert not client.available


@pytest.mark.parametrize("scheme", ["rediss", "redis"])
async def test_a_login_that_never_ends_times_out(nursery, make_client, scheme):
    # TLS handshake (rediss) or AUTH (redis with a password) unanswered: the connect bound.
    fake = await start_fake(nursery, never_answers)
    url = f"{scheme}://:pw@127.0.0.1:{fake.port}"
    client = make_client(url, connect_timeout_s=0.2, command_timeout_s=5)
    started = trio.current_time()
    with pytest.raises(RedisUnavailable, match=r"no connection to Redis at .* within 0\.2 s"):
        await client.execute("PING")
    assert trio.current_time() - started < 2


async def test_callers_beyond_the_pool_wait_then_give_up(nursery, make_client):
    fake = await start_fake(nursery, never_answers)
    client = make_client(fake.url, max_connections=1, connect_timeout_s=0.2, command_timeout_s=5)
    async with trio.open_nursery() as inner:
        inner.start_soon(client.execute, "PING")  # holds the only connection
        await trio.sleep(0.05)
        with pytest.raises(RedisUnavailable, match="no free connection"):
            await client.execute("PING")
        inner.cancel_scope.cancel()
    assert fake.connections == 1


async def test_a_command_cancelled_midway_never_leaves_its_reply_for_the_next(nursery, make_client):
    async def answer(command):
        if command[0] == b"SLOW":
            await trio.sleep(0.3)
            return b"+LATE\r\n"
        return b"+" + command[0] + b"\r\n"

    fake = await start_fake(nursery, replying(answer))
    client = make_client(fake.url, max_connections=1, **FAST)
    with trio.move_on_after(0.05) as scope:
        await client.execute("SLOW")
    assert scope.cancelled_caught
    # The next command, on the pool of one, gets its own answer, not the late one.
    assert await client.execute("FAST") == "FAST"
    assert fake.connections == 2
    assert client.available  # a cancellation is not Redis's failure


async def test_garbage_from_the_server_closes_the_connection(nursery, make_client):
    async def answer(command):
        return b"?garbage\r\n" if command[0] == b"FIRST" else b"+OK\r\n"

    fake = await start_fake(nursery, replying(answer))
    client = make_client(fake.url, backoff_s=(0.01, 0.01), **FAST)
    with pytest.raises(RedisProtocolError, match="not a RESP2 reply"):
        await client.execute("FIRST")
    await trio.sleep(0.02)  # past the backoff
    assert await client.execute("SECOND") == "OK"
    assert fake.connections == 2


async def test_backoff_fails_fast_without_touching_the_network(nursery, make_client):
    fake = await start_fake(nursery, hangs_up)
    client = make_client(fake.url, backoff_s=(5.0, 5.0), **FAST)
    with pytest.raises(RedisUnavailable, match="closed the connection"):
        await client.execute("PING")
    started = trio.current_time()
    for _ in range(20):
        with pytest.raises(RedisUnavailable, match="next attempt in"):
            await client.execute("PING")
    assert trio.current_time() - started < 0.5
    assert fake.connections == 1


async def test_backoff_grows_and_one_probe_ends_it(nursery, make_client):
    fake = await start_fake(nursery, hangs_up)
    client = make_client(fake.url, backoff_s=(0.05, 0.2), **FAST)
    deadline = trio.current_time() + 1.0
    for _ in range(10_000):
        if trio.current_time() > deadline:
            break
        with pytest.raises(RedisUnavailable):
            await client.execute("PING")
        await trio.sleep(0.005)
    # ~1 s of failures with steps of 0.05, 0.1, 0.2, 0.2... (times 0.5-1): a handful of
    # attempts, not one per call.
    assert 3 <= fake.connections <= 25


async def test_restart_and_outage(redis_server, make_client):
    client = make_client(redis_server.url, backoff_s=(0.02, 0.1), **FAST)
    assert await client.execute("SET", "a", 1) == "OK"
    redis_server.restart()
    # The pooled connection died with the old server: it is seen, not used.
    assert await client.execute("PING") == "PONG"
    assert client.available
    redis_server.stop()
    with pytest.raises(RedisUnavailable, match=f"Redis at 127.0.0.1:{redis_server.port}"):
        await client.execute("PING")
    redis_server.start()
    with trio.fail_after(5):
        for _ in range(1000):
            try:
                assert await client.execute("PING") == "PONG"
                break
            except RedisUnavailable:
                await trio.sleep(0.02)
    assert client.available
