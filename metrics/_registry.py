"""The node's metrics: ``prometheus_client`` counters and histograms, plus gauges computed at
scrape time, in a :class:`~prometheus_client.CollectorRegistry` of the node's own.

Recording is ``prometheus_client``'s API, so a misuse fails where it is made::

    responses = registry.counter("aiadmin_http_responses_total", "HTTP responses", ("route",))
    responses.labels("/health").inc()   # right
    responses.inc()                     # ValueError: counter metric is missing label values

Gauges that mirror live state (actor counts, sessions, queue depths) are not set by anyone:
a reader registered with :meth:`MetricsRegistry.gauge` is called on every scrape by one custom
collector, so the figure is never a stale copy of state that lives elsewhere.

A scrape never fails as a whole. Each collector is collected and rendered on its own; one that
raises (a gauge reader, a collector registered by hand, a sample that cannot be rendered) is
left out of that scrape, logged once with its traceback, and counted in
``aiadmin_metrics_scrape_errors_total{source}``. Everything else is still served.

Importing this module turns off ``prometheus_client``'s ``*_created`` samples process-wide
(:func:`prometheus_client.disable_created_metrics`): they double the output and nothing of
ours reads them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import Counter as Counter
from prometheus_client import Histogram as Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

disable_created_metrics()  # type: ignore[no-untyped-call]

log = logging.getLogger("metrics")

LabelValues = tuple[str, ...]

#: A scrape-time gauge's reader: label values (in the declared order) → value.
GaugeReader = Callable[[], Mapping[LabelValues, float]]

#: Request-latency buckets in seconds (``+Inf`` is added by ``prometheus_client``).
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: What ``/metrics`` answers with: the classic text format 0.0.4, which ``render`` writes
#: (``prometheus_client``'s ``CONTENT_TYPE_LATEST`` now says 1.0.0, which older Prometheus
#: servers do not know).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Collectors left out of a scrape because they raised, by source.
SCRAPE_ERRORS = "aiadmin_metrics_scrape_errors_total"


@dataclass(frozen=True)
class ScrapeGauge:
    """A gauge whose samples ``read`` returns at scrape time."""

    name: str
    help: str
    read: GaugeReader
    label_names: tuple[str, ...] = ()

    def family(self) -> GaugeMetricFamily:
        """This gauge's samples now; raises whatever ``read`` raises, or ``ValueError`` when a
        key does not carry one value per label name."""
        family = GaugeMetricFamily(self.name, self.help, labels=self.label_names)
        values = self.read()
        if not values and not self.label_names:
            family.add_metric([], 0.0)
        for labels, value in sorted(values.items()):
            if len(labels) != len(self.label_names):
                raise ValueError(
                    f"gauge {self.name} read labels {labels!r}, but declares {self.label_names!r}"
                )
            family.add_metric(list(labels), float(value))
        return family


class _ScrapeGauges:
    """The custom collector of every :class:`ScrapeGauge`; a failing reader drops only its
    own gauge (reported to ``on_error``)."""

    def __init__(self, on_error: Callable[[str, Exception], None]) -> None:
        self.gauges: dict[str, ScrapeGauge] = {}
        self._on_error = on_error

    def describe(self) -> list[Metric]:
        return []  # names are checked by MetricsRegistry as gauges come and go

    def collect(self) -> Iterator[Metric]:
        for name in sorted(self.gauges):
            try:
                family = self.gauges[name].family()
            except Exception as exc:  # a reader's bug must not fail the scrape
                self._on_error(name, exc)
                continue
            yield family


@dataclass(frozen=True)
class _Families:
    """Already collected families, shaped as a collector for ``generate_latest``."""

    families: tuple[Metric, ...]

    def collect(self) -> Iterable[Metric]:
        return self.families


def _sample_names(kind: str, name: str) -> tuple[str, ...]:
    """The family name and every sample name a metric of ``kind`` shows, which no other
    metric of the registry may show."""
    if kind == "counter":
        base = name.removesuffix("_total")
        return (base, f"{base}_total", f"{base}_created")
    if kind == "histogram":
        return (name, *(f"{name}{s}" for s in ("_bucket", "_sum", "_count", "_created")))
    return (name,)


class MetricsRegistry:
    """One node's metrics (never the process-global ``prometheus_client.REGISTRY``, so two
    nodes or apps in one process, as in tests, count apart), rendered for ``/metrics``.

    Registering a counter or histogram again under its name returns the one already there (a
    restarted service keeps counting into it), provided the labels agree; a gauge registered
    again gets the new reader (the latest owner of the live state reads it). A name already
    taken by another kind of metric is refused with ``ValueError``.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._collectors: list[Collector] = []
        self._kinds: dict[str, tuple[str, str]] = {}  # sample name → (kind, family name)
        self._instruments: dict[str, tuple[str, tuple[str, ...], Counter | Histogram]] = {}
        self._failed_sources: set[str] = set()
        self._errors: dict[str, float] = {}
        self._gauges = _ScrapeGauges(self.record_scrape_error)
        self.register(self._gauges)
        self._claim("counter", SCRAPE_ERRORS)

    def __repr__(self) -> str:
        return (
            f"<MetricsRegistry instruments={len(self._instruments)} "
            f"gauges={len(self._gauges.gauges)} collectors={len(self._collectors)}>"
        )

    def counter(self, name: str, help: str, labels: tuple[str, ...] = ()) -> Counter:
        """The counter ``name`` (``..._total``) with ``labels``; registered on first use."""
        existing = self._existing("counter", name, labels)
        if isinstance(existing, Counter):
            return existing
        counter = Counter(name, help, labels, registry=None)
        self._add("counter", name, labels, counter)
        return counter

    def histogram(
        self,
        name: str,
        help: str,
        labels: tuple[str, ...] = (),
        buckets: tuple[float, ...] = DEFAULT_BUCKETS,
    ) -> Histogram:
        """The histogram ``name`` with ``labels`` and ``buckets``; registered on first use."""
        existing = self._existing("histogram", name, labels)
        if isinstance(existing, Histogram):
            return existing
        histogram = Histogram(name, help, labels, registry=None, buckets=buckets)
        self._add("histogram", name, labels, histogram)
        return histogram

    def gauge(
        self, name: str, help: str, read: GaugeReader, labels: tuple[str, ...] = ()
    ) -> ScrapeGauge:
        """A gauge computed by ``read`` on every scrape (its reader replaced when registered
        again)."""
        gauge = ScrapeGauge(name, help, read, labels)
        if name not in self._gauges.gauges:
            self._claim("gauge", name)
        self._gauges.gauges[name] = gauge
        return gauge

    def register(self, collector: Collector) -> None:
        """Add a custom collector (``collect()`` yielding metric families); it is guarded at
        scrape time like every other."""
        self.registry.register(collector)
        self._collectors.append(collector)

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """One sample's value as a scrape shows it now (``None`` when it is not shown)."""
        wanted = dict(labels or {})
        for family in text_string_to_metric_families(self.render()):
            for sample in family.samples:
                if sample.name == name and sample.labels == wanted:
                    return float(sample.value)
        return None

    def render(self) -> str:
        """Every metric in text format 0.0.4, sorted by name; never raises (see the module
        docstring)."""
        families: list[Metric] = []
        for collector in list(self._collectors):
            try:
                families.extend(collector.collect())
            except Exception as exc:  # one collector must not fail the scrape
                self.record_scrape_error(_source(collector), exc)
        parts: list[str] = []
        for family in sorted(families, key=lambda f: f.name):
            try:
                parts.append(_text(family))
            except Exception as exc:  # nor one sample that cannot be rendered
                self.record_scrape_error(family.name, exc)
        parts.append(_text(self._errors_family()))
        return "".join(parts)

    # -- internals

    def _existing(
        self, kind: str, name: str, labels: tuple[str, ...]
    ) -> Counter | Histogram | None:
        found = self._instruments.get(name)
        if found is None:
            return None
        found_kind, found_labels, instrument = found
        if (found_kind, found_labels) != (kind, labels):
            raise ValueError(
                f"metric {name} is already registered as a {found_kind} "
                f"with labels {found_labels!r}"
            )
        return instrument

    def _add(
        self, kind: str, name: str, labels: tuple[str, ...], instrument: Counter | Histogram
    ) -> None:
        self._claim(kind, name)
        self._instruments[name] = (kind, labels, instrument)
        self.register(instrument)

    def _claim(self, kind: str, name: str) -> None:
        names = _sample_names(kind, name)
        for sample in names:
            taken = self._kinds.get(sample)
            if taken is not None:
                raise ValueError(
                    f"metric {name} ({kind}) clashes with {taken[1]}, "
                    f"already registered as a {taken[0]}"
                )
        for sample in names:
            self._kinds[sample] = (kind, name)

    def record_scrape_error(self, source: str, exc: Exception) -> None:
        """Count a scrape-time failure of ``source`` (logged the first time, with ``exc``'s
        traceback) in ``aiadmin_metrics_scrape_errors_total``."""
        self._errors[source] = self._errors.get(source, 0.0) + 1.0
        if source in self._failed_sources:
            return
        self._failed_sources.add(source)
        log.warning(
            "metrics: %s raised %s at scrape; it is left out of every scrape it fails "
            "(counted in %s, logged once)",
            source,
            type(exc).__name__,
            SCRAPE_ERRORS,
            exc_info=exc,
        )

    def _errors_family(self) -> CounterMetricFamily:
        family = CounterMetricFamily(
            SCRAPE_ERRORS.removesuffix("_total"),
            "Collectors left out of a /metrics scrape because they raised",
            labels=("source",),
        )
        for source, count in sorted(self._errors.items()):
            family.add_metric([source], count)
        return family


def _text(family: Metric) -> str:
    """One family in text format 0.0.4."""
    return generate_latest(_Families((family,))).decode()  # type: ignore[arg-type]


def _source(collector: Collector) -> str:
    """A collector's name for the error counter: its metric's name, or its class."""
    name = getattr(collector, "_name", None)
    return name if isinstance(name, str) else type(collector).__name__
