"""The company actor renders a QR image per rotation without holding the event loop (the
encoder and PNG writer themselves are tested in ``tests/actors/qr/``)."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

import actors.company._actor as company_actor
from actors import Node
from actors.company import messages as m

from .conftest import RecordingViewer


async def test_many_companies_rotating_at_once_leave_the_event_loop_free_between_images(
    autojump_clock: MockClock, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Images are rendered one company per scheduling pass, so I/O is polled between two of
    them (a burst of rotations never holds the loop for every company's image at once)."""
    record: list[str] = []

    def render(text: str, **_: object) -> str:
        record.append("image")
        return "data:image/png;base64,"

    monkeypatch.setattr(company_actor, "qr_png_data_url", render)
    ids = [(await node.storage.companies.create(500 + i)).company.id for i in range(20)]
    viewers = [RecordingViewer() for _ in ids]
    for cid, viewer in zip(ids, viewers, strict=True):
        await node.company(cid).ask(m.Subscribe(viewer))

    async def probe() -> None:
        while True:
            record.append("tick")
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(probe)
        async with trio.open_nursery() as asks:
            for cid in ids:
                asks.start_soon(node.company(cid).ask, m.RequestQr())
        for viewer in viewers:
            await viewer.next("qr-update")
        nursery.cancel_scope.cancel()
    images = [i for i, what in enumerate(record) if what == "image"]
    assert len(images) == len(ids)
    # The probe ticks once per scheduling pass; one image per pass means at least a tick in
    # every pass between the first image's and the last one's.
    ticks_between = record[images[0] : images[-1]].count("tick")
    assert ticks_between >= len(ids) - 2, " ".join(what[0] for what in record)
