"""A small Prometheus registry: counters, gauges, histograms, rendered as text format 0.0.4.

In-process and lock-free (one trio thread). Gauges may be computed at scrape time from a
callback, so the numbers are never stale copies of state that lives elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

LabelValues = tuple[str, ...]

DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: LabelValues, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


@dataclass
class Counter:
    """A monotonically increasing count, optionally split by labels."""

    name: str
    help: str
    label_names: tuple[str, ...] = ()
    values: dict[LabelValues, float] = field(default_factory=dict)

    def inc(self, amount: float = 1.0, *labels: str) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def get(self, *labels: str) -> float:
        return self.values.get(labels, 0.0)

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        if not self.values and not self.label_names:
            yield f"{self.name} 0"
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


@dataclass
class Gauge:
    """A value read at scrape time from ``read`` (label tuple → value)."""

    name: str
    help: str
    read: Callable[[], dict[LabelValues, float]]
    label_names: tuple[str, ...] = ()

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} gauge"
        values = self.read()
        if not values and not self.label_names:
            yield f"{self.name} 0"
        for labels, value in sorted(values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


@dataclass
class Histogram:
    """Observations counted into cumulative buckets (e.g. request latency in seconds)."""

    name: str
    help: str
    label_names: tuple[str, ...] = ()
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    counts: dict[LabelValues, list[int]] = field(default_factory=dict)
    sums: dict[LabelValues, float] = field(default_factory=dict)

    def observe(self, value: float, *labels: str) -> None:
        counts = self.counts.setdefault(labels, [0] * (len(self.buckets) + 1))
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1
        counts[-1] += 1
        self.sums[labels] = self.sums.get(labels, 0.0) + value

    def count(self, *labels: str) -> int:
        return self.counts.get(labels, [0])[-1]

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        for labels, counts in sorted(self.counts.items()):
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                le = f'le="{_number(bound)}"'
                yield f"{self.name}_bucket{_labels(self.label_names, labels, le)} {count}"
            yield f"{self.name}_sum{_labels(self.label_names, labels)} {_number(self.sums[labels])}"
            yield f"{self.name}_count{_labels(self.label_names, labels)} {counts[-1]}"


Metric = Counter | Gauge | Histogram


class MetricsRegistry:
    """Holds the node's metrics by name and renders them for ``/metrics``."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}

    def counter(self, name: str, help: str, labels: tuple[str, ...] = ()) -> Counter:
        return self._add(Counter(name, help, labels))  # type: ignore[return-value]

    def gauge(
        self,
        name: str,
        help: str,
        read: Callable[[], dict[LabelValues, float]],
        labels: tuple[str, ...] = (),
    ) -> Gauge:
        return self._add(Gauge(name, help, read, labels))  # type: ignore[return-value]

    def histogram(self, name: str, help: str, labels: tuple[str, ...] = ()) -> Histogram:
        return self._add(Histogram(name, help, labels))  # type: ignore[return-value]

    def _add(self, metric: Metric) -> Metric:
        existing = self._metrics.get(metric.name)
        if existing is not None:
            if type(existing) is not type(metric):
                raise ValueError(f"metric {metric.name} already registered as another type")
            if isinstance(metric, Gauge):
                self._metrics[metric.name] = metric  # a gauge's reader may be replaced
                return metric
            return existing
        self._metrics[metric.name] = metric
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for name in sorted(self._metrics):
            lines.extend(self._metrics[name].render())
        return "\n".join(lines) + "\n"
