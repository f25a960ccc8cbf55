"""Reporting for the benchmarks: progress lines, percentiles, tables, targets, noise.

Progress goes to stderr (:func:`note`). A report goes to stdout, or with ``--json`` to stderr
while the JSON document goes to stdout (:func:`emit`), so ``--json > out.json`` keeps both.

The machine is small and shared: every run records the CPU seconds other processes used
(``cpu_s["other"]``, see rig/cpu.py), and :func:`print_noise` names the runs during which
that exceeded :data:`NOISE_CORES`, so a figure measured beside other work is not mistaken
for the gateway's.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TextIO

#: Cores used by other processes during a run above which the run is flagged as noisy.
NOISE_CORES = 0.15


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of ``values`` (need not be sorted); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))]


def median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run with the median ``key``; with several runs, each one's ``key`` in ``runs_<key>``."""
    row = dict(sorted(runs, key=lambda r: r[key])[len(runs) // 2])
    if len(runs) > 1:
        row[f"runs_{key}"] = [round(r[key], 3) for r in runs]
    return row


def fmt_num(value: float, digits: int = 0) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"  # NaN: "-"


def meta(args: Any) -> dict[str, Any]:
    """The machine and the load options, for a benchmark's ``meta``."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": round(os.getloadavg()[0], 2),
        "generator": args.generator,
        "connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "command": " ".join(sys.argv),
    }


def print_block(
    title: str | None,
    head: list[str],
    rows: list[list[str]],
    out: TextIO,
    notes: str = "",
    *,
    left: int = 1,
    indent: str = "  ",
) -> None:
    """A table: the first ``left`` columns left-aligned, the rest right-aligned."""
    table = [head, *rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]
    if title is not None:
        print(title, file=out)
    for n, line in enumerate(table):
        cells = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        print(indent + "  ".join(cells).rstrip(), file=out)
        if n == 0:
            print(indent + "  ".join("-" * w for w in widths), file=out)
    if notes:
        print(indent + notes.replace("\n", "\n" + indent), file=out)
    print(file=out)


def side_by_side(
    cols: dict[str, dict[str, Any]], spec: list[tuple[str, str, int]], ratio: str = ""
) -> list[list[str]]:
    """Rows ``label, cols[c][key] for each c`` from ``(label, key, digits)``; a missing value
    is "-". Where ``key == ratio``, a last cell holds the last column over the first."""
    rows = []
    for label, key, digits in spec:
        values = [c.get(key) for c in cols.values()]
        row = [label, *("-" if v is None else fmt_num(v, digits) for v in values)]
        if ratio:
            first, last = values[0], values[-1]
            row.append(f"{last / first:.1%}" if key == ratio and first and last else "-")
        rows.append(row)
    return rows


@dataclass
class Verdict:
    name: str
    target: str
    measured: str
    met: bool
    value: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "value": round(self.value, 4)}


def print_verdicts(verdicts: list[Verdict], out: TextIO) -> None:
    rows = [[v.name, v.target, v.measured, "met" if v.met else "MISSED"] for v in verdicts]
    print_block("Targets", ["target", "wanted", "measured", ""], rows, out)


def noisy_runs(doc: Any, path: str = "") -> list[str]:
    """Every run in ``doc`` whose ``cpu_s`` shows other work on the machine, as text."""
    found = []
    if isinstance(doc, dict):
        cpu = doc.get("cpu_s")
        if isinstance(cpu, dict) and cpu.get("wall"):
            other = cpu.get("other", 0.0) / cpu["wall"]
            if other > NOISE_CORES:
                found.append(f"{path.strip('/')}: {other:.2f} cores")
        for key, value in doc.items():
            if key != "cpu_s":
                found += noisy_runs(value, f"{path}/{key}")
    return found


def print_noise(doc: Any, out: TextIO) -> None:
    if noisy := noisy_runs(doc):
        print(
            "WARNING: other processes used CPU during these runs (the machine has "
            f"{os.cpu_count()} CPUs; rerun when it is quiet):\n  " + "\n  ".join(noisy) + "\n",
            file=out,
        )


def emit(
    res: dict[str, Any], as_json: bool, report: Callable[[dict[str, Any], TextIO], None]
) -> int:
    """The report on stdout; with ``as_json`` on stderr, and the JSON document on stdout."""
    out = sys.stderr if as_json else sys.stdout
    print(file=out)
    report(res, out)
    print_noise(res, out)
    if res.get("targets"):
        print_verdicts([Verdict(**t) for t in res["targets"]], out)
    if as_json:
        print(json.dumps(res, indent=2, default=float))
    return 0
