"""Issue 8 item 3: [state] is refused until implemented.

([auth], [cors] and logging.audit_log were refused too, until issue 10 implemented them:
tests/proxy/test_cors_gateway.py, tests/proxy/test_audit_log.py for the last two.)

Before, they were parsed and silently ignored while config.example.toml said
they worked (on a default bind of 0.0.0.0). Now a non-default value from any
layer (TOML, environment, flags) stops start-up with exit 2, naming the
setting and saying it is not implemented yet; the defaults (as in
config.example.toml) still start.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config
from tests.process import run_gateway

EXAMPLE = Path(__file__).parent.parent.parent / "config.example.toml"

TOML_CASES = [
    ('[state]\nredis_url = "redis://127.0.0.1:6379/0"\n', "state.redis_url"),
    ("[state]\nfail_open = false\n", "state.fail_open"),
]
ENV_CASES = [
    ("GATEWAY_STATE__REDIS_URL", "redis://127.0.0.1/0", "state.redis_url"),
    ("GATEWAY_STATE__FAIL_OPEN", "false", "state.fail_open"),
]


@pytest.mark.parametrize(("text", "setting"), TOML_CASES)
def test_toml_setting_is_refused(tmp_path, text, setting):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path), env={})
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: {setting}: ")
    assert "not implemented yet" in problem


@pytest.mark.parametrize(("var", "value", "setting"), ENV_CASES)
def test_env_setting_is_refused(var, value, setting):
    with pytest.raises(ConfigError) as info:
        load_config(env={var: value})
    (problem,) = info.value.problems
    assert problem.startswith(f"{var}: {setting}: ")
    assert "not implemented yet" in problem


def test_flag_layer_is_refused():
    with pytest.raises(ConfigError) as info:
        load_config(env={}, overrides={"state": {"fail_open": False}})
    assert info.value.problems[0].startswith("command line: state.fail_open: ")


def test_defaults_and_the_example_file_are_fine():
    load_config(str(EXAMPLE), env={})
    load_config(env={"GATEWAY_AUTH__KEYS": "[]", "GATEWAY_STATE__FAIL_OPEN": "true"})


def test_example_file_says_so():
    text = EXAMPLE.read_text()
    assert "NOT IMPLEMENTED YET" in text
    for key in ("[state]",):
        assert key in text


@pytest.mark.parametrize(
    ("how", "setting"),
    [("toml", "state.redis_url"), ("env", "state.redis_url")],
)
def test_the_real_process_exits_2(tmp_path, how, setting):
    args: list[str] = []
    env: dict[str, str] = {}
    if how == "toml":
        path = tmp_path / "c.toml"
        path.write_text('[state]\nredis_url = "redis://127.0.0.1:6379/0"\n')
        args = ["--config", str(path)]
    else:
        env = {"GATEWAY_STATE__REDIS_URL": "redis://127.0.0.1:6379/0"}
    with run_gateway(tmp_path, *args, env=env, ready=False) as gw:
        assert gw.proc.wait(30) == 2
        log = gw.log()
    assert setting in log
    assert "not implemented yet" in log
    assert "Traceback" not in log
