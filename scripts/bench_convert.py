"""``bench.py convert`` (issue 4): what format conversion costs, in process and end to end.

    python scripts/bench.py convert [--quick] [--json] [--part micro|e2e|both]
                                    [--duration 10] [--connections 32] [--streams 32]
                                    [--repeat N]

(a) In process, no I/O: the gateway's own per-request code path, timed with
``time.perf_counter`` loops (best of 5 repeats, each long enough to be
steady), for a small request and a Claude-Code-sized one (built in
scripts/bench_workloads.py: ~120 KB of JSON, 30 tools with JSON schemas, a
14 KB system prompt, 41 messages with tool calls and results):

- requests, per direction (anthropic->openai, openai->anthropic,
  openai->gemini, gemini->openai, anthropic->gemini, gemini->anthropic):
  ``parse_json_object`` (json.loads) + ``gateway.adapters.make_adapter``
  (parse into the canonical model, render the provider's body, the
  transformer's edits, json.dumps): exactly what the proxy runs before it
  sends. Beside it, the same-format path for the same client body
  (``Passthrough``: json.loads + model swap + json.dumps);
- responses: ``Converting.response`` (json.loads + parse + render + dumps)
  of a matching non-stream answer; the same-format path returns the bytes;
- stream events: microseconds per *upstream* event to turn each upstream
  format into each client format (``ConvertingRelay``: SSEDecoder ->
  StreamParser -> StreamRenderer), fed one event per ``feed`` as tokens
  arrive, against same-format framing (``FramedRelay`` / ``EventFramer``);
  for a 200-event text stream and for a tool call whose arguments arrive in
  120 fragments.

(b) End to end through a real gateway (1 worker, access log on) in front of
the mock OpenAI-format upstream (scripts/bench_upstream.py): the Anthropic
client path (``POST /v1/messages``, converted) beside the same-format path
(``POST /v1/chat/completions`` with the same conversation in OpenAI form),
non-stream at concurrency 32 (wrk) for the small and the Claude-Code-sized
request (two consecutive requests of that conversation, sent in turn: the same
history and tools with a new last exchange, which is what a coding agent's loop
sends and what the gateway's conversion memo, gateway/convert/memo.py, is for),
and streams (``--streams`` connections, 200-event streams back to
back); with ``--repeat N`` every scenario runs N times, the same-format and
converted runs interleaved, and the median run is shown. The gateway's CPU
time (``/proc/PID/stat`` utime+stime before and after) per request and per
stream gives the ratios.

Targets: non-stream conversion adds < 15% to the same-format path's gateway
CPU per request (judged for each request size); the converted stream relay
reaches >= 0.7x the same-format relay's events/s, counted in upstream events
(the events the clients received in the window, times 201 / the client's
events per whole stream: both paths relay the same 201 upstream events, the
Anthropic client gets 204 for them; client-side counts are shown too).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from bench import add_load_options, note
from bench_proxy import stream_relay
from bench_rig import (
    Cpu,
    Rig,
    Verdict,
    fmt_num,
    have_wrk,
    print_block,
    print_noise,
    print_verdicts,
    run_wrk,
)
from bench_workloads import (
    claude_code_request,
    in_format,
    openai_text_stream,
    openai_tool_stream,
    response_in_format,
    small_request,
    small_response,
    tool_response,
)

from gateway.adapters import make_adapter
from gateway.call import Call
from gateway.convert.memo import Memo
from gateway.frontends import parse_json_object
from gateway.routing import Target
from gateway.transformers import parse_transformer

FORMATS = ("openai", "anthropic", "gemini")
DIRECTIONS = (
    ("anthropic", "openai"),
    ("openai", "anthropic"),
    ("openai", "gemini"),
    ("gemini", "openai"),
    ("anthropic", "gemini"),
    ("gemini", "anthropic"),
)
OPS = {"openai": "chat", "anthropic": "messages", "gemini": "generate"}
MODEL = "bench-model"
TARGET_CPU_ADDED = 0.15
TARGET_STREAM_RATIO = 0.7


# -- (a) in process -------------------------------------------------------------------------


def _target(fmt: str) -> Target:
    spec = {"format": fmt, "base_url": "http://127.0.0.1:9/v1", "models": {"*": "*"}}
    t = parse_transformer(json.dumps(spec).encode(), f"{fmt}.json", {})
    return Target(t, "up-model", t.models["*"], MODEL)


TARGETS = {fmt: _target(fmt) for fmt in FORMATS}


def _call(fmt: str, raw: bytes, stream: bool = False) -> Call:
    """What the front end makes of ``raw`` (json.loads included)."""
    body = parse_json_object(raw)
    model = MODEL if fmt == "gemini" else body["model"]
    if fmt != "gemini":
        stream = bool(body.get("stream"))
    return Call(fmt, OPS[fmt], model, stream, body)


def per_call_us(fn: Callable[[], object], min_time_s: float, repeats: int = 5) -> float:
    """Best of ``repeats`` (microseconds per call), each repeat >= ``min_time_s``."""
    fn()
    n = 1
    while True:
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


def _split_events(data: bytes) -> list[bytes]:
    """SSE bytes cut after each blank line (``\\n\\n`` or ``\\r\\n\\r\\n``)."""
    return [m.group(0) for m in re.finditer(rb".*?(?:\r\n\r\n|\n\n)", data, re.S)]


def upstream_streams() -> dict[str, dict[str, list[bytes]]]:
    """``{stream kind: {format: events}}``: the OpenAI streams, and as the others send them."""
    out: dict[str, dict[str, list[bytes]]] = {}
    for kind, events in (("text", openai_text_stream()), ("tool call", openai_tool_stream())):
        out[kind] = {"openai": events}
        for fmt in ("anthropic", "gemini"):
            raw = json.dumps(in_format(small_request(stream=True), fmt)).encode()
            adapter = make_adapter(_call(fmt, raw, stream=True), TARGETS["openai"])
            relay = adapter.relay()
            data = b"".join(relay.feed(e) for e in events) + relay.finish()
            out[kind][fmt] = _split_events(data)
    return out


def _upstream_body(fmt: str, raw: bytes, target: Target) -> Callable[[], bytes]:
    """What the proxy does with a client body before sending it: the body to send."""

    def run() -> bytes:
        return make_adapter(_call(fmt, raw), target).body

    return run


def _next_turns(src: str, raws: list[bytes], target: Target) -> Callable[[], bytes]:
    """The proxy's path for a conversation's consecutive requests: ``raws`` in turn, one Memo."""
    memo = Memo()
    turn = [0]

    def run() -> bytes:
        turn[0] += 1
        raw = raws[turn[0] % len(raws)]
        call = attrs.evolve(_call(src, raw), size=len(raw))
        return make_adapter(call, target, memo).body

    return run


def micro(min_time_s: float) -> dict[str, Any]:
    sizes = {
        "small": (small_request(), small_response()),
        "claude_code": (claude_code_request(), tool_response()),
    }
    requests: dict[str, Any] = {}
    for size, (anthropic_body, anthropic_resp) in sizes.items():
        bodies = {f: json.dumps(in_format(anthropic_body, f)).encode() for f in FORMATS}
        answers = {f: json.dumps(response_in_format(anthropic_resp, f)).encode() for f in FORMATS}
        same = {}
        for fmt in FORMATS:
            raw = bodies[fmt]
            target = TARGETS[fmt]
            same[fmt] = per_call_us(_upstream_body(fmt, raw, target), min_time_s)
        for src, dst in DIRECTIONS:
            raw = bodies[src]
            target = TARGETS[dst]
            convert = per_call_us(_upstream_body(src, raw, target), min_time_s)
            adapter = make_adapter(_call(src, raw), target)
            answer = answers[dst]
            response = per_call_us(lambda a=adapter, ans=answer: a.response(ans), min_time_s)
            row = requests.setdefault(f"{src}->{dst}", {})
            if size == "claude_code":
                turns = [
                    json.dumps(in_format(claude_code_request(exchange=t), src)).encode()
                    for t in (1, 2)
                ]
                row["claude_code_next_turn"] = {
                    "request_us": per_call_us(_next_turns(src, turns, target), min_time_s),
                    "same_format_us": same[src],
                }
            row[size] = {
                "body_bytes": len(raw),
                "upstream_body_bytes": len(adapter.body),
                "request_us": convert,
                "same_format_us": same[src],
                "ratio": convert / same[src] if same[src] else 0.0,
                "response_us": response,
                "response_bytes": len(answer),
            }
            note(
                f"  {src}->{dst} {size}: request {convert:,.1f} us vs same-format "
                f"{same[src]:,.1f} us; response {response:,.1f} us"
            )
    streams: dict[str, Any] = {}
    for kind, by_fmt in upstream_streams().items():
        for up in FORMATS:
            events = by_fmt[up]
            for client in FORMATS:
                raw = json.dumps(in_format(small_request(stream=True), client)).encode()
                call = _call(client, raw, stream=True)
                adapter = make_adapter(call, TARGETS[up])

                def relay_all(adapter: Any = adapter, events: list[bytes] = events) -> int:
                    relay = adapter.relay()
                    n = 0
                    for event in events:
                        n += len(relay.feed(event))
                    return n + len(relay.finish())

                us = per_call_us(relay_all, min_time_s)
                streams.setdefault(kind, {}).setdefault(up, {})[client] = {
                    "events": len(events),
                    "us_per_event": us / len(events),
                    "same_format": up == client,
                }
            note(
                f"  {kind} stream from {up}: "
                + ", ".join(
                    f"to {c} {v['us_per_event']:.2f} us/event" for c, v in streams[kind][up].items()
                )
            )
    return {"requests": requests, "streams": streams, "min_time_s": min_time_s}


# -- (b) end to end -------------------------------------------------------------------------


def _nonstream_run(
    rig: Rig, gw: Any, port: int, path: str, body: list[bytes], args: argparse.Namespace, label: str
) -> dict[str, Any]:
    note(f"non-stream {label} ({len(body[0]):,} B body), c={args.connections} ...")
    kwargs = {"connections": args.connections, "generator": args.generator}
    if args.warmup:
        run_wrk(port, path, body, duration_s=args.warmup, **kwargs)
    cpu = Cpu({"gateway": gw, "upstream": rig.upstream})
    res = run_wrk(port, path, body, duration_s=args.duration, **kwargs)
    used = cpu.stop()
    row = res.as_dict()
    row["body_bytes"] = len(body[0])
    row["bodies_in_turn"] = len(body)
    row["cpu_s"] = {k: round(v, 3) for k, v in used.items()}
    row["gateway_cpu_us_per_req"] = used["gateway"] / res.requests * 1e6 if res.requests else 0.0
    note(
        f"  {res.rps:,.0f} req/s, p50 {res.p50_ms:.2f} ms, p99 {res.p99_ms:.2f} ms, gateway "
        f"{row['gateway_cpu_us_per_req']:,.0f} us CPU/req, errors {res.errors + res.non_2xx}"
    )
    return row


def _median(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run with the median ``key``; every run's ``key`` is kept under ``runs_<key>``."""
    ordered = sorted(runs, key=lambda r: r[key])
    row = dict(ordered[len(ordered) // 2])
    if len(runs) > 1:
        row[f"runs_{key}"] = [round(r[key], 3) for r in runs]
    return row


def _e2e_bodies(size: str, client: str) -> list[bytes]:
    """What each connection sends in turn: the small request, or two consecutive requests
    of the Claude Code conversation (the same history, a new last exchange), as a coding
    agent's loop sends them."""
    if size == "small":
        return [json.dumps(in_format(small_request(MODEL), client)).encode()]
    return [
        json.dumps(in_format(claude_code_request(MODEL, exchange=n), client)).encode()
        for n in (1, 2)
    ]


def e2e(args: argparse.Namespace) -> dict[str, Any]:
    """Each scenario ``--repeat`` times, same-format and converted runs interleaved."""
    out: dict[str, Any] = {"nonstream": {}, "streams": {}}
    paths = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
    ns: dict[tuple[str, str], list[dict[str, Any]]] = {}
    st: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="gateway-bench-convert-") as tmpname:
        rig = Rig.start(Path(tmpname))
        try:
            gw, port = rig.start_gateway()
            for rep in range(args.repeat):
                tag = f" (run {rep + 1} of {args.repeat})" if args.repeat > 1 else ""
                for size in ("small", "claude_code"):
                    for client in ("openai", "anthropic"):
                        body = _e2e_bodies(size, client)
                        label = f"{size} {client}->openai{tag}"
                        row = _nonstream_run(rig, gw, port, paths[client], body, args, label)
                        ns.setdefault((size, client), []).append(row)
                for client in ("openai", "anthropic"):
                    body = json.dumps(in_format(small_request(MODEL, stream=True), client)).encode()
                    got = stream_relay(rig, gw, {client: port}, args, body, paths[client])[client]
                    got["upstream_events_per_core_s"] = (
                        got["upstream_events_per_s"] / got["gateway_cpu_cores"]
                        if got["gateway_cpu_cores"]
                        else 0.0
                    )
                    st.setdefault(client, []).append(got)
        finally:
            rig.keep_logs(args.keep_logs)
            for proc, _port in rig.gateways:
                proc.stop()
            rig.upstream.stop()
    for (size, client), runs in ns.items():
        out["nonstream"].setdefault(size, {})[client] = _median(runs, "gateway_cpu_us_per_req")
    for client, runs in st.items():
        out["streams"][client] = _median(runs, "upstream_events_per_s")
    for size, rows in out["nonstream"].items():
        same, conv = rows["openai"], rows["anthropic"]
        # Each round's converted run over the same-format run just before it, and the median
        # of those: the machine's speed drifts between rounds (shared hosts), and a ratio of
        # adjacent runs cancels most of that drift where a ratio of medians would not.
        rounds = [
            c["gateway_cpu_us_per_req"] / s["gateway_cpu_us_per_req"]
            for s, c in zip(ns[(size, "openai")], ns[(size, "anthropic")], strict=True)
            if s["gateway_cpu_us_per_req"]
        ]
        rows["cpu_ratio_rounds"] = [round(r, 3) for r in rounds]
        rows["cpu_ratio_of_medians"] = (
            conv["gateway_cpu_us_per_req"] / same["gateway_cpu_us_per_req"]
            if same["gateway_cpu_us_per_req"]
            else 0.0
        )
        rows["cpu_ratio"] = statistics.median(rounds) if rounds else 0.0
        rows["rps_ratio"] = conv["rps"] / same["rps"] if same["rps"] else 0.0
    streams = out["streams"]
    same_rate = streams["openai"]["upstream_events_per_s"]
    streams["ratio"] = (
        streams["anthropic"]["upstream_events_per_s"] / same_rate if same_rate else 0.0
    )
    same_core = streams["openai"]["upstream_events_per_core_s"]
    streams["ratio_per_core"] = (
        streams["anthropic"]["upstream_events_per_core_s"] / same_core if same_core else 0.0
    )
    return out


# -- report ---------------------------------------------------------------------------------


def verdicts(res: dict[str, Any]) -> list[Verdict]:
    out = []
    e = res.get("e2e")
    if not e:
        return out
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
    ratio, per_core = e["streams"]["ratio"], e["streams"]["ratio_per_core"]
    out.append(
        Verdict(
            "converted stream relay vs same-format, events/s",
            f">= {TARGET_STREAM_RATIO:g}x",
            f"{ratio:.2f}x ({per_core:.2f}x per gateway core)",
            ratio >= TARGET_STREAM_RATIO,
            ratio,
        )
    )
    return out


def print_report(res: dict[str, Any], out: Any) -> None:
    meta = res["meta"]
    print(
        f"python {meta['python']}, {meta['cpus']} CPUs, load average {meta['loadavg_at_start']} "
        "at start",
        file=out,
    )
    print(file=out)
    m = res.get("micro")
    if m:
        rows = []
        for direction, sizes in m["requests"].items():
            s, c = sizes["small"], sizes["claude_code"]
            n = sizes["claude_code_next_turn"]
            rows.append(
                [
                    direction,
                    fmt_num(s["request_us"], 1),
                    fmt_num(s["same_format_us"], 1),
                    f"{s['ratio']:.1f}x",
                    fmt_num(c["request_us"]),
                    fmt_num(c["same_format_us"]),
                    f"{c['ratio']:.1f}x",
                    fmt_num(n["request_us"]),
                    f"{n['request_us'] / c['same_format_us']:.1f}x",
                    fmt_num(s["response_us"], 1),
                    fmt_num(c["response_us"], 1),
                ]
            )
        cc = next(iter(m["requests"].values()))["claude_code"]
        print_block(
            "(a) In process, microseconds per request (best of 5): json.loads + make_adapter "
            "(+ json.dumps)",
            ["client->provider", "small", "same-fmt", "x", "claude-code", "same-fmt", "x",
             "cc next turn", "x", "resp small", "resp cc"],
            rows,
            out,
            notes=(
                "same-fmt: the client's body on the same-format path (Passthrough: json.loads, "
                "model swap, json.dumps);\nclaude-code: ~"
                f"{cc['body_bytes'] / 1000:.0f} KB, 30 tools, 41 messages, converted with no "
                "memory of earlier requests;\ncc next turn: two requests of that conversation "
                "(the same history and tools, the last 2 messages new) in turn, as the proxy\n"
                "runs them (one gateway.convert.memo.Memo);\nresp: Converting.response() of "
                "the provider's answer (same-format: 0, bytes pass)."
            ),
        )  # fmt: skip
        for kind, by_up in m["streams"].items():
            rows = []
            for up, by_client in by_up.items():
                cells = [f"{up} ({next(iter(by_client.values()))['events']} events)"]
                for client in FORMATS:
                    v = by_client[client]
                    cells.append(f"{v['us_per_event']:.2f}" + (" *" if v["same_format"] else ""))
                rows.append(cells)
            print_block(
                f"(a) {kind} stream, microseconds per upstream event, fed one event at a time",
                ["upstream \\ client", *FORMATS],
                rows,
                out,
                notes="* same format: FramedRelay (EventFramer), no decoding"
                + (
                    "\nGemini sends a tool call whole: its stream has 3 events, each costing more"
                    if kind == "tool call"
                    else ""
                ),
            )
    e = res.get("e2e")
    if e:
        rows = []
        for size, r in e["nonstream"].items():
            for client in ("openai", "anthropic"):
                v = r[client]
                rows.append(
                    [
                        f"{size} {client}->openai",
                        f"{v['body_bytes']:,}",
                        fmt_num(v["rps"]),
                        fmt_num(v["p50_ms"], 2),
                        fmt_num(v["p99_ms"], 2),
                        fmt_num(v["gateway_cpu_us_per_req"]),
                        f"{r['cpu_ratio']:.2f}x" if client == "anthropic" else "",
                        f"{r['rps_ratio']:.1%}" if client == "anthropic" else "",
                        str(v["errors"] + v["non_2xx"]),
                    ]
                )
        print_block(
            f"(b) End to end, non-stream, concurrency {meta['connections']} "
            f"({meta['generator']}, {meta['duration_s']:g} s each), openai-format upstream",
            ["path", "body B", "req/s", "p50 ms", "p99 ms", "gw CPU us/req", "CPU x", "req/s x",
             "errors"],
            rows,
            out,
            notes=(
                "CPU x: median over the rounds of the converted (anthropic) run's gateway "
                "CPU/req over the same-format run beside it;\nreq/s x: of the median runs; "
                "claude_code rows send two consecutive requests of the conversation in turn"
            ),
        )  # fmt: skip
        st = e["streams"]
        rows = []
        for client in ("openai", "anthropic"):
            v = st[client]
            rows.append(
                [
                    f"{client}->openai",
                    fmt_num(v["streams_per_s"], 1),
                    fmt_num(v["upstream_events_per_s"]),
                    fmt_num(v["events_per_s"]),
                    f"{v['gateway_cpu_cores']:.2f}",
                    fmt_num(v["gateway_cpu_us_per_upstream_event"], 1),
                    fmt_num(v["first_event_p50_ms"], 2),
                    str(v["errors"]),
                ]
            )
        print_block(
            f"(b) End to end, streams of 200 events + [DONE], {st['openai']['connections']} "
            f"concurrent, {meta['duration_s']:g} s each",
            ["path", "streams/s", "upstream ev/s", "client ev/s", "gw cores", "gw us/event",
             "1st event ms", "errors"],
            rows,
            out,
            notes=(
                f"converted / same-format upstream events/s: {st['ratio']:.2f}x; per gateway "
                f"CPU-second (immune to CPU taken by other work): {st['ratio_per_core']:.2f}x"
            ),
        )  # fmt: skip
    print_noise(res, out)
    if res["targets"]:
        print_verdicts([Verdict(**t) for t in res["targets"]], out)


def cmd_convert(args: argparse.Namespace) -> int:
    if args.generator == "auto":
        args.generator = "wrk" if have_wrk() else "asyncio"
    elif args.generator == "trio":
        args.generator = "asyncio"
    min_time = 0.05 if args.quick else 0.2
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
    if args.part in ("micro", "both"):
        note("(a) in-process conversion cost ...")
        res["micro"] = micro(min_time)
    if args.part in ("e2e", "both"):
        note("(b) end to end through a gateway ...")
        res["e2e"] = e2e(args)
    res["targets"] = [v.as_dict() for v in verdicts(res)]
    out = sys.stderr if args.json else sys.stdout
    print(file=out)
    print_report(res, out)
    if args.json:
        print(json.dumps(res, indent=2, default=float))
    return 0


def convert_options(parser: argparse.ArgumentParser) -> None:
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
    convert_options,
    cmd_convert,
)

__all__ = ["COMMAND", "micro"]
