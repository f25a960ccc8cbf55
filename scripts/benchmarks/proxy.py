"""``bench.py proxy`` (issue 3): what the gateway adds on top of a fast OpenAI-format upstream.

The stack of rig/stack.py; the same load sent straight to the mock upstream ("direct")
and through the gateway, in the same run: (1) added latency at concurrency 1, interleaved
rounds; (2) non-stream req/s at concurrency 32, and the ``x-gateway-overhead-ms`` header;
(3) 200-event streams back to back: SSE events/s, time to the first, CPU per event;
(4) cancellation: a client reads 3 events of a slow stream and leaves, and the upstream's
socket sees EOF how soon after; (5) memory of a fresh gateway, idle and holding
``--hold`` streams, and the upstream's streams still open after the clients leave.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, TextIO

from rig.clients import SyncClient, raw_request
from rig.load import cancel_trials, hold_streams, run_load
from rig.measure import OVERHEAD_HEADER, add_load_options, option, requests_row, streams_row
from rig.report import Verdict, columns, emit, meta, note, percentile, side_by_side, table
from rig.stack import Stack, stack

PATH = "/v1/chat/completions"
STREAM_EVENTS = 200  # the mock's default: 199 deltas + 1 finish, then [DONE]
TARGET_P50_ADDED_MS, TARGET_P99_ADDED_MS = 1.0, 3.0
TARGET_EVENTS_PER_S = 10_000
TARGET_IDLE_RSS_MIB = 50.0
TARGET_CANCEL_MS = 100.0
HOLD_INTERVAL_MS = 100
CANCEL_INTERVAL_MS = 10
MIB = 1024


def chat_body(model: str = "bench-model", *, stream: bool = False) -> bytes:
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Hello there, how are you today?"}]  # fmt: skip
    body = {"model": model, "messages": messages, "max_tokens": 256}
    body |= {"stream": True} if stream else {}
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
        got = run_load(port, [raw_request(port, PATH, chat_body(stream=True))], 1, 0.3, stream=True)
        if got.streams < 1 or got.errors or got.non_2xx:
            raise RuntimeError(f"port {port}: no clean stream ({got})")


def _p50_p99(values: list[float], suffix: str = "") -> dict[str, Any]:
    p50, p99 = percentile(values, 50), percentile(values, 99)
    return {"count": len(values), f"p50{suffix}": p50, f"p99{suffix}": p99}


def latency_c1(rig: Stack, gw_port: int, args: argparse.Namespace) -> dict[str, Any]:
    note(f"latency c=1: {args.rounds} rounds x {args.per_round} requests, interleaved ...")
    ports = {"gateway": gw_port, "direct": rig.upstream_port}
    clients = {name: SyncClient(port) for name, port in ports.items()}
    data = {name: raw_request(port, PATH, chat_body()) for name, port in ports.items()}
    lat: dict[str, list[float]] = {"gateway": [], "direct": []}
    overhead: list[float] = []
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
                    if value := headers.get(OVERHEAD_HEADER.encode()):
                        overhead.append(float(value))
    finally:
        for client in clients.values():
            client.close()
    out: dict[str, Any] = {"rounds": args.rounds, "per_round": args.per_round}
    for name, values in lat.items():
        out[name] = {**_p50_p99(values, "_ms"), "mean_ms": sum(values) / len(values)}
    g, d = out["gateway"], out["direct"]
    out["added_p50_ms"], out["added_p99_ms"] = g["p50_ms"] - d["p50_ms"], g["p99_ms"] - d["p99_ms"]
    out["overhead_header_ms"] = _p50_p99(overhead)
    note(f"  added p50 {out['added_p50_ms']:.3f} ms, p99 {out['added_p99_ms']:.3f} ms "
         f"(gateway {g['p50_ms']:.3f}/{g['p99_ms']:.3f}, "
         f"direct {d['p50_ms']:.3f}/{d['p99_ms']:.3f})")  # fmt: skip
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
            "trials": len(ids), "closed": len(closed), "upstream_saw_eof": len(delays),
            "p50_ms": percentile(delays, 50), "p99_ms": percentile(delays, 99),
            "max_ms": max(delays) if delays else float("nan"),
        }  # fmt: skip
        note(f"  {len(delays)}/{len(ids)} seen: p50 {c['p50_ms']:.2f} ms, "
             f"p99 {c['p99_ms']:.2f} ms, max {c['max_ms']:.2f} ms")  # fmt: skip
    return out


def memory(rig: Stack, args: argparse.Namespace) -> dict[str, Any]:
    note("memory: a fresh gateway ...")
    proc, port = rig.start_gateway("memory")
    time.sleep(1.0)
    idle = proc.rss_kib()
    events = int((args.hold_s + 40) * 1000 / HOLD_INTERVAL_MS)  # outlasts opening and holding
    body = chat_body(f"bench-e{events}-i{HOLD_INTERVAL_MS}", stream=True)
    note(f"  idle VmRSS {idle['VmRSS'] / MIB:.1f} MiB; opening {args.hold} streams ...")
    samples: list[dict[str, int]] = []
    upstream_held: dict[str, Any] = {}

    def sample() -> None:
        samples.append(proc.rss_kib())
        if not upstream_held:  # every stream has its first event: what does the upstream see?
            upstream_held.update(rig.upstream_json("/_bench/stats"))

    request = raw_request(port, PATH, body)
    held = hold_streams(port, request, args.hold, sample=sample, hold_s=args.hold_s)
    peak = proc.rss_kib()
    time.sleep(1.0)
    after, stats_after = proc.rss_kib(), rig.upstream_json("/_bench/stats")
    out = {
        "idle_after_start_mib": idle["VmRSS"] / MIB, "streams_requested": args.hold, **held,
        "rss_held_max_mib": max(s["VmRSS"] for s in samples) / MIB if samples else 0.0,
        "peak_hwm_mib": peak["VmHWM"] / MIB,
        "per_stream_kib": (peak["VmHWM"] - idle["VmRSS"]) / max(1, held["streams_open"]),
        "rss_after_close_mib": after["VmRSS"] / MIB,
        "upstream_open_streams_after_close": stats_after["open_streams"],
        "upstream_open_streams_while_held": upstream_held.get("open_streams", -1),
    }  # fmt: skip
    note(f"  {held['streams_open']} open in {held['open_s']:.1f} s; peak "
         f"{out['peak_hwm_mib']:.1f} MiB, after close {out['rss_after_close_mib']:.1f} MiB; "
         f"upstream streams still open {stats_after['open_streams']}")  # fmt: skip
    proc.stop()
    return out


def verdicts(res: dict[str, Any]) -> list[Verdict]:
    lat, mem, can = res["latency_c1"], res["memory"], res["cancellation"]["gateway"]
    events, idle = res["streams"]["gateway"]["events_per_s"], mem["idle_after_start_mib"]
    targets = (("p50", TARGET_P50_ADDED_MS), ("p99", TARGET_P99_ADDED_MS))
    added = [(p, lat[f"added_{p}_ms"], t) for p, t in targets]
    return [
        *(Verdict(f"added latency {p}, c=1", f"<= {t:g} ms", f"{v:.3f} ms", v <= t, v)
          for p, v, t in added),
        Verdict("relayed SSE events/s, 1 worker", f">= {TARGET_EVENTS_PER_S:,}", f"{events:,.0f}",
                events >= TARGET_EVENTS_PER_S, events),
        Verdict("idle RSS after start", f"<= {TARGET_IDLE_RSS_MIB:g} MiB", f"{idle:.1f} MiB",
                idle <= TARGET_IDLE_RSS_MIB, idle),
        Verdict("cancellation to upstream EOF, p99", f"<= {TARGET_CANCEL_MS:g} ms (every trial)",
                f"{can['p99_ms']:.2f} ms ({can['upstream_saw_eof']}/{can['closed']} seen)",
                can["upstream_saw_eof"] == can["closed"] > 0 and can["p99_ms"] <= TARGET_CANCEL_MS,
                can["p99_ms"]),
    ]  # fmt: skip


def print_report(res: dict[str, Any], out: TextIO) -> None:
    m, ns, lat, st, mem = (
        res[k] for k in ("meta", "nonstream_c32", "latency_c1", "streams", "memory")
    )
    print(f"python {m['python']}, {m['cpus']} CPUs, load average {m['loadavg_at_start']} at "
          f"start; load generator for non-stream: {m['generator']}\n", file=out)  # fmt: skip
    d, g = ({**r, "all_errors": r["errors"] + r["non_2xx"]} for r in (ns["direct"], ns["gateway"]))
    head = ["", "direct", "gateway", "gateway/direct"]
    rows = side_by_side([{**d, "gateway_cpu_us_per_req": None}, g], [
        ("req/s", "{rps:,.0f}", f"{ns['ratio']:.1%}" if ns["ratio"] else "-"),
        ("p50 ms", "{p50_ms:,.2f}", "-"), ("p99 ms", "{p99_ms:,.2f}", "-"),
        ("gateway CPU us/req", "{gateway_cpu_us_per_req:,.0f}", "-"),
        ("upstream CPU us/req", "{upstream_cpu_us_per_req:,.0f}", "-"),
        ("requests (errors)", "{requests:,} ({all_errors})", "-")])  # fmt: skip
    oh = {"p50": float("nan"), "p99": float("nan"), "count": 0, **g.get("overhead_header_ms", {})}
    table(f"Non-stream POST {PATH}, concurrency {m['connections']} ({d['generator']}, "
          f"{m['duration_s']:g} s each)", head, rows, out,
          f"x-gateway-overhead-ms over the gateway run: p50 {oh['p50']:.3f}, "
          f"p99 {oh['p99']:.3f} ({oh['count']:,} responses)")  # fmt: skip
    rows = [[p, f"{lat['direct'][f'{p}_ms']:.3f}", f"{lat['gateway'][f'{p}_ms']:.3f}",
             f"{lat[f'added_{p}_ms']:.3f}", f"<= {t:g}"]
            for p, t in (("p50", TARGET_P50_ADDED_MS), ("p99", TARGET_P99_ADDED_MS))]  # fmt: skip
    oh = lat["overhead_header_ms"]
    table(f"Latency at concurrency 1, ms ({lat['rounds']} interleaved rounds x "
          f"{lat['per_round']} requests each way)", ["", "direct", "gateway", "added", "target"],
          rows, out,
          f"x-gateway-overhead-ms here: p50 {oh['p50']:.3f}, p99 {oh['p99']:.3f}")  # fmt: skip
    sd, sg = st["direct"], st["gateway"]
    ratio = sg["events_per_s"] / sd["events_per_s"] if sd["events_per_s"] else 0
    rows = side_by_side([{**sd, "gateway_cpu_cores": None, "gateway_cpu_us_per_event": None}, sg], [
        ("SSE events/s received", "{events_per_s:,.0f}", f"{ratio:.1%}" if ratio else "-"),
        ("streams/s", "{streams_per_s:,.1f}", "-"),
        ("first event p50 ms", "{first_event_p50_ms:,.2f}", "-"),
        ("gateway CPU cores", "{gateway_cpu_cores:.2f}", "-"),
        ("gateway CPU us/event", "{gateway_cpu_us_per_event:,.1f}", "-"),
        ("errors", "{errors}", "-")])  # fmt: skip
    table(f"Streams of {STREAM_EVENTS} events + [DONE], {sg['connections']} concurrent, "
          f"{m['duration_s']:g} s each", head, rows, out)  # fmt: skip
    rows = [["idle, after start", f"{mem['idle_after_start_mib']:.1f}"],
            [f"{mem['streams_open']} streams held: VmRSS max", f"{mem['rss_held_max_mib']:.1f}"],
            ["peak (VmHWM)", f"{mem['peak_hwm_mib']:.1f}"],
            ["per open stream, KiB", f"{mem['per_stream_kib']:.1f}"],
            ["1 s after the clients left", f"{mem['rss_after_close_mib']:.1f}"]]  # fmt: skip
    table(f"Gateway memory, MiB (fresh process; streams: one event per {HOLD_INTERVAL_MS} ms, "
          f"held {mem['hold_s']:g} s)", ["", "MiB"], rows, out,
          f"{mem['streams_open']}/{mem['streams_requested']} streams opened in "
          f"{mem['open_s']:.1f} s; upstream streams open while held "
          f"{mem['upstream_open_streams_while_held']}, 1 s after the clients left "
          f"{mem['upstream_open_streams_after_close']}")  # fmt: skip
    columns("Cancellation: client closes mid-stream -> upstream socket sees EOF, ms",
            [("", "{name}"), ("seen", "{upstream_saw_eof}/{trials}"), ("p50", "{p50_ms:,.2f}"),
             ("p99", "{p99_ms:,.2f}"), ("max", "{max_ms:,.2f}")],
            [{"name": name, **c} for name, c in res["cancellation"].items()], out)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    res: dict[str, Any] = {"meta": meta(args)}
    with stack("gateway-bench-proxy-", args.keep_logs) as rig:
        gw, gw_port = rig.start_gateway()
        res["meta"]["gateway_idle_rss_mib"] = gw.rss_kib()["VmRSS"] / MIB
        check(rig, gw_port)
        res["latency_c1"] = latency_c1(rig, gw_port, args)
        procs = {"gateway": gw, "upstream": rig.upstream}
        ports = {"direct": rig.upstream_port, "gateway": gw_port}
        ns = {k: requests_row(procs, p, PATH, [chat_body()], args, k) for k, p in ports.items()}
        ns["ratio"] = ns["gateway"]["rps"] / ns["direct"]["rps"] if ns["direct"]["rps"] else 0.0
        res["nonstream_c32"] = ns
        res["streams"] = {}
        for name, port in ports.items():
            note(f"streams {name}: {args.streams} connections, {args.duration:g} s ...")
            body = chat_body(stream=True)
            res["streams"][name] = streams_row(procs, port, PATH, body, args, STREAM_EVENTS + 1)
        res["cancellation"] = cancellation(rig, gw_port, args)
        res["gateway_rss_after_load_mib"] = gw.rss_kib()["VmRSS"] / MIB
        gw.stop()
        res["memory"] = memory(rig, args)
    res["targets"] = [v.as_dict() for v in verdicts(res)]
    return emit(res, args.json, print_report)


def options(parser: argparse.ArgumentParser) -> None:
    add_load_options(parser, connections=32)
    option(parser, "--rounds", 20, "latency rounds at c=1", quick=10)
    option(parser, "--per-round", 50, "requests per round", quick=30)
    option(parser, "--streams", 32, "concurrent streams")
    option(parser, "--hold", 500, "streams held open at once")
    option(parser, "--hold-s", 5.0, "seconds they are held", quick=2.0)
    option(parser, "--trials", 50, "cancellation trials", quick=20)


HELP = "the gateway in front of a mock OpenAI upstream vs the upstream alone (issue 3)"
COMMAND = (HELP, options, run)
