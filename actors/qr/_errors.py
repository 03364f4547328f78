"""The QR encoder's errors::

ValueError ── QrTooLong            the text does not fit in any QR symbol
ImportError ── QrcodeIncompatible  the installed qrcode lacks an internal we rely on
"""

from __future__ import annotations

import importlib.metadata


class QrTooLong(ValueError):
    """The text does not fit in the largest QR symbol (version 40, level L)."""


class QrcodeIncompatible(ImportError):
    """The installed ``qrcode`` lacks an internal the encoder relies on, or it changed shape
    (see :mod:`actors.qr._matrix`); raised when the encoder is imported."""

    def __init__(self, internal: str, problem: str) -> None:
        super().__init__(
            f"qrcode {_qrcode_version()}: {internal} {problem}; the fast QR encoder "
            "(actors/qr/_matrix.py) relies on it: pin qrcode>=8,<9 or update the encoder"
        )
        self.internal = internal


def _qrcode_version() -> str:
    try:
        return importlib.metadata.version("qrcode")
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"
