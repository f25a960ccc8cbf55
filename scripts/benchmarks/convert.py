"""``bench.py convert`` (issue 4): what format conversion costs, in process and end to end.

(a) ``--part micro``: the gateway's own code in process (rig/gw.py, best of 5 timed loops)
per direction for a small and a Claude Code request (benchmarks/workloads.py): the
request path (``parse_json_object`` + the adapter) beside the same-format one, the next
turn of that conversation through one memo, the answer's conversion, and per upstream
event the stream relays (``ConvertingRelay`` vs ``FramedRelay``) fed one event at a time.

(b) ``--part e2e``: through a gateway in front of the mock upstream, the Anthropic client
path (converted) beside the same-format one with the same conversation: non-stream at
concurrency 32 (the small request; two consecutive Claude Code requests in turn, as an
agent's loop sends them) and 200-event streams. With ``--repeat N`` the runs interleave;
the CPU ratio is the median of each round's converted over same-format run (the machine's
speed drifts). Targets: conversion adds < 15% gateway CPU per request; the converted
relay keeps >= 0.7x the same-format upstream events/s.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable
from typing import Any, TextIO

from rig import gw
from rig.measure import add_load_options, option, requests_row, streams_row
from rig.report import Verdict, columns, emit, median_run, meta, note, table
from rig.stack import stack

from benchmarks import workloads as w

FORMATS = ("openai", "anthropic", "gemini")
DIRECTIONS = (("anthropic", "openai"), ("openai", "anthropic"), ("openai", "gemini"),
              ("gemini", "openai"), ("anthropic", "gemini"), ("gemini", "anthropic"))  # fmt: skip
MODEL = "bench-model"
TARGETS = {fmt: gw.target(fmt, MODEL) for fmt in FORMATS}
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
CLIENTS = ("openai", "anthropic")  # end to end: same-format, converted
STREAM_EVENTS = 201  # the mock's 200 events and [DONE]
TARGET_CPU_ADDED, TARGET_STREAM_RATIO = 0.15, 0.7
CPU = "gateway_cpu_us_per_req"


def per_call_us(fn: Callable[[], object], min_time_s: float, repeats: int = 5) -> float:
    """Best of ``repeats`` (microseconds per call), each repeat >= ``min_time_s``."""
    fn()
    n = 1
    while True:  # n calls that take min_time_s: the first of the repeats
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        took = time.perf_counter() - t0
        if took >= min_time_s or n >= 1 << 20:
            break
        n = max(n * 2, int(n * min_time_s / max(took, 1e-9) * 1.1))
    best = took / n
    for _ in range(repeats - 1):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def encoded(body: dict[str, Any], fmt: str) -> bytes:
    """An Anthropic-shaped request ``body`` as a client of ``fmt`` sends it."""
    return json.dumps(gw.in_format(body, fmt)).encode()


def upstream_streams() -> dict[str, dict[str, list[bytes]]]:
    """``{stream kind: {format: events}}``: the OpenAI streams, and as the others send them."""
    out: dict[str, dict[str, list[bytes]]] = {}
    for kind, events in (("text", w.openai_text_stream()), ("tool call", w.openai_tool_stream())):
        out[kind] = {"openai": events}
        for fmt in ("anthropic", "gemini"):
            call = gw.call(fmt, encoded(w.small_request(stream=True), fmt), MODEL, stream=True)
            relay = gw.adapter(call, TARGETS["openai"]).relay()
            data = b"".join(relay.feed(e) for e in events) + relay.finish()
            # SSE bytes cut after each blank line (``\n\n`` or ``\r\n\r\n``).
            out[kind][fmt] = [m[0] for m in re.finditer(rb".*?(?:\r\n\r\n|\n\n)", data, re.S)]
    return out


def request_us(src: str, raws: list[bytes], dst: str, min_time_s: float) -> float:
    """The proxy's path for client bodies ``raws`` (in turn, one memo): the body to send."""
    memo, turn, target = (gw.Memo() if len(raws) > 1 else None), [0], TARGETS[dst]

    def run() -> bytes:
        turn[0] += 1
        call = gw.call(src, raws[turn[0] % len(raws)], MODEL, sized=memo is not None)
        return gw.adapter(call, target, memo).body

    return per_call_us(run, min_time_s)


def relay_us(events: list[bytes], client: str, up: str, min_time_s: float) -> float:
    """One stream of ``events`` from ``up`` relayed to ``client``, fed event by event."""
    call = gw.call(client, encoded(w.small_request(stream=True), client), MODEL, stream=True)
    adapter = gw.adapter(call, TARGETS[up])

    def run() -> int:
        relay = adapter.relay()
        return sum(len(relay.feed(event)) for event in events) + len(relay.finish())

    return per_call_us(run, min_time_s)


def micro(min_time_s: float) -> dict[str, Any]:
    """(a): ``{"requests": {direction: {size: ...}}, "streams": {kind: {up: {client: ...}}}}``."""
    requests: dict[str, Any] = {}
    sizes = {"small": (w.small_request(), w.small_response()),
             "claude_code": (w.claude_code_request(), w.tool_response())}  # fmt: skip
    for size, (body, answer) in sizes.items():
        bodies = {f: encoded(body, f) for f in FORMATS}
        answers = {f: json.dumps(gw.response_in_format(answer, f)).encode() for f in FORMATS}
        same = {f: request_us(f, [bodies[f]], f, min_time_s) for f in FORMATS}
        for src, dst in DIRECTIONS:
            raw, answer = bodies[src], answers[dst]
            convert = request_us(src, [raw], dst, min_time_s)
            adapter = gw.adapter(gw.call(src, raw, MODEL), TARGETS[dst])
            response = per_call_us(lambda a=adapter, ans=answer: a.response(ans), min_time_s)
            row = requests.setdefault(f"{src}->{dst}", {})
            if size == "claude_code":
                turns = [encoded(w.claude_code_request(exchange=t), src) for t in (1, 2)]
                next_us = request_us(src, turns, dst, min_time_s)
                row["claude_code_next_turn"] = {"request_us": next_us, "same_format_us": same[src]}
            row[size] = {
                "body_bytes": len(raw), "upstream_body_bytes": len(adapter.body),
                "request_us": convert, "same_format_us": same[src],
                "ratio": convert / same[src] if same[src] else 0.0,
                "response_us": response, "response_bytes": len(answer),
            }  # fmt: skip
            note(f"  {src}->{dst} {size}: request {convert:,.1f} us vs same-format "
                 f"{same[src]:,.1f} us; response {response:,.1f} us")  # fmt: skip
    streams: dict[str, Any] = {}
    for kind, by_fmt in upstream_streams().items():
        for up, events in by_fmt.items():
            got = streams.setdefault(kind, {}).setdefault(up, {})
            for client in FORMATS:
                us = relay_us(events, client, up, min_time_s) / len(events)
                got[client] = {"events": len(events), "us_per_event": us,
                               "same_format": up == client}  # fmt: skip
            each = ", ".join(f"to {c} {v['us_per_event']:.2f} us/event" for c, v in got.items())
            note(f"  {kind} stream from {up}: {each}")
    return {"requests": requests, "streams": streams, "min_time_s": min_time_s}


def e2e(args: argparse.Namespace) -> dict[str, Any]:
    """(b): each scenario ``--repeat`` times, same-format and converted runs interleaved."""
    ns: dict[str, dict[str, list[dict[str, Any]]]] = {"small": {}, "claude_code": {}}
    st: dict[str, list[dict[str, Any]]] = {}
    with stack("gateway-bench-convert-", args.keep_logs) as rig:
        gw_proc, port = rig.start_gateway()
        procs = {"gateway": gw_proc, "upstream": rig.upstream}
        for rep in range(args.repeat):
            tag = f" (run {rep + 1} of {args.repeat})" if args.repeat > 1 else ""
            for size, client in ((s, c) for s in ns for c in CLIENTS):
                bodies = [w.small_request()] if size == "small" else [
                    w.claude_code_request(exchange=n) for n in (1, 2)]  # fmt: skip
                raws = [encoded(body, client) for body in bodies]
                label = f"{size} {client}->openai{tag}"
                ns[size].setdefault(client, []).append(
                    requests_row(procs, port, PATHS[client], raws, args, label))  # fmt: skip
            for client in CLIENTS:
                note(f"streams {client}: {args.streams} connections, {args.duration:g} s ...")
                body = encoded(w.small_request(stream=True), client)
                got = streams_row(procs, port, PATHS[client], body, args, STREAM_EVENTS)
                per_core = ratio(got["upstream_events_per_s"], got["gateway_cpu_cores"])
                st.setdefault(client, []).append({**got, "upstream_events_per_core_s": per_core})
    out: dict[str, Any] = {"nonstream": {}, "streams": {}}
    for size, runs in ns.items():
        rows = out["nonstream"][size] = {c: median_run(runs[c], CPU) for c in CLIENTS}
        pairs = zip(runs["openai"], runs["anthropic"], strict=True)
        rounds = [c[CPU] / s[CPU] for s, c in pairs if s[CPU]]
        rows["cpu_ratio_rounds"] = [round(r, 3) for r in rounds]
        rows["cpu_ratio_of_medians"] = ratio(rows["anthropic"][CPU], rows["openai"][CPU])
        rows["cpu_ratio"] = statistics.median(rounds) if rounds else 0.0
        rows["rps_ratio"] = ratio(rows["anthropic"]["rps"], rows["openai"]["rps"])
    streams = out["streams"]
    streams.update({c: median_run(runs, "upstream_events_per_s") for c, runs in st.items()})
    for key, of in (
        ("ratio", "upstream_events_per_s"),
        ("ratio_per_core", "upstream_events_per_core_s"),
    ):
        streams[key] = ratio(streams["anthropic"][of], streams["openai"][of])
    return out


def ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def verdicts(res: dict[str, Any]) -> list[Verdict]:
    if not (e := res.get("e2e")):
        return []
    out = []
    for size, r in e["nonstream"].items():
        added = r["cpu_ratio"] - 1
        got = (f"{added:+.1%} (median of {len(r['cpu_ratio_rounds'])} paired rounds; "
               f"medians {r['anthropic'][CPU]:,.0f} vs {r['openai'][CPU]:,.0f} us)")  # fmt: skip
        name = f"non-stream conversion CPU/req, {size.replace('_', '-')} request"
        out.append(
            Verdict(name, f"< +{TARGET_CPU_ADDED:.0%}", got, added < TARGET_CPU_ADDED, added)
        )
    x, per_core = e["streams"]["ratio"], e["streams"]["ratio_per_core"]
    got = f"{x:.2f}x ({per_core:.2f}x per gateway core)"
    name = "converted stream relay vs same-format, events/s"
    return [*out, Verdict(name, f">= {TARGET_STREAM_RATIO:g}x", got, x >= TARGET_STREAM_RATIO, x)]


MICRO_NOTES = """same-fmt: the client's body on the same-format path (Passthrough: json.loads, model swap, json.dumps);
claude-code: ~{kb:.0f} KB, 30 tools, 41 messages, converted with no memory of earlier requests;
cc next turn: two requests of that conversation (the same history and tools, the last 2 messages new) in turn, as the proxy
runs them (one gateway.convert.memo.Memo);
resp: Converting.response() of the provider's answer (same-format: 0, bytes pass)."""  # noqa: E501
MICRO_COLUMNS = [
    ("client->provider", "{direction}"), ("small", "{small[request_us]:,.1f}"),
    ("same-fmt", "{small[same_format_us]:,.1f}"), ("x", "{small[ratio]:.1f}x"),
    ("claude-code", "{claude_code[request_us]:,.0f}"),
    ("same-fmt", "{claude_code[same_format_us]:,.0f}"), ("x", "{claude_code[ratio]:.1f}x"),
    ("cc next turn", "{claude_code_next_turn[request_us]:,.0f}"), ("x", "{next_x:.1f}x"),
    ("resp small", "{small[response_us]:,.1f}"), ("resp cc", "{claude_code[response_us]:,.1f}"),
]  # fmt: skip
E2E_COLUMNS = [
    ("path", "{path}"), ("body B", "{body_bytes:,}"), ("req/s", "{rps:,.0f}"),
    ("p50 ms", "{p50_ms:,.2f}"), ("p99 ms", "{p99_ms:,.2f}"),
    ("gw CPU us/req", "{gateway_cpu_us_per_req:,.0f}"),
    ("CPU x", "{cpu_x}"), ("req/s x", "{rps_x}"), ("errors", "{all_errors}"),
]  # fmt: skip
STREAM_COLUMNS = [
    ("path", "{path}"), ("streams/s", "{streams_per_s:,.1f}"),
    ("upstream ev/s", "{upstream_events_per_s:,.0f}"), ("client ev/s", "{events_per_s:,.0f}"),
    ("gw cores", "{gateway_cpu_cores:.2f}"),
    ("gw us/event", "{gateway_cpu_us_per_upstream_event:,.1f}"),
    ("1st event ms", "{first_event_p50_ms:,.2f}"), ("errors", "{errors}"),
]  # fmt: skip


def print_report(res: dict[str, Any], out: TextIO) -> None:
    m = res["meta"]
    cpus = f"python {m['python']}, {m['cpus']} CPUs, load average {m['loadavg_at_start']}"
    print(f"{cpus} at start\n", file=out)
    if mi := res.get("micro"):
        rows = [{**r, "direction": d, "next_x": ratio(r["claude_code_next_turn"]["request_us"],
                                                      r["claude_code"]["same_format_us"])}
                for d, r in mi["requests"].items()]  # fmt: skip
        kb = rows[0]["claude_code"]["body_bytes"] / 1000
        title = "(a) In process, microseconds per request (best of 5): json.loads + make_adapter"
        columns(f"{title} (+ json.dumps)", MICRO_COLUMNS, rows, out, MICRO_NOTES.format(kb=kb))
        for kind, by_up in mi["streams"].items():
            rows = [[f"{up} ({by['openai']['events']} events)",
                     *(f"{by[c]['us_per_event']:.2f}" + " *" * (up == c) for c in FORMATS)]
                    for up, by in by_up.items()]  # fmt: skip
            tool = "\nGemini sends a tool call whole: its stream has 3 events, each costing more"
            table(f"(a) {kind} stream, microseconds per upstream event, fed one event at a time",
                  ["upstream \\ client", *FORMATS], rows, out,
                  "* same format: FramedRelay (EventFramer), no decoding"
                  + (tool if kind == "tool call" else ""))  # fmt: skip
    if e := res.get("e2e"):
        rows = [{**r[c], "path": f"{size} {c}->openai",
                 "all_errors": r[c]["errors"] + r[c]["non_2xx"],
                 "cpu_x": f"{r['cpu_ratio']:.2f}x" if c == "anthropic" else "",
                 "rps_x": f"{r['rps_ratio']:.1%}" if c == "anthropic" else ""}
                for size, r in e["nonstream"].items() for c in CLIENTS]  # fmt: skip
        columns(f"(b) End to end, non-stream, concurrency {m['connections']} ({m['generator']}, "
                f"{m['duration_s']:g} s each), openai-format upstream", E2E_COLUMNS, rows, out,
                "CPU x: median over the rounds of the converted (anthropic) run's gateway CPU/req "
                "over the same-format run beside it;\nreq/s x: of the median runs; claude_code "
                "rows send two consecutive requests of the conversation in turn")  # fmt: skip
        st = e["streams"]
        columns(f"(b) End to end, streams of 200 events + [DONE], {st['openai']['connections']} "
                f"concurrent, {m['duration_s']:g} s each", STREAM_COLUMNS,
                [{**st[c], "path": f"{c}->openai"} for c in CLIENTS], out,
                f"converted / same-format upstream events/s: {st['ratio']:.2f}x; per gateway "
                "CPU-second (immune to CPU taken by other work): "
                f"{st['ratio_per_core']:.2f}x")  # fmt: skip


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
    add_load_options(parser, connections=32)
    option(parser, "--streams", 32, "concurrent streams")
    parser.add_argument("--part", choices=["micro", "e2e", "both"], default="both",
                        help="(a) in process, (b) end to end, or both (default)")  # fmt: skip


HELP = "format conversion cost: in process per direction, and end to end (issue 4)"
COMMAND = (HELP, options, run)
