"""QR strings as PNG data URLs (``qr_image`` in ``qr-update`` and ``GET /marketplace/qr``)."""

from __future__ import annotations

import base64
import io

import qrcode
import qrcode.constants


def qr_png_data_url(text: str, *, box_size: int = 6, border: int = 2) -> str:
    """Encode ``text`` as a QR code and return ``data:image/png;base64,...``.

    Generated once per rotation by the company actor and shared by every viewer, so the cost
    (about 2 ms) does not grow with the number of viewers.
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
    image = code.make_image(fill_color="black", back_color="white")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
