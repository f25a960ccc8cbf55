"""[state] settings (redis_url, fail_open, key_prefix, timeout_s) and make_state."""

from __future__ import annotations

import pytest
import trio

from gateway.config import ConfigError, StateConfig, load_config
from gateway.state import Admitted, Ask, KeyLimits, LocalState, RedisState, make_state


def test_state_settings_are_accepted(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[state]\nredis_url = "rediss://:${PW}@redis.internal:6380/2"\nfail_open = false\n'
        'key_prefix = "gw-prod:"\ntimeout_s = 0.25\n'
    )
    cfg = load_config(str(path), env={"PW": "p@ss"})
    assert cfg.state == StateConfig("rediss://:p@ss@redis.internal:6380/2", False, "gw-prod:", 0.25)
    assert "p@ss" not in repr(cfg)
    cfg = load_config(env={"GATEWAY_STATE__REDIS_URL": "redis://127.0.0.1/0"})
    assert cfg.state.redis_url == "redis://127.0.0.1/0"
    assert cfg.state.fail_open is True
    assert cfg.state.key_prefix == "gateway:"
    assert cfg.state.timeout_s == 1.0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://:s3cret@h", "expected a redis://host:port/db or rediss:// URL"),
        ("redis://:s3cret@h:99999", "port must be 1-65535"),
        ("redis://:s3cret@h/zero", "database number"),
    ],
)
def test_a_bad_redis_url_is_a_start_up_error_without_its_password(tmp_path, url, message):
    path = tmp_path / "c.toml"
    path.write_text(f'[state]\nredis_url = "{url}"\n')
    with pytest.raises(ConfigError) as info:
        load_config(str(path), env={})
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: state.redis_url: ")
    assert message in problem
    assert "s3cret" not in problem
    with pytest.raises(ConfigError) as info:
        load_config(env={"GATEWAY_STATE__REDIS_URL": url})
    assert "s3cret" not in str(info.value)


def test_timeout_must_be_positive():
    with pytest.raises(ConfigError, match=r"state\.timeout_s: must be greater than 0"):
        load_config(env={"GATEWAY_STATE__TIMEOUT_S": "0"})


def test_make_state_without_redis_is_local():
    assert isinstance(make_state(StateConfig()), LocalState)


async def test_make_state_with_redis(redis_server):
    state = make_state(StateConfig(redis_url=redis_server.url, key_prefix="made:"))
    assert isinstance(state, RedisState)
    assert state.where == f"127.0.0.1:{redis_server.port}"
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(state.run)
            assert isinstance(await state.admit(Ask("k", KeyLimits(rpm=1))), Admitted)
            nursery.cancel_scope.cancel()
    finally:
        await state.aclose()
    assert redis_server.cli("--scan", "--pattern", "made:*") == "made:bucket:k"


async def test_local_state_runs_and_closes_like_the_shared_one():
    state = make_state(StateConfig())
    async with trio.open_nursery() as nursery:
        await nursery.start(state.run)
    await state.aclose()
    assert state.up
