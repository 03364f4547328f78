"""QR strings as PNG data URLs (``qr_image`` in ``qr-update`` and ``GET /marketplace/qr``)."""

from __future__ import annotations

import base64
import io

import qrcode
import qrcode.constants
from PIL import Image


def qr_png_data_url(text: str, *, box_size: int = 6, border: int = 2) -> str:
    """Encode ``text`` as a QR code and return ``data:image/png;base64,...``.

    Generated once per rotation by the company actor and shared by every viewer, so the cost
    (about 3 ms) does not grow with the number of viewers.
    """
    # A fixed mask pattern skips trying all eight (``make(fit=True)`` scores each one), which
    # is 5x faster; any mask decodes, the chosen one only tunes contrast for dirty prints.
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_L,
        box_size=box_size,
        border=border,
        mask_pattern=0,
    )
    code.add_data(text)
    code.make(fit=True)
    # One pixel per module, scaled up: the same PNG bytes as qrcode's own PIL image, without
    # drawing a rectangle per dark module (a third of the cost).
    side = code.modules_count + 2 * border
    row_bytes = (side + 7) // 8
    tail = "1" * border + "0" * (row_bytes * 8 - side)  # light border, then row padding
    head = "1" * border
    light = int("1" * side + tail[border:], 2).to_bytes(row_bytes, "big")
    rows = [light] * border
    for modules in code.modules:
        bits = head + "".join("0" if dark else "1" for dark in modules) + tail
        rows.append(int(bits, 2).to_bytes(row_bytes, "big"))
    rows += [light] * border
    image = Image.frombytes("1", (side, side), b"".join(rows))
    image = image.resize((side * box_size, side * box_size), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
