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


@pytest.mark.parametrize("command", [[], ["server"], ["proxy"], ["convert"], ["transport"]])
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
