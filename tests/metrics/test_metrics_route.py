"""``GET /metrics`` on the real app over a real node: whatever raises while a scrape is
collected, the route answers 200 with text that parses, the failure counted in
``aiadmin_metrics_scrape_errors_total`` and never shown as a trace."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from metrics import SCRAPE_ERRORS
from tests.web.conftest import WebHarness, make_web_settings, open_memory_storage, open_web


@pytest.fixture
async def web() -> AsyncIterator[WebHarness]:
    async with open_memory_storage() as storage, open_web(make_web_settings(), storage) as h:
        yield h


async def scrape(web: WebHarness) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``GET /metrics`` as the admin: asserts 200 and text format, returns every sample."""
    response = await web.client.get("/metrics", headers=web.admin)
    text = await response.get_data(as_text=True)
    assert response.status_code == 200, text
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "Traceback" not in text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def failed(source: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (SCRAPE_ERRORS, (("source", source),))


async def test_a_gauge_that_raises_at_scrape_does_not_take_metrics_down(web: WebHarness) -> None:
    """Before, one reader raising made every scrape a 500."""

    def broken() -> dict[tuple[str, ...], float]:
        raise RuntimeError("gauge bug")

    web.node.metrics.gauge("aiadmin_broken", "A gauge whose reader has a bug", broken)
    first = await scrape(web)
    second = await scrape(web)
    assert ("aiadmin_broken", ()) not in second
    assert second[("aiadmin_active_actors", ())] == 0  # the other gauges are still read
    assert ("aiadmin_http_responses_total", (("route", "/metrics"), ("status", "200"))) in second
    assert (first[failed("aiadmin_broken")], second[failed("aiadmin_broken")]) == (1.0, 2.0)


async def test_a_storage_read_that_raises_is_counted_not_a_500(
    web: WebHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The storage figures are read per scrape: an outage shows -1 (as before), and so does a
    bug, counted as a failed source instead of a 500."""

    async def backlog() -> int:
        raise KeyError("outbox bug")

    monkeypatch.setattr(web.storage.outbox, "backlog", backlog)
    samples = await scrape(web)
    assert samples[("aiadmin_outbox_backlog", ())] == -1
    assert samples[failed("storage")] == 1.0


async def test_two_apps_in_one_process_count_apart() -> None:
    """Each node has its own registry: requests to one app never show on the other's."""
    async with (
        open_memory_storage() as s1,
        open_web(make_web_settings(), s1) as one,
        open_memory_storage() as s2,
        open_web(make_web_settings(), s2) as two,
    ):
        for _ in range(3):
            await one.client.get("/health")
        route = ("aiadmin_http_responses_total", (("route", "/health"), ("status", "200")))
        assert (await scrape(one))[route] == 3.0
        assert route not in await scrape(two)
