"""A local ``redis-server`` for the benchmarks of the shared state, and what it was asked.

Started on 127.0.0.1 on a free port with no persistence (no RDB, no AOF: nothing of a
run reaches the disk), as a :class:`~rig.procs.Proc`, so its CPU is read like the
gateway's and it is stopped with the rest. :func:`command_calls` reads ``INFO
commandstats`` over a plain socket (no client library: the benchmarks measure ours, and
this reading must not depend on it), so a run can say how many ``EVALSHA`` each request
cost; :class:`Pinger` times ``PING`` round trips the same way (the floor of any Redis
call from a process on this machine: loopback TCP, two wake-ups, no client code).
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

from rig.procs import HOST, Proc, free_port

START_TIMEOUT_S = 10.0
MAX_REPLY_BYTES = 1 << 20


def start_redis(workdir: Path) -> tuple[Proc, int]:
    """redis-server listening on a free port of 127.0.0.1, its log in ``workdir``."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    cmd = [binary, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = Proc("redis", cmd, workdir / "redis.log")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"redis-server exited at start:\n{proc.tail()}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"redis-server did not listen:\n{proc.tail()}")


def info(port: int, section: str) -> str:
    """The text of ``INFO section`` (one bulk reply, read whole)."""
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(f"INFO {section}\r\n".encode())
        buf = b""
        while b"\r\n" not in buf:
            buf += _recv(sock, buf)
        head, _, buf = buf.partition(b"\r\n")
        if not head.startswith(b"$"):
            raise RuntimeError(f"redis-server answered INFO with {head[:200]!r}")
        size = int(head[1:])
        if not 0 <= size <= MAX_REPLY_BYTES:
            raise RuntimeError(f"redis-server's INFO reply is {size} bytes")
        while len(buf) < size:
            buf += _recv(sock, buf)
        return buf[:size].decode()


def _recv(sock: socket.socket, buf: bytes) -> bytes:
    if len(buf) > MAX_REPLY_BYTES + 64 or not (got := sock.recv(65536)):
        raise RuntimeError("redis-server closed the connection or sent too much")
    return got


def command_calls(port: int) -> dict[str, int]:
    """Calls of each command since redis-server started (``{"evalsha": 1234, ...}``)."""
    calls = {}
    for line in info(port, "commandstats").splitlines():
        name, _, stats = line.partition(":")
        if name.startswith("cmdstat_"):
            fields = dict(pair.split("=", 1) for pair in stats.split(","))
            calls[name.removeprefix("cmdstat_")] = int(fields["calls"])
    return calls


class Pinger:
    """One blocking connection sending ``PING``; :meth:`ping` returns the round trip in s."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def ping(self) -> float:
        started = time.perf_counter()
        self.sock.sendall(b"PING\r\n")
        buf = b""
        while not buf.endswith(b"\r\n"):
            buf += _recv(self.sock, buf)
        elapsed = time.perf_counter() - started
        if buf != b"+PONG\r\n":
            raise RuntimeError(f"redis-server answered PING with {buf[:200]!r}")
        return elapsed

    def close(self) -> None:
        self.sock.close()
