"""Snapshots of metric families: frozen values, their JSON form, merging, exposition.

Reading goes through a family's ``statistics()`` (families.py) or the owner's,
a frozen snapshot (:class:`MetricsStatistics`, the shape of trio's channel
``statistics()``); :func:`render` turns a snapshot into the text exposition
format 0.0.4
(https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).
Snapshots are plain data: :func:`statistics_to_dict` /
:func:`statistics_from_dict` carry them through JSON and
:func:`merge_statistics` sums several (one per worker process) into one.

Merging: counters and histograms add up across processes, and so do most
gauges (requests in flight: the group's is the sum of its workers'). A gauge
that states a condition rather than a quantity (``gateway_redis_up``: 1 when
this process reaches Redis) says how it combines in its ``aggregate``:
``min`` (1 only when every process says 1) or ``max``. Merging can also cap
the label sets per family (``max_label_sets``), folding the rest into one
series whose labels are all ``_other_``, as a family does in one process: N
workers' snapshots never make an exposition N times larger than one's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

__all__ = [
    "AGGREGATES",
    "CONTENT_TYPE",
    "OTHER",
    "Aggregate",
    "FamilyStatistics",
    "MetricsStatistics",
    "Series",
    "merge_statistics",
    "render",
    "statistics_from_dict",
    "statistics_to_dict",
]

#: The ``Content-Type`` of :func:`render`'s output.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: How a family's series combine across processes (:func:`merge_statistics`).
Aggregate = Literal["sum", "min", "max"]
AGGREGATES: tuple[Aggregate, ...] = ("sum", "min", "max")
#: The label value of every label of the series that overflowing label sets fold into.
OTHER = "_other_"


# --- snapshots ---------------------------------------------------------------------------


@attrs.frozen
class Series:
    """One label set's values at snapshot time.

    Attributes:
        labels: label values, in the family's ``labelnames`` order.
        value: a counter's or gauge's value; a histogram's count.
        cumulative: histograms only: observations <= each bound, then the ``+Inf`` total.
        sum: histograms only: the sum of the observations.
    """

    labels: tuple[str, ...]
    value: float
    cumulative: tuple[int, ...] = ()
    sum: float = 0


@attrs.frozen
class FamilyStatistics:
    """One metric family at snapshot time (``kind``: counter, gauge or histogram).

    ``aggregate``: how its series combine across processes; ``sum`` but for
    gauges that state a condition (see the module docstring).
    """

    name: str
    documentation: str
    kind: str
    labelnames: tuple[str, ...]
    bounds: tuple[float, ...]
    series: tuple[Series, ...]
    aggregate: Aggregate = "sum"

    def get(self, *labels: str) -> Series | None:
        """The series with exactly these label values, if any (a linear search)."""
        return next((s for s in self.series if s.labels == labels), None)

    def value(self, *labels: str) -> float:
        """The value (a histogram's count) of a label set; 0 when it has none yet."""
        series = self.get(*labels)
        return 0 if series is None else series.value


@attrs.frozen
class MetricsStatistics:
    """Every family at snapshot time, in exposition order. ``stats[name]`` finds one."""

    families: tuple[FamilyStatistics, ...]

    def __getitem__(self, name: str) -> FamilyStatistics:
        for family in self.families:
            if family.name == name:
                return family
        raise KeyError(name)


def statistics_to_dict(stats: MetricsStatistics) -> dict[str, Any]:
    """A snapshot as JSON-ready data (lists, str, numbers)."""
    return attrs.asdict(stats)


def statistics_from_dict(data: Mapping[str, Any]) -> MetricsStatistics:
    """The inverse of :func:`statistics_to_dict` (e.g. after a JSON round trip)."""
    return MetricsStatistics(
        tuple(
            FamilyStatistics(
                name=f["name"],
                documentation=f["documentation"],
                kind=f["kind"],
                labelnames=tuple(f["labelnames"]),
                bounds=tuple(f["bounds"]),
                series=tuple(
                    Series(tuple(s["labels"]), s["value"], tuple(s["cumulative"]), s["sum"])
                    for s in f["series"]
                ),
                aggregate=_aggregate(f.get("aggregate", "sum")),
            )
            for f in data["families"]
        )
    )


def _aggregate(value: object) -> Aggregate:
    for known in AGGREGATES:
        if value == known:
            return known
    raise ValueError(f"unknown aggregate {value!r}")


def _add(a: Series, b: Series) -> Series:
    cumulative = tuple(x + y for x, y in zip(a.cumulative, b.cumulative, strict=True))
    return Series(a.labels, a.value + b.value, cumulative, a.sum + b.sum)


def _combine(aggregate: Aggregate, a: Series, b: Series) -> Series:
    if aggregate == "sum":
        return _add(a, b)
    pick = min if aggregate == "min" else max
    return Series(a.labels, pick(a.value, b.value))


def _shape(fam: FamilyStatistics) -> tuple[object, ...]:
    return (fam.kind, fam.labelnames, fam.bounds, fam.aggregate)


def merge_statistics(
    snapshots: Iterable[MetricsStatistics], *, max_label_sets: int | None = None
) -> MetricsStatistics:
    """Combine snapshots (one per worker process) series by series.

    Counters, histograms and the gateway's gauges (in-flight requests) add up
    across processes; a gauge whose ``aggregate`` is ``min`` or ``max`` takes
    that instead. Families and series keep their first-seen order.

    Args:
        snapshots: the snapshots to combine.
        max_label_sets: at most this many series per family; label sets seen
            after the cap fold into the series labelled :data:`OTHER` (None:
            no cap).

    Raises:
        ValueError: one family name with different kinds, label names, buckets
            or aggregates.
    """
    families: dict[str, FamilyStatistics] = {}
    merged: dict[str, dict[tuple[str, ...], Series]] = {}
    for snapshot in snapshots:
        for fam in snapshot.families:
            first = families.setdefault(fam.name, fam)
            if _shape(first) != _shape(fam):
                raise ValueError(f"{fam.name}: definitions differ, cannot merge")
            acc = merged.setdefault(fam.name, {})
            other = (OTHER,) * len(fam.labelnames)
            for s in fam.series:
                prev = acc.get(s.labels)
                if prev is None and max_label_sets is not None and len(acc) >= max_label_sets:
                    s = attrs.evolve(s, labels=other)
                    prev = acc.get(other)
                acc[s.labels] = s if prev is None else _combine(fam.aggregate, prev, s)
    return MetricsStatistics(
        tuple(attrs.evolve(f, series=tuple(merged[name].values())) for name, f in families.items())
    )


# --- exposition --------------------------------------------------------------------------


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(int(value))
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))  # "300", as Go and other exporters write it, not "300.0"
    return repr(value)


def _escape_label(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _render_family(fam: FamilyStatistics, out: list[str]) -> None:
    name = fam.name
    out.append(f"# HELP {name} {_escape_help(fam.documentation)}\n# TYPE {name} {fam.kind}\n")
    les = [f'le="{_number(b)}"' for b in fam.bounds] + ['le="+Inf"']
    for s in fam.series:
        pairs = [f'{n}="{_escape_label(v)}"' for n, v in zip(fam.labelnames, s.labels, strict=True)]
        braced = "{" + ",".join(pairs) + "}" if pairs else ""
        if fam.kind != "histogram":
            out.append(f"{name}{braced} {_number(s.value)}\n")
            continue
        for le, count in zip(les, s.cumulative, strict=True):
            out.append(f"{name}_bucket{{{','.join([*pairs, le])}}} {count}\n")
        out.append(
            f"{name}_sum{braced} {_number(s.sum)}\n{name}_count{braced} {_number(s.value)}\n"
        )


def render(stats: MetricsStatistics) -> bytes:
    """The text exposition format 0.0.4 of a snapshot (see :data:`CONTENT_TYPE`)."""
    out: list[str] = []
    for family in stats.families:
        _render_family(family, out)
    return "".join(out).encode("utf-8")
