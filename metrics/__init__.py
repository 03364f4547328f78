"""Metrics: a small in-process Prometheus registry that both ``actors`` and ``web`` record into.

Imports nothing of ours (it sits beside ``config``: every layer may depend on it). A later
change replaces it with ``prometheus_client``; the names here are the surface that will keep.
"""

from ._registry import DEFAULT_BUCKETS as DEFAULT_BUCKETS
from ._registry import Counter as Counter
from ._registry import Gauge as Gauge
from ._registry import Histogram as Histogram
from ._registry import LabelValues as LabelValues
from ._registry import MetricsRegistry as MetricsRegistry

__all__ = [
    "DEFAULT_BUCKETS",
    "Counter",
    "Gauge",
    "Histogram",
    "LabelValues",
    "MetricsRegistry",
]
