"""``qr_png_data_url``: the PNG shows exactly the QR code of the text, with a light border;
the fast encoder behind it agrees with ``qrcode`` module for module."""

from __future__ import annotations

import base64
import io
import random
import string

import pytest
import qrcode
import qrcode.constants
import qrcode.util
import trio
import zxingcpp
from PIL import Image
from trio.testing import MockClock

import actors.company._actor as company_actor
from actors import Node
from actors.company import messages as m
from actors.company import qr_png_data_url
from actors.company._qr_matrix import QrTooLong, qr_symbol
from actors.whatsapp import fake_qr_code

from .conftest import RecordingViewer


def decode(url: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :])))


def reference_modules(text: str) -> list[list[bool]]:
    """The same symbol built by ``qrcode`` itself, bit by bit (the slow reference): byte mode,
    level L, mask 0, smallest version that fits."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_L, mask_pattern=0)
    code.add_data(qrcode.util.QRData(text.encode("utf-8"), mode=qrcode.util.MODE_8BIT_BYTE))
    code.make(fit=True)
    return [[bool(dark) for dark in row] for row in code.modules]


def longest_text_of_version(version: int) -> int:
    """How many bytes version ``version`` holds at level L in byte mode."""
    count_bits = 8 if version < 10 else 16
    return (
        qrcode.util.BIT_LIMIT_TABLE[qrcode.constants.ERROR_CORRECT_L][version] - 4 - count_bits
    ) // 8


@pytest.mark.parametrize("version", range(1, 41))
def test_every_version_matches_qrcode_module_for_module(version: int) -> None:
    """The table-driven encoder and ``qrcode`` agree on every module, for the fullest text of
    each version (all 40, so every block layout and version-information pattern) and for a
    text one byte longer, which must move to the next version."""
    rng = random.Random(version)
    longest = longest_text_of_version(version)
    for length in (longest, longest + 1) if version < 40 else (longest,):
        text = "".join(
            rng.choice(string.ascii_letters + string.digits + "+/=,@") for _ in range(length)
        )
        symbol = qr_symbol(text)
        expected = reference_modules(text)
        assert (
            len(symbol) == len(expected) == (version if length == longest else version + 1) * 4 + 17
        )
        assert symbol.astype(bool).tolist() == expected
        bordered = qr_symbol(text, border=3)
        assert bordered.shape == (len(expected) + 6, len(expected) + 6)
        assert (bordered[3:-3, 3:-3] == symbol).all()
        assert not bordered[:3].any() and not bordered[-3:].any()
        assert not bordered[:, :3].any() and not bordered[:, -3:].any()


def test_a_text_too_long_for_any_qr_code_is_refused() -> None:
    qr_symbol("a" * longest_text_of_version(40))
    with pytest.raises(QrTooLong):
        qr_symbol("a" * (longest_text_of_version(40) + 1))


@pytest.mark.parametrize(("box_size", "border"), [(0, 2), (6, -1)])
def test_an_impossible_image_size_is_refused(box_size: int, border: int) -> None:
    with pytest.raises(ValueError, match="box_size"):
        qr_png_data_url("2@x", box_size=box_size, border=border)


@pytest.mark.parametrize(("box_size", "border"), [(6, 2), (10, 4), (1, 0), (3, 1)])
@pytest.mark.parametrize("text", [fake_qr_code(), "2@x", "a" * 300], ids=["wa", "short", "long"])
def test_image_is_the_code_of_the_text(text: str, box_size: int, border: int) -> None:
    """Every pixel of the PNG: black inside a dark module, white in light modules and the
    border, at exactly box_size pixels per module."""
    image = decode(qr_png_data_url(text, box_size=box_size, border=border)).convert("L")
    expected = reference_modules(text)
    side = len(expected) + 2 * border
    assert image.size == (side * box_size, side * box_size)
    pixels = image.load()
    assert pixels is not None
    for y in range(side * box_size):
        row = y // box_size
        for x in range(side * box_size):
            col = x // box_size
            inside = border <= row < side - border and border <= col < side - border
            dark = inside and expected[row - border][col - border]
            assert pixels[x, y] == (0 if dark else 255), (x, y)


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
