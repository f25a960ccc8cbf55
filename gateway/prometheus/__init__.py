"""A small Prometheus client: metric families, frozen snapshots, merging, the text exposition.

No runtime dependency (NOTES.md, Metrics). families.py holds what the hot
path touches (families and their per-label-set children, with the label-set
cap); snapshots.py what reading needs (frozen statistics, their JSON form,
the merge of several workers' snapshots, the exposition format 0.0.4). The
gateway's own metric set is gateway.metrics.
"""

from gateway.prometheus.families import (
    MAX_LABEL_SETS,
    MAX_LABEL_VALUE_CHARS,
    OTHER,
    Counter,
    CounterChild,
    Gauge,
    GaugeChild,
    Histogram,
    HistogramChild,
)
from gateway.prometheus.snapshots import (
    AGGREGATES,
    CONTENT_TYPE,
    Aggregate,
    FamilyStatistics,
    MetricsStatistics,
    Series,
    merge_statistics,
    render,
    statistics_from_dict,
    statistics_to_dict,
)

__all__ = [
    "AGGREGATES",
    "CONTENT_TYPE",
    "MAX_LABEL_SETS",
    "MAX_LABEL_VALUE_CHARS",
    "OTHER",
    "Aggregate",
    "Counter",
    "CounterChild",
    "FamilyStatistics",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "MetricsStatistics",
    "Series",
    "merge_statistics",
    "render",
    "statistics_from_dict",
    "statistics_to_dict",
]
