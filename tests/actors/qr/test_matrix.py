"""``qr_symbol``: the table-driven encoder agrees with ``qrcode`` module for module, and a
``qrcode`` whose internals changed fails here (or at import), never on a salon's QR code."""

from __future__ import annotations

import functools
import inspect
import random
import string
import subprocess
import sys
from collections import Counter

import pytest
import qrcode
import qrcode.base
import qrcode.constants
import qrcode.util

from actors.qr import QrcodeIncompatible, QrTooLong, qr_symbol
from actors.qr._matrix import check_qrcode_internals

L = qrcode.constants.ERROR_CORRECT_L


def reference_modules(text: str) -> list[list[bool]]:
    """The same symbol built by ``qrcode`` itself, bit by bit (the slow reference): byte mode,
    level L, mask 0, smallest version that fits."""
    code = qrcode.QRCode(error_correction=L, mask_pattern=0)
    code.add_data(qrcode.util.QRData(text.encode("utf-8"), mode=qrcode.util.MODE_8BIT_BYTE))
    code.make(fit=True)
    return [[bool(dark) for dark in row] for row in code.modules]


def longest_text_of_version(version: int) -> int:
    """How many bytes version ``version`` holds at level L in byte mode."""
    count_bits = 8 if version < 10 else 16
    return (qrcode.util.BIT_LIMIT_TABLE[L][version] - 4 - count_bits) // 8


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


# -- the internals of qrcode the encoder relies on (see actors/qr/_matrix.py) -------------


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_qrcode_internals_keep_their_signatures() -> None:
    """The names and parameters the encoder calls, as ``qrcode`` 8 defines them."""
    assert parameters(qrcode.base.rs_blocks) == ["version", "error_correction"]
    assert parameters(qrcode.base.gexp) == ["n"]
    assert parameters(qrcode.base.glog) == ["n"]
    assert parameters(qrcode.util.mask_func) == ["pattern"]
    assert {"version", "error_correction", "mask_pattern"} <= set(parameters(qrcode.QRCode))
    code = qrcode.QRCode
    assert parameters(code.setup_position_probe_pattern) == ["self", "row", "col"]
    assert parameters(code.setup_position_adjust_pattern) == ["self"]
    assert parameters(code.setup_timing_pattern) == ["self"]
    assert parameters(code.setup_type_info) == ["self", "test", "mask_pattern"]
    assert parameters(code.setup_type_number) == ["self", "test"]


def test_qrcode_internals_keep_their_values() -> None:
    """Capacity table, Reed-Solomon block layout, GF(256) tables and mask 0 as the QR
    standard (ISO/IEC 18004) gives them, read through the internals the encoder uses."""
    assert L == 1
    limits = qrcode.util.BIT_LIMIT_TABLE[L]
    assert len(limits) == 41
    assert (limits[1], limits[9], limits[10], limits[40]) == (152, 1856, 2192, 23648)
    blocks = Counter((b.total_count, b.data_count) for b in qrcode.base.rs_blocks(1, L))
    assert blocks == {(26, 19): 1}
    blocks = Counter((b.total_count, b.data_count) for b in qrcode.base.rs_blocks(40, L))
    assert blocks == {(148, 118): 19, (149, 119): 6}
    assert [qrcode.base.gexp(n) for n in range(10)] == [1, 2, 4, 8, 16, 32, 64, 128, 29, 58]
    assert [qrcode.base.glog(v) for v in (1, 2, 3, 29, 255)] == [0, 1, 25, 8, 175]
    flips = qrcode.util.mask_func(0)
    assert all(bool(flips(r, c)) == ((r + c) % 2 == 0) for r in range(5) for c in range(5))


def test_the_check_passes_on_the_installed_qrcode() -> None:
    check_qrcode_internals()


@pytest.mark.parametrize(
    "path",
    [
        "constants.ERROR_CORRECT_L",
        "util.BIT_LIMIT_TABLE",
        "util.mask_func",
        "base.rs_blocks",
        "base.gexp",
        "base.glog",
        "QRCode.setup_position_probe_pattern",
        "QRCode.setup_position_adjust_pattern",
        "QRCode.setup_timing_pattern",
        "QRCode.setup_type_info",
        "QRCode.setup_type_number",
    ],
)
def test_a_missing_internal_is_named(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    *owner_path, name = path.split(".")
    monkeypatch.delattr(functools.reduce(getattr, owner_path, qrcode), name)
    with pytest.raises(QrcodeIncompatible, match=rf"qrcode\.{path} is missing") as caught:
        check_qrcode_internals()
    assert caught.value.internal == f"qrcode.{path}"


def test_an_internal_called_otherwise_now_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def rs_blocks(version: int) -> list[object]:
        return []

    monkeypatch.setattr(qrcode.base, "rs_blocks", rs_blocks)
    with pytest.raises(QrcodeIncompatible, match="rs_blocks takes other arguments"):
        check_qrcode_internals()


def test_a_reshaped_capacity_table_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qrcode.util, "BIT_LIMIT_TABLE", [[0] * 40] * 4)
    with pytest.raises(QrcodeIncompatible, match="BIT_LIMIT_TABLE is not 41 entries"):
        check_qrcode_internals()


def test_importing_the_encoder_fails_at_once_on_an_incompatible_qrcode() -> None:
    """A process with such a ``qrcode`` stops at start, naming the part, the fix and the file."""
    code = "import qrcode.base; del qrcode.base.gexp; import actors.qr"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("actors.qr._errors.QrcodeIncompatible: qrcode 8.")
    assert "qrcode.base.gexp is missing" in last and "pin qrcode>=8,<9" in last
