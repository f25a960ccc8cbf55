#!/usr/bin/env python
"""Benchmarks of the gateway on this machine (all load goes to 127.0.0.1).

    python scripts/bench.py server|proxy|convert|transport|state [options]   (--help for each)

One file per benchmark in scripts/benchmarks/, each giving a ``COMMAND``: (help, add its
options to a parser, run); the rig they stand on is scripts/rig/. Every process started
here is stopped on the way out, on Ctrl-C and SIGTERM too.
"""

from __future__ import annotations

import argparse
import signal
import sys

from benchmarks import convert, proxy, server, state, transport
from rig.measure import resolve_generator
from rig.procs import stop_all
from rig.report import note

COMMANDS = {
    m.__name__.split(".")[-1]: m.COMMAND for m in (server, proxy, convert, transport, state)
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench.py", description=__doc__.split("\n")[0])
    metavar = "{" + ",".join(COMMANDS) + "}"
    sub = parser.add_subparsers(dest="command", required=True, metavar=metavar)
    for name, (text, add_options, _run) in COMMANDS.items():
        add_options(sub.add_parser(name, help=text, description=text))
    args = parser.parse_args(argv)
    if getattr(args, "repeat", 1) < 1:
        parser.error("--repeat must be at least 1")
    for dest, cap in getattr(args, "quick_caps", {}).items() if getattr(args, "quick", 0) else ():
        setattr(args, dest, min(getattr(args, dest), cap))  # rig.measure.option(quick=cap)
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
