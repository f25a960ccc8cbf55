"""Reading the text exposition back with prometheus_client's own parser (format 0.0.4)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from gateway.prometheus import Counter, Gauge, Histogram, MetricsStatistics, render

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
