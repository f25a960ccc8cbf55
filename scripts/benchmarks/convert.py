"""``bench.py convert`` (issue 4): what format conversion costs, in process and end to end.

    python scripts/bench.py convert [--quick] [--json] [--part micro|e2e|both]
                                    [--duration 10] [--connections 32] [--streams 32]
                                    [--repeat N]

(a) In process, no I/O: benchmarks/convert_micro.py.

(b) End to end through a real gateway (1 worker, access log on) in front of the mock
OpenAI-format upstream (rig/stack.py): the Anthropic client path (``POST /v1/messages``,
converted) beside the same-format path (``POST /v1/chat/completions`` with the same
conversation in OpenAI form), non-stream at concurrency 32 (wrk) for the small and the
Claude-Code-sized request (two consecutive requests of that conversation, sent in turn:
the same history and tools with a new last exchange, which is what a coding agent's loop
sends and what the gateway's conversion memo, gateway/convert/memo.py, is for), and
streams (``--streams`` connections, 200-event streams back to back); with ``--repeat N``
every scenario runs N times, the same-format and converted runs interleaved, and the
median run is shown. The gateway's CPU time (``/proc/PID/stat`` utime+stime before and
after) per request and per stream gives the ratios.

Targets: non-stream conversion adds < 15% to the same-format path's gateway CPU per
request (judged for each request size); the converted stream relay reaches >= 0.7x the
same-format relay's events/s, counted in upstream events (the events the clients
received in the window, times 201 / the client's events per whole stream: both paths
relay the same 201 upstream events, the Anthropic client gets 204 for them; client-side
counts are shown too).
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any, TextIO

from rig import gw
from rig.measure import add_load_options, requests_row, streams_row
from rig.report import Verdict, emit, fmt_num, median_run, meta, note, print_block
from rig.stack import stack

from benchmarks.convert_micro import micro, print_micro
from benchmarks.workloads import claude_code_request, small_request

MODEL = "bench-model"
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
CLIENTS = ("openai", "anthropic")  # same-format, converted
STREAM_EVENTS = 201  # the mock's 200 events and [DONE]
TARGET_CPU_ADDED = 0.15
TARGET_STREAM_RATIO = 0.7


def e2e_bodies(size: str, client: str) -> list[bytes]:
    """What each connection sends in turn: the small request, or two consecutive requests
    of the Claude Code conversation (the same history, a new last exchange), as a coding
    agent's loop sends them."""
    if size == "small":
        bodies = [small_request(MODEL)]
    else:
        bodies = [claude_code_request(MODEL, exchange=n) for n in (1, 2)]
    return [json.dumps(gw.in_format(body, client)).encode() for body in bodies]


def ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def e2e(args: argparse.Namespace) -> dict[str, Any]:
    """Each scenario ``--repeat`` times, same-format and converted runs interleaved."""
    ns: dict[tuple[str, str], list[dict[str, Any]]] = {}
    st: dict[str, list[dict[str, Any]]] = {}
    with stack("gateway-bench-convert-", args.keep_logs) as rig:
        gw_proc, port = rig.start_gateway()
        procs = {"gateway": gw_proc, "upstream": rig.upstream}
        for rep in range(args.repeat):
            tag = f" (run {rep + 1} of {args.repeat})" if args.repeat > 1 else ""
            for size in ("small", "claude_code"):
                for client in CLIENTS:
                    bodies, label = e2e_bodies(size, client), f"{size} {client}->openai{tag}"
                    row = requests_row(procs, port, PATHS[client], bodies, args, label)
                    ns.setdefault((size, client), []).append(row)
            for client in CLIENTS:
                note(f"streams {client}: {args.streams} connections, {args.duration:g} s ...")
                body = json.dumps(gw.in_format(small_request(MODEL, stream=True), client)).encode()
                got = streams_row(procs, port, PATHS[client], body, args, STREAM_EVENTS)
                got["upstream_events_per_core_s"] = ratio(
                    got["upstream_events_per_s"], got["gateway_cpu_cores"]
                )
                st.setdefault(client, []).append(got)
    out: dict[str, Any] = {"nonstream": {}, "streams": {}}
    for (size, client), runs in ns.items():
        out["nonstream"].setdefault(size, {})[client] = median_run(runs, "gateway_cpu_us_per_req")
    for size, rows in out["nonstream"].items():
        same, conv = rows["openai"], rows["anthropic"]
        # Each round's converted run over the same-format run just before it, and the median
        # of those: the machine's speed drifts between rounds (shared hosts), and a ratio of
        # adjacent runs cancels most of that drift where a ratio of medians would not.
        key = "gateway_cpu_us_per_req"
        pairs = zip(ns[(size, "openai")], ns[(size, "anthropic")], strict=True)
        rounds = [c[key] / s[key] for s, c in pairs if s[key]]
        rows["cpu_ratio_rounds"] = [round(r, 3) for r in rounds]
        rows["cpu_ratio_of_medians"] = ratio(conv[key], same[key])
        rows["cpu_ratio"] = statistics.median(rounds) if rounds else 0.0
        rows["rps_ratio"] = ratio(conv["rps"], same["rps"])
    streams = out["streams"]
    for client, runs in st.items():
        streams[client] = median_run(runs, "upstream_events_per_s")
    same, conv = streams["openai"], streams["anthropic"]
    streams["ratio"] = ratio(conv["upstream_events_per_s"], same["upstream_events_per_s"])
    streams["ratio_per_core"] = ratio(
        conv["upstream_events_per_core_s"], same["upstream_events_per_core_s"]
    )
    return out


def verdicts(res: dict[str, Any]) -> list[Verdict]:
    if not (e := res.get("e2e")):
        return []
    out = []
    for size, rows in e["nonstream"].items():
        added = rows["cpu_ratio"] - 1
        out.append(
            Verdict(
                f"non-stream conversion CPU/req, {size.replace('_', '-')} request",
                f"< +{TARGET_CPU_ADDED:.0%}",
                f"{added:+.1%} (median of {len(rows['cpu_ratio_rounds'])} paired rounds; "
                f"medians {rows['anthropic']['gateway_cpu_us_per_req']:,.0f} vs "
                f"{rows['openai']['gateway_cpu_us_per_req']:,.0f} us)",
                added < TARGET_CPU_ADDED,
                added,
            )
        )
    got, per_core = e["streams"]["ratio"], e["streams"]["ratio_per_core"]
    out.append(
        Verdict(
            "converted stream relay vs same-format, events/s",
            f">= {TARGET_STREAM_RATIO:g}x",
            f"{got:.2f}x ({per_core:.2f}x per gateway core)",
            got >= TARGET_STREAM_RATIO,
            got,
        )
    )
    return out


def print_e2e(e: dict[str, Any], m: dict[str, Any], out: TextIO) -> None:
    rows = []
    for size, r in e["nonstream"].items():
        for client in CLIENTS:
            v, conv = r[client], client == "anthropic"
            rows.append([
                f"{size} {client}->openai", f"{v['body_bytes']:,}", fmt_num(v["rps"]),
                fmt_num(v["p50_ms"], 2), fmt_num(v["p99_ms"], 2),
                fmt_num(v["gateway_cpu_us_per_req"]), f"{r['cpu_ratio']:.2f}x" if conv else "",
                f"{r['rps_ratio']:.1%}" if conv else "", str(v["errors"] + v["non_2xx"]),
            ])  # fmt: skip
    print_block(
        f"(b) End to end, non-stream, concurrency {m['connections']} "
        f"({m['generator']}, {m['duration_s']:g} s each), openai-format upstream",
        ["path", "body B", "req/s", "p50 ms", "p99 ms", "gw CPU us/req", "CPU x", "req/s x",
         "errors"],
        rows,
        out,
        "CPU x: median over the rounds of the converted (anthropic) run's gateway CPU/req over "
        "the same-format run beside it;\nreq/s x: of the median runs; claude_code rows send two "
        "consecutive requests of the conversation in turn",
    )  # fmt: skip
    st = e["streams"]
    rows = [
        [f"{client}->openai", fmt_num(v["streams_per_s"], 1), fmt_num(v["upstream_events_per_s"]),
         fmt_num(v["events_per_s"]), f"{v['gateway_cpu_cores']:.2f}",
         fmt_num(v["gateway_cpu_us_per_upstream_event"], 1), fmt_num(v["first_event_p50_ms"], 2),
         str(v["errors"])]
        for client, v in ((c, st[c]) for c in CLIENTS)
    ]  # fmt: skip
    print_block(
        f"(b) End to end, streams of 200 events + [DONE], {st['openai']['connections']} "
        f"concurrent, {m['duration_s']:g} s each",
        ["path", "streams/s", "upstream ev/s", "client ev/s", "gw cores", "gw us/event",
         "1st event ms", "errors"],
        rows,
        out,
        f"converted / same-format upstream events/s: {st['ratio']:.2f}x; per gateway "
        f"CPU-second (immune to CPU taken by other work): {st['ratio_per_core']:.2f}x",
    )  # fmt: skip


def print_report(res: dict[str, Any], out: TextIO) -> None:
    m = res["meta"]
    print(
        f"python {m['python']}, {m['cpus']} CPUs, load average {m['loadavg_at_start']} at start\n",
        file=out,
    )
    if res.get("micro"):
        print_micro(res["micro"], out)
    if res.get("e2e"):
        print_e2e(res["e2e"], m, out)


def run(args: argparse.Namespace) -> int:
    res: dict[str, Any] = {"meta": meta(args)}
    if args.part in ("micro", "both"):
        note("(a) in-process conversion cost ...")
        res["micro"] = micro(0.05 if args.quick else 0.2)
    if args.part in ("e2e", "both"):
        note("(b) end to end through a gateway ...")
        res["e2e"] = e2e(args)
    res["targets"] = [v.as_dict() for v in verdicts(res)]
    return emit(res, args.json, print_report)


def options(parser: argparse.ArgumentParser) -> None:
    add_load_options(parser)
    parser.set_defaults(connections=32)
    parser.add_argument("--streams", type=int, default=32, help="concurrent streams (32)")
    parser.add_argument(
        "--part",
        choices=["micro", "e2e", "both"],
        default="both",
        help="(a) in process, (b) end to end, or both (default)",
    )


COMMAND = (
    "format conversion cost: in process per direction, and end to end (issue 4)",
    options,
    run,
)
