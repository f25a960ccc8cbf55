"""Issue 8 item 15: ``--workers`` children never outlive their parent.

After SIGKILL of the parent the workers kept serving as orphans. Each worker
now watches a pipe from its parent (EOF when the parent dies, however it
dies) and, on Linux, has PR_SET_PDEATHSIG; either way it drains and exits.
Healthy workers must not be touched by either mechanism while the parent
lives (PDEATHSIG fires when the thread that forked a child exits: workers are
forked from the supervisor's main thread, so an idle thread ending is harmless).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.process import run_gateway

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def _children(pid: int) -> set[int]:
    kids = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids.update(int(k) for k in (task / "children").read_text().split())
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_for_workers(pid: int, count: int, timeout_s: float = 20) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while True:
        kids = _children(pid)
        if len(kids) == count:
            return kids
        assert time.monotonic() < deadline, kids
        time.sleep(0.1)


def test_workers_exit_when_the_parent_is_killed(tmp_path):
    with run_gateway(tmp_path, "--workers", "2") as gw:
        workers = _wait_for_workers(gw.proc.pid, 2)
        assert httpx.get(gw.url + "/health/live").status_code == 200
        os.kill(gw.proc.pid, signal.SIGKILL)
        gw.proc.wait(10)
        deadline = time.monotonic() + 15
        try:
            while any(_alive(w) for w in workers):
                assert time.monotonic() < deadline, "orphaned workers still running"
                time.sleep(0.1)
        finally:
            for w in workers:
                if _alive(w):
                    os.kill(w, signal.SIGKILL)
        with pytest.raises(httpx.TransportError):
            httpx.get(gw.url + "/health/live", timeout=2)
        log = gw.log()
        assert "the supervising parent process is gone" in log or "SIGTERM received" in log


def test_workers_stay_up_while_the_parent_lives(tmp_path):
    # trio's worker threads idle out after about 10 s; a worker forked from such a thread
    # with PDEATHSIG would be killed then. Watch past that.
    with run_gateway(tmp_path, "--workers", "2") as gw:
        workers = _wait_for_workers(gw.proc.pid, 2)
        time.sleep(12)
        assert _children(gw.proc.pid) == workers
        assert "worker 0 died" not in gw.log()
        assert "worker 1 died" not in gw.log()
        assert httpx.get(gw.url + "/health/live").status_code == 200
        assert gw.terminate() == 0
