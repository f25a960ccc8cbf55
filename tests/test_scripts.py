"""scripts/: every module imports alone, the import graph has no cycle, every --help works.

The benchmarks are drivers, not run here (they take minutes and want wrk and nginx);
this keeps them importable and their command lines parseable as the package moves.
Modules are named as ``scripts/bench.py`` sees them: scripts/ is the first entry of
``sys.path``, so ``rig.procs``, ``benchmarks.proxy``, and ``bench`` itself.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SCRIPTS).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(SCRIPTS.rglob("*.py"))}


def _env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(SCRIPTS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def _imports(name: str) -> set[str]:
    """The scripts/ modules that module ``name`` imports, anywhere in its body (absolute
    imports only: scripts/ has no relative ones, see test_no_import_tricks)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {m for m in found if m in MODULES and m != name}


def test_modules_are_found() -> None:
    expected = {"bench", "rig.procs", "rig.measure", "benchmarks.proxy", "benchmarks.convert"}
    assert expected <= set(MODULES)


def test_no_import_cycle() -> None:
    graph = {name: _imports(name) for name in MODULES}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            cycle = " -> ".join([*path[path.index(name) :], name])
            pytest.fail(f"import cycle in scripts/: {cycle}")
        if name not in done:
            for dep in sorted(graph[name]):
                visit(dep, (*path, name))
            done.add(name)

    for name in graph:
        visit(name, ())


def test_no_import_tricks() -> None:
    """No ``sys.modules`` games, no ``sys.path`` edits (scripts/ on the path is enough), no
    relative imports."""
    for name, path in MODULES.items():
        text = path.read_text()
        assert "sys.modules" not in text, name
        assert "sys.path" not in text, name
        relative = [
            n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ImportFrom) and n.level
        ]
        assert not relative, name


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_imports_alone(name: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", f"import {name}"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "command", [[], ["server"], ["proxy"], ["convert"], ["transport"], ["state"], ["edge"]]
)
def test_help(command: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench.py"), *command, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: scripts/bench.py"), proc.stdout


_RIG_SMOKE = """
import json
from pathlib import Path
import tempfile

from rig import gw
from rig.clients import raw_request
from rig.load import run_load
from rig.procs import stop_all
from rig.stack import start_upstream

# The gateway's API as the convert benchmark uses it.
body = json.dumps({"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]})
call = gw.call("anthropic", body.encode(), "m", sized=True)
sent = json.loads(gw.adapter(call, gw.target("openai", "m"), gw.Memo()).body)
assert sent["messages"][-1]["content"] == "hi", sent

# Our load generator against the mock upstream.
with tempfile.TemporaryDirectory() as tmp:
    try:
        _proc, port = start_upstream(Path(tmp) / "upstream.log")
        chat = b'{"model":"m","messages":[]}'
        got = run_load(port, [raw_request(port, "/v1/chat/completions", chat)], 2, 0.3).result()
        assert got.requests > 0 and not got.errors and not got.non_2xx, got
        stream = b'{"model":"m-e20","stream":true,"messages":[]}'
        data = [raw_request(port, "/v1/chat/completions", stream)]
        res = run_load(port, data, 2, 0.3, stream=True)
        assert res.streams > 0 and set(res.events_per_stream) == {21}, res
    finally:
        stop_all()
print("ok")
"""


def test_rig_smoke() -> None:
    """The rig's own parts work: the gateway API of rig/gw.py, the mock upstream, our
    request and stream generators (no wrk, no gateway process: a second or two)."""
    proc = subprocess.run(
        [sys.executable, "-c", _RIG_SMOKE], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def _run_script(code: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


_EDGE_SETTINGS = """
from fnmatch import fnmatchcase
from pathlib import Path
import tempfile

from benchmarks.edge import KEY_VAR, settings
from benchmarks.edge_report import LIMITS, MODELS
from gateway.config import load_config

with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp, "edge.toml")
    path.write_text(settings(True, 6390))
    assert "sk-edge-secret" not in path.read_text()
    cfg = load_config(str(path), env={KEY_VAR: "sk-edge-secret"})
    (key,) = cfg.auth.keys
    assert key.key == "sk-edge-secret", key
    assert {name: getattr(key, name) for name in LIMITS} == LIMITS, key
    assert list(key.models) == MODELS, key
    assert any(fnmatchcase("bench-model", glob) for glob in key.models), key
    assert cfg.state.redis_url == "redis://127.0.0.1:6390/0", cfg.state
    path.write_text(settings(True))
    assert load_config(str(path), env={KEY_VAR: "k"}).state.redis_url == ""
    path.write_text(settings(False))
    cfg = load_config(str(path), env={})
    assert cfg.auth.keys == () and cfg.state.redis_url == "", cfg
print("ok")
"""


def test_edge_settings_are_what_the_gateway_reads() -> None:
    """bench.py edge's settings files load as the gateway loads them: the edges get one key
    (from the environment, never in the file) with all five limits and the models globs,
    edge-redis the Redis URL, the open gateway neither; a renamed setting fails here."""
    _run_script(_EDGE_SETTINGS)


_EDGE_FIGURES = """
from benchmarks.edge_report import Slices, c1_summary, c32_summary
from rig.load import LoadResult

def slices(cpu_s_per_turn, turns=5, requests=1000):
    out = Slices()
    for _ in range(turns):
        got = LoadResult("wrk", requests, 2.0, requests / 2, 10.0, 20.0, 30.0)
        out.add(got, {"gateway": cpu_s_per_turn, "redis": 0.0, "wall": 2.0}, 0)
    return out

def c32(open_2):
    rounds = [{"open": slices(1.0), "open-2": slices(open_2), "edge-local": slices(1.1),
               "edge-redis": slices(1.5)} for _ in range(3)]
    return c32_summary(rounds)

quiet = c32(1.0)
assert abs(quiet["reference"]["gateway_cpu_us_per_req"] - 1000) < 1e-6, quiet["reference"]
assert abs(quiet["reference"]["rps"] - 500) < 1e-6, quiet["reference"]
assert abs(quiet["edge-local"]["cpu_ratio"] - 1.1) < 1e-9, quiet["edge-local"]
assert abs(quiet["edge-redis"]["cpu_ratio"] - 1.5) < 1e-9, quiet["edge-redis"]
assert quiet["edge-local"]["within_noise"] is False, quiet["edge-local"]
# Two identical processes 24% apart: the reference is their pooled 1120 us, and an
# edge 10% above the first of them is within that noise.
noisy = c32(1.24)
assert abs(noisy["edge-local"]["cpu_ratio"] - 1100 / 1120) < 1e-9, noisy["edge-local"]
assert noisy["edge-local"]["within_noise"] is True, noisy["edge-local"]

subs = lambda ms: [[ms] * 5 for _ in range(4)]
lat = {"direct": subs(0.05), "redis-ping": subs(0.02), "open": subs(1.0),
       "open-2": subs(1.0), "edge-local": subs(1.05), "edge-redis": subs(1.5)}
gateways = ("open", "open-2", "edge-local", "edge-redis")
used = {"open": 0.02, "open-2": 0.02, "edge-local": 0.021, "edge-redis": 0.03, "redis": 0.004}
c1 = c1_summary(lat, {n: [0.1] for n in gateways}, used, 20)
assert abs(c1["redis_added_p50_ms"] - 0.5) < 1e-9, c1["edge-redis"]
assert abs(c1["edge-local"]["added_p50_ms"] - 0.05) < 1e-9, c1["edge-local"]
assert abs(c1["reference"]["minus_direct_p50_ms"] - 0.95) < 1e-9, c1["reference"]
assert abs(c1["edge-redis"]["cpu_ratio"] - 1.5) < 1e-9, c1["edge-redis"]
assert abs(c1["edge-redis"]["redis_cpu_us_per_req"] - 200) < 1e-9, c1["edge-redis"]
print("ok")
"""


def test_edge_figures() -> None:
    """bench.py edge's arithmetic on known inputs: the two open gateways pooled as the
    reference, CPU/request ratios to it, the A/A noise rule, the c=1 differences."""
    _run_script(_EDGE_FIGURES)


_REDIS_RIG = """
import tempfile
from pathlib import Path

from rig.procs import stop_all
from rig.redis_server import Pinger, command_calls, start_redis

with tempfile.TemporaryDirectory() as tmp:
    try:
        proc, port = start_redis(Path(tmp))
        before = command_calls(port).get("ping", 0)
        pinger = Pinger(port)
        assert all(0 < pinger.ping() < 5 for _ in range(3))
        pinger.close()
        assert command_calls(port)["ping"] == before + 3, command_calls(port)
        proc.stop()
        assert not proc.alive()
    finally:
        stop_all()
print("ok")
"""


def test_redis_rig() -> None:
    """The benchmarks' redis-server: started on a free port, its commands counted from
    INFO, PING timed, stopped (needs the system redis-server, as the state tests do)."""
    _run_script(_REDIS_RIG)
