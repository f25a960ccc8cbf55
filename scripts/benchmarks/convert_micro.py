"""``bench.py convert --part micro``: what conversion costs in process, no I/O.

The gateway's own per-request code path (through rig/gw.py), timed with
``time.perf_counter`` loops (best of 5 repeats, each long enough to be steady), for a
small request and a Claude-Code-sized one (benchmarks/workloads.py: ~120 KB of JSON, 30
tools with JSON schemas, a 14 KB system prompt, 41 messages with tool calls and results):

- requests, per direction (anthropic->openai, openai->anthropic, openai->gemini,
  gemini->openai, anthropic->gemini, gemini->anthropic): ``parse_json_object``
  (json.loads) + the adapter (parse into the canonical model, render the provider's
  body, the transformer's edits, json.dumps): exactly what the proxy runs before it
  sends. Beside it, the same-format path for the same client body (``Passthrough``:
  json.loads + model swap + json.dumps); and the next turn of the Claude Code
  conversation through one memo, as the proxy runs consecutive requests;
- responses: ``Converting.response`` (json.loads + parse + render + dumps) of a
  matching non-stream answer; the same-format path returns the bytes;
- stream events: microseconds per *upstream* event to turn each upstream format into
  each client format (``ConvertingRelay``: SSEDecoder -> StreamParser ->
  StreamRenderer), fed one event per ``feed`` as tokens arrive, against same-format
  framing (``FramedRelay`` / ``EventFramer``); for a 200-event text stream and for a
  tool call whose arguments arrive in 120 fragments.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any, TextIO

from rig import gw
from rig.report import fmt_num, note, print_block

from benchmarks.workloads import (
    claude_code_request,
    openai_text_stream,
    openai_tool_stream,
    small_request,
    small_response,
    tool_response,
)

FORMATS = ("openai", "anthropic", "gemini")
DIRECTIONS = (
    ("anthropic", "openai"),
    ("openai", "anthropic"),
    ("openai", "gemini"),
    ("gemini", "openai"),
    ("anthropic", "gemini"),
    ("gemini", "anthropic"),
)
MODEL = "bench-model"
TARGETS = {fmt: gw.target(fmt, MODEL) for fmt in FORMATS}


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


def encoded(body: dict[str, Any], fmt: str) -> bytes:
    """An Anthropic-shaped request ``body`` as a client of ``fmt`` sends it."""
    return json.dumps(gw.in_format(body, fmt)).encode()


def upstream_streams() -> dict[str, dict[str, list[bytes]]]:
    """``{stream kind: {format: events}}``: the OpenAI streams, and as the others send them."""
    out: dict[str, dict[str, list[bytes]]] = {}
    for kind, events in (("text", openai_text_stream()), ("tool call", openai_tool_stream())):
        out[kind] = {"openai": events}
        for fmt in ("anthropic", "gemini"):
            call = gw.call(fmt, encoded(small_request(stream=True), fmt), MODEL, stream=True)
            relay = gw.adapter(call, TARGETS["openai"]).relay()
            data = b"".join(relay.feed(e) for e in events) + relay.finish()
            # SSE bytes cut after each blank line (``\n\n`` or ``\r\n\r\n``).
            out[kind][fmt] = [m.group(0) for m in re.finditer(rb".*?(?:\r\n\r\n|\n\n)", data, re.S)]
    return out


def request_us(src: str, raws: list[bytes], dst: str, min_time_s: float) -> float:
    """The proxy's path for client bodies ``raws`` (in turn, one memo): the body to send."""
    memo, turn, target = (gw.Memo() if len(raws) > 1 else None), [0], TARGETS[dst]

    def run() -> bytes:
        turn[0] += 1
        raw = raws[turn[0] % len(raws)]
        call = gw.call(src, raw, MODEL, sized=memo is not None)
        return gw.adapter(call, target, memo).body

    return per_call_us(run, min_time_s)


def relay_us(events: list[bytes], client: str, up: str, min_time_s: float) -> float:
    """One stream of ``events`` from ``up`` relayed to ``client``, fed event by event."""
    call = gw.call(client, encoded(small_request(stream=True), client), MODEL, stream=True)
    adapter = gw.adapter(call, TARGETS[up])

    def run() -> int:
        relay = adapter.relay()
        return sum(len(relay.feed(event)) for event in events) + len(relay.finish())

    return per_call_us(run, min_time_s)


def micro(min_time_s: float) -> dict[str, Any]:
    sizes = {
        "small": (small_request(), small_response()),
        "claude_code": (claude_code_request(), tool_response()),
    }
    requests: dict[str, Any] = {}
    for size, (anthropic_body, anthropic_resp) in sizes.items():
        bodies = {f: encoded(anthropic_body, f) for f in FORMATS}
        answers = {
            f: json.dumps(gw.response_in_format(anthropic_resp, f)).encode() for f in FORMATS
        }
        same = {f: request_us(f, [bodies[f]], f, min_time_s) for f in FORMATS}
        for src, dst in DIRECTIONS:
            raw, answer = bodies[src], answers[dst]
            convert = request_us(src, [raw], dst, min_time_s)
            adapter = gw.adapter(gw.call(src, raw, MODEL), TARGETS[dst])
            response = per_call_us(lambda a=adapter, ans=answer: a.response(ans), min_time_s)
            row = requests.setdefault(f"{src}->{dst}", {})
            if size == "claude_code":
                turns = [encoded(claude_code_request(exchange=t), src) for t in (1, 2)]
                row["claude_code_next_turn"] = {
                    "request_us": request_us(src, turns, dst, min_time_s),
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
        for up, events in by_fmt.items():
            got = streams.setdefault(kind, {}).setdefault(up, {})
            for client in FORMATS:
                us = relay_us(events, client, up, min_time_s)
                got[client] = {"events": len(events), "us_per_event": us / len(events),
                               "same_format": up == client}  # fmt: skip
            note(
                f"  {kind} stream from {up}: "
                + ", ".join(f"to {c} {v['us_per_event']:.2f} us/event" for c, v in got.items())
            )
    return {"requests": requests, "streams": streams, "min_time_s": min_time_s}


def print_micro(m: dict[str, Any], out: TextIO) -> None:
    rows = []
    for direction, sizes in m["requests"].items():
        s, c, n = sizes["small"], sizes["claude_code"], sizes["claude_code_next_turn"]
        rows.append([
            direction, fmt_num(s["request_us"], 1), fmt_num(s["same_format_us"], 1),
            f"{s['ratio']:.1f}x", fmt_num(c["request_us"]), fmt_num(c["same_format_us"]),
            f"{c['ratio']:.1f}x", fmt_num(n["request_us"]),
            f"{n['request_us'] / c['same_format_us']:.1f}x", fmt_num(s["response_us"], 1),
            fmt_num(c["response_us"], 1),
        ])  # fmt: skip
    cc = next(iter(m["requests"].values()))["claude_code"]
    print_block(
        "(a) In process, microseconds per request (best of 5): json.loads + make_adapter "
        "(+ json.dumps)",
        ["client->provider", "small", "same-fmt", "x", "claude-code", "same-fmt", "x",
         "cc next turn", "x", "resp small", "resp cc"],
        rows,
        out,
        "same-fmt: the client's body on the same-format path (Passthrough: json.loads, "
        f"model swap, json.dumps);\nclaude-code: ~{cc['body_bytes'] / 1000:.0f} KB, 30 tools, "
        "41 messages, converted with no memory of earlier requests;\ncc next turn: two "
        "requests of that conversation (the same history and tools, the last 2 messages new) "
        "in turn, as the proxy\nruns them (one gateway.convert.memo.Memo);\nresp: "
        "Converting.response() of the provider's answer (same-format: 0, bytes pass).",
    )  # fmt: skip
    for kind, by_up in m["streams"].items():
        rows = [
            [f"{up} ({next(iter(by_client.values()))['events']} events)"]
            + [f"{v['us_per_event']:.2f}" + (" *" if v["same_format"] else "")
               for v in (by_client[c] for c in FORMATS)]
            for up, by_client in by_up.items()
        ]  # fmt: skip
        tool = "\nGemini sends a tool call whole: its stream has 3 events, each costing more"
        print_block(
            f"(a) {kind} stream, microseconds per upstream event, fed one event at a time",
            ["upstream \\ client", *FORMATS],
            rows,
            out,
            "* same format: FramedRelay (EventFramer), no decoding"
            + (tool if kind == "tool call" else ""),
        )
