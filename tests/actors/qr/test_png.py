"""``qr_png_data_url``: the PNG shows exactly the QR code of the text, with a light border,
and a QR reader decodes it back to the text."""

from __future__ import annotations

import base64
import io

import pytest
import zxingcpp
from PIL import Image

from actors.qr import qr_png_data_url
from actors.whatsapp import fake_qr_code

from .test_matrix import reference_modules


def decode(url: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :])))


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
    string, byte for byte as UTF-8 (the fixed mask and the hand-built pixels keep it valid).
    Only QR codes are looked for: ZXing also finds a spurious 1-D barcode (ITF, Codabar) in
    about one image in 700 (random codes), which no phone scanning for QR codes would."""
    results = zxingcpp.read_barcodes(
        decode(qr_png_data_url(text, box_size=box_size, border=border)),
        formats=zxingcpp.BarcodeFormat.QRCode,
    )
    assert [r.format for r in results] == [zxingcpp.BarcodeFormat.QRCode]
    assert results[0].text == text
    assert results[0].bytes == text.encode("utf-8")
