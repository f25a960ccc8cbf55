"""``bench.py edge``'s figures: what its rounds add up to, the noise rule, targets, the report.

The gateways and the key are named here (benchmarks/edge.py starts and drives them). The
reference is the two open gateways pooled: their CPU seconds over their requests (c=32),
their latency samples together (c=1); each edge is compared with it, and open-2 with open
(the A/A test) says how far two identical processes differ in the same measure, in the
same run. A difference is beyond noise only when it exceeds the A/A difference and the
interquartile range of its per-turn (c=32) or per-sub-round (c=1) values excludes none.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rig.load import LoadResult
from rig.profile import shares
from rig.report import Verdict, columns, median_run, percentile, side_by_side, table

REFERENCE = ("open", "open-2")
EDGES = ("edge-local", "edge-redis")
GATEWAYS = (*REFERENCE, *EDGES)
SHOWN = (*REFERENCE, "reference", *EDGES)
LIMITS = {"rpm": 10**9, "tpm": 10**12, "concurrency": 10**6,
          "tokens_per_day": 10**15, "tokens_per_month": 10**15}  # fmt: skip
MODELS = ["gpt-*", "bench-*"]
TARGET_CPU_RATIO = 1.05
TARGET_REDIS_ADDED_MS = 0.3
CPU = "gateway_cpu_us_per_req"
#: Parts of the code a profile is read by: a name and a path fragment of its frames. The
#: edge calls the state, which calls the Redis client: a sample counts for the innermost.
PARTS = {"edge": "gateway/edge/", "state": "gateway/state/", "redis": "gateway/redis/"}


@dataclass
class Slices:
    """One gateway's turns at c=32 in a round, added up."""

    requests: int = 0
    errors: int = 0
    duration_s: float = 0.0
    evalsha: int = 0
    generator: str = ""
    cpu: dict[str, float] = field(default_factory=dict)  # gateway, redis, client, other, wall
    turns: list[tuple[float, int]] = field(default_factory=list)  # (gateway CPU s, requests)
    p50_ms: list[float] = field(default_factory=list)
    overhead_ms: list[float] = field(default_factory=list)

    def add(self, got: LoadResult, used: Mapping[str, float], evalsha: int) -> None:
        self.requests += got.requests
        self.errors += got.errors + got.non_2xx
        self.duration_s += got.duration_s
        self.evalsha += evalsha
        self.generator = got.generator
        self.cpu = {k: self.cpu.get(k, 0.0) + v for k, v in used.items()}
        self.turns.append((used["gateway"], got.requests))
        self.p50_ms.append(got.p50_ms)
        self.overhead_ms += got.header_values

    @classmethod
    def pooled(cls, parts: Sequence[Slices]) -> Slices:
        """The parts as one: sums, turn by turn."""
        out = cls(generator=parts[0].generator)
        for part in parts:
            out.requests += part.requests
            out.errors += part.errors
            out.duration_s += part.duration_s  # they took turns
            out.evalsha += part.evalsha
            out.cpu = {k: out.cpu.get(k, 0.0) + v for k, v in part.cpu.items()}
            out.p50_ms += part.p50_ms
            out.overhead_ms += part.overhead_ms
        out.turns = [(sum(c for c, _ in t), sum(n for _, n in t))
                     for t in zip(*(p.turns for p in parts), strict=True)]  # fmt: skip
        return out

    def cpu_us_per_req(self, name: str = "gateway") -> float:
        return self.cpu.get(name, 0.0) / self.requests * 1e6 if self.requests else 0.0

    def turn_cpu(self) -> list[float]:
        return [cpu / n * 1e6 if n else float("nan") for cpu, n in self.turns]

    def row(self) -> dict[str, Any]:
        per_req = 1 / self.requests if self.requests else 0.0
        return {
            "requests": self.requests, "errors": self.errors, "generator": self.generator,
            "rps": self.requests / self.duration_s if self.duration_s else 0.0,
            CPU: self.cpu_us_per_req(), "redis_cpu_us_per_req": self.cpu_us_per_req("redis"),
            "evalsha_per_req": self.evalsha * per_req,
            "turn_p50_ms_median": statistics.median(self.p50_ms),
            "overhead_header_p50_ms": percentile(self.overhead_ms, 50),
            "cpu_s": {k: round(v, 3) for k, v in self.cpu.items()},
            "turns_cpu_us_per_req": [round(x, 1) for x in self.turn_cpu()],
        }  # fmt: skip


def _iqr(values: Sequence[float]) -> list[float]:
    return [percentile(values, 25), percentile(values, 75)]


def _noise(diff: float, iqr: Sequence[float], aa: float, zero: float = 0.0) -> bool:
    """True (within noise) unless ``diff`` exceeds the A/A difference ``aa`` and the IQR
    of its parts excludes ``zero`` (no difference)."""
    return abs(diff) <= abs(aa) or iqr[0] <= zero <= iqr[1]


def c32_summary(rounds: list[dict[str, Slices]]) -> dict[str, Any]:
    """Each gateway's median round; ratios to the reference: per round, then their median."""
    for r in rounds:
        r["reference"] = Slices.pooled([r[name] for name in REFERENCE])
    out: dict[str, Any] = {"rounds": len(rounds)}
    for name in SHOWN:
        out[name] = median_run([r[name].row() for r in rounds], CPU)
    pairs = {"open-2": "open", **dict.fromkeys(EDGES, "reference")}
    for name, base in pairs.items():
        per_round = [r[name].cpu_us_per_req() / r[base].cpu_us_per_req() for r in rounds]
        turns = [a / b for r in rounds
                 for a, b in zip(r[name].turn_cpu(), r[base].turn_cpu(), strict=True)]  # fmt: skip
        rps = [r[name].row()["rps"] / r[base].row()["rps"] for r in rounds]
        out[name] |= {"cpu_ratio": statistics.median(per_round), "turns": len(turns),
                      "round_ratios": [round(x, 4) for x in per_round],
                      "turn_ratios_iqr": _iqr(turns),
                      "rps_ratio": statistics.median(rps)}  # fmt: skip
    aa = out["open-2"]["cpu_ratio"] - 1
    for name in EDGES:
        row = out[name]
        row["within_noise"] = _noise(row["cpu_ratio"] - 1, row["turn_ratios_iqr"], aa, 1.0)
    return out


def c1_summary(
    lat: dict[str, list[list[float]]], overhead: dict[str, list[float]], used: dict[str, float],
    count: int,
) -> dict[str, Any]:  # fmt: skip
    """The sub-rounds' samples (ms) in p50 / p99, differences, CPU per request."""
    flat = {name: [x for sub in subs for x in sub] for name, subs in lat.items()}
    sub_p50 = {name: [percentile(sub, 50) for sub in subs] for name, subs in lat.items()}
    flat["reference"] = [x for name in REFERENCE for x in flat[name]]
    both = zip(*(sub_p50[name] for name in REFERENCE), strict=True)
    sub_p50["reference"] = [statistics.fmean(p50s) for p50s in both]
    overhead["reference"] = [x for name in REFERENCE for x in overhead[name]]
    used = {**used, "reference": sum(used[name] for name in REFERENCE) / len(REFERENCE)}
    out: dict[str, Any] = {"rounds": len(lat["direct"]), "per_round": len(lat["direct"][0]),
                           "cpu_s": {k: round(v, 3) for k, v in used.items()}}  # fmt: skip
    for name, values in flat.items():
        out[name] = {"p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99),
                     "mean_ms": statistics.fmean(values)}  # fmt: skip
        if name in overhead:
            minus_direct = out[name]["p50_ms"] - out["direct"]["p50_ms"]
            out[name] |= {"overhead_p50_ms": percentile(overhead[name], 50),
                          CPU: used[name] / count * 1e6,
                          "minus_direct_p50_ms": minus_direct}  # fmt: skip
    out["edge-redis"]["redis_cpu_us_per_req"] = used["redis"] / count * 1e6
    pairs = {"open-2": "open", **dict.fromkeys(EDGES, "reference")}
    for name, base in pairs.items():
        diffs = [a - b for a, b in zip(sub_p50[name], sub_p50[base], strict=True)]
        out[name] |= {
            "added_p50_ms": out[name]["p50_ms"] - out[base]["p50_ms"],
            "added_p99_ms": out[name]["p99_ms"] - out[base]["p99_ms"],
            "sub_rounds_iqr_ms": _iqr(diffs),
            "cpu_ratio": out[name][CPU] / out[base][CPU] if out[base][CPU] else float("nan"),
        }  # fmt: skip
    aa = out["open-2"]["added_p50_ms"]
    for name in EDGES:
        row = out[name]
        row["within_noise"] = _noise(row["added_p50_ms"], row["sub_rounds_iqr_ms"], aa)
    out["redis_added_p50_ms"] = out["edge-redis"]["added_p50_ms"]
    return out


def profile_summary(profiles: list[dict[str, Path]], c32: dict[str, Any]) -> dict[str, Any]:
    """Per gateway, the share of its sampled CPU in each of :data:`PARTS` (all rounds)."""
    out: dict[str, Any] = {}
    for name in GATEWAYS:
        found = [shares(p[name], PARTS) for p in profiles if name in p]
        samples = sum(f["samples"] for f in found)
        row: dict[str, Any] = {"name": name, "samples": samples}
        for part in PARTS:
            share = sum(f[part] * f["samples"] for f in found) / samples if samples else 0.0
            row[part] = {"share": share, "us_per_req": share * c32[name][CPU]}
        out[name] = row
    return out


def verdicts(res: dict[str, Any]) -> list[Verdict]:
    ns, lat, leaks = res["nonstream_c32"], res["latency_c1"], res["key_search"]["key_found_in"]
    ratio, aa = ns["edge-local"]["cpu_ratio"], ns["open-2"]["cpu_ratio"]
    added, aa_ms = lat["redis_added_p50_ms"], lat["open-2"]["added_p50_ms"]
    return [
        Verdict("edge-local CPU/request vs reference, c=32", f"<= {TARGET_CPU_RATIO:g}x",
                f"{ratio:.3f}x (A/A {aa:.3f}x)", ratio <= TARGET_CPU_RATIO, ratio),
        Verdict("edge-redis p50 minus reference, c=1", f"< {TARGET_REDIS_ADDED_MS:g} ms",
                f"{added:.3f} ms (A/A {aa_ms:+.3f})", added < TARGET_REDIS_ADDED_MS, added),
        Verdict("the client key in the run's logs", "nowhere",
                ", ".join(leaks) or f"nowhere ({res['key_search']['logs_searched']} logs)",
                not leaks, len(leaks)),
    ]  # fmt: skip


def _said(within: bool) -> str:
    return "within noise" if within else "beyond noise"


def print_report(res: dict[str, Any], out: TextIO) -> None:
    m, ns, lat = res["meta"], res["nonstream_c32"], res["latency_c1"]
    print(f"python {m['python']}, {m['cpus']} CPUs, load average {m['loadavg_at_start']} at "
          f"start; {m['redis']}; load generator: {m['generator']}; the key: "
          f"{', '.join(f'{k} {v:.0e}' for k, v in LIMITS.items())}, models "
          f"{', '.join(MODELS)}; reference: {' + '.join(REFERENCE)} pooled\n",
          file=out)  # fmt: skip
    pad = [""] * len(EDGES)
    rows = side_by_side([ns[n] for n in SHOWN], [
        ("gateway CPU us/req", "{gateway_cpu_us_per_req:,.1f}",
         *(f"{ns[n]['cpu_ratio']:.3f}x" for n in EDGES)),
        ("redis-server CPU us/req", "{redis_cpu_us_per_req:,.1f}", *pad),
        ("EVALSHA per request", "{evalsha_per_req:.2f}", *pad),
        ("req/s", "{rps:,.0f}", *(f"{ns[n]['rps_ratio']:.1%}" for n in EDGES)),
        ("p50 ms (median of turns)", "{turn_p50_ms_median:,.2f}", *pad),
        ("x-gateway-overhead-ms p50", "{overhead_header_p50_ms:.3f}", *pad),
        ("requests (errors)", "{requests:,} ({errors})", *pad)])  # fmt: skip
    notes = [f"{n} / {'open' if n == 'open-2' else 'reference'}: {ns[n]['cpu_ratio']:.3f}x, "
             f"rounds {ns[n]['round_ratios']}, IQR of {ns[n]['turns']} turns "
             f"[{ns[n]['turn_ratios_iqr'][0]:.3f}, {ns[n]['turn_ratios_iqr'][1]:.3f}]"
             + (f": {_said(ns[n]['within_noise'])}" if n in EDGES else " (the A/A test)")
             for n in ("open-2", *EDGES)]  # fmt: skip
    if f"runs_{CPU}" in ns["open"]:
        notes.append("CPU us/req of each round: "
                     + "; ".join(f"{n} {ns[n][f'runs_{CPU}']}" for n in SHOWN))  # fmt: skip
    table(f"Non-stream POST /v1/chat/completions ({m['body']}: {m['body_bytes']:,} B), "
          f"concurrency {m['connections']} "
          f"({ns['open']['generator']}; each gateway {m['duration_s']:g} s a round in "
          f"{m['slice_s']:g} s turns; {ns['rounds']} round(s), the median shown)",
          ["", *SHOWN, *(f"{n}/ref" for n in EDGES)], rows, out, "\n".join(notes))  # fmt: skip
    names = ("direct", "redis-ping", *SHOWN)
    rows = side_by_side([lat[n] for n in names], [
        ("p50", "{p50_ms:.3f}"), ("p99", "{p99_ms:.3f}"), ("mean", "{mean_ms:.3f}"),
        ("p50 minus direct", "{minus_direct_p50_ms:+.3f}"),
        ("p50 minus reference (open-2: open)", "{added_p50_ms:+.3f}"),
        ("p99 minus reference (open-2: open)", "{added_p99_ms:+.3f}"),
        ("x-gateway-overhead-ms p50", "{overhead_p50_ms:.3f}"),
        ("gateway CPU us/req", "{gateway_cpu_us_per_req:,.1f}"),
        ("  to reference (open-2: to open), x", "{cpu_ratio:.3f}"),
        ("redis-server CPU us/req", "{redis_cpu_us_per_req:,.1f}")])  # fmt: skip
    notes = [f"{n}: per-sub-round p50 difference, IQR [{lat[n]['sub_rounds_iqr_ms'][0]:+.3f}, "
             f"{lat[n]['sub_rounds_iqr_ms'][1]:+.3f}] ms"
             + (f": {_said(lat[n]['within_noise'])}" if n in EDGES else " (the A/A test)")
             for n in ("open-2", *EDGES)]  # fmt: skip
    ping = lat["redis-ping"]["p50_ms"]
    notes.append(f"edge-redis minus reference = {lat['redis_added_p50_ms'] / ping:.1f} x a raw "
                 f"PING round trip from this process ({ping:.3f} ms, the same sub-rounds); "
                 "a request runs 2 EVALSHA (admit before the upstream call, settle "
                 "after)")  # fmt: skip
    if "runs_redis_added_p50_ms" in lat:
        notes.append(f"edge-redis minus reference, each round: {lat['runs_redis_added_p50_ms']}")
    table(f"Latency at concurrency 1, ms ({m['body']} body; {lat['rounds']} interleaved "
          f"sub-rounds x {lat['per_round']} requests each)", ["", *names], rows, out,
          "\n".join(notes))  # fmt: skip
    if prof := res.get("profile"):
        spec = [("gateway", "{name}"), ("samples", "{samples:,.0f}")]
        spec += [(fragment, f"{{{part}[share]:.1%}} {{{part}[us_per_req]:,.1f}} us")
                 for part, fragment in PARTS.items()]  # fmt: skip
        columns("py-spy at c=32: share of each gateway's CPU spent in (and us/req)",
                spec, list(prof.values()), out,
                "the figures of a profiled run are skewed by py-spy's own CPU")  # fmt: skip
