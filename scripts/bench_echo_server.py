"""The gateway's real server with one extra route, ``POST /echo``, for scripts/bench.py.

The gateway has no echo endpoint (and must not grow a placeholder one), so the
POST benchmark serves this instead: :class:`gateway.app.App` with its own
routes plus ``POST /echo``, whose handler answers the request body as it came.
Everything else is what ``python -m gateway`` runs: settings from
:func:`gateway.config.load_config` (defaults < ``--config`` < ``GATEWAY_*``
environment < these flags), logging through :func:`gateway.logs.setup_logging`
(access lines on, to stderr: the benchmark redirects it to a file), the same
:class:`~gateway.server.listen.Server`, connection loop and router, and
SIGTERM/SIGINT start the same graceful shutdown.

Several processes can share one port with ``--reuse-port`` (SO_REUSEPORT),
as ``python -m gateway --workers N`` workers do.

    python scripts/bench_echo_server.py --port 8081 [--reuse-port] 2>access.log
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from gateway.app import App
from gateway.config import Config, ConfigError, load_config
from gateway.logs import flush_logging, setup_logging
from gateway.server.listen import open_listeners
from gateway.server.routes import Route

if TYPE_CHECKING:
    from gateway.server.connection import Exchange


class EchoApp(App):
    """The gateway's endpoints plus ``POST /echo``."""

    def routes(self) -> list[Route]:
        return [*super().routes(), Route("POST", "/echo", self.echo)]

    async def echo(self, ex: Exchange) -> None:
        await ex.respond(200, ex.request.body)


async def _on_signals(app: App, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for _ in signals:
            app.server.begin_shutdown()


async def serve(config: Config, *, reuse_port: bool) -> None:
    app = EchoApp(config)
    cfg = config.server
    listeners = await open_listeners(cfg.host, cfg.port, reuse_port=reuse_port)
    async with trio.open_nursery() as services:
        await services.start(_on_signals, app)
        await app.server.serve(listeners)
        services.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reuse-port", action="store_true", help="set SO_REUSEPORT")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error", "critical"])
    parser.add_argument("--log-format", choices=["json", "text"])
    args = parser.parse_args(argv)
    overrides: dict[str, dict[str, Any]] = {"server": {"host": args.host, "port": args.port}}
    if args.log_level:
        overrides.setdefault("logging", {})["level"] = args.log_level
    if args.log_format:
        overrides.setdefault("logging", {})["format"] = args.log_format
    try:
        config = load_config(args.config, overrides=overrides)
    except ConfigError as exc:
        print("bench_echo_server: the settings have problems:", *exc.problems, sep="\n  ")
        return 2
    setup_logging(config.logging.level, config.logging.format)
    try:
        trio.run(partial(serve, config, reuse_port=args.reuse_port))
        return 0
    finally:
        flush_logging()


if __name__ == "__main__":
    sys.exit(main())
