"""``qr_png_data_url``: the PNG shows exactly the QR code of the text, with a light border."""

from __future__ import annotations

import base64
import io

import pytest
import qrcode
import qrcode.constants
import trio
import zxingcpp
from PIL import Image
from trio.testing import MockClock

import actors.company._actor as company_actor
from actors import Node
from actors.company import messages as m
from actors.company import qr_png_data_url
from actors.whatsapp import fake_qr_code

from .conftest import RecordingViewer


def decode(url: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :])))


def qrcode_png(text: str, box_size: int, border: int) -> bytes:
    """The same code drawn by qrcode's own PIL image factory (the slower reference)."""
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_L,
        box_size=box_size,
        border=border,
        mask_pattern=0,
    )
    code.add_data(text)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image(fill_color="black", back_color="white").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(("box_size", "border"), [(6, 2), (10, 4), (1, 0), (3, 1)])
@pytest.mark.parametrize("text", [fake_qr_code(), "2@x", "a" * 300], ids=["wa", "short", "long"])
def test_image_is_the_code_of_the_text(text: str, box_size: int, border: int) -> None:
    url = qr_png_data_url(text, box_size=box_size, border=border)
    assert base64.b64decode(url.split(",", 1)[1]) == qrcode_png(text, box_size, border)
    image = decode(url).convert("L")
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_L, mask_pattern=0)
    code.add_data(text)
    code.make(fit=True)
    side = code.modules_count + 2 * border
    assert image.size == (side * box_size, side * box_size)
    pixels = image.load()
    assert pixels is not None
    for row in range(side):
        for col in range(side):
            inside = border <= row < side - border and border <= col < side - border
            dark = inside and code.modules[row - border][col - border]
            # the centre pixel of every box: black for a dark module, white elsewhere
            value = pixels[col * box_size + box_size // 2, row * box_size + box_size // 2]
            assert value == (0 if dark else 255), (row, col)


@pytest.mark.parametrize(("box_size", "border"), [(6, 2), (3, 1)])
@pytest.mark.parametrize(
    "text",
    [
        *(fake_qr_code() for _ in range(3)),
        "2@x",
        "Салон красоты «Лилия», запись: +7 900 123-45-67",
        "ё",
        "https://wa.me/79001234567?text=Записаться%20на%20стрижку",
        "a" * 300,
    ],
    ids=["wa-1", "wa-2", "wa-3", "short", "cyrillic", "one-cyrillic", "url", "long"],
)
def test_a_reader_decodes_the_image_to_the_text(text: str, box_size: int, border: int) -> None:
    """What a phone scans: an independent decoder (ZXing) reads the PNG back to the very
    string, byte for byte as UTF-8 (the fixed mask and the hand-built pixels keep it valid)."""
    results = zxingcpp.read_barcodes(
        decode(qr_png_data_url(text, box_size=box_size, border=border))
    )
    assert [r.format for r in results] == [zxingcpp.BarcodeFormat.QRCode]
    assert results[0].text == text
    assert results[0].bytes == text.encode("utf-8")


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
