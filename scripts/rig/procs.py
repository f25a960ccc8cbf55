"""Processes of a run: start them, wait for their port, read their CPU and memory, stop them.

A :class:`Proc` is a server in its own process group (its workers too), its output
appended to a log file; ``stop()`` sends SIGTERM (the gateway drains), then SIGKILL to
what is left of the group; bench.py calls :func:`stop_all` on the way out. :class:`Cpu`
takes the CPU seconds of some of them, of us (``client``: our load generator, or wrk)
and of the rest of the machine (``other``: the noise the reports warn about).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

HOST = "127.0.0.1"
SCRIPTS = Path(__file__).resolve().parent.parent
REPO = SCRIPTS.parent
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Proc:
    """A server process in its own process group, stdout and stderr to ``log``; ``env``
    is added to ours."""

    live: list[Proc] = []

    def __init__(
        self, name: str, cmd: list[str], log: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.name, self.cmd, self.log = name, cmd, log
        path = os.pathsep.join(filter(None, [str(SCRIPTS), os.environ.get("PYTHONPATH")]))
        local = "127.0.0.1,localhost"
        ours = {"PYTHONPATH": path, "NO_PROXY": local, "no_proxy": local}
        env = {**os.environ, **ours, **(env or {})}
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
        ticks = 0
        for entry in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()  # after the command name
                if int(fields[2]) == self.pgid:
                    ticks += int(fields[11]) + int(fields[12])
        return ticks / CLK_TCK

    def rss_kib(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak), in KiB."""
        with open(f"/proc/{self.pid}/status") as f:
            pairs = (line.split(":", 1) for line in f if line.startswith(("VmRSS:", "VmHWM:")))
            return {key: int(value.split()[0]) for key, value in pairs}

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
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
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
        if not markers or sum(count_lines(log, log_marker) for log in logs) >= markers:
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_request(port, "GET", path)[0] == 200:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"{procs[0].name} not ready after {READY_TIMEOUT_S:g} s:\n{procs[0].tail()}")


def count_lines(path: Path, marker: bytes) -> int:
    """Lines of ``path`` containing ``marker``."""
    with contextlib.suppress(FileNotFoundError), open(path, "rb") as f:
        return sum(1 for line in f if marker in line)
    return 0


def settled_count(path: Path, marker: bytes, *, quiet_s: float = 0.5, limit_s: float = 10.0) -> int:
    """:func:`count_lines` once the file stopped growing for ``quiet_s`` (log writers lag)."""
    deadline, last = time.monotonic() + limit_s, -1
    while (size := path.stat().st_size if path.exists() else 0) != last:
        if time.monotonic() > deadline:
            break
        last = size
        time.sleep(quiet_s)
    return count_lines(path, marker)


def copy_logs(tmp: Path, where: str | None, name: Callable[[Path], str] = lambda p: p.name) -> None:
    """Copy every ``*.log`` under ``tmp`` to the directory ``where`` (``--keep-logs``)."""
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        for path in tmp.rglob("*.log"):
            shutil.copy(path, Path(where) / name(path))


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


def _busy_seconds() -> float:
    """CPU seconds the machine spent busy (not idle, not iowait) since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def _own_seconds() -> float:
    """CPU seconds of this process and its reaped children (wrk, once it has run)."""
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Cpu:
    """Started on creation; :meth:`stop` gives the CPU seconds used since by each name's
    processes, ``client`` (us), ``other`` (the rest of the machine) and ``wall``."""

    def __init__(self, procs: Mapping[str, Proc | Sequence[Proc]]) -> None:
        self.procs = {k: [p] if isinstance(p, Proc) else list(p) for k, p in procs.items()}
        self.t0, self.own0, self.busy0 = time.perf_counter(), _own_seconds(), _busy_seconds()
        self.proc0 = {k: self._seconds(k) for k in self.procs}

    def _seconds(self, name: str) -> float:
        return sum(p.cpu_seconds() for p in self.procs[name])

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        out = {k: self._seconds(k) - self.proc0[k] for k in self.procs}
        out["client"] = _own_seconds() - self.own0
        out["other"] = max(0.0, _busy_seconds() - self.busy0 - sum(out.values()))
        return {**out, "wall": wall}
