"""Metrics: each node's ``prometheus_client`` registry, which both ``actors`` and ``web``
record into, with gauges computed at scrape time and a render that never fails as a whole.

Imports nothing of ours (it sits beside ``config``: every layer may depend on it).
``Counter`` and ``Histogram`` are ``prometheus_client``'s own: record with
``counter.labels(...).inc()`` and ``histogram.labels(...).observe(seconds)``.
"""

from ._registry import CONTENT_TYPE as CONTENT_TYPE
from ._registry import DEFAULT_BUCKETS as DEFAULT_BUCKETS
from ._registry import SCRAPE_ERRORS as SCRAPE_ERRORS
from ._registry import Counter as Counter
from ._registry import GaugeReader as GaugeReader
from ._registry import Histogram as Histogram
from ._registry import LabelValues as LabelValues
from ._registry import MetricsRegistry as MetricsRegistry
from ._registry import ScrapeGauge as ScrapeGauge

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_BUCKETS",
    "SCRAPE_ERRORS",
    "Counter",
    "GaugeReader",
    "Histogram",
    "LabelValues",
    "MetricsRegistry",
    "ScrapeGauge",
]
