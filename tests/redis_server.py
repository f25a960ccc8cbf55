"""A real ``redis-server`` for tests: on 127.0.0.1, a free port, no persistence; stoppable
and restartable on the same port mid-test (an outage and a recovery).

Used through the fixtures in tests/conftest.py (``redis_server``, ``redis_factory``). The
Debian package ``redis-server`` provides the binary; without it the fixtures fail (never
skip) with the command that installs it. ``.ci/run`` installs it when missing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import attrs

INSTALL_HINT = (
    "redis-server is not installed: the shared-state tests need a real one. "
    "Install it with: apt-get update && apt-get install -y redis-server "
    "(Debian/Ubuntu; .ci/run does this when it is missing)"
)
START_TIMEOUT_S = 10.0


def redis_server_binary() -> str:
    """The path of ``redis-server``, or an AssertionError saying how to install it."""
    path = shutil.which("redis-server")
    if path is None:
        raise AssertionError(INSTALL_HINT)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@attrs.define
class TLSFiles:
    cert: Path
    key: Path


@attrs.define
class RedisServer:
    """One redis-server process; :meth:`start`, :meth:`stop` (SIGKILL: a crash) and
    :meth:`start` again on the same port.

    Attributes:
        password: ``requirepass`` (None: no password).
        tls: serve TLS only (on :attr:`port`) with these files.
        extra: more ``--name value`` arguments.
    """

    workdir: Path
    port: int = attrs.field(factory=free_port)
    password: str | None = None
    tls: TLSFiles | None = None
    extra: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        auth = f":{self.password}@" if self.password else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"redis-{self.port}.log"

    def start(self) -> None:
        assert self.proc is None, "already running"
        args = [
            redis_server_binary(),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.workdir),
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        if self.tls:
            args += ["--port", "0", "--tls-port", str(self.port)]
            args += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            args += ["--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        if self.password is not None:
            args += ["--requirepass", self.password]
        args += list(self.extra)
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.starts += 1
        self._wait_listening()

    def _wait_listening(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        for _ in range(2000):  # bounded in count and in time
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                log = self.log_path.read_text() if self.log_path.exists() else ""
                self.proc = None
                raise AssertionError(f"redis-server exited at start:\n{err}\n{log[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
        self.stop()
        raise AssertionError(f"redis-server did not listen on port {self.port} in time")

    def stop(self) -> None:
        """Kill the server (SIGKILL, as a crash or a lost node) and wait for it."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait(10)
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cli(self, *args: str) -> str:
        """Run one command with redis-cli (a check from outside our client)."""
        cmd = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--no-auth-warning"]
        if self.password:
            cmd += ["-a", self.password]
        if self.tls:
            cmd += ["--tls", "--insecure"]
        out = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
