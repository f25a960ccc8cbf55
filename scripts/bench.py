#!/usr/bin/env python
"""Benchmarks of the gateway on this machine (all load goes to 127.0.0.1).

    python scripts/bench.py server|proxy|convert|transport [options]   (--help for each)

One file per benchmark in scripts/benchmarks/, each giving a ``COMMAND``: (help, add its
options to a parser, run with the parsed arguments and return the exit status); the rig
they stand on is scripts/rig/. Every process started here is stopped on the way out
(SIGTERM, then SIGKILL to its process group), on Ctrl-C and SIGTERM too.
"""

from __future__ import annotations

import argparse
import signal
import sys

from benchmarks import convert, proxy, server, transport
from rig.measure import resolve_generator
from rig.procs import stop_all
from rig.report import note

COMMANDS = {m.__name__.split(".")[-1]: m.COMMAND for m in (server, proxy, convert, transport)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/bench.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}"
    )
    for name, (help_text, add_options, _run) in COMMANDS.items():
        add_options(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "repeat", 1) < 1:
        parser.error("--repeat must be at least 1")
    if getattr(args, "quick", False):  # each option's cap under --quick (rig.measure.option)
        for dest, cap in args.quick_caps.items():
            setattr(args, dest, min(getattr(args, dest), cap))
    if hasattr(args, "generator") and (problem := resolve_generator(args)):
        parser.error(problem)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    try:
        return COMMANDS[args.command][2](args)
    except KeyboardInterrupt:
        return 130
    except RuntimeError as exc:
        note(f"bench: {exc}")
        return 1
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
