"""``bench.py edge`` (issue 10): what client keys, limits and shared state cost per request.

The stack of rig/stack.py (the mock upstream, one openai-format provider) and four real
``python -m gateway --config FILE`` side by side: "open" and "open-2" (no ``[auth]``: two
processes, so the reference is their pooled figures and their difference is the noise
floor, an A/A test), "edge-local" (``[auth] keys``: one key, from ``${BENCH_EDGE_KEY}``,
with every limit (rpm, tpm, concurrency, day and month budgets) set high enough never to
refuse, so each request does all the edge's work, and ``models`` globs) and "edge-redis"
(the same plus ``[state] redis_url`` to a local redis-server, no persistence). Every
request carries the key as ``Authorization: Bearer``. Each round starts the four afresh
(two processes of one program differ by a few percent in CPU per request, as the A/A
shows: fresh ones each round average that out) and checks them: no key and a wrong key
get 401 from the edges, the key 200 with ``x-ratelimit-*``; edge-redis shows Redis up in
``/health/ready`` and its requests run ``EVALSHA`` in redis-server.

1. **CPU per request at c=32** (non-stream, wrk where installed): each gateway's user +
   system CPU over its runs divided by the requests served, redis-server's beside it. After
   a warm-up the gateways take ``--slice``-second turns, the order rotated each turn, until
   each had ``--duration``, so slow drifts of the machine hit all four alike. Ratio: the
   edge's CPU/request over the reference's (the two open gateways pooled); with ``--repeat
   N`` (N rounds, fresh processes each) the median of the rounds' ratios, and each
   gateway's median round shown. Target (the issue's "under 5% of CPU per request"):
   edge-local <= 1.05 x the reference.
2. **Added latency at c=1**: direct (the upstream alone), a raw Redis ``PING`` from this
   process (the floor of any Redis call), and the four gateways, in interleaved sub-rounds
   (the order rotated each), the same request bytes to each; p50 / p99, each edge minus
   the reference (the open pair's pooled samples), and the gateways' CPU per request over
   the sub-rounds. With ``--repeat N`` the round with the median edge-redis difference is
   shown. Target: edge-redis p50 minus the reference's under 0.3 ms.
3. **Noise** (2 cores, shared with other work): a difference is called beyond noise only
   when it is larger than the A/A difference (open-2 vs open, the same measure, the same
   rounds) and the interquartile range of its per-turn (c=32) or per-sub-round (c=1)
   values excludes no difference.

The request is a small chat request, or with ``--body claude-code`` what Claude Code sends
after a while of work (~120 KB, in the OpenAI format): the edge's tpm estimate walks the
body, so its cost grows with it. Last, the key is searched for in every log of the run: it
must be in none. ``--profile DIR``: py-spy records each gateway through its c=32 runs
(rig/profile.py), and the report gives the share of their CPU spent in the edge's code
(the figures of such a run are skewed by py-spy's own CPU).
"""

from __future__ import annotations

import argparse
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rig import gw
from rig.clients import SyncClient, raw_request
from rig.measure import OVERHEAD_HEADER, add_load_options, option, send
from rig.procs import HOST, Cpu, Proc, find, version
from rig.profile import Recorder
from rig.redis_server import Pinger, command_calls, start_redis
from rig.report import emit, median_run, meta, note
from rig.stack import Stack, stack

from benchmarks import edge_report as figures
from benchmarks.edge_report import EDGES, GATEWAYS, LIMITS, MODELS, REFERENCE, Slices
from benchmarks.proxy import chat_body
from benchmarks.workloads import claude_code_request

PATH = "/v1/chat/completions"
KEY_VAR = "BENCH_EDGE_KEY"
WARM_UP = 50
Gateways = dict[str, tuple[Proc, int]]


def request_body(name: str) -> bytes:
    """The chat request every gateway gets: ``small`` (172 B) or ``claude-code`` (what
    Claude Code sends after a while of work, ~120 KB, here in the OpenAI format)."""
    if name == "small":
        return chat_body()
    return json.dumps(gw.in_format(claude_code_request(), "openai")).encode()


def settings(edge: bool, redis_port: int | None = None) -> str:
    """A gateway's settings file; an edge's names its key's variable, never the key."""
    if not edge:
        return "# an open gateway: no [auth], default settings\n"
    limits = ", ".join(f"{name} = {value}" for name, value in LIMITS.items())
    entry = f'name = "bench", key = "${{{KEY_VAR}}}", {limits}, models = {json.dumps(MODELS)}'
    text = f"[auth]\nkeys = [{{ {entry} }}]\n"  # an inline table: one line in TOML 1.0
    if redis_port:
        text += f'\n[state]\nredis_url = "redis://{HOST}:{redis_port}/0"\nkey_prefix = "bench:"\n'
    return text


def start(rig: Stack, redis_port: int, key: str) -> Gateways:
    """The four gateways, fresh, each on its settings file."""
    out = {}
    for name in GATEWAYS:
        path = rig.tmp / f"{name}.toml"
        path.write_text(settings(name in EDGES, redis_port if name == "edge-redis" else None))
        out[name] = rig.start_gateway(name, ["--config", str(path)], {KEY_VAR: key})
    return out


def _ask(
    port: int, headers: dict[str, str], path: str = PATH
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request on a new connection: a chat request, or ``GET path``."""
    client = SyncClient(port)
    try:
        method, body = ("POST", chat_body()) if path == PATH else ("GET", b"")
        status, got, answer, _t = client.request(raw_request(port, path, body, headers, method))
        return status, got, answer
    finally:
        client.close()


def check(gws: Gateways, redis_port: int, key: str) -> dict[str, Any]:
    """Each gateway answers as its settings say, before anything is measured."""
    auth, wrong = ({"authorization": f"Bearer {k}"} for k in (key, key[:-4] + "xxxx"))
    out: dict[str, Any] = {}
    for name, (_proc, port) in gws.items():
        evalsha = command_calls(redis_port).get("evalsha", 0)
        without, wrong_key = _ask(port, {})[0], _ask(port, wrong)[0]
        status, headers, body = _ask(port, auth)
        ready = json.loads(_ask(port, {}, "/health/ready")[2])
        evalsha = command_calls(redis_port).get("evalsha", 0) - evalsha
        edge = name in EDGES
        row = {"no_key": without, "wrong_key": wrong_key, "key": status,
               "ratelimit_headers": b"x-ratelimit-remaining-requests" in headers,
               "redis": ready.get("state", {}).get("redis", "-"), "evalsha": evalsha}  # fmt: skip
        refused = 401 if edge else 200
        wanted = (("no key", without, refused), ("a wrong key", wrong_key, refused),
                  ("the key", status, 200))  # fmt: skip
        problems = [f"{what} got {got}, not {want}" for what, got, want in wanted if got != want]
        if status == 200 and json.loads(body).get("object") != "chat.completion":
            problems.append(f"the key's answer is not a chat completion: {body[:200]!r}")
        if row["ratelimit_headers"] != edge:
            problems.append("x-ratelimit-* headers " + ("missing" if edge else "present"))
        if (name == "edge-redis") != (row["redis"] == "up" and evalsha > 0):
            problems.append(f"Redis state: ready says {row['redis']}, {evalsha} EVALSHA")
        if key.encode() in body or any(key.encode() in v for v in headers.values()):
            problems.append("the key came back in the response")
        if problems:
            raise RuntimeError(f"the {name} gateway: " + "; ".join(problems))
        out[name] = row
    seen = (f"{n} no key {r['no_key']}, key {r['key']}" for n, r in out.items())
    note("checks: " + "; ".join(seen))
    return out


def _rotated(names: tuple[str, ...], turn: int) -> list[str]:
    return [names[(turn + i) % len(names)] for i in range(len(names))]


def c32_round(
    gws: Gateways, redis: Proc, redis_port: int, key: str, args: argparse.Namespace
) -> dict[str, Slices]:
    """After a warm-up of each, the gateways take ``args.slice``-second turns at
    ``args.connections`` (the order rotated each turn) until each had ``args.duration``."""
    headers, bodies = {"authorization": f"Bearer {key}"}, [request_body(args.body)]
    note(f"non-stream, c={args.connections}: {args.duration:g} s each in {args.slice} s turns ...")
    for _proc, port in gws.values():
        if args.warmup:
            send(args, port, PATH, bodies, args.warmup, headers=headers)
    out = {name: Slices() for name in GATEWAYS}
    for turn in range(max(1, round(args.duration / args.slice))):
        for name in _rotated(GATEWAYS, turn):
            proc, port = gws[name]
            before = command_calls(redis_port).get("evalsha", 0)
            cpu = Cpu({"gateway": proc, "redis": redis})
            got = send(args, port, PATH, bodies, args.slice, header=OVERHEAD_HEADER,
                       headers=headers)  # fmt: skip
            out[name].add(got, cpu.stop(), command_calls(redis_port).get("evalsha", 0) - before)
    note("  CPU us/req: " + ", ".join(f"{n} {s.cpu_us_per_req():.1f}" for n, s in out.items()))
    return out


def _timed(client: SyncClient, data: bytes) -> Callable[[], tuple[int, bytes, float]]:
    """One request on ``client``: its status, ``x-gateway-overhead-ms`` and seconds."""

    def call() -> tuple[int, bytes, float]:
        status, headers, _body, elapsed = client.request(data)
        return status, headers.get(OVERHEAD_HEADER.encode(), b""), elapsed

    return call


def latency_c1(
    gws: Gateways, rig: Stack, redis: Proc, redis_port: int, key: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Sub-rounds of ``args.per_round`` requests to each, one at a time, interleaved."""
    note(f"latency c=1: {args.rounds} sub-rounds x {args.per_round} requests, interleaved ...")
    ports = {"direct": rig.upstream_port, **{n: port for n, (_p, port) in gws.items()}}
    auth = {"authorization": f"Bearer {key}"}
    clients = {name: SyncClient(port) for name, port in ports.items()}
    pinger = Pinger(redis_port)
    body = request_body(args.body)
    calls = {name: _timed(clients[name], raw_request(port, PATH, body, auth))
             for name, port in ports.items()}  # fmt: skip
    calls["redis-ping"] = lambda: (200, b"", pinger.ping())
    lat: dict[str, list[list[float]]] = {name: [] for name in calls}  # per sub-round, ms
    overhead: dict[str, list[float]] = {name: [] for name in gws}
    try:
        for call in calls.values():  # warm the connections and code paths
            for _ in range(max(WARM_UP, args.per_round)):
                call()
        cpu = Cpu({**{n: proc for n, (proc, _port) in gws.items()}, "redis": redis})
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
                lat[name].append(got)
        used = cpu.stop()
    finally:
        pinger.close()
        for client in clients.values():
            client.close()
    return figures.c1_summary(lat, overhead, used, args.rounds * args.per_round)


def run(args: argparse.Namespace) -> int:
    body = request_body(args.body)
    res: dict[str, Any] = {"meta": {**meta(args), "slice_s": args.slice, "body": args.body,
                                    "body_bytes": len(body)}}  # fmt: skip
    key = "sk-bench-" + secrets.token_urlsafe(24)
    binary = find("redis-server")
    res["meta"]["redis"] = version([binary, "--version"]) if binary else "no redis-server"
    rounds, latencies, profiles = [], [], []
    with stack("gateway-bench-edge-", args.keep_logs) as rig:
        redis, redis_port = start_redis(rig.tmp)
        try:
            for turn in range(args.repeat):
                note(f"round {turn + 1} of {args.repeat}: starting {', '.join(GATEWAYS)} ...")
                gws = start(rig, redis_port, key)
                res.setdefault("checks", []).append(check(gws, redis_port, key))
                procs = {name: proc for name, (proc, _port) in gws.items()}
                spy = None
                if args.profile:
                    spy = Recorder(procs, Path(args.profile), f"-round{turn + 1}")
                try:
                    rounds.append(c32_round(gws, redis, redis_port, key, args))
                finally:
                    if spy is not None:
                        profiles.append(spy.stop())
                latencies.append(latency_c1(gws, rig, redis, redis_port, key, args))
                for proc in procs.values():
                    proc.stop()  # their last lines are in the logs before the search
        finally:
            redis.stop()
        res["nonstream_c32"] = figures.c32_summary(rounds)
        res["latency_c1"] = median_run(latencies, "redis_added_p50_ms")
        res["key_search"] = search_logs(rig.tmp, key)
    if profiles:
        res["profile"] = figures.profile_summary(profiles, res["nonstream_c32"])
    res["targets"] = [v.as_dict() for v in figures.verdicts(res)]
    return emit(res, args.json, figures.print_report)


def search_logs(tmp: Path, key: str) -> dict[str, Any]:
    """Every log of the run (gateways, upstream, redis) searched for the key."""
    logs = sorted(tmp.rglob("*.log"))
    found = [p.name for p in logs if key.encode() in p.read_bytes()]
    return {"logs_searched": len(logs), "key_found_in": found}


def options(parser: argparse.ArgumentParser) -> None:
    add_load_options(parser, connections=32, repeat="rounds, each with fresh gateways "
                     "(both measures); the median round of each is shown")  # fmt: skip
    option(parser, "--slice", 2, "seconds of each turn at c=32 (whole: wrk's)", quick=1)
    option(parser, "--rounds", 20, "latency sub-rounds at c=1", quick=10)
    option(parser, "--per-round", 50, "requests per sub-round", quick=30)
    add = parser.add_argument
    add(
        "--body",
        choices=["small", "claude-code"],
        default="small",
        help="the chat request: small (172 B), or what Claude Code sends (~120 KB)",
    )
    add("--profile", metavar="DIR", help="py-spy each gateway at c=32 to DIR")


HELP = f"client keys, limits, Redis state: CPU and latency per request vs {' + '.join(REFERENCE)}"
COMMAND = (HELP + " (issue 10)", options, run)
