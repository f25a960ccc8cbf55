"""``bench.py proxy`` (issue 3): what the gateway adds on top of a fast OpenAI-format upstream.

    python scripts/bench.py proxy [--quick] [--json] [--duration 10] [--connections 32]
                                  [--rounds 20] [--per-round 50] [--streams 32]
                                  [--hold 500] [--trials 50] [--keep-logs DIR]

Processes: the stack of rig/stack.py (the mock upstream, and the real ``python -m
gateway`` in front of it, 1 worker, access log on). Every figure is taken with the
same load sent straight to the upstream ("direct") and through the gateway, in the
same run:

1. added latency at concurrency 1: one blocking keep-alive client, interleaved
   rounds (gateway, direct, gateway, direct, ...), p50/p99 of each and gateway
   minus direct; targets p50 <= 1 ms, p99 <= 3 ms;
2. non-stream requests/s and p50/p99 at concurrency 32 (wrk, one thread, Lua
   POSTing a small chat body; the Lua ``response()`` hook also collects the
   gateway's ``x-gateway-overhead-ms`` header, p50/p99 reported);
3. streaming: ``--streams`` connections each running 200-event streams back to
   back for ``--duration``; SSE events received per second by the clients
   (target >= 10,000/s through one worker), gateway CPU per event;
4. cancellation: a client reads 3 events of a slow stream (one event per
   10 ms) and closes its connection; the mock upstream notes when its socket
   sees EOF; p50/p99/max of (EOF time - close time) over ``--trials``
   (target: within 100 ms, judged on p99);
5. memory, on a second, fresh gateway: VmRSS at idle after start (target <=
   50 MiB), then ``--hold`` streams open at once (one event per 100 ms, the
   clients keep reading): VmHWM (peak) and VmRSS while held, and VmRSS and the
   upstream's open streams after the clients leave.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, TextIO

from rig.clients import SyncClient, raw_request
from rig.load import cancel_trials, hold_streams, run_streams
from rig.measure import OVERHEAD_HEADER, add_load_options, requests_row, streams_row
from rig.procs import rss_kib
from rig.report import Verdict, emit, fmt_num, meta, note, percentile, print_block, side_by_side
from rig.stack import Stack, stack

PATH = "/v1/chat/completions"
MODEL = "bench-model"
STREAM_EVENTS = 200  # the mock's default: 199 deltas + 1 finish, then [DONE]
TARGET_P50_ADDED_MS = 1.0
TARGET_P99_ADDED_MS = 3.0
TARGET_EVENTS_PER_S = 10_000
TARGET_IDLE_RSS_MIB = 50.0
TARGET_CANCEL_MS = 100.0
HOLD_INTERVAL_MS = 100
CANCEL_INTERVAL_MS = 10
MIB = 1024


def chat_body(model: str = MODEL, *, stream: bool = False) -> bytes:
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello there, how are you today?"},
        ],
        "max_tokens": 256,
    }
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def check(rig: Stack, gw_port: int) -> None:
    """One request each way, non-stream and stream, before anything is measured."""
    for port in (rig.upstream_port, gw_port):
        client = SyncClient(port)
        try:
            status, _headers, body, _t = client.request(raw_request(port, PATH, chat_body()))
        finally:
            client.close()
        if status != 200 or json.loads(body)["object"] != "chat.completion":
            raise RuntimeError(f"port {port} answered {status}: {body[:200]!r}")
        got = run_streams(port, raw_request(port, PATH, chat_body(stream=True)), 1, 0.3)
        if got.streams < 1 or got.errors or got.non_2xx:
            raise RuntimeError(f"port {port}: no clean stream ({got})")


def latency_c1(rig: Stack, gw_port: int, args: argparse.Namespace) -> dict[str, Any]:
    note(f"latency c=1: {args.rounds} rounds x {args.per_round} requests, interleaved ...")
    ports = {"gateway": gw_port, "direct": rig.upstream_port}
    clients = {name: SyncClient(port) for name, port in ports.items()}
    data = {name: raw_request(port, PATH, chat_body()) for name, port in ports.items()}
    lat: dict[str, list[float]] = {"gateway": [], "direct": []}
    overhead: list[float] = []
    header = OVERHEAD_HEADER.encode()
    try:
        for name, client in clients.items():  # warm both connections and code paths
            for _ in range(max(20, args.per_round)):
                client.request(data[name])
        for _ in range(args.rounds):
            for name in ("gateway", "direct"):
                for _ in range(args.per_round):
                    status, headers, _body, elapsed = clients[name].request(data[name])
                    if status != 200:
                        raise RuntimeError(f"{name} answered {status} in the latency rounds")
                    lat[name].append(elapsed * 1000)
                    if header in headers:
                        overhead.append(float(headers[header]))
    finally:
        for client in clients.values():
            client.close()
    out: dict[str, Any] = {"rounds": args.rounds, "per_round": args.per_round}
    for name, values in lat.items():
        out[name] = {
            "count": len(values),
            "p50_ms": percentile(values, 50),
            "p99_ms": percentile(values, 99),
            "mean_ms": sum(values) / len(values),
        }
    g, d = out["gateway"], out["direct"]
    out["added_p50_ms"] = g["p50_ms"] - d["p50_ms"]
    out["added_p99_ms"] = g["p99_ms"] - d["p99_ms"]
    p50, p99 = percentile(overhead, 50), percentile(overhead, 99)
    out["overhead_header_ms"] = {"count": len(overhead), "p50": p50, "p99": p99}
    note(
        f"  added p50 {out['added_p50_ms']:.3f} ms, p99 {out['added_p99_ms']:.3f} ms (gateway "
        f"{g['p50_ms']:.3f}/{g['p99_ms']:.3f}, direct {d['p50_ms']:.3f}/{d['p99_ms']:.3f})"
    )
    return out


def cancellation(rig: Stack, gw_port: int, args: argparse.Namespace) -> dict[str, Any]:
    body = chat_body(f"bench-e5000-i{CANCEL_INTERVAL_MS}", stream=True)
    out: dict[str, Any] = {}
    stamp = int(time.time() * 1000)
    for name, port in (("gateway", gw_port), ("direct", rig.upstream_port)):
        note(f"cancellation {name}: {args.trials} trials ...")
        ids = [f"cancel-{stamp}-{name}-{i}" for i in range(args.trials)]
        closed = cancel_trials(
            port, lambda rid, port=port: raw_request(port, PATH, body, {"x-request-id": rid}), ids
        )
        time.sleep(0.5)  # let the last EOF land
        seen = rig.upstream_json("/_bench/cancels")
        delays = [(seen[rid]["eof_at"] - t) * 1000 for rid, t in closed.items() if rid in seen]
        c = out[name] = {
            "trials": len(ids),
            "closed": len(closed),
            "upstream_saw_eof": len(delays),
            "p50_ms": percentile(delays, 50),
            "p99_ms": percentile(delays, 99),
            "max_ms": max(delays) if delays else float("nan"),
        }
        note(
            f"  {len(delays)}/{len(ids)} seen: p50 {c['p50_ms']:.2f} ms, "
            f"p99 {c['p99_ms']:.2f} ms, max {c['max_ms']:.2f} ms"
        )
    return out


def memory(rig: Stack, args: argparse.Namespace) -> dict[str, Any]:
    note("memory: a fresh gateway ...")
    proc, port = rig.start_gateway("memory")
    time.sleep(1.0)
    idle = rss_kib(proc.pid)
    events = int((args.hold_s + 40) * 1000 / HOLD_INTERVAL_MS)  # outlasts opening and holding
    body = chat_body(f"bench-e{events}-i{HOLD_INTERVAL_MS}", stream=True)
    note(f"  idle VmRSS {idle['VmRSS'] / MIB:.1f} MiB; opening {args.hold} streams ...")
    samples: list[dict[str, int]] = []
    upstream_held: dict[str, Any] = {}

    def sample() -> None:
        samples.append(rss_kib(proc.pid))
        if not upstream_held:  # every stream has its first event: what does the upstream see?
            upstream_held.update(rig.upstream_json("/_bench/stats"))

    request = raw_request(port, PATH, body)
    held = hold_streams(port, request, args.hold, sample=sample, hold_s=args.hold_s)
    peak = rss_kib(proc.pid)
    time.sleep(1.0)
    after = rss_kib(proc.pid)
    stats_after = rig.upstream_json("/_bench/stats")
    out = {
        "idle_after_start_mib": idle["VmRSS"] / MIB,
        "streams_requested": args.hold,
        "streams_open": held.opened,
        "streams_failed": held.failed,
        "open_s": round(held.open_s, 3),
        "hold_s": args.hold_s,
        "events_while_held": held.events,
        "rss_held_max_mib": max(s["VmRSS"] for s in samples) / MIB if samples else 0.0,
        "peak_hwm_mib": peak["VmHWM"] / MIB,
        "per_stream_kib": (peak["VmHWM"] - idle["VmRSS"]) / max(1, held.opened),
        "rss_after_close_mib": after["VmRSS"] / MIB,
        "upstream_open_streams_after_close": stats_after["open_streams"],
        "upstream_open_streams_while_held": upstream_held.get("open_streams", -1),
    }
    note(
        f"  {held.opened} open in {held.open_s:.1f} s; peak {out['peak_hwm_mib']:.1f} MiB, "
        f"after close {out['rss_after_close_mib']:.1f} MiB; upstream streams still open "
        f"{stats_after['open_streams']}"
    )
    proc.stop()
    return out


def verdicts(res: dict[str, Any]) -> list[Verdict]:
    lat, mem, can = res["latency_c1"], res["memory"], res["cancellation"]["gateway"]
    events = res["streams"]["gateway"]["events_per_s"]
    all_seen = can["upstream_saw_eof"] == can["closed"] > 0
    idle = mem["idle_after_start_mib"]
    out = [
        Verdict(
            f"added latency {p}, c=1",
            f"<= {target:g} ms",
            f"{lat[f'added_{p}_ms']:.3f} ms",
            lat[f"added_{p}_ms"] <= target,
            lat[f"added_{p}_ms"],
        )
        for p, target in (("p50", TARGET_P50_ADDED_MS), ("p99", TARGET_P99_ADDED_MS))
    ]
    return [
        *out,
        Verdict("relayed SSE events/s, 1 worker", f">= {TARGET_EVENTS_PER_S:,}", f"{events:,.0f}",
                events >= TARGET_EVENTS_PER_S, events),
        Verdict("idle RSS after start", f"<= {TARGET_IDLE_RSS_MIB:g} MiB", f"{idle:.1f} MiB",
                idle <= TARGET_IDLE_RSS_MIB, idle),
        Verdict("cancellation to upstream EOF, p99", f"<= {TARGET_CANCEL_MS:g} ms (every trial)",
                f"{can['p99_ms']:.2f} ms ({can['upstream_saw_eof']}/{can['closed']} seen)",
                all_seen and can["p99_ms"] <= TARGET_CANCEL_MS, can["p99_ms"]),
    ]  # fmt: skip


def print_report(res: dict[str, Any], out: TextIO) -> None:
    m = res["meta"]
    print(
        f"python {m['python']}, {m['cpus']} CPUs, load average {m['loadavg_at_start']} at "
        f"start; load generator for non-stream: {m['generator']}\n",
        file=out,
    )
    ns = res["nonstream_c32"]
    d, g = ns["direct"], ns["gateway"]
    rows = side_by_side(
        {"direct": d, "gateway": g},
        [("req/s", "rps", 0), ("p50 ms", "p50_ms", 2), ("p99 ms", "p99_ms", 2),
         ("gateway CPU us/req", "gateway_cpu_us_per_req", 0),
         ("upstream CPU us/req", "upstream_cpu_us_per_req", 0)],
        ratio="rps",
    )  # fmt: skip
    rows[3][1] = "-"  # the direct run has no gateway
    counts = (f"{r['requests']:,} ({r['errors'] + r['non_2xx']})" for r in (d, g))
    rows.append(["requests (errors)", *counts, "-"])
    oh = g.get("overhead_header_ms", {})
    nan = float("nan")
    print_block(
        f"Non-stream POST {PATH}, concurrency {m['connections']} "
        f"({d['generator']}, {m['duration_s']:g} s each)",
        ["", "direct", "gateway", "gateway/direct"],
        rows,
        out,
        f"x-gateway-overhead-ms over the gateway run: p50 {oh.get('p50', nan):.3f}, "
        f"p99 {oh.get('p99', nan):.3f} ({oh.get('count', 0):,} responses)",
    )
    lat = res["latency_c1"]
    targets = {"p50": TARGET_P50_ADDED_MS, "p99": TARGET_P99_ADDED_MS}
    rows = [
        [p, *(f"{lat[k][f'{p}_ms']:.3f}" for k in ("direct", "gateway")),
         f"{lat[f'added_{p}_ms']:.3f}", f"<= {target:g}"]
        for p, target in targets.items()
    ]  # fmt: skip
    oh = lat["overhead_header_ms"]
    print_block(
        f"Latency at concurrency 1, ms ({lat['rounds']} interleaved rounds x "
        f"{lat['per_round']} requests each way)",
        ["", "direct", "gateway", "added", "target"],
        rows,
        out,
        f"x-gateway-overhead-ms here: p50 {oh['p50']:.3f}, p99 {oh['p99']:.3f}",
    )
    st = res["streams"]
    rows = side_by_side(
        st,
        [("SSE events/s received", "events_per_s", 0), ("streams/s", "streams_per_s", 1),
         ("first event p50 ms", "first_event_p50_ms", 2)],
        ratio="events_per_s",
    )  # fmt: skip
    g = st["gateway"]
    rows += [
        ["gateway CPU cores", "-", f"{g['gateway_cpu_cores']:.2f}", "-"],
        ["gateway CPU us/event", "-", fmt_num(g["gateway_cpu_us_per_event"], 1), "-"],
        ["errors", str(st["direct"]["errors"]), str(g["errors"]), "-"],
    ]
    print_block(
        f"Streams of {STREAM_EVENTS} events + [DONE], {g['connections']} concurrent, "
        f"{m['duration_s']:g} s each",
        ["", "direct", "gateway", "gateway/direct"],
        rows,
        out,
    )
    mem = res["memory"]
    rows = [
        ["idle, after start", f"{mem['idle_after_start_mib']:.1f}"],
        [f"{mem['streams_open']} streams held: VmRSS max", f"{mem['rss_held_max_mib']:.1f}"],
        ["peak (VmHWM)", f"{mem['peak_hwm_mib']:.1f}"],
        ["per open stream, KiB", f"{mem['per_stream_kib']:.1f}"],
        ["1 s after the clients left", f"{mem['rss_after_close_mib']:.1f}"],
    ]
    print_block(
        f"Gateway memory, MiB (fresh process; streams: one event per {HOLD_INTERVAL_MS} ms, "
        f"held {mem['hold_s']:g} s)",
        ["", "MiB"],
        rows,
        out,
        f"{mem['streams_open']}/{mem['streams_requested']} streams opened in "
        f"{mem['open_s']:.1f} s; upstream streams open while held "
        f"{mem['upstream_open_streams_while_held']}, 1 s after the clients left "
        f"{mem['upstream_open_streams_after_close']}",
    )
    rows = [
        [name, f"{c['upstream_saw_eof']}/{c['trials']}",
         *(fmt_num(c[k], 2) for k in ("p50_ms", "p99_ms", "max_ms"))]
        for name, c in res["cancellation"].items()
    ]  # fmt: skip
    print_block(
        "Cancellation: client closes mid-stream -> upstream socket sees EOF, ms",
        ["", "seen", "p50", "p99", "max"],
        rows,
        out,
    )


def run(args: argparse.Namespace) -> int:
    if args.quick:
        args.rounds = min(args.rounds, 10)
        args.per_round = min(args.per_round, 30)
        args.trials = min(args.trials, 20)
        args.hold_s = min(args.hold_s, 2.0)
    res: dict[str, Any] = {"meta": meta(args)}
    with stack("gateway-bench-proxy-", args.keep_logs) as rig:
        gw, gw_port = rig.start_gateway()
        res["meta"]["gateway_idle_rss_mib"] = rss_kib(gw.pid)["VmRSS"] / MIB
        check(rig, gw_port)
        res["latency_c1"] = latency_c1(rig, gw_port, args)
        procs = {"gateway": gw, "upstream": rig.upstream}
        ports = {"direct": rig.upstream_port, "gateway": gw_port}
        body = chat_body()
        ns = {k: requests_row(procs, p, PATH, [body], args, k) for k, p in ports.items()}
        ns["ratio"] = ns["gateway"]["rps"] / ns["direct"]["rps"] if ns["direct"]["rps"] else 0.0
        res["nonstream_c32"] = ns
        streams = {}
        for name, port in ports.items():
            note(f"streams {name}: {args.streams} connections, {args.duration:g} s ...")
            body = chat_body(stream=True)
            streams[name] = streams_row(procs, port, PATH, body, args, STREAM_EVENTS + 1)
        res["streams"] = streams
        res["cancellation"] = cancellation(rig, gw_port, args)
        res["gateway_rss_after_load_mib"] = rss_kib(gw.pid)["VmRSS"] / MIB
        gw.stop()
        res["memory"] = memory(rig, args)
    res["targets"] = [v.as_dict() for v in verdicts(res)]
    return emit(res, args.json, print_report)


def options(parser: argparse.ArgumentParser) -> None:
    add_load_options(parser)
    parser.set_defaults(connections=32)
    add = parser.add_argument
    add("--rounds", type=int, default=20, help="latency rounds at c=1 (20)")
    add("--per-round", type=int, default=50, help="requests per round (50)")
    add("--streams", type=int, default=32, help="concurrent streams (32)")
    add("--hold", type=int, default=500, help="streams held open at once (500)")
    add("--hold-s", type=float, default=5.0, help="seconds they are held (5)")
    add("--trials", type=int, default=50, help="cancellation trials (50)")


COMMAND = (
    "the gateway in front of a mock OpenAI upstream vs the upstream alone (issue 3)",
    options,
    run,
)
