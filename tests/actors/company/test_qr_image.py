"""``qr_png_data_url``: the PNG shows exactly the QR code of the text, with a light border."""

from __future__ import annotations

import base64
import io

import pytest
import qrcode
import qrcode.constants
from PIL import Image

from actors.company import qr_png_data_url
from actors.whatsapp import fake_qr_code


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
