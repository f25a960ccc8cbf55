"""Issue 8 item 9: a hostile transformer directory cannot hang the gateway.

A FIFO named ``x.json`` hung the first load forever (``/health/startup`` 503,
every model 404, ``check`` hung, SIGTERM did not end the process). Only
regular files are read now (non-blocking open, ``fstat`` after it, size
cap); anything else is a load error naming the file. ConfigMap-style
symlinks still work. SIGTERM ends the process within ``shutdown_grace_s``
plus a few seconds whatever it is doing, a hung load included.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from gateway.check import check_directory
from gateway.transformers.files import MAX_FILE_BYTES
from gateway.transformers.load import load_directory
from tests.process import GatewayProcess, free_port, run_gateway

MOCK = {"format": "mock", "models": {"*": "*"}}


def _hostile_dir(base: Path) -> Path:
    d = base / "transformers"
    d.mkdir()
    (d / "good.json").write_text(json.dumps(MOCK))
    os.mkfifo(d / "fifo.json")
    (d / "dir.json").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "sock.json"))
    sock.close()
    os.symlink("/dev/zero", d / "device.json")
    (d / "huge.json").write_bytes(b" " * (MAX_FILE_BYTES + 1))
    return d


EXPECTED = {
    "fifo.json": "a FIFO",
    "dir.json": "a directory",
    "sock.json": "a socket",
    "device.json": "a character device",
    "huge.json": "larger than",
}


def _bounded(fn, *args, timeout_s: float = 20):
    """``fn(*args)`` in a daemon thread: a read that blocks forever fails the test, not the run."""
    out: list = []
    worker = threading.Thread(target=lambda: out.append(fn(*args)), daemon=True)
    worker.start()
    worker.join(timeout_s)
    assert out, f"{fn.__name__} still blocked after {timeout_s} s"
    return out[0]


def test_only_regular_files_are_read(tmp_path):
    d = _hostile_dir(tmp_path)
    files = {f.file: f for f in _bounded(load_directory, d, {})}
    assert files["good.json"].problems == ()
    for name, words in EXPECTED.items():
        [problem] = files[name].problems
        assert problem.startswith(f"{name}: ")
        assert words in problem


def test_configmap_symlinks_still_work(tmp_path):
    d = tmp_path / "transformers"
    data = d / "..2026_12_07" / "mock.json"
    data.parent.mkdir(parents=True)
    data.write_text(json.dumps(MOCK))
    os.symlink("..2026_12_07", d / "..data")
    os.symlink("..data/mock.json", d / "mock.json")
    [loaded] = load_directory(d, {})
    assert loaded.problems == ()
    assert loaded.transformer is not None


def test_check_names_each_bad_file_and_does_not_hang(tmp_path):
    d = _hostile_dir(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "check", "--transformers", str(d)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    for name, words in EXPECTED.items():
        assert any(line.startswith(name) and words in line for line in proc.stdout.splitlines())
    problems, _warnings = _bounded(check_directory, d, {})
    assert len(problems) == len(EXPECTED)


def test_the_gateway_starts_and_reports_the_bad_files(tmp_path):
    d = _hostile_dir(tmp_path)
    with run_gateway(tmp_path, transformers=d) as gw:
        deadline = time.monotonic() + 20
        while httpx.get(gw.url + "/health/startup").status_code != 200:
            assert time.monotonic() < deadline, gw.log()
            time.sleep(0.1)
        ready = httpx.get(gw.url + "/health/ready").json()
        assert ready["status"] == "degraded"
        assert ready["transformers"]["loaded"] == ["good"]
        errors = ready["transformers"]["errors"]
        for name, words in EXPECTED.items():
            assert words in errors[name], errors
        reply = httpx.post(
            gw.url + "/v1/chat/completions",
            json={"model": "good/x", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert reply.status_code == 200
        assert gw.terminate() == 0


@pytest.mark.parametrize("where", ["load", "loop"])
def test_sigterm_ends_the_process_whatever_it_is_doing(tmp_path, where):
    """A load blocked in a thread forever, or an event loop stuck in a call: SIGTERM still ends it."""
    empty = tmp_path / "transformers"
    empty.mkdir()
    port = free_port()
    if where == "load":  # the first load never returns (a read no timeout can break)
        patch = (
            "import threading, gateway.transformers.registry as r; "
            "r.build_registry = lambda *a, **k: threading.Event().wait()"
        )
    else:  # a handler that blocks the event loop itself (a CPU-bound bug)
        patch = "import time, gateway.app as a; a.App.live = lambda self, ex: time.sleep(3600)"
    code = (
        f"{patch}; import runpy, sys; "
        f"sys.argv = ['gateway', '--host', '127.0.0.1', '--port', '{port}', "
        f"'--transformers', {str(empty)!r}]; runpy.run_module('gateway', run_name='__main__')"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_SERVER__SHUTDOWN_GRACE_S"] = "1"
    log = tmp_path / "gateway.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=out, env=env)
    gw = GatewayProcess(proc, port, log)
    try:
        if where == "load":
            gw.wait_ready("/health/live")
            assert httpx.get(gw.url + "/health/startup").status_code == 503  # still loading
        else:
            deadline = time.monotonic() + 20
            while True:  # wait until it listens, then jam the loop
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, gw.log()
                    time.sleep(0.1)
            with pytest.raises(httpx.TimeoutException):
                httpx.get(gw.url + "/health/live", timeout=1)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=1 + 5 + 10)  # grace + the exit margin + slack for a busy machine
        assert time.monotonic() - started < 16
        if where == "load":
            assert "exiting now" in gw.log()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
