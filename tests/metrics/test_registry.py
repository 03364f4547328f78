"""``metrics``: a node's ``prometheus_client`` registry renders Prometheus text format 0.0.4;
a misuse fails where it is made, and a collector that raises never fails a scrape; the package
stands alone."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

import metrics
from metrics import SCRAPE_ERRORS, MetricsRegistry


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape (it must parse as text format), keyed by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_all_is_complete_and_importable() -> None:
    public = {name for name in dir(metrics) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(metrics, name)).__name__ == "module"}
    assert set(metrics.__all__) == public - modules
    assert len(metrics.__all__) == len(set(metrics.__all__))


def test_importing_metrics_imports_nothing_of_ours() -> None:
    """Both ``actors`` and ``web`` depend on it, so it may depend on neither (nor on the rest)."""
    ours = ("config", "runtime", "actors", "storage", "web")
    code = (
        f"import sys, metrics; print(sorted(m for m in sys.modules if m.split('.')[0] in {ours!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_counters_histograms_and_gauges_render_as_text_format() -> None:
    registry = MetricsRegistry()
    requests = registry.counter("http_total", "Requests", ("route", "status"))
    requests.labels("/a", "200").inc()
    requests.labels("/a", "200").inc(2)
    requests.labels('say "hi"\n', "500").inc()
    registry.counter("idle_total", "Never incremented")
    latency = registry.histogram("latency_seconds", "Latency", ("route",))
    latency.labels("/a").observe(0.02)
    latency.labels("/a").observe(3.0)
    registry.gauge("open", "Open now", lambda: {(): 2.5})
    registry.gauge("by_status", "By status", lambda: {("active",): 3, ("pending",): 1}, ("status",))
    text = registry.render()
    lines = text.splitlines()
    assert 'http_total{route="/a",status="200"} 3.0' in lines
    assert 'http_total{route="say \\"hi\\"\\n",status="500"} 1.0' in lines
    assert "idle_total 0.0" in lines
    assert 'latency_seconds_bucket{le="0.01",route="/a"} 0.0' in lines
    assert 'latency_seconds_bucket{le="0.025",route="/a"} 1.0' in lines
    assert 'latency_seconds_bucket{le="+Inf",route="/a"} 2.0' in lines
    assert 'latency_seconds_sum{route="/a"} 3.02' in lines
    assert 'latency_seconds_count{route="/a"} 2.0' in lines
    assert "open 2.5" in lines
    assert 'by_status{status="active"} 3.0' in lines
    assert "# TYPE http_total counter" in lines and "# TYPE open gauge" in lines
    assert "# TYPE latency_seconds histogram" in lines
    # sorted by name, and no ``_created`` samples (turned off: nothing of ours reads them)
    assert lines.index("# TYPE http_total counter") < lines.index("# TYPE idle_total counter")
    assert "_created" not in text
    samples = parse(text)
    assert samples[("latency_seconds_count", (("route", "/a"),))] == 2
    assert registry.value("http_total", {"route": "/a", "status": "200"}) == 3.0
    assert registry.value("http_total", {"route": "/b", "status": "200"}) is None


def test_a_name_is_registered_once() -> None:
    """Registering a counter again returns the same one; a gauge's reader is replaced (the
    latest owner of the live state reads it); another type or other labels under the same
    name are refused."""
    registry = MetricsRegistry()
    first = registry.counter("events_total", "Events")
    assert registry.counter("events_total", "Events") is first
    registry.gauge("depth", "Depth", lambda: {(): 1.0})
    registry.gauge("depth", "Depth", lambda: {(): 7.0})
    assert "depth 7.0" in registry.render().splitlines()
    with pytest.raises(ValueError, match="already registered as a counter"):
        registry.histogram("events_total", "Events")
    with pytest.raises(ValueError, match="already registered as a counter"):
        registry.counter("events_total", "Events", ("kind",))
    with pytest.raises(ValueError, match="clashes with events"):
        registry.gauge("events_total", "Events", lambda: {})
    with pytest.raises(ValueError, match="clashes with depth"):
        registry.counter("depth", "Depth")


def test_a_counter_used_without_its_labels_fails_at_the_call_site() -> None:
    """The old registry took ``inc()`` on a labelled counter and then failed every render
    (``/metrics`` answered 500 from then on). Now the call itself raises
    ``prometheus_client``'s error, and the registry still renders."""
    registry = MetricsRegistry()
    webhooks = registry.counter("webhooks_total", "Webhooks", ("kind", "result"))
    with pytest.raises(ValueError, match="missing label values"):
        webhooks.inc()
    with pytest.raises(ValueError, match="Incorrect label count"):
        webhooks.labels("record").inc()
    latency = registry.histogram("latency_seconds", "Latency", ("route",))
    with pytest.raises(ValueError, match="missing label values"):
        latency.observe(0.1)
    webhooks.labels("record", "new").inc()
    assert (
        parse(registry.render())[("webhooks_total", (("kind", "record"), ("result", "new")))] == 1.0
    )


def test_two_registries_count_apart() -> None:
    """Each node has its own registry (never the process-global one): two nodes or apps in
    one process, as in the tests, do not see each other's counts or clash on names."""
    one, two = MetricsRegistry(), MetricsRegistry()
    one.counter("hits_total", "Hits").inc(5)
    two.counter("hits_total", "Hits").inc()
    assert one.value("hits_total") == 5.0
    assert two.value("hits_total") == 1.0


class _Broken:
    """A hand-registered collector whose ``collect`` raises (its ``describe`` does not, so it
    registers)."""

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        raise RuntimeError("collector bug")
        yield  # pragma: no cover


class _Unrenderable:
    """A collector whose sample cannot be written as text (a value that is not a number)."""

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("weird", "Not a number")
        family.add_metric([], "n/a")  # type: ignore[arg-type]
        yield family


def test_a_collector_that_raises_is_left_out_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A gauge reader that raises, one that reads the wrong number of labels, a collector
    whose ``collect`` raises and a sample that cannot be rendered: each is left out of the
    scrape, counted in ``aiadmin_metrics_scrape_errors_total{source}`` and logged once; the
    rest of the scrape is served and parses."""
    registry = MetricsRegistry()
    registry.counter("kept_total", "Still shown").inc()
    registry.gauge("fine", "Reads", lambda: {(): 1.0})
    registry.gauge("boom", "Raises", lambda: {(): 1 / 0})
    registry.gauge("mislabelled", "Wrong label count", lambda: {(): 1.0}, ("status",))
    registry.register(_Unrenderable())
    registry.register(_Broken())
    with caplog.at_level(logging.WARNING, logger="metrics"):
        first = registry.render()
        second = registry.render()
    for text in (first, second):
        samples = parse(text)
        assert samples[("kept_total", ())] == 1.0
        assert samples[("fine", ())] == 1.0
        assert not any(name in {"boom", "mislabelled", "weird"} for name, _ in samples)
    samples = parse(second)
    for source in ("boom", "mislabelled", "weird", "_Broken"):
        assert samples[(SCRAPE_ERRORS, (("source", source),))] == 2.0
    logged = [r for r in caplog.records if r.name == "metrics"]
    assert sorted(r.getMessage().split(" ")[1] for r in logged) == sorted(
        ["boom", "mislabelled", "weird", "_Broken"]
    )
    assert all(r.exc_info is not None for r in logged)
