"""Reports: progress lines, percentiles, one table renderer, targets and the noise warning.

Progress goes to stderr (:func:`note`); a report to stdout, or with ``--json`` to stderr
while the JSON document goes to stdout (:func:`emit`). Table cells are ``str.format``
templates over a run's dict (:func:`cell`), a missing value or NaN shown as "-". Runs
during which other processes used more than :data:`NOISE_CORES` are named under the
report, so a figure measured beside other work is not taken for the gateway's.
"""

from __future__ import annotations

import json
import math
import os
import platform
import string
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


class _Cells(string.Formatter):
    def get_field(self, name: str, args: Any, kwargs: Any) -> Any:
        try:
            return super().get_field(name, args, kwargs)
        except (KeyError, TypeError, IndexError):
            return None, name

    def format_field(self, value: Any, spec: str) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return super().format_field(value, spec)


def cell(template: str, data: dict[str, Any]) -> str:
    """``template.format(**data)``, a missing value or NaN as "-" (``"{rps:,.0f}"``,
    ``"{overhead_header_ms[p50]:.3f}"``)."""
    return _Cells().vformat(template, (), data)


def table(
    title: str | None, head: list[str], rows: list[list[str]], out: TextIO, notes: str = "",
    *, left: int = 1, indent: str = "  ",
) -> None:  # fmt: skip
    """A table: the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(line[i]) for line in [head, *rows]) for i in range(len(head))]
    if title is not None:
        print(title, file=out)
    for n, line in enumerate([head, *rows]):
        cells = [c.rjust(w) if i >= left else c.ljust(w)
                 for i, (c, w) in enumerate(zip(line, widths, strict=True))]  # fmt: skip
        print(indent + "  ".join(cells).rstrip(), file=out)
        if n == 0:
            print(indent + "  ".join("-" * w for w in widths), file=out)
    if notes:
        print(indent + notes.replace("\n", "\n" + indent), file=out)
    print(file=out)


def columns(
    title: str | None, spec: list[tuple[str, str]], rows: list[dict[str, Any]], out: TextIO,
    notes: str = "", **kw: Any,
) -> None:  # fmt: skip
    """A :func:`table` of one row per dict; ``spec``: (heading, :func:`cell` template)."""
    body = [[cell(t, row) for _, t in spec] for row in rows]
    table(title, [h for h, _ in spec], body, out, notes, **kw)


def side_by_side(cols: list[dict[str, Any]], spec: list[tuple[str, ...]]) -> list[list[str]]:
    """Rows of one measure each: ``(label, template, *more)`` gives the label, the
    template's :func:`cell` for each of ``cols``, then the ``more`` cells."""
    return [[label, *(cell(t, c) for c in cols), *more] for label, t, *more in spec]


@dataclass
class Verdict:
    name: str
    target: str
    measured: str
    met: bool
    value: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "value": round(self.value, 4)}


def meta(args: Any) -> dict[str, Any]:
    """The machine and the load options, for a benchmark's ``meta``."""
    return {
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "loadavg_at_start": round(os.getloadavg()[0], 2), "generator": args.generator,
        "connections": args.connections, "duration_s": args.duration, "warmup_s": args.warmup,
        "command": " ".join(sys.argv),
    }  # fmt: skip


def noisy_runs(doc: Any, path: str = "") -> list[str]:
    """Every run in ``doc`` whose ``cpu_s`` shows other work on the machine, as text."""
    if not isinstance(doc, dict):
        return []
    cpu = doc.get("cpu_s") or {}
    other = cpu.get("other", 0.0) / cpu["wall"] if cpu.get("wall") else 0.0
    found = [f"{path.strip('/')}: {other:.2f} cores"] if other > NOISE_CORES else []
    return found + [n for k, v in doc.items() if k != "cpu_s" for n in noisy_runs(v, f"{path}/{k}")]


def emit(
    res: dict[str, Any], as_json: bool, report: Callable[[dict[str, Any], TextIO], None]
) -> int:
    """The report, the noise warning and the targets on stdout; with ``as_json`` on stderr,
    and the JSON document on stdout."""
    out = sys.stderr if as_json else sys.stdout
    print(file=out)
    report(res, out)
    if noisy := noisy_runs(res):
        print("WARNING: other processes used CPU during these runs (the machine has "
              f"{os.cpu_count()} CPUs; rerun when it is quiet):\n  " + "\n  ".join(noisy) + "\n",
              file=out)  # fmt: skip
    if targets := res.get("targets"):
        rows = [[t["name"], t["target"], t["measured"], "met" if t["met"] else "MISSED"]
                for t in targets]  # fmt: skip
        table("Targets", ["target", "wanted", "measured", ""], rows, out)
    if as_json:
        print(json.dumps(res, indent=2, default=float))
    return 0
