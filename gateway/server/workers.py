"""``--workers N``: a supervising parent and N worker processes sharing one port.

Theory of operation: each worker is ``python -m gateway serve`` with the
same flags plus ``--worker-id I --port P``, and binds its own listening
socket with SO_REUSEPORT, so the kernel spreads connections over them. The
parent first binds (without listening) a SO_REUSEPORT socket of its own: that
resolves ``--port 0`` to one real port for every worker and holds it while
workers restart. A worker that dies is restarted (after a pause if it died
young, so a crash loop does not spin). SIGTERM and SIGINT are forwarded to
the workers, which drain gracefully; the parent exits 0 once all are gone.
SIGHUP is forwarded too (transformer reload, audit log reopen).

Metrics: each worker also gets one end of a socketpair of its own (hidden
``--metrics-fd FD``), over which the parent's gateway.metrics_group.GroupMetrics
collects every worker's snapshot when any of them is scraped, so one scrape
covers the group. A socketpair per worker process: nothing to configure, no
port or path another process could reach, and its end (EOF) is the process's.

Orphans: a worker must not outlive its parent (after a SIGKILL of the parent,
orphans would keep serving the port, unsupervised). Two mechanisms:

* a pipe: the parent holds the write end, every worker inherits the read end
  (``--parent-pipe FD``) and watches it; when the parent dies, however it dies,
  the kernel closes the write end, the read end reports EOF and the worker
  shuts down gracefully. Portable (any POSIX system).
* on Linux also ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` in the worker. It fires
  when the *thread* that forked the worker exits, so workers are spawned from
  the supervisor's main thread (``subprocess.Popen`` there; trio's
  ``open_process`` forks in a worker thread that later exits, which would
  send SIGTERM to a healthy worker).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
from typing import Any

import trio

from gateway.config import Config
from gateway.metrics_group import GroupMetrics

__all__ = ["set_parent_death_signal", "supervise", "watch_parent"]

LOG = logging.getLogger("gateway.workers")

#: A worker that dies sooner than this after its start is restarted only after RESTART_PAUSE_S.
YOUNG_S = 1.0
RESTART_PAUSE_S = 1.0
#: After a worker exits, how long its metrics link may take to read what it sent last.
LINK_DRAIN_S = 1.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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
    def __init__(self, argv: list[str], port: int, pipe_fd: int, workers: int) -> None:
        self.argv = argv
        self.port = port
        self.pipe_fd = pipe_fd  # the read end every worker inherits
        self.stopping = trio.Event()  # set once a signal asked the workers to stop
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.waiters = trio.CapacityLimiter(workers)  # one thread per worker's wait()
        self.metrics = GroupMetrics(workers)

    def command(self, worker_id: int, metrics_fd: int) -> list[str]:
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
            "--parent-pipe",
            str(self.pipe_fd),
            "--metrics-fd",
            str(metrics_fd),
        ]

    def spawn(self, worker_id: int) -> tuple[subprocess.Popen[bytes], socket.socket]:
        """Start worker ``worker_id``; returns it and our end of its metrics link."""
        ours, theirs = socket.socketpair()
        try:
            # Forked from this (the main) thread, so PR_SET_PDEATHSIG means "the parent".
            # A fork+exec takes milliseconds; the supervisor has nothing else to serve.
            proc = subprocess.Popen(
                self.command(worker_id, theirs.fileno()), pass_fds=(self.pipe_fd, theirs.fileno())
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # the worker's copy is its own: EOF on ours means it is gone
        return proc, ours

    async def keep_running(self, worker_id: int) -> None:
        while not self.stopping.is_set():
            started = trio.current_time()
            proc, link = self.spawn(worker_id)
            self.procs[worker_id] = proc
            LOG.info("worker %d started (pid %d)", worker_id, proc.pid)
            async with trio.open_nursery() as links:
                links.start_soon(self.metrics.serve_worker, worker_id, link)
                try:
                    status = await trio.to_thread.run_sync(
                        proc.wait, abandon_on_cancel=True, limiter=self.waiters
                    )
                finally:
                    if proc.returncode is None:  # we are being cancelled: do not orphan it
                        proc.kill()
                        with trio.CancelScope(shield=True):
                            await trio.to_thread.run_sync(proc.wait)
                # The link ends at its EOF; the deadline covers a descendant holding it open.
                links.cancel_scope.deadline = trio.current_time() + LINK_DRAIN_S
            if self.stopping.is_set():
                LOG.info("worker %d exited (%s)", worker_id, status)
                return
            LOG.error("worker %d died (status %s); restarting", worker_id, status)
            self.metrics.worker_restarted()
            if trio.current_time() - started < YOUNG_S:
                await trio.sleep(RESTART_PAUSE_S)

    def forward(self, signum: int) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signum)


async def _supervise(workers: int, argv: list[str], port: int) -> int:
    read_fd, write_fd = os.pipe()  # both close-on-exec; the read end is passed explicitly
    try:
        return await _supervise_with(_Supervisor(argv, port, read_fd, workers), workers)
    finally:
        os.close(read_fd)
        os.close(write_fd)


async def _supervise_with(sup: _Supervisor, workers: int) -> int:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:

        async def relay_signals() -> None:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    sup.forward(signal.SIGHUP)
                    continue
                LOG.info("%s: stopping %d workers", signal.Signals(signum).name, workers)
                sup.stopping.set()
                sup.forward(signal.SIGTERM)

        async with trio.open_nursery() as outer:
            outer.start_soon(relay_signals)
            outer.start_soon(sup.metrics.run)
            # Each keep_running task returns only once stopping and its worker has exited.
            async with trio.open_nursery() as pool:
                for worker_id in range(workers):
                    pool.start_soon(sup.keep_running, worker_id)
            outer.cancel_scope.cancel()
    return 0


def set_parent_death_signal() -> None:
    """Linux: have the kernel send SIGTERM to this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc: Any = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the pipe still works
        LOG.debug("prctl(PR_SET_PDEATHSIG) unavailable; relying on the parent pipe")


async def watch_parent(pipe_fd: int, on_parent_gone: Any) -> None:
    """Call ``on_parent_gone()`` once the supervisor's pipe reports EOF (it died)."""
    os.set_blocking(pipe_fd, False)
    while True:
        await trio.lowlevel.wait_readable(pipe_fd)
        try:
            data = os.read(pipe_fd, 1)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        if not data:
            LOG.error("the supervising parent process is gone; shutting down")
            on_parent_gone()
            return
