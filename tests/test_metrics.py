"""Tests for gateway.metrics: the gateway's families and what a finished request records,
read back through prometheus_client's own parser of the text format 0.0.4."""

from __future__ import annotations

import json
import logging

import attrs
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import LATENCY_BUCKETS, OVERHEAD_BUCKETS, Metrics
from gateway.prometheus import (
    MAX_LABEL_SETS,
    OTHER,
    merge_statistics,
    render,
    statistics_from_dict,
    statistics_to_dict,
)
from gateway.record import CallRecord
from gateway.server.exchange import HttpRecord
from tests.prometheus_text import flat, sample, samples

#: design.md, Observability (plus the log-drop counter), with their TYPE.
FAMILIES = {
    "gateway_requests_total": ("counter", ("provider", "model", "status")),
    "gateway_request_duration_seconds": ("histogram", ("provider",)),
    "gateway_time_to_first_byte_seconds": ("histogram", ("provider",)),
    "gateway_upstream_errors_total": ("counter", ("provider", "kind")),
    "gateway_tokens_total": ("counter", ("provider", "model", "direction", "key")),
    "gateway_inflight_requests": ("gauge", ()),
    "gateway_provider_inflight_requests": ("gauge", ("provider",)),
    "gateway_stream_cancellations_total": ("counter", ("provider",)),
    "gateway_transformer_reloads_total": ("counter", ("result",)),
    "gateway_overhead_seconds": ("histogram", ()),
    "gateway_log_records_dropped_total": ("counter", ()),
    "gateway_limit_rejections_total": ("counter", ("key", "limit")),
}


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
        "gateway_tokens_total{provider=openai,model=gpt-4o,direction=in,key=}": 107,
        "gateway_tokens_total{provider=openai,model=gpt-4o,direction=out,key=}": 43,
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
        "gateway_tokens_total{provider=openai,model=gpt-4o,direction=in,key=}": 25,
        "gateway_inflight_requests": 5,
    }
    duration = flat(text, "gateway_request_duration_seconds")
    assert duration["gateway_request_duration_seconds_bucket{provider=openai,le=0.25}"] == 0
    assert duration["gateway_request_duration_seconds_bucket{provider=openai,le=0.5}"] == 5
    assert duration["gateway_request_duration_seconds_sum{provider=openai}"] == pytest.approx(1.5)
    assert flat(text, "gateway_transformer")["gateway_transformer_reloads_total{result=ok}"] == 2
    assert [f.name for f in merged.families] == list(FAMILIES)


# --- observe: the server's observer ------------------------------------------------------


#: A proxied request answered whole: 200, 1.5 s, its head after 0.2 s.
ANSWERED = HttpRecord(
    request_id="r",
    method="POST",
    target="/v1/chat/completions",
    client="127.0.0.1:1",
    status=200,
    bytes_sent=10,
    duration_s=1.5,
    head_s=0.2,
    overhead_s=0.0003,
    finished=True,
)


def _record(facts: CallRecord | None, **http: object) -> HttpRecord:
    return attrs.evolve(ANSWERED, facts=facts, **http)


def test_observe_counts_a_proxied_request_in_every_family_it_touches() -> None:
    m = Metrics()
    facts = CallRecord("openai", "gpt-4o", "p", "up", tokens_in=100, tokens_out=40)
    m.observe(_record(facts))
    text = m.render()
    assert flat(text, "gateway_requests", "gateway_tokens", "gateway_stream") == {
        "gateway_requests_total{provider=p,model=gpt-4o,status=200}": 1,
        "gateway_tokens_total{provider=p,model=gpt-4o,direction=in,key=}": 100,
        "gateway_tokens_total{provider=p,model=gpt-4o,direction=out,key=}": 40,
    }
    assert flat(text, "gateway_request_duration_seconds_sum") == {
        "gateway_request_duration_seconds_sum{provider=p}": 1.5
    }
    assert flat(text, "gateway_time_to_first_byte_seconds_sum") == {
        "gateway_time_to_first_byte_seconds_sum{provider=p}": 0.2
    }
    assert flat(text, "gateway_overhead_seconds_sum") == {"gateway_overhead_seconds_sum": 0.0003}


def test_observe_skips_requests_that_were_not_proxied() -> None:
    m = Metrics()
    m.observe(_record(None))
    stats = m.statistics()
    assert stats["gateway_requests_total"].series == ()
    assert stats["gateway_overhead_seconds"].value() == 0


def test_observe_a_refusal_before_any_provider_and_without_an_answer() -> None:
    m = Metrics()
    m.observe(_record(CallRecord("anthropic"), status=404, finished=True))
    m.observe(
        _record(
            CallRecord("openai", "m"),
            status=None,
            head_s=None,
            overhead_s=None,
            finished=False,
            client_gone=True,
        )
    )
    stats = m.statistics()
    assert stats["gateway_requests_total"].value("none", "", "404") == 1
    assert stats["gateway_requests_total"].value("none", "m", "499") == 1
    assert stats["gateway_time_to_first_byte_seconds"].value("none") == 1  # the 404's head only
    assert stats["gateway_overhead_seconds"].value() == 1
    # No head went out: not a stream cut short.
    assert stats["gateway_stream_cancellations_total"].series == ()


@pytest.mark.parametrize(("finished", "cancelled"), [(False, 1), (True, 0)])
def test_observe_counts_a_departed_client_only_when_its_answer_was_cut_short(
    finished: bool, cancelled: int
) -> None:
    m = Metrics()
    m.observe(_record(CallRecord("openai", "m", "p"), finished=finished, client_gone=True))
    assert m.statistics()["gateway_stream_cancellations_total"].value("p") == cancelled


# --- the edge's families (issue 10) --------------------------------------------------------


def test_tokens_by_direction_and_key_cached_and_reasoning_are_parts_not_extras() -> None:
    m = Metrics()
    facts = CallRecord(
        "anthropic",
        "claude",
        "p",
        "up",
        key_name="team-a",
        tokens_in=100,
        tokens_out=40,
        tokens_cached=60,
        tokens_reasoning=25,
    )
    m.observe(_record(facts))
    m.observe(_record(CallRecord("openai", "claude", "p", "up", tokens_in=5, tokens_out=1)))
    assert flat(m.render(), "gateway_tokens") == {
        "gateway_tokens_total{provider=p,model=claude,direction=in,key=team-a}": 100,
        "gateway_tokens_total{provider=p,model=claude,direction=out,key=team-a}": 40,
        "gateway_tokens_total{provider=p,model=claude,direction=cached,key=team-a}": 60,
        "gateway_tokens_total{provider=p,model=claude,direction=reasoning,key=team-a}": 25,
        # the gateway open (no client keys): an empty key, no cached or reasoning reported
        "gateway_tokens_total{provider=p,model=claude,direction=in,key=}": 5,
        "gateway_tokens_total{provider=p,model=claude,direction=out,key=}": 1,
    }


def test_limit_rejections_count_by_key_name_and_limit() -> None:
    m = Metrics()
    m.limit_rejected("team-a", "rpm")
    m.limit_rejected("team-a", "rpm")
    m.limit_rejected("team-b", "tokens_per_day")
    assert flat(m.render(), "gateway_limit") == {
        "gateway_limit_rejections_total{key=team-a,limit=rpm}": 2,
        "gateway_limit_rejections_total{key=team-b,limit=tokens_per_day}": 1,
    }


def test_redis_up_is_read_at_each_scrape_and_absent_without_redis() -> None:
    assert "gateway_redis_up" not in Metrics().render().decode()
    up = [True]
    m = Metrics(redis_up=lambda: up[0])
    assert flat(m.render(), "gateway_redis") == {"gateway_redis_up": 1}
    up[0] = False
    assert flat(m.render(), "gateway_redis") == {"gateway_redis_up": 0}
    later = Metrics()
    later.watch_redis(lambda: True)
    assert flat(later.render(), "gateway_redis") == {"gateway_redis_up": 1}
    # Several workers: 1 only when every one of them reaches Redis.
    a, b = Metrics(redis_up=lambda: True), Metrics(redis_up=lambda: False)
    assert merge_statistics([a.statistics(), b.statistics()])["gateway_redis_up"].value() == 0
    assert merge_statistics([a.statistics(), a.statistics()])["gateway_redis_up"].value() == 1


def test_provider_inflight_sums_across_workers() -> None:
    a, b = Metrics(), Metrics()
    a.provider_inflight.labels("openai").inc()
    b.provider_inflight.labels("openai").inc()
    b.provider_inflight.labels("groq").inc()
    merged = render(merge_statistics([a.statistics(), b.statistics()]))
    assert flat(merged, "gateway_provider_inflight") == {
        "gateway_provider_inflight_requests{provider=openai}": 2,
        "gateway_provider_inflight_requests{provider=groq}": 1,
    }
