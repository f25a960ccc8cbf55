"""Run ``python -m gateway`` as a real process in tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GatewayProcess:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.log_path = log
        self.url = f"http://127.0.0.1:{port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, path: str = "/health/live", timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"gateway exited early ({self.proc.returncode}):\n{self.log()}"
                )
            try:
                if httpx.get(self.url + path, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"gateway not ready after {timeout} s:\n{self.log()}")

    def terminate(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


@contextmanager
def run_gateway(
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    transformers: Path | None = None,
    ready: bool = True,
) -> Iterator[GatewayProcess]:
    port = free_port()
    if transformers is None:
        transformers = tmp_path / "transformers-empty"
        transformers.mkdir(exist_ok=True)
    log = tmp_path / f"gateway-{port}.log"
    cmd: Sequence[str] = [
        sys.executable,
        "-m",
        "gateway",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--transformers",
        str(transformers),
        *args,
    ]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    full_env.update(env or {})
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env)
    gw = GatewayProcess(proc, port, log)
    try:
        if ready:
            gw.wait_ready()
        yield gw
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
