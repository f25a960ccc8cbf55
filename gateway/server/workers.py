"""``--workers N``: a supervising parent and N worker processes sharing one port.

Theory of operation: each worker is ``python -m gateway serve`` with the
same flags plus ``--worker-id I --port P``, and binds its own listening
socket with SO_REUSEPORT, so the kernel spreads connections over them. The
parent first binds (without listening) a SO_REUSEPORT socket of its own: that
resolves ``--port 0`` to one real port for every worker and holds it while
workers restart. A worker that dies is restarted (after a pause if it died
young, so a crash loop does not spin). SIGTERM and SIGINT are forwarded to
the workers, which drain gracefully; the parent exits 0 once all are gone.
SIGHUP is forwarded too (transformer reload).
"""

from __future__ import annotations

import logging
import signal
import socket
import sys

import trio

from gateway.config import Config

__all__ = ["supervise"]

LOG = logging.getLogger("gateway.workers")

#: A worker that dies sooner than this after its start is restarted only after RESTART_PAUSE_S.
YOUNG_S = 1.0
RESTART_PAUSE_S = 1.0


def _reserve_port(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def supervise(config: Config, argv: list[str]) -> int:
    """Run ``config.server.workers`` workers until SIGTERM/SIGINT; returns the exit status."""
    reserved = _reserve_port(config.server.host, config.server.port)
    try:
        port = reserved.getsockname()[1]
        return trio.run(_supervise, config.server.workers, argv, port)
    finally:
        reserved.close()


class _Supervisor:
    def __init__(self, argv: list[str], port: int) -> None:
        self.argv = argv
        self.port = port
        self.stopping = False
        self.procs: dict[int, trio.Process] = {}

    def command(self, worker_id: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            *self.argv,
            "--port",
            str(self.port),
            "--worker-id",
            str(worker_id),
        ]

    async def keep_running(self, worker_id: int) -> None:
        while not self.stopping:
            started = trio.current_time()
            proc = await trio.lowlevel.open_process(self.command(worker_id))
            self.procs[worker_id] = proc
            LOG.info("worker %d started (pid %d)", worker_id, proc.pid)
            try:
                status = await proc.wait()
            finally:
                if proc.returncode is None:  # we are being cancelled: do not orphan it
                    proc.kill()
                    with trio.CancelScope(shield=True):
                        await proc.wait()
            if self.stopping:
                LOG.info("worker %d exited (%s)", worker_id, status)
                return
            LOG.error("worker %d died (status %s); restarting", worker_id, status)
            if trio.current_time() - started < YOUNG_S:
                await trio.sleep(RESTART_PAUSE_S)

    def forward(self, signum: int) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signum)


async def _supervise(workers: int, argv: list[str], port: int) -> int:
    sup = _Supervisor(argv, port)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:

        async def relay_signals() -> None:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    sup.forward(signal.SIGHUP)
                    continue
                LOG.info("%s: stopping %d workers", signal.Signals(signum).name, workers)
                sup.stopping = True
                sup.forward(signal.SIGTERM)

        async with trio.open_nursery() as outer:
            outer.start_soon(relay_signals)
            # Each keep_running task returns only once stopping and its worker has exited.
            async with trio.open_nursery() as pool:
                for worker_id in range(workers):
                    pool.start_soon(sup.keep_running, worker_id)
            outer.cancel_scope.cancel()
    return 0
