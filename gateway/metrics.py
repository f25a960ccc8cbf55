"""The gateway's metrics: its metric families and what one finished request records.

Theory of operation: :class:`Metrics` owns the families of design.md's
"Observability" (names unchanged), built on the small Prometheus client in
gateway.prometheus. Nothing is global: the app owns one and passes it to
whoever records (the proxy counts upstream errors and in-flight requests).
:meth:`Metrics.observe` is the server's observer: it gets the record of each
finished request (gateway.server.exchange.HttpRecord) after its access line
and records the request in every family it touches. Only proxied requests
count (those whose record carries the app's gateway.record.CallRecord):
health probes would drown the signal. Requests refused before a provider was
tried are labelled ``provider="none"`` (:data:`NO_PROVIDER`).

Others record as things happen: the proxy counts upstream errors and the
tries under way at each provider (``gateway_provider_inflight_requests``), the
limit code calls :meth:`Metrics.limit_rejected`.

Tokens (``gateway_tokens_total{provider,model,direction,key}``): ``in`` is the
whole prompt and ``out`` the whole completion as the provider reported them;
``cached`` (prompt tokens read from the provider's cache) is a part of ``in``
and ``reasoning`` a part of ``out``, never added to them. ``key`` is the client
key's name (empty when the gateway is open): names come from the settings, so
the label stays bounded.

Reading goes through :meth:`Metrics.statistics`, a frozen snapshot
(gateway.prometheus), scrape-time values (transformer reloads, dropped log
lines, whether Redis answers) read just then; :meth:`Metrics.render` is the
``/metrics`` body of a single process (with ``--workers N`` the group's body
is gateway.prometheus.group's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from gateway.prometheus import Counter, Gauge, Histogram, MetricsStatistics, render
from gateway.record import CallRecord

if TYPE_CHECKING:
    from gateway.server.exchange import HttpRecord

__all__ = ["LATENCY_BUCKETS", "NO_PROVIDER", "OVERHEAD_BUCKETS", "Metrics"]

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


class Metrics:
    """The gateway's metric families (names as in design.md, Observability).

    Record on the attributes (``metrics.requests.labels(p, m, "200").inc()``),
    with :meth:`observe_request`, or hand :meth:`observe` a finished request.
    Label values are provider names, model names, status codes and fixed
    words: never a key or other secret. The
    ``kind`` of an upstream error is such a word (the ``kind`` of
    :mod:`gateway.failures`: ``connect``, ``status_429``, ``timeout_first_byte``,
    ...), never an exception's message.

    Args:
        reload_counts: read at each scrape for
            ``gateway_transformer_reloads_total{result}``, e.g.
            ``lambda: holder.reload_counts`` (``{"ok": n, "error": m}``).
        log_records_dropped: read at each scrape for
            ``gateway_log_records_dropped_total``.
        redis_up: read at each scrape for ``gateway_redis_up`` (1: Redis
            answers), e.g. ``lambda: state.up``. None (no ``[state] redis_url``):
            the family is left out of the exposition altogether, so an alert on
            ``gateway_redis_up == 0`` cannot fire for a gateway without Redis.
    """

    def __init__(
        self,
        *,
        reload_counts: Callable[[], Mapping[str, int]] | None = None,
        log_records_dropped: Callable[[], int] | None = None,
        redis_up: Callable[[], bool] | None = None,
    ) -> None:
        self._reload_counts = reload_counts
        self._log_records_dropped = log_records_dropped
        self._redis_up = redis_up
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
            "Tokens reported by providers; direction is in (prompt), out (completion), "
            "cached (the part of in read from the provider's cache) or reasoning (the part "
            "of out spent thinking); key is the client key's name (empty: no keys).",
            ("provider", "model", "direction", "key"),
        )
        self.inflight = Gauge("gateway_inflight_requests", "Requests being handled now.")
        self.provider_inflight = Gauge(
            "gateway_provider_inflight_requests",
            "Tries under way at each provider now (a request waiting to retry counts nowhere).",
            ("provider",),
        )
        self.limit_rejections = Counter(
            "gateway_limit_rejections_total",
            "Requests refused by a client key's limit (rpm, tpm, concurrency, tokens_per_day, "
            "tokens_per_month), by key name.",
            ("key", "limit"),
        )
        self.redis_up = Gauge(
            "gateway_redis_up",
            "1 when the shared state in Redis answers, else 0 (with several workers: 1 only "
            "when every worker reaches it).",
            aggregate="min",
        )
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
            self.provider_inflight,
            self.stream_cancellations,
            self.transformer_reloads,
            self.overhead,
            self.log_records_dropped,
            self.limit_rejections,
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
        tokens_cached: int = 0,
        tokens_reasoning: int = 0,
        key: str = "",
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
            tokens_cached: of ``tokens_in``, those read from the provider's cache.
            tokens_reasoning: of ``tokens_out``, those spent on reasoning.
            key: the client key's name ("" when the gateway is open).
        """
        self.requests.labels(provider, model, str(status)).inc()
        self.request_duration.labels(provider).observe(duration_s)
        if ttfb_s is not None:
            self.time_to_first_byte.labels(provider).observe(ttfb_s)
        if overhead_s is not None:
            self.overhead.observe(overhead_s)
        if tokens_in:
            self.tokens.labels(provider, model, "in", key).inc(tokens_in)
        if tokens_out:
            self.tokens.labels(provider, model, "out", key).inc(tokens_out)
        if tokens_cached:
            self.tokens.labels(provider, model, "cached", key).inc(tokens_cached)
        if tokens_reasoning:
            self.tokens.labels(provider, model, "reasoning", key).inc(tokens_reasoning)

    def watch_redis(self, up: Callable[[], bool]) -> None:
        """Show ``gateway_redis_up`` from now on, read from ``up()`` at each scrape (as the
        ``redis_up`` argument does, for a state made after the metrics)."""
        self._redis_up = up

    def limit_rejected(self, key: str, limit: str) -> None:
        """Count a request that client key ``key``'s ``limit`` refused.

        Args:
            key: the client key's name (a configured name, never the key itself).
            limit: which limit: ``rpm``, ``tpm``, ``concurrency``,
                ``tokens_per_day`` or ``tokens_per_month``.
        """
        self.limit_rejections.labels(key, limit).inc()

    def observe(self, record: HttpRecord) -> None:
        """Record one finished request (the server's observer); only proxied ones count.

        A response cut short by a departed client (its head out, its end not)
        also counts in ``gateway_stream_cancellations_total``; a client that
        read its whole answer and left does not.
        """
        facts = record.facts
        if not isinstance(facts, CallRecord):
            return
        provider = facts.provider if facts.provider is not None else NO_PROVIDER
        responded = record.status is not None
        if record.client_gone and responded and not record.finished:
            self.stream_cancellations.labels(provider).inc()
        self.observe_request(
            provider=provider,
            model=facts.model if facts.model is not None else "",
            status=record.status if record.status is not None else 499,
            duration_s=record.duration_s,
            ttfb_s=record.head_s,
            overhead_s=record.overhead_s,
            tokens_in=facts.tokens_in or 0,
            tokens_out=facts.tokens_out or 0,
            tokens_cached=facts.tokens_cached or 0,
            tokens_reasoning=facts.tokens_reasoning or 0,
            key=facts.key_name or "",
        )

    def statistics(self) -> MetricsStatistics:
        """A frozen snapshot of every family, scrape-time values read just now."""
        if self._reload_counts is not None:
            for result, count in self._reload_counts().items():
                self.transformer_reloads.labels(result).value = count
        if self._log_records_dropped is not None:
            self.log_records_dropped._unlabelled().value = self._log_records_dropped()
        families = self._families
        if self._redis_up is not None:
            self.redis_up.set(1 if self._redis_up() else 0)
            families = (*families, self.redis_up)
        return MetricsStatistics(tuple(family.statistics() for family in families))

    def render(self) -> bytes:
        """The exposition for ``GET /metrics`` (serve it with :data:`CONTENT_TYPE`)."""
        return render(self.statistics())
