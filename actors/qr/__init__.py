"""QR codes for the connect page: a WhatsApp linking code as a PNG data URL.

``qr_png_data_url`` draws the image the company actor sends with every ``qr-update`` (and
``GET /marketplace/qr`` serves); ``qr_symbol`` is the symbol itself, as a numpy array. The
encoder lays each QR version out once on top of ``qrcode``'s tables and pattern drawing
(``_matrix``: which of ``qrcode``'s internals, and how an upgrade is caught); the PNG writer
(``_png``) packs it into a 1-bit image by hand. Importing this package loads numpy and
``qrcode``: import it where images are made, never from pure decision modules.
"""

from ._errors import QrcodeIncompatible as QrcodeIncompatible
from ._errors import QrTooLong as QrTooLong
from ._matrix import qr_symbol as qr_symbol
from ._png import qr_png_data_url as qr_png_data_url

__all__ = ["QrTooLong", "QrcodeIncompatible", "qr_png_data_url", "qr_symbol"]
