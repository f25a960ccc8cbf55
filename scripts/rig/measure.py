"""Measured runs: the options load benchmarks share, the wrk driver, what one run records.

Requests go through wrk where it is installed (rig/wrk.lua prints exact percentiles as one
JSON line), else through ours (rig/load.py); a run takes the CPU of the named processes,
of us and of the rest of the machine around it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rig.clients import raw_request
from rig.load import LoadResult, run_load
from rig.procs import HOST, Cpu, Proc
from rig.report import note, percentile

OVERHEAD_HEADER = "x-gateway-overhead-ms"
WRK_LUA = Path(__file__).with_name("wrk.lua")
T = TypeVar("T")


def option(
    parser: argparse.ArgumentParser, flag: str, default: float, text: str, quick: float = 0
) -> None:
    """``flag`` of the type of ``default``; ``quick``: its cap under ``--quick``."""
    parser.add_argument(flag, type=type(default), default=default, help=f"{text} ({default:g})")
    if quick:
        caps = {**(parser.get_default("quick_caps") or {}), flag[2:].replace("-", "_"): quick}
        parser.set_defaults(quick_caps=caps)


def add_load_options(
    parser: argparse.ArgumentParser, connections: int = 64, repeat: str = ""
) -> None:
    """Options every load benchmark shares; ``repeat``: what ``--repeat`` does, if not the
    usual."""
    option(parser, "--duration", 10.0, "seconds per run", quick=3.0)
    option(parser, "--warmup", 2.0, "warm-up seconds", quick=1.0)
    option(parser, "--connections", connections, "keep-alive connections")
    option(parser, "--threads", 1, "wrk threads")
    # fmt: off
    add = parser.add_argument
    add("--repeat", type=int, default=1, help=repeat
        or "measured runs per row, against the same server; the median (by req/s) is shown")
    add("--generator", choices=["auto", "wrk", "asyncio", "trio"], default="auto",
        help="load generator: wrk if installed (auto), or ours (asyncio; trio: the same)")
    add("--quick", action="store_true", help="short runs: 3 s after 1 s warm-up")
    add("--json", action="store_true", help="print JSON instead of the table")
    add("--keep-logs", metavar="DIR", help="copy the servers' logs here")
    # fmt: on


def resolve_generator(args: argparse.Namespace) -> str:
    """Set ``args.generator`` to ``wrk`` or ``asyncio``; a message if wrk is wanted but missing."""
    wrk = shutil.which("wrk") is not None
    aliases = {"trio": "asyncio", "auto": "wrk" if wrk else "asyncio"}
    args.generator = aliases.get(args.generator, args.generator)
    return "" if wrk or args.generator != "wrk" else "wrk is not installed (apt-get install wrk)"


def run_wrk(
    port: int, path: str, bodies: Sequence[bytes], duration_s: float, *, method: str,
    connections: int, threads: int = 1, header: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> LoadResult:  # fmt: skip
    """wrk: ``method path`` with ``bodies`` in turn (none: a GET) and ``headers`` on each,
    collecting the response header ``header``."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        files = [Path(tmp, f"body{i}") for i in range(len(bodies))]
        for file, body in zip(files, bodies, strict=True):
            file.write_bytes(body)
        values = Path(tmp, "values")
        cmd = ["wrk", f"-t{max(1, min(threads, connections))}", f"-c{connections}", "--timeout=10s"]
        cmd += [arg for k, v in (headers or {}).items() for arg in ("-H", f"{k}: {v}")]
        cmd += [
            f"-d{max(1, round(duration_s))}s",
            "-s",
            str(WRK_LUA),
            f"http://{HOST}:{port}{path}",
        ]
        cmd += ["--", method, header or "", str(values), *map(str, files)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), "")
        if proc.returncode != 0 or not line:
            raise RuntimeError(f"wrk failed (exit {proc.returncode}): {proc.stderr or proc.stdout}")
        header_values = [float(v) for v in values.read_text().split()]
    raw = json.loads(line.split(" ", 1)[1])
    took, count = raw["duration_us"] / 1e6, int(raw["requests"])
    return LoadResult(
        "wrk", count, round(took, 3), count / took if took else 0.0,
        *(raw[f"p{p}_us"] / 1000 for p in (50, 90, 99)),
        errors=sum(int(raw[k]) for k in ("connect", "read", "write", "timeout")),
        non_2xx=int(raw["status"]), header_values=header_values,
    )  # fmt: skip


def send(
    args: argparse.Namespace, port: int, path: str, bodies: Sequence[bytes], duration_s: float,
    *, method: str = "POST", header: str | None = None, headers: Mapping[str, str] | None = None,
) -> LoadResult:  # fmt: skip
    """``args.connections`` connections sending ``bodies`` in turn (none: a GET), with
    ``headers`` (``authorization``)."""
    if args.generator == "wrk":
        return run_wrk(port, path, bodies, duration_s, method=method, header=header,
                       headers=headers, connections=args.connections,
                       threads=args.threads)  # fmt: skip
    requests = [raw_request(port, path, body, dict(headers or {}), method=method)
                for body in bodies or [b""]]  # fmt: skip
    got = run_load(port, requests, args.connections, duration_s, header and header.encode())
    return got.result()


def measured(
    args: argparse.Namespace, procs: Mapping[str, Proc | Sequence[Proc]],
    load: Callable[[float], T], warmup: bool = True,
) -> tuple[T, dict[str, float]]:  # fmt: skip
    """``load(args.warmup)`` (if ``warmup``), then ``load(args.duration)`` and the CPU
    seconds around it: of ``procs`` by name, ``client`` (us), ``other`` and ``wall``."""
    if warmup and args.warmup:
        load(args.warmup)
    cpu = Cpu(procs)
    return load(args.duration), cpu.stop()


def requests_row(
    procs: Mapping[str, Proc], port: int, path: str, bodies: list[bytes],
    args: argparse.Namespace, label: str,
) -> dict[str, Any]:  # fmt: skip
    """POST ``bodies`` in turn: load figures, CPU per request of each of ``procs``, and the
    gateway's ``x-gateway-overhead-ms`` header where it answers."""
    note(f"non-stream {label} ({len(bodies[0]):,} B body), c={args.connections} ...")
    res, used = measured(
        args, procs, lambda s: send(args, port, path, bodies, s, header=OVERHEAD_HEADER)
    )
    row = res.as_dict()
    row.update(body_bytes=len(bodies[0]), bodies_in_turn=len(bodies), cpu_s=_rounded(used))
    for name in procs:
        row[f"{name}_cpu_us_per_req"] = used[name] / res.requests * 1e6 if res.requests else 0.0
    if values := res.header_values:
        row["overhead_header_ms"] = {"count": len(values), "p50": percentile(values, 50),
                                     "p99": percentile(values, 99)}  # fmt: skip
    cores = ", ".join(f"{k} {v / used['wall']:.2f}" for k, v in used.items() if k != "wall")
    note(f"  {res.rps:,.0f} req/s  p50 {res.p50_ms:.2f} ms  p99 {res.p99_ms:.2f} ms  errors "
         f"{res.errors + res.non_2xx}; cores: {cores}")  # fmt: skip
    return row


def streams_row(
    procs: Mapping[str, Proc], port: int, path: str, body: bytes, args: argparse.Namespace,
    upstream_events: int,
) -> dict[str, Any]:  # fmt: skip
    """Streams back to back on ``args.streams`` connections (our generator), events also
    counted in upstream events (``upstream_events`` per whole stream: a converted stream
    may carry a few more or fewer events than the upstream sent). CPU is the gateway's."""
    data = [raw_request(port, path, body)]
    res, used = measured(args, procs, lambda s: run_load(port, data, args.streams, s, stream=True))
    got, gw = res.events_per_stream, used["gateway"]
    per_stream = sum(got) / len(got) if got else 0
    relayed = res.events * upstream_events / per_stream if per_stream else 0.0
    row = {
        "connections": args.streams, "duration_s": round(res.duration_s, 3),
        "streams": res.streams, "events": res.events, "events_per_s": res.per_s(res.events),
        "streams_per_s": res.per_s(res.streams), "client_events_per_stream": per_stream,
        "upstream_events_per_s": res.per_s(relayed),
        "gateway_cpu_us_per_upstream_event": gw / relayed * 1e6 if relayed else 0,
        "first_event_p50_ms": percentile(res.first_event_ms, 50),
        "errors": res.errors + res.non_2xx, "cpu_s": _rounded(used),
        "gateway_cpu_cores": gw / used["wall"],
        "gateway_cpu_us_per_event": gw / res.events * 1e6 if res.events else 0,
        "gateway_cpu_us_per_stream": gw / res.streams * 1e6 if res.streams else 0,
    }  # fmt: skip
    client, upstream = (used[k] / used["wall"] for k in ("client", "upstream"))
    note(f"  {row['events_per_s']:,.0f} events/s ({row['streams_per_s']:,.1f} streams/s), "
         f"gateway CPU {row['gateway_cpu_cores']:.2f} cores, client {client:.2f}, "
         f"upstream {upstream:.2f}")  # fmt: skip
    return row


def _rounded(used: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in used.items()}
