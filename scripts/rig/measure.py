"""Measured runs: the load options every load benchmark shares, and what one run records.

:func:`run_load` sends requests with wrk where it is installed (``--generator auto``), else
with our own generator (rig/load.py; ``--generator asyncio``, or its old name ``trio``).
:func:`requests_row` and :func:`streams_row` are one measured run each: a warm-up, then the
load with the CPU of the named processes, of us and of the machine taken around it
(rig/cpu.py), as one row of a benchmark's JSON document.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from rig.clients import raw_request
from rig.cpu import Cpu
from rig.load import LoadResult, run_requests, run_streams
from rig.procs import Proc
from rig.report import note, percentile
from rig.wrk import have_wrk, run_wrk

OVERHEAD_HEADER = "x-gateway-overhead-ms"


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """Options every load benchmark shares."""
    add = parser.add_argument
    add("--duration", type=float, default=10.0, help="seconds per run (10)")
    add("--warmup", type=float, default=2.0, help="warm-up seconds (2)")
    add("--connections", type=int, default=64, help="keep-alive connections (64)")
    add("--threads", type=int, default=1, help="wrk threads (1)")
    add(
        "--repeat",
        type=int,
        default=1,
        help="measured runs per row, against the same server; the median (by req/s) is shown",
    )
    add(
        "--generator",
        choices=["auto", "wrk", "asyncio", "trio"],
        default="auto",
        help="load generator: wrk if installed (auto), or ours (asyncio; trio: the same)",
    )
    add("--quick", action="store_true", help="short runs: 3 s after 1 s warm-up")
    add("--json", action="store_true", help="print JSON instead of the table")
    add("--keep-logs", metavar="DIR", help="copy the servers' logs here")


def resolve_generator(args: argparse.Namespace) -> str:
    """Set ``args.generator`` to ``wrk`` or ``asyncio``; a message if wrk is wanted but missing."""
    if args.generator == "trio":  # the old name of our generator
        args.generator = "asyncio"
    if args.generator == "auto":
        args.generator = "wrk" if have_wrk() else "asyncio"
    if args.generator == "wrk" and not have_wrk():
        return "wrk is not installed (apt-get install wrk)"
    return ""


def run_load(
    args: argparse.Namespace,
    port: int,
    path: str,
    bodies: Sequence[bytes],
    duration_s: float,
    *,
    method: str = "POST",
    header: str | None = None,
) -> LoadResult:
    """``args.connections`` connections sending ``bodies`` in turn (none: a GET)."""
    if args.generator == "wrk":
        return run_wrk(
            port, path, bodies, method=method, connections=args.connections,
            duration_s=duration_s, threads=args.threads, header=header,
        )  # fmt: skip
    requests = [raw_request(port, path, body, method=method) for body in bodies or [b""]]
    encoded = header.encode() if header else None
    return run_requests(requests, port, args.connections, duration_s, encoded)


def _cpu_row(used: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in used.items()}


def requests_row(
    procs: Mapping[str, Proc],
    port: int,
    path: str,
    bodies: list[bytes],
    args: argparse.Namespace,
    label: str,
) -> dict[str, Any]:
    """POST ``bodies`` in turn for ``args.duration``: load figures, CPU per request of each
    of ``procs``, and the gateway's ``x-gateway-overhead-ms`` header where it answers."""
    note(f"non-stream {label} ({len(bodies[0]):,} B body), c={args.connections} ...")
    if args.warmup:
        run_load(args, port, path, bodies, args.warmup, header=OVERHEAD_HEADER)
    cpu = Cpu(procs)
    res = run_load(args, port, path, bodies, args.duration, header=OVERHEAD_HEADER)
    used = cpu.stop()
    row = res.as_dict()
    row.update(body_bytes=len(bodies[0]), bodies_in_turn=len(bodies), cpu_s=_cpu_row(used))
    for name in procs:
        row[f"{name}_cpu_us_per_req"] = used[name] / res.requests * 1e6 if res.requests else 0.0
    if values := res.header_values:
        row["overhead_header_ms"] = {
            "count": len(values),
            "p50": percentile(values, 50),
            "p99": percentile(values, 99),
        }
    note(
        f"  {res.rps:,.0f} req/s  p50 {res.p50_ms:.2f} ms  p99 {res.p99_ms:.2f} ms  errors "
        f"{res.errors + res.non_2xx}; cores: "
        + ", ".join(f"{k} {v / used['wall']:.2f}" for k, v in used.items() if k != "wall")
    )
    return row


def streams_row(
    procs: Mapping[str, Proc],
    port: int,
    path: str,
    body: bytes,
    args: argparse.Namespace,
    upstream_events: int,
) -> dict[str, Any]:
    """Streams back to back on ``args.streams`` connections for ``args.duration``.

    Events are also counted in upstream events (``upstream_events`` per whole stream): the
    events the clients got in the window, partial streams included, times the upstream's
    events per stream over the client's, since a converted stream may carry a few more or
    fewer events than the upstream sent. CPU per event and per stream is the gateway's.
    """
    data = raw_request(port, path, body)
    if args.warmup:
        run_streams(port, data, args.streams, args.warmup)
    cpu = Cpu(procs)
    res = run_streams(port, data, args.streams, args.duration)
    used = cpu.stop()
    got = res.events_per_stream
    per_stream = sum(got) / len(got) if got else 0
    relayed = res.events * upstream_events / per_stream if per_stream else 0.0
    gw = used["gateway"]
    row = {
        "connections": args.streams,
        "duration_s": round(res.duration_s, 3),
        "streams": res.streams,
        "events": res.events,
        "events_per_s": res.events_per_s,
        "streams_per_s": res.streams_per_s,
        "client_events_per_stream": per_stream,
        "upstream_events_per_s": relayed / res.duration_s if res.duration_s else 0.0,
        "gateway_cpu_us_per_upstream_event": gw / relayed * 1e6 if relayed else 0,
        "first_event_p50_ms": percentile(res.first_event_ms, 50),
        "errors": res.errors + res.non_2xx,
        "cpu_s": _cpu_row(used),
        "gateway_cpu_cores": gw / used["wall"],
        "gateway_cpu_us_per_event": gw / res.events * 1e6 if res.events else 0,
        "gateway_cpu_us_per_stream": gw / res.streams * 1e6 if res.streams else 0,
    }
    note(
        f"  {res.events_per_s:,.0f} events/s ({res.streams_per_s:,.1f} streams/s), gateway CPU "
        f"{row['gateway_cpu_cores']:.2f} cores, client {used['client'] / used['wall']:.2f}, "
        f"upstream {used['upstream'] / used['wall']:.2f}"
    )
    return row
