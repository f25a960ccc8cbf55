"""``bench.py edge`` (issue 10): what client keys, limits and shared state cost per request.

The stack of rig/stack.py (the mock upstream, one openai-format provider) and three real
``python -m gateway --config FILE`` side by side, in the same run: "open" (no ``[auth]``),
"edge-local" (``[auth] keys``: one key, read from ``${BENCH_EDGE_KEY}``, with every limit
(rpm, tpm, concurrency, day and month budgets) set high enough never to refuse, so each
request does all the edge's work, and ``models`` globs) and "edge-redis" (the same plus
``[state] redis_url`` to a local redis-server, no persistence). Every request carries the
key as ``Authorization: Bearer``; each gateway is checked first (no key and a wrong key:
401 on the edge gateways; the key: 200 with ``x-ratelimit-*``; Redis up in
``/health/ready`` and ``EVALSHA`` counted by redis-server).

1. **CPU per request at c=32** (non-stream, wrk where installed): the gateway process's
   user + system CPU over the run divided by the requests served, and redis-server's
   beside it. The three gateways take turns, the order rotated each round; with
   ``--repeat N`` there are N rounds, each gateway's median run is shown, and the ratio to
   "open" is the median of the per-round ratios (a round's runs are seconds apart).
   Target (the issue's "under 5% of CPU per request"): edge-local <= 1.05 x open.
2. **Added latency at c=1**: direct (the upstream alone), open, edge-local, edge-redis in
   interleaved rounds (the order rotated each round), the same request bytes to each; p50
   / p99 of each and edge minus open, and the gateways' CPU per request over the rounds
   (they take turns, so that comparison is interleaved at the finest grain). With
   ``--repeat N`` the run with the median edge-redis difference is shown. Target:
   edge-redis p50 minus open p50 under 0.3 ms.
3. **Noise** (2 cores, shared): a difference counts as within noise when the per-round
   differences' interquartile range (c=1) holds 0, or when a CPU ratio's distance from 1
   is no more than open's own spread across rounds (c=32: needs ``--repeat`` 2 or more).
Last, the key is searched for in every log of the run: it must be in none.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rig.clients import SyncClient, raw_request
from rig.measure import OVERHEAD_HEADER, add_load_options, option, requests_row, send
from rig.procs import HOST, Cpu, Proc, find, version
from rig.redis_server import Pinger, command_calls, start_redis
from rig.report import Verdict, emit, median_run, meta, note, percentile, side_by_side, table
from rig.stack import Stack, stack

from benchmarks.proxy import chat_body

PATH = "/v1/chat/completions"
GATEWAYS = ("open", "edge-local", "edge-redis")
EDGES = GATEWAYS[1:]
KEY_VAR = "BENCH_EDGE_KEY"
LIMITS = {"rpm": 10**9, "tpm": 10**12, "concurrency": 10**6,
          "tokens_per_day": 10**15, "tokens_per_month": 10**15}  # fmt: skip
MODELS = ("gpt-*", "bench-*")
TARGET_CPU_RATIO = 1.05
TARGET_REDIS_ADDED_MS = 0.3
WARM_UP = 50


@dataclass
class Gateway:
    name: str
    proc: Proc
    port: int


def settings(edge: bool, redis_port: int | None = None) -> str:
    """A gateway's settings file; an edge's names its key's variable, never the key."""
    if not edge:
        return "# the open gateway: no [auth], default settings\n"
    limits = ", ".join(f"{name} = {value}" for name, value in LIMITS.items())
    entry = f'name = "bench", key = "${{{KEY_VAR}}}", {limits}, models = {json.dumps(list(MODELS))}'
    text = f"[auth]\nkeys = [{{ {entry} }}]\n"  # an inline table: one line in TOML 1.0
    if redis_port:
        text += f'\n[state]\nredis_url = "redis://{HOST}:{redis_port}/0"\nkey_prefix = "bench:"\n'
    return text


def start(rig: Stack, redis_port: int, key: str) -> dict[str, Gateway]:
    out = {}
    for name, redis in zip(GATEWAYS, (None, None, redis_port), strict=True):
        path = rig.tmp / f"{name}.toml"
        path.write_text(settings(name != "open", redis))
        note(f"starting the {name} gateway ...")
        proc, port = rig.start_gateway(name, ["--config", str(path)], {KEY_VAR: key})
        out[name] = Gateway(name, proc, port)
    return out


def _ask(
    port: int, headers: dict[str, str], path: str = PATH
) -> tuple[int, dict[bytes, bytes], bytes]:
    client = SyncClient(port)
    try:
        method, body = ("POST", chat_body()) if path == PATH else ("GET", b"")
        status, got, answer, _t = client.request(raw_request(port, path, body, headers, method))
        return status, got, answer
    finally:
        client.close()


def check(gws: dict[str, Gateway], redis_port: int, key: str) -> dict[str, Any]:
    """Each gateway answers as configured, before anything is measured."""
    auth = {"authorization": f"Bearer {key}"}
    wrong = {"authorization": f"Bearer {key[:-4]}xxxx"}
    out: dict[str, Any] = {}
    for name, gw in gws.items():
        evalsha = command_calls(redis_port).get("evalsha", 0)
        without, wrong_key = _ask(gw.port, {})[0], _ask(gw.port, wrong)[0]
        status, headers, body = _ask(gw.port, auth)
        ready = json.loads(_ask(gw.port, {}, "/health/ready")[2])
        evalsha = command_calls(redis_port).get("evalsha", 0) - evalsha
        edge = name != "open"
        row = {"no_key": without, "wrong_key": wrong_key, "key": status,
               "ratelimit_headers": b"x-ratelimit-remaining-requests" in headers,
               "redis": ready.get("state", {}).get("redis", "-"), "evalsha": evalsha}  # fmt: skip
        refused = 401 if edge else 200
        wanted = (("no key", without, refused), ("a wrong key", wrong_key, refused),
                  ("the key", status, 200))  # fmt: skip
        problems = [
            f"{what} answered {got}, not {want}" for what, got, want in wanted if got != want
        ]
        if status == 200 and json.loads(body).get("object") != "chat.completion":
            problems.append(f"the key's answer is not a chat completion: {body[:200]!r}")
        if row["ratelimit_headers"] != edge:
            problems.append("x-ratelimit-* headers " + ("missing" if edge else "present"))
        if name == "edge-redis" and (row["redis"] != "up" or not evalsha):
            problems.append(f"Redis state not in use (ready: {row['redis']}, EVALSHA {evalsha})")
        if key.encode() in body or any(key.encode() in v for v in headers.values()):
            problems.append("the key came back in the response")
        if problems:
            raise RuntimeError(f"the {name} gateway: " + "; ".join(problems))
        out[name] = row
    note(
        "checks: " + "; ".join(f"{n}: no key {r['no_key']}, key {r['key']}" for n, r in out.items())
    )
    return out


def _rotated(names: tuple[str, ...], turn: int) -> list[str]:
    return [names[(turn + i) % len(names)] for i in range(len(names))]


def c32_round(
    gws: dict[str, Gateway], redis: Proc, redis_port: int, key: str, args: argparse.Namespace,
    turn: int,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Each gateway's non-stream run at ``args.connections``, in rotated order."""
    headers, bodies = {"authorization": f"Bearer {key}"}, [chat_body()]
    measured_args = argparse.Namespace(**{**vars(args), "warmup": 0})
    out = {}
    for name in _rotated(GATEWAYS, turn):
        gw = gws[name]
        if args.warmup:
            send(args, gw.port, PATH, bodies, args.warmup, headers=headers)
        before = command_calls(redis_port).get("evalsha", 0)
        procs = {"gateway": gw.proc, "redis": redis}
        row = requests_row(procs, gw.port, PATH, bodies, measured_args, name, headers)
        evalsha = command_calls(redis_port).get("evalsha", 0) - before
        row["evalsha_per_req"] = evalsha / row["requests"] if row["requests"] else 0.0
        out[name] = row
    return out


def _timed(client: SyncClient, data: bytes) -> Callable[[], tuple[int, bytes, float]]:
    """One request on ``client``: its status, ``x-gateway-overhead-ms`` and seconds."""

    def call() -> tuple[int, bytes, float]:
        status, headers, _body, elapsed = client.request(data)
        return status, headers.get(OVERHEAD_HEADER.encode(), b""), elapsed

    return call


def latency_c1(
    gws: dict[str, Gateway], rig: Stack, redis: Proc, redis_port: int, key: str,
    args: argparse.Namespace,
) -> dict[str, Any]:  # fmt: skip
    note(f"latency c=1: {args.rounds} rounds x {args.per_round} requests, interleaved ...")
    ports = {"direct": rig.upstream_port, **{n: gw.port for n, gw in gws.items()}}
    auth = {"authorization": f"Bearer {key}"}
    clients = {name: SyncClient(port) for name, port in ports.items()}
    pinger = Pinger(redis_port)
    calls = {name: _timed(clients[name], raw_request(port, PATH, chat_body(), auth))
             for name, port in ports.items()}  # fmt: skip
    calls["redis-ping"] = lambda: (200, b"", pinger.ping())
    lat: dict[str, list[float]] = {name: [] for name in calls}
    rounds: dict[str, list[float]] = {name: [] for name in calls}  # each round's p50
    overhead: dict[str, list[float]] = {name: [] for name in gws}
    try:
        for call in calls.values():  # warm the connections and code paths
            for _ in range(max(WARM_UP, args.per_round)):
                call()
        cpu = Cpu({**{n: gw.proc for n, gw in gws.items()}, "redis": redis})
        for turn in range(args.rounds):
            for name in _rotated(tuple(calls), turn):
                got = []
                for _ in range(args.per_round):
                    status, value, elapsed = calls[name]()
                    if status != 200:
                        raise RuntimeError(f"{name} answered {status} in the latency rounds")
                    got.append(elapsed * 1000)
                    if value:
                        overhead[name].append(float(value))
                lat[name] += got
                rounds[name].append(percentile(got, 50))
        used = cpu.stop()
    finally:
        pinger.close()
        for client in clients.values():
            client.close()
    count = args.rounds * args.per_round
    out: dict[str, Any] = {"rounds": args.rounds, "per_round": args.per_round,
                           "cpu_s": {k: round(v, 3) for k, v in used.items()}}  # fmt: skip
    for name, values in lat.items():
        out[name] = {"p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99),
                     "mean_ms": statistics.fmean(values)}  # fmt: skip
        if name in gws:
            out[name]["overhead_p50_ms"] = percentile(overhead[name], 50)
            out[name]["gateway_cpu_us_per_req"] = used[name] / count * 1e6
    out["edge-redis"]["redis_cpu_us_per_req"] = used["redis"] / count * 1e6
    for name in ("open", *EDGES):
        base = "direct" if name == "open" else "open"
        diffs = [a - b for a, b in zip(rounds[name], rounds[base], strict=True)]
        q25, q75 = percentile(diffs, 25), percentile(diffs, 75)
        out[name] |= {
            "added_p50_ms": out[name]["p50_ms"] - out[base]["p50_ms"],
            "added_p99_ms": out[name]["p99_ms"] - out[base]["p99_ms"],
            "added_rounds_median_ms": statistics.median(diffs),
            "added_rounds_iqr_ms": [q25, q75],
            "within_noise": q25 <= 0 <= q75,
            "overhead_added_p50_ms": out[name]["overhead_p50_ms"] - (
                0.0 if name == "open" else out["open"]["overhead_p50_ms"]),
        }  # fmt: skip
    out["redis_added_p50_ms"] = out["edge-redis"]["added_p50_ms"]
    note("  p50 ms: " + ", ".join(f"{n} {out[n]['p50_ms']:.3f}" for n in calls)
         + f"; edge-redis - open {out['redis_added_p50_ms']:.3f} ms")  # fmt: skip
    return out


def c32_summary(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Each gateway's median run, the per-round CPU ratios to open and the noise."""
    key = "gateway_cpu_us_per_req"
    out: dict[str, Any] = {"rounds": len(rounds)}
    for name in GATEWAYS:
        out[name] = median_run([r[name] for r in rounds], key)
    opens = [r["open"][key] for r in rounds]
    spread = (max(opens) - min(opens)) / statistics.median(opens) if len(rounds) > 1 else None
    out["open_spread"] = spread
    for name in EDGES:
        ratios = [r[name][key] / r["open"][key] for r in rounds if r["open"][key]]
        ratio = statistics.median(ratios) if ratios else float("nan")
        noise = None if spread is None else abs(ratio - 1) <= spread
        out[name] |= {"cpu_ratio": ratio, "cpu_ratios": [round(x, 4) for x in ratios],
                      "within_noise": noise}  # fmt: skip
    return out


def search_logs(tmp: Path, key: str) -> dict[str, Any]:
    """Every log of the run (gateways, upstream, redis) searched for the key."""
    logs = sorted(tmp.rglob("*.log"))
    found = [p.name for p in logs if key.encode() in p.read_bytes()]
    return {"logs_searched": len(logs), "key_found_in": found}


def verdicts(res: dict[str, Any]) -> list[Verdict]:
    ratio = res["nonstream_c32"]["edge-local"]["cpu_ratio"]
    added = res["latency_c1"]["redis_added_p50_ms"]
    leaks = res["key_search"]["key_found_in"]
    return [
        Verdict("edge-local CPU/request vs open, c=32", f"<= {TARGET_CPU_RATIO:g}x",
                f"{ratio:.3f}x", ratio <= TARGET_CPU_RATIO, ratio),
        Verdict("edge-redis minus open, p50 at c=1", f"< {TARGET_REDIS_ADDED_MS:g} ms",
                f"{added:.3f} ms", added < TARGET_REDIS_ADDED_MS, added),
        Verdict("the client key in the run's logs", "nowhere",
                ", ".join(leaks) or f"nowhere ({res['key_search']['logs_searched']} logs)",
                not leaks, len(leaks)),
    ]  # fmt: skip


def _noise(flag: bool | None) -> str:
    return {None: "noise unknown (--repeat 1)", True: "within noise", False: "beyond noise"}[flag]


def print_report(res: dict[str, Any], out: TextIO) -> None:
    m, ns, lat = res["meta"], res["nonstream_c32"], res["latency_c1"]
    print(f"python {m['python']}, {m['cpus']} CPUs, load average {m['loadavg_at_start']} at "
          f"start; {m['redis']}; load generator: {m['generator']}; the key: "
          f"{', '.join(f'{k} {v:.0e}' for k, v in LIMITS.items())}, models "
          f"{', '.join(MODELS)}\n", file=out)  # fmt: skip
    cols = [{**ns[n], "all_errors": ns[n]["errors"] + ns[n]["non_2xx"]} for n in GATEWAYS]
    ratios = [f"{ns[n]['cpu_ratio']:.3f}x" for n in EDGES]
    rows = side_by_side(cols, [
        ("gateway CPU us/req", "{gateway_cpu_us_per_req:,.1f}", *ratios),
        ("redis-server CPU us/req", "{redis_cpu_us_per_req:,.1f}", "", ""),
        ("EVALSHA per request", "{evalsha_per_req:.2f}", "", ""),
        ("req/s", "{rps:,.0f}", *(f"{ns[n]['rps'] / ns['open']['rps']:.1%}" for n in EDGES)),
        ("p50 ms", "{p50_ms:,.2f}", "", ""), ("p99 ms", "{p99_ms:,.2f}", "", ""),
        ("x-gateway-overhead-ms p50", "{overhead_header_ms[p50]:.3f}", "", ""),
        ("requests (errors)", "{requests:,} ({all_errors})", "", "")])  # fmt: skip
    key = "gateway_cpu_us_per_req"
    runs = "; ".join(f"{n} {ns[n].get(f'runs_{key}', [round(ns[n][key], 1)])}" for n in GATEWAYS)
    spread = ns["open_spread"]
    notes = [f"CPU us/req of each round: {runs}",
             *(f"{n}/open per round: {ns[n]['cpu_ratios']}: {_noise(ns[n]['within_noise'])}"
               for n in EDGES),
             "open's own spread across rounds: "
             + ("-" if spread is None else f"{spread:.1%}")]  # fmt: skip
    table(f"Non-stream POST {PATH}, concurrency {m['connections']} ({ns['open']['generator']}, "
          f"{m['duration_s']:g} s each, {ns['rounds']} round(s), median run shown)",
          ["", *GATEWAYS, "edge-local/open", "edge-redis/open"], rows, out,
          "\n".join(notes))  # fmt: skip
    names = ("direct", "redis-ping", *GATEWAYS)
    rows = side_by_side([lat[n] for n in names], [
        ("p50", "{p50_ms:.3f}"), ("p99", "{p99_ms:.3f}"), ("mean", "{mean_ms:.3f}"),
        ("added p50 (vs direct / vs open)", "{added_p50_ms:+.3f}"),
        ("added p99", "{added_p99_ms:+.3f}"),
        ("per-round added p50, median", "{added_rounds_median_ms:+.3f}"),
        ("x-gateway-overhead-ms p50", "{overhead_p50_ms:.3f}"),
        ("gateway CPU us/req", "{gateway_cpu_us_per_req:,.1f}"),
        ("redis-server CPU us/req", "{redis_cpu_us_per_req:,.1f}")])  # fmt: skip
    notes = [f"{n}: per-round added p50 IQR [{lat[n]['added_rounds_iqr_ms'][0]:+.3f}, "
             f"{lat[n]['added_rounds_iqr_ms'][1]:+.3f}] ms: "
             f"{_noise(lat[n]['within_noise'])}" for n in GATEWAYS]  # fmt: skip
    ping = lat["redis-ping"]["p50_ms"]
    notes.append(f"edge-redis - open p50 = {lat['redis_added_p50_ms'] / ping:.1f} x a PING's "
                 f"round trip to redis-server from this process ({ping:.3f} ms), measured in "
                 "the same rounds; each request is 2 EVALSHA (admit, settle)")  # fmt: skip
    if "runs_redis_added_p50_ms" in lat:
        notes.append(f"edge-redis - open p50 of each run: {lat['runs_redis_added_p50_ms']} ms")
    table(f"Latency at concurrency 1, ms ({lat['rounds']} interleaved rounds x "
          f"{lat['per_round']} requests each; open vs direct, edges vs open)", ["", *names],
          rows, out, "\n".join(notes))  # fmt: skip


def run(args: argparse.Namespace) -> int:
    res: dict[str, Any] = {"meta": meta(args)}
    key = "sk-bench-" + secrets.token_urlsafe(24)
    binary = find("redis-server")
    res["meta"]["redis"] = version([binary, "--version"]) if binary else "no redis-server"
    with stack("gateway-bench-edge-", args.keep_logs) as rig:
        redis, redis_port = start_redis(rig.tmp)
        try:
            gws = start(rig, redis_port, key)
            res["checks"] = check(gws, redis_port, key)
            rounds, latencies = [], []
            for turn in range(args.repeat):
                note(f"round {turn + 1} of {args.repeat}")
                rounds.append(c32_round(gws, redis, redis_port, key, args, turn))
                latencies.append(latency_c1(gws, rig, redis, redis_port, key, args))
        finally:
            redis.stop()
            for gw in rig.gateways:
                gw.stop()  # their last lines are in the logs before the search
        res["nonstream_c32"] = c32_summary(rounds)
        res["latency_c1"] = median_run(latencies, "redis_added_p50_ms")
        res["key_search"] = search_logs(rig.tmp, key)
    res["targets"] = [v.as_dict() for v in verdicts(res)]
    return emit(res, args.json, print_report)


def options(parser: argparse.ArgumentParser) -> None:
    add_load_options(
        parser,
        connections=32,
        repeat="rounds of both measures, interleaved; the median run of each is shown",
    )
    option(parser, "--rounds", 20, "latency rounds at c=1", quick=10)
    option(parser, "--per-round", 50, "requests per round", quick=30)


HELP = "client keys, limits and Redis state: CPU and latency per request vs open (issue 10)"
COMMAND = (HELP, options, run)
