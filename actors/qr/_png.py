"""QR strings as PNG data URLs (``qr_image`` in ``qr-update`` and ``GET /marketplace/qr``)."""

from __future__ import annotations

import base64
import functools
import struct
import zlib

import numpy as np

from ._matrix import qr_symbol

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FILTER_NONE, _FILTER_UP = 0, 2  # PNG scanline filter types
# Level 1: a third of the time of the default, for a PNG a fifth larger (~1.2 KB).
_COMPRESSION = 1


def qr_png_data_url(text: str, *, box_size: int = 6, border: int = 2) -> str:
    """Encode ``text`` as a QR code and return ``data:image/png;base64,...``: black modules
    of ``box_size`` pixels on white, with ``border`` light modules around.

    Generated once per rotation by the company actor and shared by every viewer, so the cost
    (a fraction of a millisecond) does not grow with the number of viewers.
    """
    if box_size < 1 or border < 0:
        raise ValueError("box_size must be at least 1 and border at least 0")
    light = qr_symbol(text, border=border) ^ 1  # a 1-bit grayscale PNG: a set bit is white
    width = len(light) * box_size
    # Every module box_size pixels wide, a row packed eight pixels to a byte (bits past the
    # width are padding PNG ignores). Each module row is box_size scanlines: the first stored
    # as is, the others with the "Up" filter (same as the line above), i.e. all zero bytes.
    packed = np.packbits(np.repeat(light, box_size, axis=1), axis=1)
    scanlines = np.zeros((len(packed), box_size, 1 + packed.shape[1]), dtype=np.uint8)
    scanlines[:, 0, 0] = _FILTER_NONE
    scanlines[:, 0, 1:] = packed
    scanlines[:, 1:, 0] = _FILTER_UP
    raw = scanlines.tobytes()
    png = b"".join(
        (
            _PNG_SIGNATURE,
            _header_chunk(width),
            _chunk(b"IDAT", zlib.compress(raw, _COMPRESSION)),
            _END_CHUNK,
        )
    )
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@functools.cache
def _header_chunk(width: int) -> bytes:
    """IHDR for a square, 1-bit grayscale, non-interlaced image."""
    return _chunk(b"IHDR", struct.pack(">IIBBBBB", width, width, 1, 0, 0, 0, 0))


def _chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body and the CRC of type and body."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


_END_CHUNK = _chunk(b"IEND", b"")
