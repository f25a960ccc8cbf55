"""The application: its endpoints, and :func:`run`, which wires the services together.

``run(config)`` is what ``python -m gateway serve`` calls in each worker: it
loads the transformer directory (and keeps polling it), serves HTTP, and
turns signals into actions: SIGTERM and SIGINT start the graceful shutdown,
SIGHUP reloads the transformers at once and reopens the audit log.

Each finished request's record goes to the metrics and, when
``logging.audit_log`` is set, to the audit log (gateway.audit_log): every
request but those of :data:`UNAUDITED_PATHS`, the probes a platform sends
every few seconds, which would drown the lines that matter.

A worker of ``--workers N`` also keeps its metrics link to the supervisor,
and answers ``/metrics`` with the whole group's (gateway.metrics_group).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import ssl
import threading
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import trio

from gateway.audit_log import AuditLog
from gateway.config import Config
from gateway.dialects import DEFAULT, DIALECTS, dialect_for_path
from gateway.edge.catalog import KeyCatalog
from gateway.edge.clientkeys import ClientKeys, KeyFileError, key_texts, presented_credentials
from gateway.edge.gate import Edge
from gateway.errors import GatewayError, Unauthorized
from gateway.formats import FORMATS
from gateway.json_array import JsonArrayExchange
from gateway.logs import dropped_log_records, flush_logging
from gateway.metrics import Metrics
from gateway.metrics_group import SupervisorLink
from gateway.prometheus import CONTENT_TYPE
from gateway.proxy import Proxy
from gateway.proxy.realtime import REALTIME_PATH, Realtime, Settle
from gateway.proxy.rest_sync import share_key_rests
from gateway.record import CallRecord, call_record
from gateway.routing import RegistryCatalog
from gateway.server.listen import Server, open_listeners, tls_context
from gateway.server.routes import Route, Router
from gateway.server.workers import watch_parent
from gateway.state.make import make_state
from gateway.state.shared import RedisState
from gateway.transformers.registry import RegistryHolder
from gateway.upstream import UpstreamClient

if TYPE_CHECKING:
    from gateway.call import Call
    from gateway.catalog import Catalog
    from gateway.formats.format import Endpoint, Format
    from gateway.server.exchange import Exchange, HttpRecord
    from gateway.server.routes import Handler
    from gateway.state.protocol import State

__all__ = ["App", "StartupError", "run"]

METRICS_CONTENT_TYPE = CONTENT_TYPE.encode("ascii")
NO_GROUP_METRICS = b"The supervisor did not gather the workers' metrics in time; try again.\n"
LIVE_BODY = b'{"status":"live"}'  # probes hit this often: no JSON encoding per request
#: Bodies larger than this are decoded in a worker thread. json.loads takes about
#: 20 ms per MiB of chat JSON (measured): 256 KiB stalls the loop ~5 ms at most,
#: and a thread hop costs ~60 us.
THREAD_DECODE_BYTES = 256 * 1024
#: After SIGTERM, the process ends within shutdown_delay_s + shutdown_grace_s plus this,
#: whatever holds it (a thread blocked in a read, a stuck task).
EXIT_MARGIN_S = 5.0
#: At exit, how long the audit log's last lines may take to reach the file.
AUDIT_CLOSE_S = 5.0
#: The gateway's own endpoints, which the audit log leaves out.
UNAUDITED_PATHS = ("/health/live", "/health/ready", "/health/startup", "/metrics")

LOG = logging.getLogger("gateway")


class StartupError(Exception):
    """The gateway cannot start; the message says why and what to fix."""


def _tls(config: Config) -> ssl.SSLContext | None:
    cfg = config.server
    if not (cfg.tls_cert or cfg.tls_key):
        return None
    try:
        return tls_context(cfg.tls_cert, cfg.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(
            f"cannot load the TLS certificate {cfg.tls_cert!r} and key {cfg.tls_key!r}: {exc}"
        ) from exc


class App:
    """The endpoints and the state they read. Owned by :func:`run` (or a test).

    Args:
        config: the settings.
        registry: the transformer snapshot holder (None: no providers at all).
        upstream: the client towards providers (a default one when None).
        state: where limits are counted (None: as ``config.state`` says, see make_state).

    Raises:
        StartupError: a client key's ``key_file`` cannot be read.
    """

    def __init__(
        self,
        config: Config,
        *,
        registry: RegistryHolder | None = None,
        upstream: UpstreamClient | None = None,
        state: State | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.upstream = upstream or UpstreamClient()
        #: Client-key limits, budgets, usage, provider slots and key rests (gateway.state).
        self.state: State = state if state is not None else make_state(config.state)
        state = self.state
        self.metrics = Metrics(
            reload_counts=(lambda: registry.reload_counts) if registry is not None else None,
            log_records_dropped=self._log_records_dropped,
            # gateway_redis_up only where there is a Redis (absent, not 1, without one)
            redis_up=(lambda: state.up) if isinstance(state, RedisState) else None,
        )
        self.proxy = (
            Proxy(registry, self.upstream, metrics=self.metrics, state=state)
            if registry is not None
            else None
        )
        #: A worker's link to its supervisor (--workers N): /metrics is then the group's.
        self.group: SupervisorLink | None = None
        try:
            keys = ClientKeys(config.auth)
            # client keys are redacted from the bodies the audit log may hold
            secrets = key_texts(config.auth) if config.logging.log_bodies else []
        except KeyFileError as exc:
            raise StartupError(str(exc)) from None
        self.audit = AuditLog.from_settings(
            config.logging, secrets=secrets, skip_paths=UNAUDITED_PATHS
        )
        self.edge = Edge(keys, state, on_refusal=self.metrics.limit_rejected)
        # The Realtime WebSocket relay shares the proxy's keys, turns and metrics.
        self.realtime = (
            Realtime(self.proxy, admit=self._admit_session) if self.proxy is not None else None
        )
        self.server = Server(
            config,
            Router(self.routes()),
            tls=_tls(config),
            observer=self.metrics.observe if self.audit is None else self._observe,
            dialect=DEFAULT,
            dialect_for_path=dialect_for_path,
        )

    def _observe(self, record: HttpRecord) -> None:
        """A finished request, with the audit log on: its metrics, then its audit line."""
        self.metrics.observe(record)
        assert self.audit is not None
        self.audit.observe(record)

    def _log_records_dropped(self) -> int:
        audit = self.audit.dropped if self.audit is not None else 0
        return dropped_log_records() + audit

    def routes(self) -> list[Route]:
        routes = [
            Route("GET", "/health/live", self.live),
            Route("GET", "/health/ready", self.ready),
            Route("GET", "/health/startup", self.startup),
            Route("GET", "/metrics", self.metrics_endpoint),
        ]
        if any(key.admin for key in self.edge.keys.by_name.values()):
            routes.append(Route("GET", "/v1/usage", self.usage))
        if self.proxy is None:
            return routes
        # Every format's client endpoints (gateway/formats/<fmt>/__init__.py lists them);
        # errors on a route are worded in its format (its dialect, gateway.dialects).
        for fmt in FORMATS.values():
            for endpoint in fmt.endpoints:
                handler: Handler
                if endpoint.read is not None:  # forwarded to providers: may wait on them
                    handler = partial(self._proxy, fmt=fmt, endpoint=endpoint)
                else:
                    handler = partial(self._answer, endpoint=endpoint)
                watch = endpoint.read is not None
                dialect = DIALECTS[fmt.name]
                routes.append(Route(endpoint.method, endpoint.path, handler, dialect, watch))
        if self.realtime is not None:  # OpenAI's Realtime API: the default format's errors
            routes.append(
                Route("GET", REALTIME_PATH, self.realtime.handle, DEFAULT, websocket=True)
            )
        return routes

    # -- endpoints of the formats ----------------------------------------------------------

    async def _proxy(self, ex: Exchange, *, fmt: Format, endpoint: Endpoint) -> None:
        assert self.proxy is not None
        assert endpoint.read is not None
        # The record marks a proxied request (for the metrics) before anything can fail.
        record = ex.facts = CallRecord(client_format=ex.dialect.name)
        edge = self.edge
        key = edge.authenticate(ex.request)  # before the body is even parsed
        if key is not None:
            record.key_name = key.name
        self.metrics.inflight.inc()
        try:
            if len(ex.request.body) > THREAD_DECODE_BYTES:
                call = await trio.to_thread.run_sync(endpoint.read, ex.request)
            else:
                call = endpoint.read(ex.request)
            record.model = call.model
            edge.permit(key, call.model)
            ticket = await edge.admit(ex, key, call)
            try:
                if call.stream and endpoint.json_array and endpoint.json_array(ex.request):
                    await self._json_array(ex, fmt, call)
                else:
                    await self.proxy.handle(ex, call)
            finally:
                await edge.settle(ticket, record)
        finally:
            self.metrics.inflight.dec()

    async def _admit_session(self, ex: Exchange, model: str) -> Settle:
        """The edge's checks for a Realtime session: key, model, limits (no tokens reserved)."""
        key = self.edge.authenticate(ex.request)
        record = call_record(ex)
        if key is not None:
            record.key_name = key.name
        self.edge.permit(key, model)
        ticket = await self.edge.admit_tokens(ex, key, 0) if key is not None else None
        return partial(self.edge.settle, ticket)

    async def _json_array(self, ex: Exchange, fmt: Format, call: Call) -> None:
        """A stream the client wants as one JSON array (Gemini without ``alt=sse``)."""
        assert self.proxy is not None
        array = JsonArrayExchange(ex)
        try:
            # It stands in for the Exchange: every attribute but the body's writes passes through.
            await self.proxy.handle(cast("Exchange", array), call)
        except GatewayError as exc:
            if not ex.started:
                raise  # a whole error response, as for any request
            status = fmt.error_status(exc.kind, exc.status_hint)
            await array.send(fmt.stream_error(exc.kind, exc.message, status=status))
        await array.close()

    async def _answer(self, ex: Exchange, *, endpoint: Endpoint) -> None:
        """An endpoint the gateway answers itself from the transformer snapshot (model lists)."""
        assert self.registry is not None
        assert endpoint.answer is not None
        key = self.edge.authenticate(ex.request)
        catalog: Catalog = RegistryCatalog(self.registry.current)
        if key is not None:
            catalog = KeyCatalog(catalog, key)
        await ex.respond_json(200, endpoint.answer(ex.request, catalog))

    # -- the gateway's own endpoints -------------------------------------------------------

    async def metrics_endpoint(self, ex: Exchange) -> None:
        keys = self.edge.keys
        if keys.metrics_digest is not None and not keys.is_metrics_key(
            presented_credentials(ex.request)
        ):
            raise Unauthorized("/metrics needs the metrics key (auth.metrics_key) as Bearer token")
        if self.group is None:
            await ex.respond(200, self.metrics.render(), content_type=METRICS_CONTENT_TYPE)
            return
        body = await self.group.exposition()
        if body is None:  # never this worker's counters alone: the group's would seem to fall
            await ex.respond(503, NO_GROUP_METRICS, content_type=b"text/plain; charset=utf-8")
            return
        await ex.respond(200, body, content_type=METRICS_CONTENT_TYPE)

    async def usage(self, ex: Exchange) -> None:
        await ex.respond_json(200, await self.edge.usage_report(ex.request))

    # -- health ----------------------------------------------------------------------------

    async def live(self, ex: Exchange) -> None:
        await ex.respond(200, LIVE_BODY)

    def _started(self) -> bool:
        return self.registry is None or self.registry.initial_load_done.is_set()

    async def startup(self, ex: Exchange) -> None:
        if self._started():
            await ex.respond_json(200, {"status": "started"})
        else:
            await ex.respond_json(503, {"status": "starting"})

    async def ready(self, ex: Exchange) -> None:
        transformers: dict[str, Any] = {"loaded": [], "errors": {}}
        if self.registry is not None:
            snapshot = self.registry.current
            transformers = {"loaded": list(snapshot.loaded), "errors": dict(snapshot.errors)}
        if self.server.shutting_down:
            status, code = "shutting_down", 503
        elif not self._started():
            status, code = "starting", 503
        elif transformers["errors"] or not self.state.up:
            status, code = "degraded", 200
        else:
            status, code = "ready", 200
        body = {"status": status, "transformers": transformers}
        if self.config.state.redis_url:  # degraded, not 503: every pod sees the same Redis
            body["state"] = {"redis": "up" if self.state.up else "down"}
        await ex.respond_json(code, body)


async def _handle_signals(app: App, *, task_status: trio.TaskStatus[None]) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        _arm_exit_deadline_on_signal(app, signal.SIGTERM, signal.SIGINT)
        task_status.started()
        async for signum in signals:
            if signum == signal.SIGHUP:
                if app.audit is not None:
                    LOG.info("SIGHUP: reopening the audit log")
                    app.audit.reopen()
                if app.registry is not None:
                    LOG.info("SIGHUP: reloading transformers")
                    app.registry.request_reload()
            else:
                LOG.info("%s received", signal.Signals(signum).name)
                _shut_down(app)


def _shut_down(app: App) -> None:
    """The graceful shutdown, with a deadline after which the process ends regardless."""
    _arm_exit_deadline(app)
    app.server.begin_shutdown()


_exit_armed = False


def _arm_exit_deadline(app: App) -> None:
    global _exit_armed
    if not _exit_armed:
        _exit_armed = True
        cfg = app.config.server
        _exit_after(cfg.shutdown_delay_s + cfg.shutdown_grace_s + EXIT_MARGIN_S)


def _arm_exit_deadline_on_signal(app: App, *signums: int) -> None:
    """Arm the exit deadline in the signal handler itself, not in a trio task.

    trio's handler only queues the signal for a task; if the event loop is
    stuck (a CPU-bound bug, a blocking call), that task never runs. Python
    runs signal handlers in the main thread between bytecodes (and interrupts
    sleeps for them), so a wrapper around trio's handler arms the deadline
    however stuck the loop is. trio restores the original handlers on exit.
    """
    for signum in signums:
        trio_handler = signal.getsignal(signum)
        if not callable(trio_handler):
            continue

        def on_signal(num: int, frame: Any, trio_handler: Any = trio_handler) -> None:
            _arm_exit_deadline(app)
            trio_handler(num, frame)

        signal.signal(signum, on_signal)


def _exit_after(seconds: float) -> None:
    """End the process after ``seconds`` even if the graceful shutdown hangs.

    A daemon thread, not a trio task: it must fire even when the event loop or
    a worker thread is stuck (a blocking read the loader cannot cancel, say).
    """

    def force_exit() -> None:
        LOG.error("shutdown did not finish within %g s; exiting now", seconds)
        flusher = threading.Thread(target=flush_logging, daemon=True)
        flusher.start()
        flusher.join(1.0)  # a blocked stderr must not hold the exit either
        os._exit(1)

    timer = threading.Timer(seconds, force_exit)
    timer.daemon = True
    timer.start()


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def run(
    config: Config,
    *,
    reuse_port: bool = False,
    parent_pipe: int | None = None,
    metrics_fd: int | None = None,
    task_status: trio.TaskStatus[list[Any]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the gateway until a graceful shutdown completes.

    ``parent_pipe``: a worker's read end of its supervisor's pipe; EOF there (the
    supervisor died) starts the graceful shutdown, as SIGTERM does.
    ``metrics_fd``: a worker's end of its metrics link to the supervisor.
    """
    registry = RegistryHolder(config.transformers.dir)
    app = App(config, registry=registry)
    if metrics_fd is not None:
        app.group = SupervisorLink(socket.socket(fileno=metrics_fd), app.metrics.statistics)
    cfg = config.server
    if app.edge.keys.open and not _loopback(cfg.host):
        LOG.warning(
            "no client keys are configured ([auth] keys): anyone who can reach %s:%d may use "
            "every provider; set keys, or bind to 127.0.0.1",
            cfg.host,
            cfg.port,
        )
    listeners = await open_listeners(cfg.host, cfg.port, reuse_port=reuse_port)
    try:
        async with trio.open_nursery() as services:
            await services.start(_handle_signals, app)
            if parent_pipe is not None:
                services.start_soon(watch_parent, parent_pipe, partial(_shut_down, app))
            if app.group is not None:
                services.start_soon(app.group.run)
            services.start_soon(
                partial(registry.run_poller, poll_interval_s=config.transformers.poll_interval_s)
            )
            await services.start(app.state.run)
            if config.state.redis_url:  # settles off the requests' path
                await services.start(app.edge.run_settler)
            if config.state.redis_url and app.proxy is not None:  # rests shared with the others
                services.start_soon(share_key_rests, app.proxy.keys, app.state, registry)
            await app.server.serve(listeners, task_status=task_status)
            services.cancel_scope.cancel()
    finally:
        with trio.move_on_after(2, shield=True):
            await app.upstream.aclose()
        with trio.move_on_after(2, shield=True):
            await app.state.aclose()
        if app.audit is not None:  # its last lines out, in a thread (it joins the writer)
            with trio.move_on_after(AUDIT_CLOSE_S, shield=True):
                await trio.to_thread.run_sync(app.audit.close, abandon_on_cancel=True)
