"""Tests for gateway.prometheus: families, values, buckets, escaping and caps, read back
through prometheus_client's own parser of the text format 0.0.4."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from gateway.prometheus import (
    CONTENT_TYPE,
    MAX_LABEL_VALUE_CHARS,
    OTHER,
    Counter,
    Gauge,
    Histogram,
    MetricsStatistics,
    merge_statistics,
    render,
    statistics_from_dict,
    statistics_to_dict,
)
from tests.prometheus_text import Key, flat, only, sample, samples


def test_content_type() -> None:
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


# --- primitives ---------------------------------------------------------------------------


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    h = Histogram("h_seconds", "A histogram.", ("p",), buckets=(0.1, 1, 10))
    for value in (0.05, 0.1, 0.5, 1, 1.0000001, 9.99, 10, 11, 1e9, -3):
        h.labels("x").observe(value)
    # le is inclusive: 0.1 counts under 0.1, 10 under 10; -3 under the first bucket.
    assert flat(only(h), "h_seconds_bucket", "h_seconds_count") == {
        "h_seconds_bucket{p=x,le=0.1}": 3,
        "h_seconds_bucket{p=x,le=1}": 5,
        "h_seconds_bucket{p=x,le=10}": 8,
        "h_seconds_bucket{p=x,le=+Inf}": 10,
        "h_seconds_count{p=x}": 10,
    }
    total = 0.05 + 0.1 + 0.5 + 1 + 1.0000001 + 9.99 + 10 + 11 + 1e9 - 3
    assert flat(only(h), "h_seconds_sum") == {"h_seconds_sum{p=x}": pytest.approx(total)}
    series = h.statistics().get("x")
    assert series is not None
    assert series.cumulative == (3, 5, 8, 10)
    assert series.value == 10


def test_histogram_exposition_text_is_exact() -> None:
    h = Histogram("lat_seconds", "Latency.", buckets=(0.25, 300.0, math.inf))
    h.observe(0.25)
    h.observe(2)
    assert only(h) == (
        b"# HELP lat_seconds Latency.\n"
        b"# TYPE lat_seconds histogram\n"
        b'lat_seconds_bucket{le="0.25"} 1\n'
        b'lat_seconds_bucket{le="300"} 2\n'
        b'lat_seconds_bucket{le="+Inf"} 2\n'
        b"lat_seconds_sum 2.25\n"
        b"lat_seconds_count 2\n"
    )


def test_counter_exposition_text_is_exact() -> None:
    c = Counter("things_total", "Things,\nby kind \\ colour.", ("kind", "colour"))
    c.labels("a", "red").inc()
    c.labels("a", "red").inc(2.5)
    c.labels("b", "blue").inc(3)
    assert only(c) == (
        b"# HELP things_total Things,\\nby kind \\\\ colour.\n"
        b"# TYPE things_total counter\n"
        b'things_total{kind="a",colour="red"} 3.5\n'
        b'things_total{kind="b",colour="blue"} 3\n'
    )
    [family] = text_string_to_metric_families(only(c).decode())
    assert family.documentation == "Things,\nby kind \\ colour."


def test_gauge_inc_dec_set() -> None:
    g = Gauge("g", "A gauge.")
    g.inc()
    g.inc(4)
    g.dec()
    g.dec(0.5)
    assert samples(only(g)) == {("g", frozenset()): 3.5}
    g.set(-2)
    assert samples(only(g)) == {("g", frozenset()): -2}
    g.dec(3)
    assert g.statistics().value() == -5
    labelled = Gauge("lg", "Labelled.", ("pool",))
    labelled.labels("a").set(7)
    labelled.labels("a").dec(2)
    labelled.labels("b").inc()
    assert samples(only(labelled)) == {
        ("lg", frozenset({("pool", "a")})): 5,
        ("lg", frozenset({("pool", "b")})): 1,
    }


def test_special_float_values_render_as_go_spells_them() -> None:
    g = Gauge("g", "A gauge.", ("v",))
    g.labels("inf").set(math.inf)
    g.labels("-inf").set(-math.inf)
    g.labels("nan").set(math.nan)
    g.labels("tiny").set(1e-7)
    text = only(g)
    assert b'g{v="inf"} +Inf\n' in text
    assert b'g{v="-inf"} -Inf\n' in text
    assert b'g{v="nan"} NaN\n' in text
    found = samples(text)
    assert sample(found, "g", v="inf") == math.inf
    assert math.isnan(sample(found, "g", v="nan"))
    assert sample(found, "g", v="tiny") == 1e-7


def test_children_are_cached() -> None:
    c = Counter("c_total", "C.", ("a", "b"))
    child = c.labels("x", "y")
    assert c.labels("x", "y") is child
    # Non-str values are the str() of themselves: an int status is the same series as "200".
    assert c.labels("x", 200) is c.labels("x", "200")
    assert len(c.statistics().series) == 2


def test_misuse_raises() -> None:
    c = Counter("c_total", "C.", ("a",))
    with pytest.raises(ValueError, match="takes labels"):
        c.labels()
    with pytest.raises(ValueError, match="takes labels"):
        c.labels("x", "y")
    with pytest.raises(TypeError, match=r"use \.labels"):
        c.inc()
    with pytest.raises(ValueError, match="only goes up"):
        c.labels("x").inc(-1)
    with pytest.raises(TypeError, match=r"use \.labels"):
        Histogram("h", "H.", ("a",), buckets=(1,)).observe(1)
    with pytest.raises(TypeError, match=r"use \.labels"):
        Gauge("g", "G.", ("a",)).set(1)


@pytest.mark.parametrize(
    ("name", "labelnames"),
    [("1abc", ()), ("a-b", ()), ("", ()), ("ok", ("a:b",)), ("ok", ("__x",)), ("ok", ("a", "a"))],
)
def test_invalid_names_are_refused(name: str, labelnames: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="name"):
        Counter(name, "Doc.", labelnames)


@pytest.mark.parametrize("buckets", [(), (1, 1), (2, 1), (math.nan,), (1, math.inf, 2)])
def test_bad_buckets_are_refused(buckets: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="buckets"):
        Histogram("h", "H.", buckets=buckets)


def test_le_is_reserved_in_histograms() -> None:
    with pytest.raises(ValueError, match="reserved"):
        Histogram("h", "H.", ("le",), buckets=(1,))


# --- label values -------------------------------------------------------------------------

AWKWARD = [
    "",
    'a"b',
    "back\\slash",
    "new\nline",
    "\\n not a newline",
    '\\"',
    "trailing\\",
    "cr\rlf\r\n",
    "tab\there",
    "braces {} = , ",
    "  spaces  ",
    "# not a comment",
    "ünïcödé 模型 🙂",
    "\u2028\u2029\x85\x0b\x0c",
    "\x00\x1f\x7f",
]


@pytest.mark.parametrize("value", AWKWARD)
def test_label_escaping_round_trips_through_the_parser(value: str) -> None:
    c = Counter("c_total", "C.", ("a", "b"))
    c.labels(value, "x").inc(3)
    h = Histogram("h", "H.", ("a",), buckets=(1,))
    h.labels(value).observe(0.5)
    assert samples(only(c)) == {("c_total", frozenset({("a", value), ("b", "x")})): 3}
    found = samples(only(h))
    assert sample(found, "h_bucket", a=value, le="1") == 1
    assert sample(found, "h_count", a=value) == 1


def test_label_escaping_is_exact() -> None:
    c = Counter("c_total", "C.", ("a",))
    c.labels('x\\y"z\nw').inc()
    assert b'c_total{a="x\\\\y\\"z\\nw"} 1\n' in only(c)


def test_lone_surrogate_is_kept_visible_and_renderable() -> None:
    # json.loads('"\\ud800"') gives a lone surrogate, which UTF-8 cannot encode.
    c = Counter("c_total", "C.", ("model",))
    c.labels(json.loads('"bad\\ud800"')).inc()
    assert samples(only(c)) == {("c_total", frozenset({("model", "bad\\ud800")})): 1}


@settings(max_examples=150, deadline=None)
@given(values=st.lists(st.tuples(st.text(max_size=40), st.text(max_size=40)), max_size=8))
def test_any_unicode_label_values_round_trip(values: list[tuple[str, str]]) -> None:
    c = Counter("c_total", "C.", ("provider", "model"))
    h = Histogram("h", "H.", ("provider",), buckets=(1,))
    expected: dict[Key, float] = {}
    hist: dict[Key, float] = {}
    for provider, model in values:
        c.labels(provider, model).inc()
        key = ("c_total", frozenset({("provider", provider), ("model", model)}))
        expected[key] = expected.get(key, 0) + 1
        h.labels(provider).observe(2)
        hkey = ("h_count", frozenset({("provider", provider)}))
        hist[hkey] = hist.get(hkey, 0) + 1
    assert samples(only(c)) == expected
    found = samples(only(h))
    assert {k: v for k, v in found.items() if k[0] == "h_count"} == hist


# --- bounds -------------------------------------------------------------------------------


def test_cap_is_per_family_and_covers_histograms() -> None:
    h = Histogram("h", "H.", ("a",), buckets=(1,), max_label_sets=3)
    c = Counter("c_total", "C.", ("a",), max_label_sets=3)
    for name in "abcdef":
        h.labels(name).observe(0.5)
        c.labels(name).inc()
    assert [s.labels for s in h.statistics().series] == [("a",), ("b",), ("c",), (OTHER,)]
    assert h.statistics().get(OTHER) is not None
    assert h.statistics().value(OTHER) == 3
    assert c.statistics().value(OTHER) == 3


def test_a_real_other_label_value_shares_the_overflow_series() -> None:
    c = Counter("c_total", "C.", ("a",), max_label_sets=1)
    c.labels(OTHER).inc()
    c.labels("x").inc()
    assert samples(only(c)) == {("c_total", frozenset({("a", OTHER)})): 2}


def test_overlong_label_value_folds_into_other() -> None:
    c = Counter("c_total", "C.", ("provider", "model"))
    c.labels("p", "m" * MAX_LABEL_VALUE_CHARS).inc()
    c.labels("p", "m" * (MAX_LABEL_VALUE_CHARS + 1)).inc()
    c.labels("p", "x" * 1_000_000).inc()
    stats = c.statistics()
    assert stats.value("p", "m" * MAX_LABEL_VALUE_CHARS) == 1
    assert stats.value(OTHER, OTHER) == 2
    assert len(stats.series) == 2


# --- merging -------------------------------------------------------------------------------


def test_merging_different_definitions_fails() -> None:
    one = MetricsStatistics((Histogram("h", "H.", buckets=(1,)).statistics(),))
    two = MetricsStatistics((Histogram("h", "H.", buckets=(2,)).statistics(),))
    with pytest.raises(ValueError, match="cannot merge"):
        merge_statistics([one, two])
    summed = MetricsStatistics((Gauge("g", "G.").statistics(),))
    least = MetricsStatistics((Gauge("g", "G.", aggregate="min").statistics(),))
    with pytest.raises(ValueError, match="cannot merge"):
        merge_statistics([summed, least])
    with pytest.raises(ValueError, match="aggregate"):
        Gauge("g", "G.", aggregate="avg")  # type: ignore[arg-type]


def _gauge(value: float, aggregate: str) -> MetricsStatistics:
    g = Gauge("up", "Up.", aggregate=aggregate)  # type: ignore[arg-type]
    g.set(value)
    return MetricsStatistics((g.statistics(),))


@pytest.mark.parametrize(
    ("aggregate", "values", "want"),
    [("sum", (1, 1, 0), 2), ("min", (1, 1, 0), 0), ("min", (1, 1), 1), ("max", (0, 1, 0), 1)],
)
def test_a_gauge_combines_as_its_aggregate_says(
    aggregate: str, values: tuple[int, ...], want: int
) -> None:
    merged = merge_statistics([_gauge(v, aggregate) for v in values])
    assert merged["up"].value() == want
    assert merged["up"].aggregate == aggregate
    assert samples(render(merged)) == {("up", frozenset()): want}


def test_the_aggregate_survives_json() -> None:
    stats = _gauge(1, "min")
    wire = json.loads(json.dumps(statistics_to_dict(stats)))
    assert statistics_from_dict(wire) == stats
    del wire["families"][0]["aggregate"]  # a snapshot written before aggregates: a sum
    assert statistics_from_dict(wire)["up"].aggregate == "sum"


def test_merging_caps_label_sets_folding_the_rest_into_other() -> None:
    def worker(names: str) -> MetricsStatistics:
        c = Counter("c_total", "C.", ("a",))
        h = Histogram("h", "H.", ("a",), buckets=(1,))
        for name in names:
            c.labels(name).inc()
            h.labels(name).observe(0.5)
        return MetricsStatistics((c.statistics(), h.statistics()))

    # Each worker's own sets are within any cap; together they would not be.
    merged = merge_statistics([worker("abc"), worker("cde"), worker("fa")], max_label_sets=4)
    c, h = merged["c_total"], merged["h"]
    assert [s.labels for s in c.series] == [("a",), ("b",), ("c",), ("d",), (OTHER,)]
    assert [c.value(x) for x in "abcd"] == [2, 1, 2, 1]
    assert c.value(OTHER) == 2  # e and f
    assert sum(s.value for s in c.series) == 8  # nothing lost
    assert h.value(OTHER) == 2
    folded = h.get(OTHER)
    assert folded is not None
    assert folded.cumulative == (2, 2)
    uncapped = merge_statistics([worker("abc"), worker("cde"), worker("fa")])
    assert len(uncapped["c_total"].series) == 6
