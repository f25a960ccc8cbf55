"""Command line: ``python -m gateway [serve|check] ...``.

``serve`` (the default) parses the flags, loads the settings (defaults < TOML
< environment < flags), sets up logging and runs the gateway, in this process
or, with ``--workers N`` > 1, in N worker processes under a supervisor.
``check`` validates a transformer directory and exits 1 on any problem
(:mod:`gateway.check`).

Each command imports what it runs inside its own function, so ``--help`` and
``--version`` answer without loading the server, httpx or the converters (not
to dodge an import cycle: there is none to dodge).
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Sequence
from functools import partial
from typing import Any

from gateway._version import __version__

__all__ = ["build_parser", "main"]

_SUBCOMMANDS = ("serve", "check")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gateway",
        description=textwrap.fill(
            "An LLM API gateway: OpenAI, Anthropic and Gemini clients reach any provider "
            "described in the transformer directory. Settings resolve as defaults < TOML "
            "file < GATEWAY_<SECTION>__<KEY> environment variables < these flags.",
            width=79,
        ),
    )
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{serve,check}")

    serve = sub.add_parser("serve", help="run the gateway (the default command)")
    serve.add_argument(
        "--transformers",
        metavar="DIR",
        help="directory of provider transformer *.json files (default: ./transformers)",
    )
    serve.add_argument("--config", metavar="FILE", help="TOML settings file")
    serve.add_argument("--host", help="address to listen on (default: 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port to listen on (default: 3000)")
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes sharing the port with SO_REUSEPORT (default: 1)",
    )
    serve.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error", "critical"],
        help="log level (default: info)",
    )
    serve.add_argument(
        "--log-format", choices=["json", "text"], help="log line format (default: text)"
    )
    serve.add_argument("--tls-cert", metavar="FILE", help="certificate chain (PEM) for HTTPS")
    serve.add_argument("--tls-key", metavar="FILE", help="private key (PEM) for HTTPS")
    serve.add_argument("--worker-id", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--parent-pipe", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--metrics-fd", type=int, help=argparse.SUPPRESS)

    check = sub.add_parser("check", help="validate transformer files; exit 1 on any problem")
    check.add_argument(
        "--transformers", metavar="DIR", default="transformers", help="the directory to check"
    )
    # `python -m gateway --help` shows the default command's flags too: they are what
    # a new user types first (`python -m gateway --port 8080` runs `serve`).
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "serve is the default command: `python -m gateway [serve] [flags]`. Its flags:\n\n"
        + _options_part(serve.format_help())
        + "\n`python -m gateway check --help` describes check."
    )
    return parser


def _options_part(help_text: str) -> str:
    """The option list of a subcommand's help (its usage line and title dropped)."""
    _, sep, options = help_text.partition("options:\n")
    return options if sep else help_text


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Flags that were given, as ``{section: {key: value}}``."""
    table = {
        "host": ("server", "host"),
        "port": ("server", "port"),
        "workers": ("server", "workers"),
        "tls_cert": ("server", "tls_cert"),
        "tls_key": ("server", "tls_key"),
        "transformers": ("transformers", "dir"),
        "log_level": ("logging", "level"),
        "log_format": ("logging", "format"),
    }
    out: dict[str, dict[str, Any]] = {}
    for attr, (section, key) in table.items():
        value = getattr(args, attr, None)
        if value is not None:
            out.setdefault(section, {})[key] = value
    return out


def _serve(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import trio

    from gateway.config import ConfigError, load_config
    from gateway.logs import flush_logging, setup_logging

    try:
        config = load_config(args.config, overrides=_overrides(args))
    except ConfigError as exc:
        print("gateway: the settings have problems:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    setup_logging(config.logging.level, config.logging.format)
    try:
        if config.server.workers > 1 and args.worker_id is None:
            from gateway.server.workers import supervise

            return supervise(config, list(argv))
        from gateway.app import StartupError, run

        if args.parent_pipe is not None:
            from gateway.server.workers import set_parent_death_signal

            set_parent_death_signal()
        try:
            trio.run(
                partial(
                    run,
                    config,
                    reuse_port=args.worker_id is not None,
                    parent_pipe=args.parent_pipe,
                    metrics_fd=args.metrics_fd,
                )
            )
        except StartupError as exc:
            print(f"gateway: {exc}", file=sys.stderr)
            return 1
        return 0
    except OSError as exc:
        print(
            f"gateway: cannot listen on {config.server.host}:{config.server.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    finally:
        flush_logging()


def _check(args: argparse.Namespace) -> int:
    from gateway.check import run_check

    return run_check(args.transformers, os.environ)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or (argv[0] not in _SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv = ["serve", *argv]
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(args)
    return _serve(args, argv[1:])


if __name__ == "__main__":
    sys.exit(main())
