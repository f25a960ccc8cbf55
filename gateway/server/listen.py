"""Listening sockets, the accept loop, and graceful shutdown.

Theory of operation (trio's ``_highlevel_serve_listeners.py``, hypercorn's
``trio/run.py``). Three nursery levels: the server's lifetime (background
services the caller starts), the *handler nursery* holding one task per
connection, and the accept loops. Cancelling the accept loops stops new
connections without touching requests in flight.

Connection cap: ``max_connections`` slots are taken *before* accept, so past
the cap new connections wait in the kernel's backlog (they are accepted as
soon as one closes) instead of being refused. At the cap, a client waiting in
the backlog makes the server reclaim the longest-idle keep-alive connection
(slots.py), so idle keep-alives cannot lock new clients (health probes
included) out for ``keep_alive_s``.

What connections read of the server is its :class:`ServerContext`
(context.py); the app supplies the router, the dialects that word the
server's own errors (dialect.py) and the observer of finished requests.

accept() out of a resource (EMFILE, ENFILE, ENOBUFS, ENOMEM): the loop backs
off ``ACCEPT_CAPACITY_SLEEP_S`` and retries, logging at most once per
``ACCEPT_ERROR_LOG_S`` (with the count of failures since the last line).

Shutdown (:meth:`Server.begin_shutdown`, called on SIGTERM/SIGINT):

1. ``shutting_down`` is set at once: ``/health/ready`` answers 503;
2. after ``shutdown_delay_s`` the listeners close and the server *drains*:
   idle keep-alive connections close now, busy ones after their response,
   WebSocket sessions at once with 1001 "going away" (websocket.py);
3. requests still running after ``shutdown_grace_s`` are cancelled.
"""

from __future__ import annotations

import errno
import logging
import socket as stdlib_socket
import ssl
from typing import TYPE_CHECKING, Any

import trio

from gateway.server.admission import Admission
from gateway.server.connection import handle_connection
from gateway.server.context import ServerContext
from gateway.server.cors import CorsPolicy
from gateway.server.dialect import PLAIN
from gateway.server.slots import ConnectionSlots

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.server.context import Observer
    from gateway.server.dialect import Dialect, DialectForPath
    from gateway.server.routes import Router

__all__ = ["Server", "open_listeners"]

LOG = logging.getLogger("gateway.server")

#: accept() errors that mean "out of a resource for now": log, wait, retry.
ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
ACCEPT_CAPACITY_SLEEP_S = 0.1
ACCEPT_ERROR_LOG_S = 1.0
BACKLOG = 1024


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server TLS context for ``--tls-cert`` / ``--tls-key`` (HTTP/1.1 by ALPN).

    Raises:
        OSError: a file cannot be read; ssl.SSLError: they are not a valid pair.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    context.set_alpn_protocols(["http/1.1"])
    return context


async def open_listeners(
    host: str, port: int, *, reuse_port: bool = False
) -> list[trio.SocketListener]:
    """Bound, listening TCP sockets for ``host:port`` (every address it resolves to).

    ``reuse_port`` sets SO_REUSEPORT so several worker processes share the port.
    """
    infos = await trio.socket.getaddrinfo(
        host or None,
        port,
        type=stdlib_socket.SOCK_STREAM,
        flags=stdlib_socket.AI_PASSIVE,
    )
    listeners: list[trio.SocketListener] = []
    seen = set()
    for family, type_, proto, _, sockaddr in infos:
        if (family, sockaddr) in seen:
            continue
        seen.add((family, sockaddr))
        sock = trio.socket.socket(family, type_, proto)
        try:
            sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEPORT, 1)
            if family == stdlib_socket.AF_INET6:
                sock.setsockopt(stdlib_socket.IPPROTO_IPV6, stdlib_socket.IPV6_V6ONLY, 1)
            await sock.bind(sockaddr)
            sock.listen(BACKLOG)
        except OSError:
            sock.close()
            for listener in listeners:
                await listener.aclose()
            raise
        listeners.append(trio.SocketListener(sock))
    return listeners


class Server:
    """An HTTP/1.1 server: a router, settings, and the state shutdown needs.

    Args:
        config: the settings (``config.server`` is what this class reads).
        router: the endpoints.
        tls: serve HTTPS with this context.
        observer: called with the record of each finished request (after its
            access-log line).
        dialect: words the errors of routes that name no dialect
            (default: :data:`~gateway.server.dialect.PLAIN`).
        dialect_for_path: picks the dialect of a request that matched no
            route (default: ``dialect`` for every path).
    """

    def __init__(
        self,
        config: Config,
        router: Router,
        *,
        tls: ssl.SSLContext | None = None,
        observer: Observer | None = None,
        dialect: Dialect = PLAIN,
        dialect_for_path: DialectForPath | None = None,
    ) -> None:
        self._config = config
        self.tls = tls
        self.shutting_down = False
        self.connections = 0
        self._shutdown = trio.Event()
        self.slots = ConnectionSlots(config.server.max_connections)
        self.context = ServerContext(
            settings=config.server,
            router=router,
            dialect=dialect,
            dialect_for_path=dialect_for_path or (lambda _path: dialect),
            observer=observer,
            admission=Admission(config.server.max_inflight_bytes),
            slots=self.slots,
            cors=CorsPolicy.from_settings(
                config.cors.allow_origins, keys_in_use=bool(config.auth.keys)
            ),
        )
        self._accept_errors = 0  # accept() failures not yet logged
        self._accept_error_logged = -float("inf")

    @property
    def config(self) -> Config:
        """The settings. New ones apply to connections accepted from then on (the
        connection cap, the in-flight memory limit and the CORS policy stay as they
        were built)."""
        return self._config

    @config.setter
    def config(self, config: Config) -> None:
        self._config = config
        self.context.settings = config.server

    @property
    def router(self) -> Router:
        """The endpoints; a new router serves the requests that arrive from then on."""
        return self.context.router

    @router.setter
    def router(self, router: Router) -> None:
        self.context.router = router

    @property
    def admission(self) -> Admission:
        """The memory the requests in flight hold (admission.py)."""
        return self.context.admission

    @property
    def draining(self) -> bool:
        """Listeners closed: connections finish their response, then close."""
        return self.context.draining

    def begin_shutdown(self) -> None:
        """Start the graceful shutdown (idempotent, callable from any task)."""
        if not self.shutting_down:
            LOG.info("shutting down: ready answers 503, in-flight requests may finish")
        self.shutting_down = True
        self._shutdown.set()

    async def serve(
        self,
        listeners: list[trio.SocketListener] | None = None,
        *,
        task_status: trio.TaskStatus[list[Any]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until :meth:`begin_shutdown`, then drain; returns when every connection closed.

        ``task_status.started`` gets the bound addresses.
        """
        cfg = self.config.server
        if listeners is None:
            listeners = await open_listeners(cfg.host, cfg.port)
        async with trio.open_nursery() as handler_nursery:
            async with trio.open_nursery() as accept_nursery:
                for listener in listeners:
                    accept_nursery.start_soon(self._accept_loop, listener, handler_nursery)
                addresses = [listener.socket.getsockname() for listener in listeners]
                for addr in addresses:
                    scheme = "https" if self.tls else "http"
                    LOG.info("listening on %s://%s:%d", scheme, addr[0], addr[1])
                task_status.started(addresses)
                await self._shutdown.wait()
                await trio.sleep(cfg.shutdown_delay_s)
                accept_nursery.cancel_scope.cancel()
            for listener in listeners:
                await listener.aclose()
            self.context.start_draining()
            self.slots.close_idle()
            handler_nursery.cancel_scope.deadline = trio.current_time() + cfg.shutdown_grace_s
            LOG.info(
                "listener closed; %d connection(s) have %g s to finish",
                self.connections,
                cfg.shutdown_grace_s,
            )
        LOG.info("all connections closed")

    async def _accept_loop(
        self, listener: trio.SocketListener, handler_nursery: trio.Nursery
    ) -> None:
        slots = self.slots
        while True:
            while slots.at_cap:
                # At the cap: once a client waits in the backlog, make room for it; with
                # no idle keep-alive to reclaim, wait for a slot or for one to turn idle.
                await trio.lowlevel.wait_readable(listener.socket)
                if slots.reclaim_idle():
                    break
                await slots.wait_room()
            await slots.acquire()
            try:
                stream = await listener.accept()
            except OSError as exc:
                slots.release()
                if exc.errno in ACCEPT_CAPACITY_ERRNOS:
                    self._log_accept_error(exc)
                    await trio.sleep(ACCEPT_CAPACITY_SLEEP_S)
                    continue
                raise
            except BaseException:
                slots.release()
                raise
            handler_nursery.start_soon(self._connection_task, stream)

    def _log_accept_error(self, exc: OSError) -> None:
        self._accept_errors += 1
        now = trio.current_time()
        if now - self._accept_error_logged < ACCEPT_ERROR_LOG_S:
            return
        LOG.error(
            "accept() failed (%s) %d time(s) since the last report; backing off %g s",
            errno.errorcode.get(exc.errno or 0, exc.errno),
            self._accept_errors,
            ACCEPT_CAPACITY_SLEEP_S,
        )
        self._accept_errors = 0
        self._accept_error_logged = now

    async def _connection_task(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        try:
            if self.tls is not None:
                stream = trio.SSLStream(stream, self.tls, server_side=True)
            await handle_connection(self.context, stream)
        except Exception:
            # A bug in one connection must never take the server down with it.
            LOG.exception("connection task failed")
        finally:
            self.connections -= 1
            self.slots.release()
