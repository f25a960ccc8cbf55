"""Metric families: counters, gauges and histograms, one child per label set.

Theory of operation: a metric *family* (:class:`Counter`, :class:`Gauge`,
:class:`Histogram`) holds one *child* per label set, created on first use of
``family.labels(...)`` and cached in a dict keyed by the tuple of label
values, so the hot path is one dict lookup plus an addition (hold on to the
child to skip even the lookup). Nothing here is global: whoever owns the
families (gateway.metrics) passes them to whoever records. A family is read
through :meth:`statistics`, a frozen snapshot (snapshots.py).

Bounds: a family keeps at most ``max_label_sets`` children (default
:data:`MAX_LABEL_SETS`); past that, and for any label value longer than
:data:`MAX_LABEL_VALUE_CHARS`, new label sets fold into one child whose
values are all :data:`OTHER`, so a client sending random model names cannot
grow memory without bound.

Secrets: label values are exposed to anyone who can scrape ``/metrics``.
Pass provider names, model names, status codes and fixed words only; never a
provider key, a client key, a header value or anything from a request body
other than the model name.

Not thread-safe: record from the Trio thread.
"""

from __future__ import annotations

import logging
import math
import re
from bisect import bisect_left
from collections.abc import Sequence
from itertools import accumulate, pairwise
from typing import Any, ClassVar, Generic, TypeVar

from gateway.prometheus.snapshots import AGGREGATES, OTHER, Aggregate, FamilyStatistics, Series

__all__ = [
    "MAX_LABEL_SETS",
    "MAX_LABEL_VALUE_CHARS",
    "OTHER",
    "Counter",
    "CounterChild",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
]

#: The logger keeps the name it had when this lived in gateway.metrics.
LOG = logging.getLogger("gateway.metrics")

#: Label sets per family. Each costs a few hundred bytes plus its label
#: strings; 10,000 model names per provider is far beyond any real catalogue,
#: yet bounds what a client inventing model names can make us keep.
MAX_LABEL_SETS = 10_000
#: A longer label value is not kept (its label set folds into OTHER): a 32 MiB
#: body may carry a model name that long, and the cap above counts sets, not bytes.
MAX_LABEL_VALUE_CHARS = 200
# OTHER (snapshots.py), the label value of every label of the overflow child, is
# re-exported here: merging folds with it too.


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
    aggregate: Aggregate = "sum"  # how processes' series combine (snapshots.py)

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
        # Keys are tuples of str; typed Any so that labels() may look up the caller's
        # values as given (an int never matches and takes the slow path).
        self._children: dict[tuple[Any, ...], _C] = {}
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
        child = self._children.get(values)
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
        raise NotImplementedError

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
            aggregate=self.aggregate,
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

    def _series(self, key: tuple[str, ...], child: CounterChild) -> Series:
        return Series(key, child.value)

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` to an unlabelled counter."""
        self._unlabelled().inc(amount)


class Gauge(_Family[GaugeChild]):
    """A value that goes up and down (same arguments as :class:`Counter`).

    Args:
        aggregate: how the processes of a group combine their values: ``sum``
            (a quantity, such as requests in flight), ``min`` or ``max`` (a
            condition, such as "Redis answers": 1 only if every process says so).
    """

    kind = "gauge"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        aggregate: Aggregate = "sum",
        max_label_sets: int = MAX_LABEL_SETS,
    ) -> None:
        if aggregate not in AGGREGATES:
            raise ValueError(f"{name}: aggregate must be one of {AGGREGATES}")
        self.aggregate = aggregate
        super().__init__(name, documentation, labelnames, max_label_sets=max_label_sets)

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def _series(self, key: tuple[str, ...], child: GaugeChild) -> Series:
        return Series(key, child.value)

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

    def _series(self, key: tuple[str, ...], child: HistogramChild) -> Series:
        cumulative = tuple(accumulate(child.counts))
        return Series(key, cumulative[-1], cumulative, child.sum)
