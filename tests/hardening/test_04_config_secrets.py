"""Issue 8 item 4 (settings): a settings error never echoes the value of a secret field."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load_config
from tests.process import run_gateway


@pytest.mark.parametrize(
    "env",
    [
        {"GATEWAY_AUTH__KEYS": '[{"name": "a", "key": 12345}]'},
        {"GATEWAY_AUTH__KEYS": '[{"name": "a", "key": ["sekrit-77"]}]'},
        {"GATEWAY_AUTH__KEYS": '"sekrit-77"'},
        {"GATEWAY_AUTH__KEYS": '[{"name": "a", "key": {"v": "sekrit-77"}}]'},
    ],
)
def test_auth_key_values_are_not_echoed(env):
    with pytest.raises(ConfigError) as info:
        load_config(env=env)
    text = "\n".join(info.value.problems)
    assert "auth.keys" in text
    assert "12345" not in text
    assert "sekrit" not in text


def test_redis_url_value_is_not_echoed(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[state]\nredis_url = 987654321\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path), env={})
    text = "\n".join(info.value.problems)
    assert "state.redis_url" in text
    assert "987654321" not in text


def test_other_values_are_still_shown():
    with pytest.raises(ConfigError) as info:
        load_config(env={"GATEWAY_SERVER__HOST": "x"}, overrides={"server": {"port": "80x"}})
    assert "'80x'" in "\n".join(info.value.problems)


def test_the_real_process_does_not_print_the_key(tmp_path):
    env = {"GATEWAY_AUTH__KEYS": '[{"name":"a","key":12345}]'}
    with run_gateway(tmp_path, env=env, ready=False) as gw:
        assert gw.proc.wait(30) == 2
        log = gw.log()
    assert "auth.keys[0].key" in log
    assert "12345" not in log
