"""QR symbols encoded fast: byte mode, level L, mask 0, with the work done once per version.

A linking round shows a new code every 20 s to every salon linking, and a burst of salons can
rotate in the same instant; ``qrcode`` builds a symbol bit by bit in Python (~3 ms). Here the
per-version parts (function patterns and format information drawn by ``qrcode`` itself, which
module holds which bit, the mask, Reed-Solomon tables) are laid out once, so a code costs a
handful of array operations. The tests hold the result equal, module for module, to ``qrcode``.

What this relies on of ``qrcode`` (8.x; pinned ``<9`` in ``pyproject.toml``) beyond its
documented API, so that an upgrade is checked rather than trusted:

* tables: ``qrcode.constants.ERROR_CORRECT_L``; ``qrcode.util.BIT_LIMIT_TABLE[level][version]``
  (data bits per version, 41 entries per level, index 0 unused);
* Reed-Solomon: ``qrcode.base.rs_blocks(version, error_correction)`` (blocks with
  ``data_count`` and ``total_count``), and GF(256) ``qrcode.base.gexp(n)`` / ``glog(n)``;
* masking: ``qrcode.util.mask_func(pattern)`` → ``(row, col) -> bool``;
* pattern drawing, on a ``qrcode.QRCode(version=, error_correction=, mask_pattern=)`` whose
  ``modules_count`` and ``modules`` we set ourselves: ``setup_position_probe_pattern(row,
  col)``, ``setup_position_adjust_pattern()``, ``setup_timing_pattern()``,
  ``setup_type_info(test, mask_pattern)`` and ``setup_type_number(test)``.

:func:`check_qrcode_internals` runs at import: a missing name, or one that can no longer be
called the way this module calls it, raises :class:`QrcodeIncompatible` there (so the process
fails at start, naming the part, instead of on a salon's first QR code). Changed *values* are
caught by ``tests/actors/qr/``: the internals' known values and the module-for-module
comparison with ``qrcode``'s own encoder.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._errors import QrcodeIncompatible, QrTooLong

try:
    import qrcode
    import qrcode.base
    import qrcode.constants
    import qrcode.util
except ImportError as exc:
    raise QrcodeIncompatible("a module of qrcode", f"cannot be imported ({exc})") from exc

#: Each internal, by its path under ``qrcode``, with the arguments this module calls it with
#: (``None``: a value, not called). Methods are checked unbound, ``self`` first.
_INTERNALS: dict[str, tuple[tuple[Any, ...], dict[str, Any]] | None] = {
    "constants.ERROR_CORRECT_L": None,
    "util.BIT_LIMIT_TABLE": None,
    "util.mask_func": ((0,), {}),
    "base.rs_blocks": ((1, 1), {}),
    "base.gexp": ((0,), {}),
    "base.glog": ((1,), {}),
    "QRCode": ((), {"version": 1, "error_correction": 1, "mask_pattern": 0}),
    "QRCode.setup_position_probe_pattern": ((None, 0, 0), {}),
    "QRCode.setup_position_adjust_pattern": ((None,), {}),
    "QRCode.setup_timing_pattern": ((None,), {}),
    "QRCode.setup_type_info": ((None, False, 0), {}),
    "QRCode.setup_type_number": ((None, False), {}),
}


def check_qrcode_internals() -> None:
    """Raise :class:`QrcodeIncompatible` unless every internal listed in the module docstring
    exists and accepts the arguments this module passes (run once, at import)."""
    for path, call in _INTERNALS.items():
        name = f"qrcode.{path}"
        target: Any = qrcode
        for part in path.split("."):
            if not hasattr(target, part):
                raise QrcodeIncompatible(name, "is missing")
            target = getattr(target, part)
        if call is None:
            continue
        if not callable(target):
            raise QrcodeIncompatible(name, "is not callable")
        args, kwargs = call
        try:
            signature = inspect.signature(target)
        except ValueError:  # no signature to inspect (a builtin): only a call would tell
            continue
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise QrcodeIncompatible(name, f"takes other arguments now ({exc})") from None
    try:
        versions = len(qrcode.util.BIT_LIMIT_TABLE[qrcode.constants.ERROR_CORRECT_L])
    except (IndexError, KeyError, TypeError):
        versions = -1
    if versions != 41:  # index 0 unused, then versions 1..40
        raise QrcodeIncompatible("qrcode.util.BIT_LIMIT_TABLE", "is not 41 entries per level")


check_qrcode_internals()

_LEVEL = qrcode.constants.ERROR_CORRECT_L
_MASK = 0
_BYTE_MODE = 0b0100
_PAD_BYTES = b"\xec\x11"
_LIGHT_AND_DARK = np.array([0, 1], dtype=np.uint8)  # the two constant bits after the stream

Symbol = NDArray[np.uint8]


@dataclass(frozen=True, slots=True, eq=False)
class _Layout:
    """Everything about one QR version (and quiet-zone width) that does not depend on the text."""

    side: int  # modules across, quiet zone included
    count_bits: int
    data_codewords: int
    # For each data codeword, how far it is from the end of its block: the row of
    # ``remainders`` that holds its share of its block's error-correction codewords.
    distance: NDArray[np.intp]
    block_starts: NDArray[np.intp]  # the first data codeword of each block
    remainders: NDArray[np.uint8]  # [distance, byte value] -> the EC codewords it contributes
    # For each module, row by row: where its bit is in the unpacked data codewords followed by
    # the unpacked EC codewords (blocks one after another) and then a constant 0 and 1.
    placement: NDArray[np.intp]
    mask: NDArray[np.uint8]  # 1 where mask 0 flips a data module, row by row


def qr_symbol(text: str, *, border: int = 0) -> Symbol:
    """The QR symbol of ``text`` (UTF-8, byte mode, level L, mask 0, smallest version) with
    ``border`` light modules around it: a square array, 1 for a dark module."""
    data = text.encode("utf-8")
    layout = _layout(_version_for(len(data)), border)
    codewords = np.frombuffer(_data_codewords(data, layout), dtype=np.uint8)
    contributions = layout.remainders[layout.distance, codewords]
    ec = np.bitwise_xor.reduceat(contributions, layout.block_starts, axis=0)
    stream = np.concatenate((np.unpackbits(codewords), np.unpackbits(ec), _LIGHT_AND_DARK))
    return (stream[layout.placement] ^ layout.mask).reshape(layout.side, layout.side)


def _version_for(length: int) -> int:
    """The smallest version whose level-L capacity holds ``length`` bytes in byte mode."""
    limits = qrcode.util.BIT_LIMIT_TABLE[_LEVEL]
    for version in range(1, 41):
        count_bits = 8 if version < 10 else 16
        if length < (1 << count_bits) and 4 + count_bits + 8 * length <= limits[version]:
            return version
    raise QrTooLong(f"{length} bytes do not fit in a QR code")


def _data_codewords(data: bytes, layout: _Layout) -> bytes:
    """Mode, count and data bits, the terminator, then pad bytes up to the capacity."""
    bit_count = 4 + layout.count_bits + 8 * len(data)
    value = (_BYTE_MODE << layout.count_bits | len(data)) << (8 * len(data))
    value |= int.from_bytes(data, "big")
    terminator = min(4, 8 * layout.data_codewords - bit_count)
    bit_count += terminator
    align = -bit_count % 8
    value <<= terminator + align
    filled = value.to_bytes((bit_count + align) // 8, "big")
    missing = layout.data_codewords - len(filled)
    return filled + (_PAD_BYTES * (missing // 2 + 1))[:missing]


@functools.cache
def _layout(version: int, border: int) -> _Layout:
    """Lay out ``version`` with a quiet zone of ``border`` modules (once per process)."""
    blocks = [block.data_count for block in qrcode.base.rs_blocks(version, _LEVEL)]
    ec_counts = {
        block.total_count - block.data_count for block in qrcode.base.rs_blocks(version, _LEVEL)
    }
    assert len(ec_counts) == 1, "every block of a QR version has the same EC length"
    ec_count = ec_counts.pop()
    data_total = sum(blocks)
    starts = [sum(blocks[:index]) for index in range(len(blocks))]
    # The stored codeword order: the first data codeword of every block, the second, ...;
    # then the EC codewords the same way. Entries are positions in data + EC (block by block).
    order = [
        start + index
        for index in range(max(blocks))
        for start, size in zip(starts, blocks, strict=True)
        if index < size
    ]
    order += [
        data_total + block * ec_count + index
        for index in range(ec_count)
        for block in range(len(blocks))
    ]
    stream_bits = 8 * len(order)
    light, dark = stream_bits, stream_bits + 1
    functions = _function_patterns(version)
    size = len(functions)
    side = size + 2 * border
    bit_of = {cell: n for n, cell in enumerate(_placement_order(functions))}
    flips = qrcode.util.mask_func(_MASK)
    placement = np.full((side, side), light, dtype=np.intp)
    mask = np.zeros((side, side), dtype=np.uint8)
    for row in range(size):
        for col in range(size):
            fixed = functions[row][col]
            if fixed is not None:
                placement[row + border, col + border] = dark if fixed else light
                continue
            n = bit_of[row, col]  # the n-th bit of the stored stream (remainder bits are 0)
            if n < stream_bits:
                placement[row + border, col + border] = 8 * order[n // 8] + n % 8
            mask[row + border, col + border] = 1 if flips(row, col) else 0
    return _Layout(
        side=side,
        count_bits=8 if version < 10 else 16,
        data_codewords=data_total,
        distance=np.array([size - 1 - i for size in blocks for i in range(size)], dtype=np.intp),
        block_starts=np.array(starts, dtype=np.intp),
        remainders=_remainder_table(ec_count, max(blocks)),
        placement=placement.ravel(),
        mask=mask.ravel(),
    )


@functools.cache
def _function_patterns(version: int) -> list[list[bool | None]]:
    """The symbol's fixed modules (finder, alignment and timing patterns, format information
    for level L and mask 0, version information) as ``qrcode`` draws them; ``None`` is free."""
    code = qrcode.QRCode(version=version, error_correction=_LEVEL, mask_pattern=_MASK)
    size = code.modules_count = version * 4 + 17
    code.modules = [[None] * size for _ in range(size)]
    code.setup_position_probe_pattern(0, 0)
    code.setup_position_probe_pattern(size - 7, 0)
    code.setup_position_probe_pattern(0, size - 7)
    code.setup_position_adjust_pattern()
    code.setup_timing_pattern()
    code.setup_type_info(False, _MASK)
    if version >= 7:
        code.setup_type_number(False)
    modules: list[list[bool | None]] = code.modules
    return modules


def _placement_order(modules: list[list[bool | None]]) -> list[tuple[int, int]]:
    """The free modules in the order codeword bits fill them: two-column strips from the
    right edge, zigzagging up and down, skipping the vertical timing column."""
    size = len(modules)
    order: list[tuple[int, int]] = []
    upward = True
    col = size - 1
    while col > 0:
        if col == 6:
            col -= 1
        rows = range(size - 1, -1, -1) if upward else range(size)
        for row in rows:
            for c in (col, col - 1):
                if modules[row][c] is None:
                    order.append((row, c))
        upward = not upward
        col -= 2
    return order


@functools.cache
def _remainder_table(ec_count: int, longest_block: int) -> NDArray[np.uint8]:
    """``[d, v]``: the EC codewords that data byte ``v`` contributes when ``d`` bytes follow
    it in its block. Reed-Solomon is linear, so a block's EC codewords are the XOR of its
    bytes' contributions (the polynomial division done once per table, not once per code)."""
    generator = [1]  # coefficients, highest degree first
    for i in range(ec_count):
        factor = qrcode.base.gexp(i)
        product = [*generator, 0]
        for j, coefficient in enumerate(generator):
            product[j + 1] ^= _gf_multiply(coefficient, factor)
        generator = product
    # One step of the division: the remainder after feeding one byte with lead ``v``.
    first = []
    for lead in range(256):
        row = 0
        for coefficient in generator[1:]:
            row = (row << 8) | _gf_multiply(coefficient, lead)
        first.append(row)
    ec_bits = 8 * ec_count
    full, top = (1 << ec_bits) - 1, ec_bits - 8
    rows = [first]
    for _ in range(1, longest_block):  # shift each remainder through one more zero byte
        rows.append([((r << 8) & full) ^ first[r >> top] for r in rows[-1]])
    table = b"".join(r.to_bytes(ec_count, "big") for row in rows for r in row)
    return np.frombuffer(table, dtype=np.uint8).reshape(longest_block, 256, ec_count)


def _gf_multiply(a: int, b: int) -> int:
    """Multiplication in GF(256) with QR's polynomial, through ``qrcode``'s log tables."""
    if a == 0 or b == 0:
        return 0
    return int(qrcode.base.gexp(qrcode.base.glog(a) + qrcode.base.glog(b)))
