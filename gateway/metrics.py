"""Prometheus metrics: counters, gauges, histograms and the text exposition.

Theory of operation: a metric *family* (:class:`Counter`, :class:`Gauge`,
:class:`Histogram`) holds one *child* per label set, created on first use of
``family.labels(...)`` and cached in a dict keyed by the tuple of label
values, so the hot path is one dict lookup plus an addition (hold on to the
child to skip even the lookup). Nothing here is global: :class:`Metrics`
owns the gateway's families and is passed to whoever records.

Reading goes through :meth:`Metrics.statistics`, a frozen snapshot
(:class:`MetricsStatistics`, the shape of trio's channel ``statistics()``);
:func:`render` turns a snapshot into the text exposition format 0.0.4
(https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).
Snapshots are plain data: :func:`statistics_to_dict` /
:func:`statistics_from_dict` carry them through JSON and :func:`merge_statistics`
sums several (one per worker process) into one.

Bounds: a family keeps at most ``max_label_sets`` children (default
:data:`MAX_LABEL_SETS`); past that, and for any label value longer than
:data:`MAX_LABEL_VALUE_CHARS`, new label sets fold into one child whose
values are all :data:`OTHER`, so a client sending random model names cannot
grow memory without bound.

Secrets: label values are exposed to anyone who can scrape ``/metrics``.
Pass provider names, model names, status codes and fixed words only; never a
provider key, a client key, a header value or anything from a request body
other than the model name.

Not thread-safe: record from the Trio thread (values read by callbacks at
scrape time may live anywhere).
"""

from __future__ import annotations

import logging
import math
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import accumulate, pairwise
from typing import Any, ClassVar, Generic, TypeVar

import attrs

__all__ = [
    "CONTENT_TYPE",
    "LATENCY_BUCKETS",
    "MAX_LABEL_SETS",
    "MAX_LABEL_VALUE_CHARS",
    "NO_PROVIDER",
    "OTHER",
    "OVERHEAD_BUCKETS",
    "Counter",
    "CounterChild",
    "FamilyStatistics",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "Metrics",
    "MetricsStatistics",
    "Series",
    "merge_statistics",
    "render",
    "statistics_from_dict",
    "statistics_to_dict",
]

LOG = logging.getLogger("gateway.metrics")

#: The ``Content-Type`` of :meth:`Metrics.render`'s output.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Label sets per family. Each costs a few hundred bytes plus its label
#: strings; 10,000 model names per provider is far beyond any real catalogue,
#: yet bounds what a client inventing model names can make us keep.
MAX_LABEL_SETS = 10_000
#: A longer label value is not kept (its label set folds into OTHER): a 32 MiB
#: body may carry a model name that long, and the cap above counts sets, not bytes.
MAX_LABEL_VALUE_CHARS = 200
#: The label value of every label of the overflow child.
OTHER = "_other_"
#: Suggested ``provider`` label for requests that never reached a provider
#: (refused by auth, limits or routing).
NO_PROVIDER = "none"

#: Request duration and time to first byte: LLM calls take 5 ms to minutes.
# fmt: off
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
                   60.0, 120.0, 300.0)
# fmt: on
#: Time spent in the gateway itself: sub-millisecond when all is well.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


# --- children: the objects the hot path touches ------------------------------------------


class CounterChild:
    """One label set of a :class:`Counter`."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (>= 0)."""
        if amount < 0:
            raise ValueError("a counter only goes up")
        self.value += amount


class GaugeChild:
    """One label set of a :class:`Gauge`."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = value


class HistogramChild:
    """One label set of a :class:`Histogram`: per-bucket counts and the sum."""

    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        #: Non-cumulative; the last slot is the ``+Inf`` bucket.
        self.counts = [0] * (len(bounds) + 1)
        self.sum: float = 0

    def observe(self, value: float) -> None:
        """Count ``value`` in the first bucket whose upper bound is >= it."""
        self.counts[bisect_left(self._bounds, value)] += 1
        self.sum += value


# --- families ----------------------------------------------------------------------------

_C = TypeVar("_C", CounterChild, GaugeChild, HistogramChild)


_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _check_names(name: str, labelnames: tuple[str, ...]) -> None:
    if not _METRIC_NAME.fullmatch(name):
        raise ValueError(f"invalid metric name {name!r}")
    for label in labelnames:
        if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
            raise ValueError(f"{name}: invalid label name {label!r}")
    if len(set(labelnames)) != len(labelnames):
        raise ValueError(f"{name}: duplicate label names {labelnames}")


def _label_value(value: object) -> str:
    """A label value as a str that encodes to UTF-8 (a lone surrogate from JSON would not)."""
    # A str subclass (an enum) by its value, anything else (an int status) by str().
    text = str.__str__(value) if isinstance(value, str) else str(value)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class _Family(Generic[_C]):
    kind: ClassVar[str]
    bounds: tuple[float, ...] = ()  # histograms: bucket upper bounds

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        max_label_sets: int = MAX_LABEL_SETS,
    ) -> None:
        self.labelnames = tuple(labelnames)
        _check_names(name, self.labelnames)
        self.name = name
        self.documentation = documentation
        self._max = max_label_sets
        self._other_key = (OTHER,) * len(self.labelnames)
        self._folding_logged = False
        self._children: dict[tuple[str, ...], _C] = {}
        self._default: _C | None = None
        if not self.labelnames:
            self._default = self._children[()] = self._new_child()

    def _new_child(self) -> _C:
        raise NotImplementedError

    def labels(self, *values: str | int) -> _C:
        """The child for these label values (in ``labelnames`` order), created on first use.

        Values that are not ``str`` are converted with ``str()``; passing ``str``
        keeps to the fast path. Never pass a secret (see the module docstring).

        Raises:
            ValueError: the number of values differs from the number of label names.
        """
        child = self._children.get(values)  # type: ignore[arg-type]
        if child is None:
            child = self._child_slow(values)
        return child

    def _child_slow(self, values: tuple[object, ...]) -> _C:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values!r}")
        key = tuple([v if type(v) is str and v.isascii() else _label_value(v) for v in values])
        child = self._children.get(key)
        if child is None:
            child = self._new_label_set(key)
        return child

    def _new_label_set(self, key: tuple[str, ...]) -> _C:
        full = len(self._children) >= self._max
        if full or any(len(v) > MAX_LABEL_VALUE_CHARS for v in key):
            if full and not self._folding_logged:
                self._folding_logged = True
                LOG.warning(
                    "%s reached %d label sets; more count as %s", self.name, self._max, OTHER
                )
            key = self._other_key
            child = self._children.get(key)
            if child is not None:
                return child
        child = self._children[key] = self._new_child()
        return child

    def _unlabelled(self) -> _C:
        if self._default is None:
            raise TypeError(f"{self.name} has labels {self.labelnames}: use .labels(...)")
        return self._default

    def _series(self, key: tuple[str, ...], child: _C) -> Series:
        return Series(key, child.value)  # type: ignore[union-attr]

    def statistics(self) -> FamilyStatistics:
        """A frozen snapshot of this family."""
        series = tuple(self._series(k, c) for k, c in self._children.items())
        return FamilyStatistics(
            name=self.name,
            documentation=self.documentation,
            kind=self.kind,
            labelnames=self.labelnames,
            bounds=self.bounds,
            series=series,
        )


class Counter(_Family[CounterChild]):
    """A monotonically increasing count. Name it ``..._total``.

    Args:
        name: metric name.
        documentation: the HELP text.
        labelnames: label names; the values go to :meth:`labels` in this order.
        max_label_sets: children kept before new label sets fold into :data:`OTHER`.
    """

    kind = "counter"

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` to an unlabelled counter."""
        self._unlabelled().inc(amount)


class Gauge(_Family[GaugeChild]):
    """A value that goes up and down (same arguments as :class:`Counter`)."""

    kind = "gauge"

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def inc(self, amount: float = 1) -> None:
        self._unlabelled().inc(amount)

    def dec(self, amount: float = 1) -> None:
        self._unlabelled().dec(amount)

    def set(self, value: float) -> None:
        self._unlabelled().set(value)


class Histogram(_Family[HistogramChild]):
    """Observations counted in fixed buckets, with their sum and count.

    Args:
        buckets: finite upper bounds, strictly increasing; ``+Inf`` is implied.
        (others as :class:`Counter`; ``le`` is not a valid label name here)
    """

    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
        max_label_sets: int = MAX_LABEL_SETS,
    ) -> None:
        bounds = tuple(float(b) for b in buckets)
        if bounds and bounds[-1] == math.inf:
            bounds = bounds[:-1]
        finite = all(math.isfinite(b) for b in bounds)
        if not bounds or not finite or any(a >= b for a, b in pairwise(bounds)):
            raise ValueError(f"{name}: buckets must be finite and strictly increasing")
        if "le" in labelnames:
            raise ValueError(f"{name}: 'le' is reserved in histograms")
        self.bounds = bounds
        super().__init__(name, documentation, labelnames, max_label_sets=max_label_sets)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.bounds)

    def observe(self, value: float) -> None:
        self._unlabelled().observe(value)

    def _series(self, key: tuple[str, ...], child: HistogramChild) -> Series:  # type: ignore[override]
        cumulative = tuple(accumulate(child.counts))
        return Series(key, cumulative[-1], cumulative, child.sum)


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
    """One metric family at snapshot time (``kind``: counter, gauge or histogram)."""

    name: str
    documentation: str
    kind: str
    labelnames: tuple[str, ...]
    bounds: tuple[float, ...]
    series: tuple[Series, ...]

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
            )
            for f in data["families"]
        )
    )


def _add(a: Series, b: Series) -> Series:
    cumulative = tuple(x + y for x, y in zip(a.cumulative, b.cumulative, strict=True))
    return Series(a.labels, a.value + b.value, cumulative, a.sum + b.sum)


def _shape(fam: FamilyStatistics) -> tuple[object, ...]:
    return (fam.kind, fam.labelnames, fam.bounds)


def merge_statistics(snapshots: Iterable[MetricsStatistics]) -> MetricsStatistics:
    """Sum snapshots (one per worker process) series by series.

    Counters, histograms and the gateway's gauges (in-flight requests) all add
    up across processes. Families and series keep their first-seen order.

    Raises:
        ValueError: one family name with different kinds, label names or buckets.
    """
    families: dict[str, FamilyStatistics] = {}
    merged: dict[str, dict[tuple[str, ...], Series]] = {}
    for snapshot in snapshots:
        for fam in snapshot.families:
            first = families.setdefault(fam.name, fam)
            if _shape(first) != _shape(fam):
                raise ValueError(f"{fam.name}: definitions differ, cannot merge")
            acc = merged.setdefault(fam.name, {})
            for s in fam.series:
                prev = acc.get(s.labels)
                acc[s.labels] = s if prev is None else _add(prev, s)
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


# --- the gateway's metrics ---------------------------------------------------------------


class Metrics:
    """The gateway's metric families (names as in design.md, Observability).

    Record on the attributes (``metrics.requests.labels(p, m, "200").inc()``) or
    with :meth:`observe_request`. Label values are provider names, model
    names, status codes and fixed words: never a key or other secret. The
    ``kind`` of an upstream error is such a word (the ``kind`` of
    :mod:`gateway.failures`: ``connect``, ``status_429``, ``timeout_first_byte``,
    ...), never an exception's message.

    Args:
        reload_counts: read at each scrape for
            ``gateway_transformer_reloads_total{result}``, e.g.
            ``lambda: holder.reload_counts`` (``{"ok": n, "error": m}``).
        log_records_dropped: read at each scrape for
            ``gateway_log_records_dropped_total``.
    """

    def __init__(
        self,
        *,
        reload_counts: Callable[[], Mapping[str, int]] | None = None,
        log_records_dropped: Callable[[], int] | None = None,
    ) -> None:
        self._reload_counts = reload_counts
        self._log_records_dropped = log_records_dropped
        self.requests = Counter(
            "gateway_requests_total",
            "Requests answered, by provider, model and HTTP status.",
            ("provider", "model", "status"),
        )
        self.request_duration = Histogram(
            "gateway_request_duration_seconds",
            "Time from a request's arrival to the end of its response.",
            ("provider",),
            buckets=LATENCY_BUCKETS,
        )
        self.time_to_first_byte = Histogram(
            "gateway_time_to_first_byte_seconds",
            "Time from a request's arrival to the first byte of the provider's response body.",
            ("provider",),
            buckets=LATENCY_BUCKETS,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total",
            "Failed upstream attempts (retried ones included), by provider and kind.",
            ("provider", "kind"),
        )
        self.tokens = Counter(
            "gateway_tokens_total",
            "Tokens reported by providers; direction is in (prompt) or out (completion).",
            ("provider", "model", "direction"),
        )
        self.inflight = Gauge("gateway_inflight_requests", "Requests being handled now.")
        self.stream_cancellations = Counter(
            "gateway_stream_cancellations_total",
            "Streams cut short because the client went away.",
            ("provider",),
        )
        self.transformer_reloads = Counter(
            "gateway_transformer_reloads_total",
            "Transformer directory reloads, by result (error: some file failed to load).",
            ("result",),
        )
        self.overhead = Histogram(
            "gateway_overhead_seconds",
            "Time spent in the gateway itself, excluding the wait for the provider.",
            buckets=OVERHEAD_BUCKETS,
        )
        self.log_records_dropped = Counter(
            "gateway_log_records_dropped_total",
            "Log records dropped because the log writer fell behind.",
        )
        for result in ("ok", "error"):
            self.transformer_reloads.labels(result)
        self._families: tuple[Counter | Gauge | Histogram, ...] = (
            self.requests,
            self.request_duration,
            self.time_to_first_byte,
            self.upstream_errors,
            self.tokens,
            self.inflight,
            self.stream_cancellations,
            self.transformer_reloads,
            self.overhead,
            self.log_records_dropped,
        )

    def observe_request(
        self,
        *,
        provider: str,
        model: str,
        status: str | int,
        duration_s: float,
        ttfb_s: float | None = None,
        overhead_s: float | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
    ) -> None:
        """Record one finished request in every family it touches.

        Args:
            provider: the provider that answered (:data:`NO_PROVIDER` if none did).
            model: the model name as routed (an alias); the label-set cap
                bounds whatever clients send.
            status: the HTTP status sent to the client.
            duration_s: arrival to end of response.
            ttfb_s: arrival to the first body byte from the provider, if any came.
            overhead_s: time spent in the gateway itself, if measured.
            tokens_in: prompt tokens the provider reported.
            tokens_out: completion tokens the provider reported.
        """
        self.requests.labels(provider, model, str(status)).inc()
        self.request_duration.labels(provider).observe(duration_s)
        if ttfb_s is not None:
            self.time_to_first_byte.labels(provider).observe(ttfb_s)
        if overhead_s is not None:
            self.overhead.observe(overhead_s)
        if tokens_in:
            self.tokens.labels(provider, model, "in").inc(tokens_in)
        if tokens_out:
            self.tokens.labels(provider, model, "out").inc(tokens_out)

    def statistics(self) -> MetricsStatistics:
        """A frozen snapshot of every family, scrape-time values read just now."""
        if self._reload_counts is not None:
            for result, count in self._reload_counts().items():
                self.transformer_reloads.labels(result).value = count
        if self._log_records_dropped is not None:
            self.log_records_dropped._unlabelled().value = self._log_records_dropped()
        return MetricsStatistics(tuple(family.statistics() for family in self._families))

    def render(self) -> bytes:
        """The exposition for ``GET /metrics`` (serve it with :data:`CONTENT_TYPE`)."""
        return render(self.statistics())
