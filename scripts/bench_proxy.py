"""``bench.py proxy`` (issue 3): what the gateway adds on top of a fast OpenAI-format upstream.

    python scripts/bench.py proxy [--quick] [--json] [--duration 10] [--connections 32]
                                  [--rounds 20] [--per-round 50] [--streams 32]
                                  [--hold 500] [--trials 50] [--keep-logs DIR]

Processes: the mock upstream (scripts/bench_upstream.py, asyncio, its own
process), a transformer directory with one openai-format provider pointing at
it (``base_url`` http://127.0.0.1:PORT/v1, no keys, ``"*": "*"``, retries 0,
``default``), and the real ``python -m gateway --transformers DIR --port P``
(1 worker, default settings: text access lines on, stderr to a file). Every
figure is taken with the same load sent straight to the upstream ("direct")
and through the gateway, in the same run:

1. non-stream requests/s and p50/p99 at concurrency 32 (wrk, one thread, Lua
   POSTing a small chat body; the Lua ``response()`` hook also collects the
   gateway's ``x-gateway-overhead-ms`` header, p50/p99 reported);
2. added latency at concurrency 1: one blocking keep-alive client, interleaved
   rounds (gateway, direct, gateway, direct, ...), p50/p99 of each and
   gateway minus direct; targets p50 <= 1 ms, p99 <= 3 ms;
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
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import HOST, add_load_options, note
from bench_clients import (
    SyncClient,
    cancel_trials,
    hold_streams,
    percentile,
    raw_request,
    run_streams,
)
from bench_rig import (
    MIB,
    Cpu,
    Rig,
    Verdict,
    fmt_num,
    have_wrk,
    print_block,
    print_noise,
    print_verdicts,
    rss_kib,
    run_wrk,
)

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


# -- the parts ------------------------------------------------------------------------------


def _check(rig: Rig, gw_port: int) -> None:
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


def nonstream_c32(rig: Rig, gw: Any, gw_port: int, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    body = chat_body()
    for name, port in (("direct", rig.upstream_port), ("gateway", gw_port)):
        note(f"non-stream c={args.connections} {name} ({args.generator}, {args.duration:g} s) ...")
        if args.warmup:
            run_wrk(
                port,
                PATH,
                body,
                connections=args.connections,
                duration_s=args.warmup,
                generator=args.generator,
            )
        cpu = Cpu({"gateway": gw, "upstream": rig.upstream})
        res = run_wrk(
            port,
            PATH,
            body,
            connections=args.connections,
            duration_s=args.duration,
            generator=args.generator,
        )
        used = cpu.stop()
        row = res.as_dict()
        row["cpu_s"] = {k: round(v, 3) for k, v in used.items()}
        row["gateway_cpu_us_per_req"] = used["gateway"] / res.requests * 1e6 if res.requests else 0
        row["upstream_cpu_us_per_req"] = (
            used["upstream"] / res.requests * 1e6 if res.requests else 0
        )
        if res.header_values:
            row["overhead_header_ms"] = {
                "count": len(res.header_values),
                "p50": percentile(res.header_values, 50),
                "p99": percentile(res.header_values, 99),
            }
        out[name] = row
        note(
            f"  {res.rps:,.0f} req/s  p50 {res.p50_ms:.2f} ms  p99 {res.p99_ms:.2f} ms  "
            f"gateway CPU {used['gateway'] / used['wall']:.2f} cores, "
            f"upstream {used['upstream'] / used['wall']:.2f}, "
            f"other {used['other'] / used['wall']:.2f}"
        )
    d, g = out["direct"], out["gateway"]
    out["ratio"] = g["rps"] / d["rps"] if d["rps"] else 0.0
    return out


def latency_c1(rig: Rig, gw_port: int, args: argparse.Namespace) -> dict[str, Any]:
    note(f"latency c=1: {args.rounds} rounds x {args.per_round} requests, interleaved ...")
    clients = {"gateway": SyncClient(gw_port), "direct": SyncClient(rig.upstream_port)}
    data = {
        "gateway": raw_request(gw_port, PATH, chat_body()),
        "direct": raw_request(rig.upstream_port, PATH, chat_body()),
    }
    lat: dict[str, list[float]] = {"gateway": [], "direct": []}
    overhead: list[float] = []
    try:
        for name, client in clients.items():  # warm both connections and code paths
            for _ in range(max(20, args.per_round)):
                client.request(data[name])
        for _ in range(args.rounds):
            for name in ("gateway", "direct"):
                client, req = clients[name], data[name]
                for _ in range(args.per_round):
                    status, headers, _body, elapsed = client.request(req)
                    if status != 200:
                        raise RuntimeError(f"{name} answered {status} in the latency rounds")
                    lat[name].append(elapsed * 1000)
                    if b"x-gateway-overhead-ms" in headers:
                        overhead.append(float(headers[b"x-gateway-overhead-ms"]))
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
    out["added_p50_ms"] = out["gateway"]["p50_ms"] - out["direct"]["p50_ms"]
    out["added_p99_ms"] = out["gateway"]["p99_ms"] - out["direct"]["p99_ms"]
    out["overhead_header_ms"] = {
        "count": len(overhead),
        "p50": percentile(overhead, 50),
        "p99": percentile(overhead, 99),
    }
    note(
        f"  added p50 {out['added_p50_ms']:.3f} ms, p99 {out['added_p99_ms']:.3f} ms "
        f"(gateway {out['gateway']['p50_ms']:.3f}/{out['gateway']['p99_ms']:.3f}, "
        f"direct {out['direct']['p50_ms']:.3f}/{out['direct']['p99_ms']:.3f})"
    )
    return out


def stream_relay(
    rig: Rig,
    gw: Any,
    ports: dict[str, int],
    args: argparse.Namespace,
    body: bytes,
    path: str = PATH,
    upstream_events: int = STREAM_EVENTS + 1,
) -> dict[str, Any]:
    """Streams back to back on ``args.streams`` connections, for each ``{name: port}``."""
    out: dict[str, Any] = {}
    for name, port in ports.items():
        note(f"streams {name}: {args.streams} connections, {args.duration:g} s ...")
        data = raw_request(port, path, body)
        if args.warmup:
            run_streams(port, data, args.streams, args.warmup)
        cpu = Cpu({"gateway": gw, "upstream": rig.upstream})
        res = run_streams(port, data, args.streams, args.duration)
        used = cpu.stop()
        # Events the clients got in the window (partial streams included), in upstream events:
        # a converted stream may carry a few more or fewer events than the upstream sent.
        per_stream = (
            sum(res.events_per_stream) / len(res.events_per_stream) if res.events_per_stream else 0
        )
        relayed = res.events * upstream_events / per_stream if per_stream else 0.0
        row = {
            "connections": args.streams,
            "duration_s": round(res.duration_s, 3),
            "streams": res.streams,
            "events": res.events,
            "events_per_s": res.events_per_s,
            "streams_per_s": res.streams_per_s,
            "client_events_per_stream": per_stream,
            "upstream_events_per_s": relayed / res.duration_s if res.duration_s else 0.0,
            "gateway_cpu_us_per_upstream_event": used["gateway"] / relayed * 1e6 if relayed else 0,
            "first_event_p50_ms": percentile(res.first_event_ms, 50),
            "errors": res.errors + res.non_2xx,
            "cpu_s": {k: round(v, 3) for k, v in used.items()},
            "gateway_cpu_cores": used["gateway"] / used["wall"],
            "gateway_cpu_us_per_event": used["gateway"] / res.events * 1e6 if res.events else 0,
            "gateway_cpu_us_per_stream": used["gateway"] / res.streams * 1e6 if res.streams else 0,
        }
        out[name] = row
        note(
            f"  {res.events_per_s:,.0f} events/s ({res.streams_per_s:,.1f} streams/s), "
            f"gateway CPU {row['gateway_cpu_cores']:.2f} cores, "
            f"client {used['client'] / used['wall']:.2f}, "
            f"upstream {used['upstream'] / used['wall']:.2f}"
        )
    return out


def cancellation(rig: Rig, gw_port: int, args: argparse.Namespace) -> dict[str, Any]:
    model = f"bench-e5000-i{CANCEL_INTERVAL_MS}"
    body = chat_body(model, stream=True)
    out: dict[str, Any] = {}
    stamp = int(time.time() * 1000)
    for name, port in (("gateway", gw_port), ("direct", rig.upstream_port)):
        note(f"cancellation {name}: {args.trials} trials ...")
        ids = [f"cancel-{stamp}-{name}-{i}" for i in range(args.trials)]
        closed = cancel_trials(
            port,
            lambda rid, port=port: raw_request(port, PATH, body, {"x-request-id": rid}),
            ids,
        )
        time.sleep(0.5)  # let the last EOF land
        seen = rig.upstream_json("/_bench/cancels")
        delays = [(seen[rid]["eof_at"] - t) * 1000 for rid, t in closed.items() if rid in seen]
        out[name] = {
            "trials": len(ids),
            "closed": len(closed),
            "upstream_saw_eof": len(delays),
            "p50_ms": percentile(delays, 50),
            "p99_ms": percentile(delays, 99),
            "max_ms": max(delays) if delays else float("nan"),
        }
        note(
            f"  {len(delays)}/{len(ids)} seen: p50 {out[name]['p50_ms']:.2f} ms, "
            f"p99 {out[name]['p99_ms']:.2f} ms, max {out[name]['max_ms']:.2f} ms"
        )
    return out


def memory(rig: Rig, args: argparse.Namespace) -> dict[str, Any]:
    note("memory: a fresh gateway ...")
    proc, port = rig.start_gateway("memory")
    time.sleep(1.0)
    pid = proc.popen.pid
    idle = rss_kib(pid)
    events = int((args.hold_s + 40) * 1000 / HOLD_INTERVAL_MS)  # outlasts opening and holding
    model = f"bench-e{events}-i{HOLD_INTERVAL_MS}"
    body = chat_body(model, stream=True)
    note(f"  idle VmRSS {idle['VmRSS'] / MIB:.1f} MiB; opening {args.hold} streams ...")
    samples: list[dict[str, Any]] = []

    upstream_held: dict[str, Any] = {}

    def sample() -> dict[str, Any]:
        got = {**rss_kib(pid), "t": time.monotonic()}
        samples.append(got)
        if not upstream_held:  # every stream has its first event: what does the upstream see?
            upstream_held.update(rig.upstream_json("/_bench/stats"))
        return got

    held = hold_streams(
        port,
        lambda _i: raw_request(port, PATH, body),
        args.hold,
        sample=sample,
        hold_s=args.hold_s,
    )
    peak = rss_kib(pid)
    time.sleep(1.0)
    after = rss_kib(pid)
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


# -- the command ----------------------------------------------------------------------------


def verdicts(res: dict[str, Any]) -> list[Verdict]:
    lat, st, mem, can = res["latency_c1"], res["streams"], res["memory"], res["cancellation"]
    gw_events = st["gateway"]["events_per_s"]
    cancel_p99 = can["gateway"]["p99_ms"]
    all_seen = can["gateway"]["upstream_saw_eof"] == can["gateway"]["closed"] > 0
    return [
        Verdict(
            "added latency p50, c=1",
            f"<= {TARGET_P50_ADDED_MS:g} ms",
            f"{lat['added_p50_ms']:.3f} ms",
            lat["added_p50_ms"] <= TARGET_P50_ADDED_MS,
            lat["added_p50_ms"],
        ),
        Verdict(
            "added latency p99, c=1",
            f"<= {TARGET_P99_ADDED_MS:g} ms",
            f"{lat['added_p99_ms']:.3f} ms",
            lat["added_p99_ms"] <= TARGET_P99_ADDED_MS,
            lat["added_p99_ms"],
        ),
        Verdict(
            "relayed SSE events/s, 1 worker",
            f">= {TARGET_EVENTS_PER_S:,}",
            f"{gw_events:,.0f}",
            gw_events >= TARGET_EVENTS_PER_S,
            gw_events,
        ),
        Verdict(
            "idle RSS after start",
            f"<= {TARGET_IDLE_RSS_MIB:g} MiB",
            f"{mem['idle_after_start_mib']:.1f} MiB",
            mem["idle_after_start_mib"] <= TARGET_IDLE_RSS_MIB,
            mem["idle_after_start_mib"],
        ),
        Verdict(
            "cancellation to upstream EOF, p99",
            f"<= {TARGET_CANCEL_MS:g} ms (every trial)",
            f"{cancel_p99:.2f} ms "
            f"({can['gateway']['upstream_saw_eof']}/{can['gateway']['closed']} seen)",
            all_seen and cancel_p99 <= TARGET_CANCEL_MS,
            cancel_p99,
        ),
    ]


def print_report(res: dict[str, Any], out: Any) -> None:
    meta = res["meta"]
    print(
        f"python {meta['python']}, {meta['cpus']} CPUs, load average {meta['loadavg_at_start']} "
        f"at start; load generator for non-stream: {meta['generator']}",
        file=out,
    )
    print(file=out)
    ns = res["nonstream_c32"]
    d, g = ns["direct"], ns["gateway"]
    rows = [
        ["req/s", fmt_num(d["rps"]), fmt_num(g["rps"]), f"{ns['ratio']:.1%}"],
        ["p50 ms", fmt_num(d["p50_ms"], 2), fmt_num(g["p50_ms"], 2), "-"],
        ["p99 ms", fmt_num(d["p99_ms"], 2), fmt_num(g["p99_ms"], 2), "-"],
        [
            "gateway CPU us/req",
            "-",
            fmt_num(g["gateway_cpu_us_per_req"]),
            "-",
        ],
        [
            "upstream CPU us/req",
            fmt_num(d["upstream_cpu_us_per_req"]),
            fmt_num(g["upstream_cpu_us_per_req"]),
            "-",
        ],
        ["requests (errors)", f"{d['requests']:,} ({d['errors'] + d['non_2xx']})",
         f"{g['requests']:,} ({g['errors'] + g['non_2xx']})", "-"],
    ]  # fmt: skip
    oh = g.get("overhead_header_ms", {})
    print_block(
        f"Non-stream POST {PATH}, concurrency {meta['connections']} "
        f"({d['generator']}, {meta['duration_s']:g} s each)",
        ["", "direct", "gateway", "gateway/direct"],
        rows,
        out,
        notes=(
            f"x-gateway-overhead-ms over the gateway run: p50 {oh.get('p50', float('nan')):.3f}, "
            f"p99 {oh.get('p99', float('nan')):.3f} ({oh.get('count', 0):,} responses)"
        ),
    )
    lat = res["latency_c1"]
    rows = [
        [
            p,
            f"{lat['direct'][p + '_ms']:.3f}",
            f"{lat['gateway'][p + '_ms']:.3f}",
            f"{lat['added_' + p + '_ms']:.3f}",
            f"<= {TARGET_P50_ADDED_MS if p == 'p50' else TARGET_P99_ADDED_MS:g}",
        ]
        for p in ("p50", "p99")
    ]
    oh = lat["overhead_header_ms"]
    print_block(
        f"Latency at concurrency 1, ms ({lat['rounds']} interleaved rounds x "
        f"{lat['per_round']} requests each way)",
        ["", "direct", "gateway", "added", "target"],
        rows,
        out,
        notes=f"x-gateway-overhead-ms here: p50 {oh['p50']:.3f}, p99 {oh['p99']:.3f}",
    )
    st = res["streams"]
    d, g = st["direct"], st["gateway"]
    ratio = g["events_per_s"] / d["events_per_s"] if d["events_per_s"] else 0.0
    rows = [
        ["SSE events/s received", fmt_num(d["events_per_s"]), fmt_num(g["events_per_s"]),
         f"{ratio:.1%}"],
        ["streams/s", fmt_num(d["streams_per_s"], 1), fmt_num(g["streams_per_s"], 1), "-"],
        ["first event p50 ms", fmt_num(d["first_event_p50_ms"], 2),
         fmt_num(g["first_event_p50_ms"], 2), "-"],
        ["gateway CPU cores", "-", f"{g['gateway_cpu_cores']:.2f}", "-"],
        ["gateway CPU us/event", "-", fmt_num(g["gateway_cpu_us_per_event"], 1), "-"],
        ["errors", str(d["errors"]), str(g["errors"]), "-"],
    ]  # fmt: skip
    print_block(
        f"Streams of {STREAM_EVENTS} events + [DONE], {g['connections']} concurrent, "
        f"{meta['duration_s']:g} s each",
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
        notes=(
            f"{mem['streams_open']}/{mem['streams_requested']} streams opened in "
            f"{mem['open_s']:.1f} s; upstream streams open while held "
            f"{mem['upstream_open_streams_while_held']}, 1 s after the clients left "
            f"{mem['upstream_open_streams_after_close']}"
        ),
    )
    can = res["cancellation"]
    rows = [
        [
            name,
            f"{c['upstream_saw_eof']}/{c['trials']}",
            fmt_num(c["p50_ms"], 2),
            fmt_num(c["p99_ms"], 2),
            fmt_num(c["max_ms"], 2),
        ]
        for name, c in can.items()
    ]
    print_block(
        "Cancellation: client closes mid-stream -> upstream socket sees EOF, ms",
        ["", "seen", "p50", "p99", "max"],
        rows,
        out,
    )
    print_noise(res, out)
    print_verdicts([Verdict(**t) for t in res["targets"]], out)


def _defaults(args: argparse.Namespace) -> None:
    if args.quick:
        args.rounds = min(args.rounds, 10)
        args.per_round = min(args.per_round, 30)
        args.trials = min(args.trials, 20)
        args.hold_s = min(args.hold_s, 2.0)
    if args.generator == "auto":
        args.generator = "wrk" if have_wrk() else "asyncio"
    elif args.generator == "trio":
        args.generator = "asyncio"


def cmd_proxy(args: argparse.Namespace) -> int:
    _defaults(args)
    res: dict[str, Any] = {
        "meta": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_at_start": round(os.getloadavg()[0], 2),
            "generator": args.generator,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "command": " ".join(sys.argv),
        }
    }
    with tempfile.TemporaryDirectory(prefix="gateway-bench-proxy-") as tmpname:
        rig = Rig.start(Path(tmpname))
        try:
            gw, gw_port = rig.start_gateway()
            res["meta"]["gateway_idle_rss_mib"] = rss_kib(gw.popen.pid)["VmRSS"] / MIB
            _check(rig, gw_port)
            res["latency_c1"] = latency_c1(rig, gw_port, args)
            res["nonstream_c32"] = nonstream_c32(rig, gw, gw_port, args)
            res["streams"] = stream_relay(
                rig,
                gw,
                {"direct": rig.upstream_port, "gateway": gw_port},
                args,
                chat_body(stream=True),
            )
            res["cancellation"] = cancellation(rig, gw_port, args)
            res["gateway_rss_after_load_mib"] = rss_kib(gw.popen.pid)["VmRSS"] / MIB
            gw.stop()
            res["memory"] = memory(rig, args)
        finally:
            rig.keep_logs(args.keep_logs)
            for proc, _port in rig.gateways:
                proc.stop()
            rig.upstream.stop()
    res["targets"] = [v.as_dict() for v in verdicts(res)]
    out = sys.stderr if args.json else sys.stdout
    print(file=out)
    print_report(res, out)
    if args.json:
        print(json.dumps(res, indent=2, default=float))
    return 0


def proxy_options(parser: argparse.ArgumentParser) -> None:
    add_load_options(parser)
    parser.set_defaults(connections=32)
    parser.add_argument("--rounds", type=int, default=20, help="latency rounds at c=1 (20)")
    parser.add_argument("--per-round", type=int, default=50, help="requests per round (50)")
    parser.add_argument("--streams", type=int, default=32, help="concurrent streams (32)")
    parser.add_argument("--hold", type=int, default=500, help="streams held open at once (500)")
    parser.add_argument("--hold-s", type=float, default=5.0, help="seconds they are held (5)")
    parser.add_argument("--trials", type=int, default=50, help="cancellation trials (50)")


COMMAND = (
    "the gateway in front of a mock OpenAI upstream vs the upstream alone (issue 3)",
    proxy_options,
    cmd_proxy,
)

__all__ = ["COMMAND", "HOST", "chat_body", "stream_relay"]
