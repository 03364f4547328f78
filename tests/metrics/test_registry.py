"""``metrics``: the registry renders Prometheus text format 0.0.4; the package stands alone."""

from __future__ import annotations

import subprocess
import sys

import pytest

import metrics
from metrics import MetricsRegistry


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
    requests.inc(1.0, "/a", "200")
    requests.inc(2.0, "/a", "200")
    requests.inc(1.0, 'say "hi"\n', "500")
    registry.counter("idle_total", "Never incremented")
    latency = registry.histogram("latency_seconds", "Latency", ("route",))
    latency.observe(0.02, "/a")
    latency.observe(3.0, "/a")
    registry.gauge("open", "Open now", lambda: {(): 2.5})
    lines = registry.render().splitlines()
    assert 'http_total{route="/a",status="200"} 3' in lines
    assert 'http_total{route="say \\"hi\\"\\n",status="500"} 1' in lines
    assert "idle_total 0" in lines
    assert 'latency_seconds_bucket{route="/a",le="0.01"} 0' in lines
    assert 'latency_seconds_bucket{route="/a",le="0.025"} 1' in lines
    assert 'latency_seconds_bucket{route="/a",le="+Inf"} 2' in lines
    assert 'latency_seconds_sum{route="/a"} 3.02' in lines
    assert 'latency_seconds_count{route="/a"} 2' in lines
    assert "open 2.5" in lines
    assert lines.index("# TYPE http_total counter") < lines.index("# TYPE idle_total counter")
    assert requests.get("/a", "200") == 3.0 and latency.count("/a") == 2


def test_a_name_is_registered_once() -> None:
    """Registering a counter again returns the same one; a gauge's reader is replaced (the
    latest owner of the live state reads it); another type under the same name is refused."""
    registry = MetricsRegistry()
    first = registry.counter("events_total", "Events")
    assert registry.counter("events_total", "Events") is first
    registry.gauge("depth", "Depth", lambda: {(): 1.0})
    registry.gauge("depth", "Depth", lambda: {(): 7.0})
    assert "depth 7" in registry.render().splitlines()
    with pytest.raises(ValueError, match="another type"):
        registry.histogram("events_total", "Events")
