"""Settings: layering, types, and error messages that name the key and its source."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import Config, ConfigError, _env_layer, load_config
from gateway.envvars import expand_env
from gateway.strict import make_converter


def _toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return str(path)


def test_defaults_match_the_design():
    cfg = load_config(env={})
    assert cfg == Config()
    assert (cfg.server.host, cfg.server.port, cfg.server.workers) == ("0.0.0.0", 3000, 1)
    assert cfg.server.max_header_bytes == 65536
    assert cfg.server.max_body_bytes == 33554432
    assert (cfg.server.header_timeout_s, cfg.server.body_timeout_s) == (10, 30)
    assert (cfg.server.keep_alive_s, cfg.server.max_connections) == (75, 4096)
    assert (cfg.server.shutdown_grace_s, cfg.server.shutdown_delay_s) == (30, 0)
    assert cfg.transformers.dir == "transformers"
    assert cfg.transformers.poll_interval_s == 1.0
    assert cfg.logging.format == "text"


def test_layers_later_wins(tmp_path):
    path = _toml(tmp_path, "[server]\nport = 4000\nworkers = 3\nkeep_alive_s = 5\n")
    env = {"GATEWAY_SERVER__PORT": "5000", "GATEWAY_SERVER__WORKERS": "4"}
    cfg = load_config(path, env=env, overrides={"server": {"port": 6000}})
    assert cfg.server.port == 6000  # flag beats env beats TOML
    assert cfg.server.workers == 4  # env beats TOML
    assert cfg.server.keep_alive_s == 5.0  # TOML beats default (an int is a fine float)
    assert cfg.server.max_connections == 4096  # default


def test_env_values_are_typed_by_their_field():
    env = {
        "GATEWAY_SERVER__SHUTDOWN_DELAY_S": "5",
        "GATEWAY_LOGGING__FORMAT": "json",
        "UNRELATED": "x",
    }
    cfg = load_config(env=env)
    assert cfg.server.shutdown_delay_s == 5.0
    assert cfg.logging.format == "json"
    # the edge's sections are parsed from the environment like any other:
    layer, problems = _env_layer(
        {
            "GATEWAY_STATE__FAIL_OPEN": "false",
            "GATEWAY_CORS__ALLOW_ORIGINS": '["https://app.example"]',
            "GATEWAY_AUTH__KEYS": '[{"name": "team-a", "key": "k-123", "rpm": 600, '
            '"models": ["gpt-*"]}]',
        }
    )
    assert problems == []
    cfg = make_converter().structure(layer, Config)
    assert cfg.state.fail_open is False
    assert cfg.cors.allow_origins == ("https://app.example",)
    assert cfg.auth.keys[0].name == "team-a"
    assert cfg.auth.keys[0].rpm == 600
    assert cfg.auth.keys[0].models == ("gpt-*",)
    assert "k-123" not in repr(cfg)  # client keys never in a repr (and so never in a log)


def test_toml_strings_expand_variables(tmp_path):
    path = _toml(
        tmp_path,
        '[server]\nhost = "${HOST:-127.0.0.1}"\n[transformers]\ndir = "${TDIR}"\n',
    )
    cfg = load_config(path, env={"TDIR": "from-env"})
    assert cfg.transformers.dir == "from-env"
    assert cfg.server.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A}", {"A": "1"}, "1"),
        ("x${A}y", {}, "xy"),
        ("${A:-dflt}", {}, "dflt"),
        ("${A:-dflt}", {"A": ""}, "dflt"),
        ("${A:-dflt}", {"A": "set"}, "set"),
        ("${A:-}", {}, ""),
        ("plain $A {A}", {"A": "1"}, "plain $A {A}"),
    ],
)
def test_expand_env(text, env, expected):
    assert expand_env(text, env) == expected


def test_malformed_reference_in_toml_names_the_key_not_the_value(tmp_path):
    path = _toml(tmp_path, '[state]\nredis_url = "redis://:s3cret@${HOST"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.problems == [
        f"{path}: state.redis_url: malformed ${{...}} reference (use ${{NAME}} or ${{NAME:-default}})"
    ]
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    ("toml", "env", "flags", "message"),
    [
        (
            "[server]\nprot = 1\n",
            {},
            {},
            r"gateway.toml: server.prot: unknown key \(did you mean 'port'\?\)",
        ),
        (
            '[server]\nport = "80"\n',
            {},
            {},
            r"gateway.toml: server.port: expected an integer, got string '80'",
        ),
        ("[sever]\n", {}, {}, r"gateway.toml: sever: unknown key \(did you mean 'server'\?\)"),
        (
            "",
            {"GATEWAY_SERVER__PROT": "1"},
            {},
            r"GATEWAY_SERVER__PROT: server.prot: unknown key \(did you mean 'port'\?\)",
        ),
        (
            "",
            {"GATEWAY_SERVR__PORT": "1"},
            {},
            r"GATEWAY_SERVR__PORT: servr: unknown key \(did you mean 'server'\?\)",
        ),
        (
            "",
            {"GATEWAY_SERVER__PORT": "eighty"},
            {},
            r"GATEWAY_SERVER__PORT: server.port: expected an integer, got string 'eighty'",
        ),
        (
            "",
            {"GATEWAY_LOGGING__FORMAT": "xml"},
            {},
            r"GATEWAY_LOGGING__FORMAT: logging.format: expected one of 'text', 'json', got string 'xml'",
        ),
        ("", {"GATEWAY_AUTH__KEYS": "[{"}, {}, r"GATEWAY_AUTH__KEYS: auth.keys: expected JSON"),
        (
            "",
            {},
            {"server": {"workers": 0}},
            r"command line: server.workers: must be greater than 0, got 0",
        ),
        (
            "[server]\nbody_timeout_s = -1\n",
            {},
            {},
            r"gateway.toml: server.body_timeout_s: must be greater than 0",
        ),
        ("[server\n", {}, {}, r"gateway.toml: not valid TOML"),
    ],
)
def test_bad_settings_name_the_key_and_the_source(tmp_path, toml, env, flags, message):
    path = _toml(tmp_path, toml)
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env, overrides=flags)
    assert any(re.search(message, p) for p in info.value.problems), info.value.problems


def test_every_problem_is_reported_at_once(tmp_path):
    path = _toml(tmp_path, "[server]\nprot = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"GATEWAY_SERVER__PORT": "x"})
    assert len(info.value.problems) == 2


def test_missing_settings_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the settings file"):
        load_config(str(tmp_path / "nope.toml"), env={})


def test_example_config_lists_every_key_with_its_default():
    from gateway.config import tomllib

    example = Path(__file__).parent.parent / "config.example.toml"
    data = tomllib.loads(example.read_text())
    cfg = load_config(str(example), env={})
    defaults = Config()
    for section in ("server", "transformers", "state", "cors", "logging"):
        documented = set(data[section])
        fields = {f for f in getattr(defaults, section).__attrs_attrs__}
        assert documented == {f.name for f in fields}, section
        assert getattr(cfg, section) == getattr(defaults, section), section


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def test_cli_help_documents_every_flag():
    out = _cli("serve", "--help").stdout
    for flag in (
        "--transformers",
        "--config",
        "--host",
        "--port",
        "--workers",
        "--log-level",
        "--log-format",
        "--tls-cert",
        "--tls-key",
    ):
        assert flag in out
    assert "--worker-id" not in out
    top = _cli("--help").stdout
    assert "serve" in top
    assert "check" in top


def test_cli_version():
    from gateway import __version__

    result = _cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"gateway {__version__}"


def test_cli_bad_setting_is_a_message_not_a_traceback(tmp_path):
    result = _cli("--port", "1", env={"GATEWAY_SERVER__KEEP_ALIVE_S": "soon"})
    assert result.returncode == 2
    assert (
        "GATEWAY_SERVER__KEEP_ALIVE_S: server.keep_alive_s: expected a number, got string 'soon'"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    bad = _cli("--config", str(tmp_path / "missing.toml"))
    assert bad.returncode == 2
    assert "missing.toml: cannot read the settings file" in bad.stderr


def test_cli_rejects_bad_flag_values():
    result = _cli("--log-format", "xml")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_check_command_accepts_the_shipped_files_and_reports_problems(tmp_path):
    shipped = Path(__file__).parent.parent / "transformers"
    ok = _cli("check", "--transformers", str(shipped))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad_dir = tmp_path / "t"
    bad_dir.mkdir()
    (bad_dir / "broken.json").write_text(
        '{"format": "openai", "base_url": "http://x/v1", "modles": {}, "retry": {"retries": "2"}}'
    )
    (bad_dir / "fine.json").write_text('{"format": "mock", "models": {"*": "*"}}')
    bad = _cli("check", "--transformers", str(bad_dir))
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert any(line.startswith("broken.json: modles: ") for line in lines), lines
    assert any(line.startswith("broken.json: retry.retries: ") for line in lines), lines
    assert not any(line.startswith("fine.json") for line in lines)
