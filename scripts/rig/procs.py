"""Processes of a benchmark run: start them, wait for their port, read them, stop them.

Every server a benchmark starts is a :class:`Proc`: a process in its own process group
(its workers too), stdout and stderr appended to a log file (``O_APPEND``: several workers
may share one). ``stop()`` sends SIGTERM to the leader (the gateway drains and exits 0),
then SIGKILL to whatever of the group is left after ``STOP_TIMEOUT_S``. :func:`stop_all`,
which bench.py calls on the way out (Ctrl-C and SIGTERM included), stops every one still
running.

Children run from the repository with scripts/ first on ``PYTHONPATH``, so
``python -m rig.mock_upstream`` finds the rig; ``NO_PROXY`` keeps loopback traffic off
any proxy the environment names.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HOST = "127.0.0.1"
SCRIPTS = Path(__file__).resolve().parent.parent
REPO = SCRIPTS.parent
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int | str) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name (``[2]`` is the group)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


class Proc:
    """A server process in its own process group, stdout and stderr to ``log``."""

    live: list[Proc] = []

    def __init__(self, name: str, cmd: list[str], log: Path) -> None:
        self.name, self.cmd, self.log = name, cmd, log
        path = os.pathsep.join(filter(None, [str(SCRIPTS), os.environ.get("PYTHONPATH")]))
        local = "127.0.0.1,localhost"
        env = {**os.environ, "PYTHONPATH": path, "NO_PROXY": local, "no_proxy": local}
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=REPO, env=env,
                start_new_session=True,
            )  # fmt: skip
        self.pid = self.pgid = self.popen.pid
        Proc.live.append(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU of every live process in the group (threads included)."""
        total = 0
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    fields = _stat(entry)
                    if int(fields[2]) == self.pgid:
                        total += int(fields[11]) + int(fields[12])
        return total / CLK_TCK

    def stop(self) -> None:
        if self in Proc.live:
            Proc.live.remove(self)
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signal.SIGKILL)  # leftovers of our own group only
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(STOP_TIMEOUT_S)

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_all() -> None:
    for proc in list(Proc.live):
        proc.stop()


@contextlib.contextmanager
def running(procs: list[Proc]) -> Iterator[list[Proc]]:
    try:
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http_request(
    port: int, method: str, path: str, body: bytes = b"", timeout: float = 2.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"} if body else {}
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(
    procs: list[Proc], port: int, path: str, *, log_marker: bytes = b"", markers: int = 0
) -> None:
    """Wait until ``GET path`` answers 200 and the logs hold ``markers`` x ``log_marker``."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for proc in procs:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
        logs = {p.log for p in procs}
        if not markers or sum(count_marker(log, log_marker) for log in logs) >= markers:
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_request(port, "GET", path)[0] == 200:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"{procs[0].name} not ready after {READY_TIMEOUT_S:g} s:\n{procs[0].tail()}")


def count_marker(path: Path, marker: bytes) -> int:
    """Lines of ``path`` containing ``marker``."""
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if marker in line)
    except FileNotFoundError:
        return 0


def settled_count(path: Path, marker: bytes, *, quiet_s: float = 0.5, limit_s: float = 10.0) -> int:
    """``count_marker`` once the file stopped growing for ``quiet_s`` (log writers lag)."""
    deadline = time.monotonic() + limit_s
    last = -1
    while True:
        size = path.stat().st_size if path.exists() else 0
        if size == last or time.monotonic() > deadline:
            return count_marker(path, marker)
        last = size
        time.sleep(quiet_s)


def copy_logs(tmp: Path, where: str | None, name: Callable[[Path], str] = lambda p: p.name) -> None:
    """Copy every ``*.log`` under ``tmp`` to the directory ``where`` (``--keep-logs``)."""
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        for path in tmp.rglob("*.log"):
            shutil.copy(path, Path(where) / name(path))


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of ``pid``, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        pairs = (line.split(":", 1) for line in f if line.startswith(("VmRSS:", "VmHWM:")))
        return {key: int(value.split()[0]) for key, value in pairs}


def find(program: str) -> str | None:
    """``program`` on PATH, or in /usr/sbin (nginx is there, off a user's PATH)."""
    sbin = f"/usr/sbin/{program}"
    return shutil.which(program) or (sbin if os.access(sbin, os.X_OK) else None)


def version(cmd: list[str]) -> str:
    """The first line ``cmd`` prints (``wrk --version``, ``nginx -v``), or ""."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return ((proc.stdout + proc.stderr).strip().splitlines() or [""])[0]
