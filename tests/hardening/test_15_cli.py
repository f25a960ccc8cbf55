"""Issue 8 item 15: port validation and the top-level help.

``--port 99999`` was accepted (and listened on a random port). A port outside
0-65535 is now a settings problem (exit 2, the source named) from the flag,
the environment or the TOML file. ``python -m gateway --help`` listed only
``{serve,check}``; it shows the serve flags too.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.__main__ import main
from gateway.config import ConfigError, load_config


def _gateway(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=full_env,
    )


@pytest.mark.parametrize("port", ["99999", "65536", "-1"])
def test_a_port_flag_out_of_range_is_refused(port, tmp_path):
    proc = _gateway("--port", port, "--transformers", str(tmp_path))
    assert proc.returncode == 2
    assert "command line: server.port: must be a TCP port from 0 to 65535" in proc.stderr
    assert port in proc.stderr


def test_a_port_from_the_environment_or_toml_out_of_range_is_refused(tmp_path):
    proc = _gateway("--transformers", str(tmp_path), env={"GATEWAY_SERVER__PORT": "70000"})
    assert proc.returncode == 2
    assert "GATEWAY_SERVER__PORT: server.port: must be a TCP port from 0 to 65535" in proc.stderr
    toml = tmp_path / "c.toml"
    toml.write_text("[server]\nport = 123456\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(toml), env={})
    [problem] = caught.value.problems
    assert problem.endswith(
        "server.port: must be a TCP port from 0 to 65535 (0: any free port), got 123456"
    )


@pytest.mark.parametrize("port", [0, 1, 65535])
def test_ports_in_range_are_accepted(port):
    assert load_config(None, env={}, overrides={"server": {"port": port}}).server.port == port


def test_top_level_help_shows_the_serve_flags(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    text = capsys.readouterr().out
    assert "{serve,check}" in text
    for flag in ("--port", "--host", "--workers", "--transformers", "--config", "--tls-cert"):
        assert flag in text
    assert "--worker-id" not in text
    assert "--parent-pipe" not in text


@pytest.mark.parametrize("command", ["serve", "check"])
def test_subcommand_help_still_works(command, capsys):
    with pytest.raises(SystemExit) as caught:
        main([command, "--help"])
    assert caught.value.code == 0
    assert "--transformers" in capsys.readouterr().out
