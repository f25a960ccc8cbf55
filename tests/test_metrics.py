"""Tests for gateway.metrics: values, buckets, escaping and caps, read back through
prometheus_client's own parser of the text format 0.0.4."""

from __future__ import annotations

import json
import logging
import math

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import (
    CONTENT_TYPE,
    LATENCY_BUCKETS,
    MAX_LABEL_SETS,
    MAX_LABEL_VALUE_CHARS,
    OTHER,
    OVERHEAD_BUCKETS,
    Counter,
    Gauge,
    Histogram,
    Metrics,
    MetricsStatistics,
    merge_statistics,
    render,
    statistics_from_dict,
    statistics_to_dict,
)

#: design.md, Observability (plus the log-drop counter), with their TYPE.
FAMILIES = {
    "gateway_requests_total": ("counter", ("provider", "model", "status")),
    "gateway_request_duration_seconds": ("histogram", ("provider",)),
    "gateway_time_to_first_byte_seconds": ("histogram", ("provider",)),
    "gateway_upstream_errors_total": ("counter", ("provider", "kind")),
    "gateway_tokens_total": ("counter", ("provider", "model", "direction")),
    "gateway_inflight_requests": ("gauge", ()),
    "gateway_stream_cancellations_total": ("counter", ("provider",)),
    "gateway_transformer_reloads_total": ("counter", ("result",)),
    "gateway_overhead_seconds": ("histogram", ()),
    "gateway_log_records_dropped_total": ("counter", ()),
}

Key = tuple[str, frozenset[tuple[str, str]]]


def samples(exposition: bytes) -> dict[Key, float]:
    """Every sample the parser finds: (sample name, labels) -> value; duplicates fail."""
    out: dict[Key, float] = {}
    for family in text_string_to_metric_families(exposition.decode("utf-8")):
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"duplicate series {key}"
            out[key] = s.value
    return out


def sample(found: dict[Key, float], name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def flat(exposition: bytes, *names: str) -> dict[str, float]:
    """Samples of the named families as ``name{k=v,...}`` (labels in text order) -> value."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition.decode("utf-8")):
        for s in family.samples:
            if s.name.startswith(names):
                labels = ",".join(f"{k}={v}" for k, v in s.labels.items())
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def only(family: Counter | Gauge | Histogram) -> bytes:
    return render(MetricsStatistics((family.statistics(),)))


# --- the gateway's families ---------------------------------------------------------------


def test_every_family_present_with_help_and_type_before_any_sample() -> None:
    text = Metrics().render().decode()
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    for name, (kind, labelnames) in FAMILIES.items():
        assert f"\n# TYPE {name} {kind}\n" in "\n" + text
        help_line = next(line for line in text.splitlines() if line.startswith(f"# HELP {name} "))
        assert len(help_line) > len(f"# HELP {name} ") + 10
        family = parsed[name.removesuffix("_total") if kind == "counter" else name]
        assert family.type == kind
        assert family.documentation
        stats = Metrics().statistics()[name]
        assert (stats.kind, stats.labelnames) == (kind, labelnames)
    assert len(parsed) == len(FAMILIES)
    # Before any request: unlabelled families show their zero, the reload results too.
    les = [
        "0.0001",
        "0.00025",
        "0.0005",
        "0.001",
        "0.0025",
        "0.005",
        "0.01",
        "0.025",
        "0.05",
        "0.1",
        "+Inf",
    ]
    assert flat(text.encode(), "gateway_") == {
        "gateway_inflight_requests": 0,
        "gateway_log_records_dropped_total": 0,
        "gateway_transformer_reloads_total{result=ok}": 0,
        "gateway_transformer_reloads_total{result=error}": 0,
        **{f"gateway_overhead_seconds_bucket{{le={le}}}": 0 for le in les},
        "gateway_overhead_seconds_sum": 0,
        "gateway_overhead_seconds_count": 0,
    }


def test_buckets_suit_their_measures() -> None:
    assert LATENCY_BUCKETS[0] == 0.005
    assert LATENCY_BUCKETS[-1] == 300
    assert OVERHEAD_BUCKETS[0] == 0.0001
    assert OVERHEAD_BUCKETS[-1] == 0.1
    metrics = Metrics()
    assert metrics.request_duration.bounds == LATENCY_BUCKETS
    assert metrics.time_to_first_byte.bounds == LATENCY_BUCKETS
    assert metrics.overhead.bounds == OVERHEAD_BUCKETS


def test_content_type() -> None:
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_exact_values_after_a_sequence_of_requests() -> None:
    m = Metrics()
    m.inflight.inc()
    m.inflight.inc()
    m.observe_request(
        provider="openai",
        model="gpt-4o",
        status=200,
        duration_s=1.5,
        ttfb_s=0.2,
        overhead_s=0.0003,
        tokens_in=100,
        tokens_out=40,
    )
    m.observe_request(
        provider="openai", model="gpt-4o", status="200", duration_s=0.5, tokens_in=7, tokens_out=3
    )
    m.observe_request(provider="anthropic", model="claude", status=529, duration_s=0.01)
    m.inflight.dec()
    m.upstream_errors.labels("anthropic", "overloaded").inc()
    m.upstream_errors.labels("anthropic", "overloaded").inc()
    m.upstream_errors.labels("openai", "timeout").inc()
    m.stream_cancellations.labels("openai").inc()

    text = m.render()
    assert flat(
        text, "gateway_requests", "gateway_tokens", "gateway_upstream", "gateway_stream"
    ) == {
        "gateway_requests_total{provider=openai,model=gpt-4o,status=200}": 2,
        "gateway_requests_total{provider=anthropic,model=claude,status=529}": 1,
        "gateway_tokens_total{provider=openai,model=gpt-4o,direction=in}": 107,
        "gateway_tokens_total{provider=openai,model=gpt-4o,direction=out}": 43,
        "gateway_upstream_errors_total{provider=anthropic,kind=overloaded}": 2,
        "gateway_upstream_errors_total{provider=openai,kind=timeout}": 1,
        "gateway_stream_cancellations_total{provider=openai}": 1,
    }
    assert flat(text, "gateway_inflight") == {"gateway_inflight_requests": 1}
    duration = flat(text, "gateway_request_duration")
    assert duration["gateway_request_duration_seconds_count{provider=openai}"] == 2
    assert duration["gateway_request_duration_seconds_sum{provider=openai}"] == 2.0
    assert duration["gateway_request_duration_seconds_bucket{provider=openai,le=0.25}"] == 0
    assert duration["gateway_request_duration_seconds_bucket{provider=openai,le=0.5}"] == 1
    assert duration["gateway_request_duration_seconds_bucket{provider=openai,le=1}"] == 1
    assert duration["gateway_request_duration_seconds_bucket{provider=openai,le=2.5}"] == 2
    assert duration["gateway_request_duration_seconds_bucket{provider=anthropic,le=0.005}"] == 0
    assert duration["gateway_request_duration_seconds_bucket{provider=anthropic,le=0.01}"] == 1
    ttfb = flat(text, "gateway_time_to_first_byte")
    assert ttfb["gateway_time_to_first_byte_seconds_count{provider=openai}"] == 1
    assert ttfb["gateway_time_to_first_byte_seconds_sum{provider=openai}"] == 0.2
    assert "gateway_time_to_first_byte_seconds_count{provider=anthropic}" not in ttfb
    overhead = flat(text, "gateway_overhead")
    assert overhead["gateway_overhead_seconds_count"] == 1
    assert overhead["gateway_overhead_seconds_bucket{le=0.00025}"] == 0
    assert overhead["gateway_overhead_seconds_bucket{le=0.0005}"] == 1

    stats = m.statistics()
    assert stats["gateway_requests_total"].value("openai", "gpt-4o", "200") == 2
    assert stats["gateway_requests_total"].value("openai", "gpt-4o", "500") == 0
    assert stats["gateway_inflight_requests"].value() == 1


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


def test_label_set_cap_folds_into_other(caplog: pytest.LogCaptureFixture) -> None:
    m = Metrics()
    for i in range(MAX_LABEL_SETS):
        m.requests.labels("p", f"model-{i}", "200").inc()
    with caplog.at_level(logging.WARNING, logger="gateway.metrics"):
        for i in range(25):
            m.requests.labels("p", f"random-{i}", "404").inc()
        m.requests.labels("p", "random-0", "404").inc(5)
    m.requests.labels("p", "model-7", "200").inc()  # an existing set keeps counting
    stats = m.statistics()["gateway_requests_total"]
    assert len(stats.series) == MAX_LABEL_SETS + 1
    assert stats.value(OTHER, OTHER, OTHER) == 30
    assert stats.value("p", "model-7", "200") == 2
    assert stats.get("p", "random-0", "404") is None
    found = samples(m.render())
    assert sample(found, "gateway_requests_total", provider=OTHER, model=OTHER, status=OTHER) == 30
    assert [r.getMessage() for r in caplog.records] == [
        f"gateway_requests_total reached {MAX_LABEL_SETS} label sets; more count as {OTHER}"
    ]


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


# --- scrape-time values -------------------------------------------------------------------


def test_scrape_time_values_are_read_at_each_scrape() -> None:
    counts = {"ok": 1, "error": 0}
    dropped = [0]
    m = Metrics(reload_counts=lambda: dict(counts), log_records_dropped=lambda: dropped[0])
    found = samples(m.render())
    assert sample(found, "gateway_transformer_reloads_total", result="ok") == 1
    assert sample(found, "gateway_transformer_reloads_total", result="error") == 0
    assert sample(found, "gateway_log_records_dropped_total") == 0
    counts["ok"] += 2
    counts["error"] += 1
    dropped[0] = 12
    found = samples(m.render())
    assert sample(found, "gateway_transformer_reloads_total", result="ok") == 3
    assert sample(found, "gateway_transformer_reloads_total", result="error") == 1
    assert sample(found, "gateway_log_records_dropped_total") == 12
    assert m.statistics()["gateway_log_records_dropped_total"].value() == 12


# --- snapshots, JSON, merging -------------------------------------------------------------


def test_statistics_is_a_frozen_snapshot() -> None:
    m = Metrics()
    m.requests.labels("p", "m", "200").inc()
    m.overhead.observe(0.001)
    before = m.statistics()
    m.requests.labels("p", "m", "200").inc()
    m.overhead.observe(0.001)
    assert before["gateway_requests_total"].value("p", "m", "200") == 1
    assert before["gateway_overhead_seconds"].value() == 1
    assert m.statistics()["gateway_requests_total"].value("p", "m", "200") == 2
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        before.families = ()  # type: ignore[misc]
    with pytest.raises(KeyError):
        before["nope"]


def _worker(provider: str, requests: int) -> Metrics:
    m = Metrics(reload_counts=lambda: {"ok": 1, "error": 0})
    for _ in range(requests):
        m.observe_request(
            provider=provider, model="gpt-4o", status=200, duration_s=0.3, ttfb_s=0.1, tokens_in=5
        )
    m.inflight.set(requests)
    return m


def test_snapshot_survives_json_and_workers_merge_by_summing() -> None:
    a, b = _worker("openai", 2), _worker("openai", 3)
    b.observe_request(provider="groq", model="llama", status=429, duration_s=0.02)
    wire = [json.loads(json.dumps(statistics_to_dict(w.statistics()))) for w in (a, b)]
    snapshots = [statistics_from_dict(d) for d in wire]
    assert snapshots[0] == a.statistics()
    merged = merge_statistics(snapshots)
    text = render(merged)
    assert flat(text, "gateway_requests", "gateway_tokens", "gateway_inflight") == {
        "gateway_requests_total{provider=openai,model=gpt-4o,status=200}": 5,
        "gateway_requests_total{provider=groq,model=llama,status=429}": 1,
        "gateway_tokens_total{provider=openai,model=gpt-4o,direction=in}": 25,
        "gateway_inflight_requests": 5,
    }
    duration = flat(text, "gateway_request_duration_seconds")
    assert duration["gateway_request_duration_seconds_bucket{provider=openai,le=0.25}"] == 0
    assert duration["gateway_request_duration_seconds_bucket{provider=openai,le=0.5}"] == 5
    assert duration["gateway_request_duration_seconds_sum{provider=openai}"] == pytest.approx(1.5)
    assert flat(text, "gateway_transformer")["gateway_transformer_reloads_total{result=ok}"] == 2
    assert [f.name for f in merged.families] == list(FAMILIES)


def test_merging_different_definitions_fails() -> None:
    one = MetricsStatistics((Histogram("h", "H.", buckets=(1,)).statistics(),))
    two = MetricsStatistics((Histogram("h", "H.", buckets=(2,)).statistics(),))
    with pytest.raises(ValueError, match="cannot merge"):
        merge_statistics([one, two])
