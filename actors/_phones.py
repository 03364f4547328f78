"""Phone numbers: one rule for every phone the service reads, on Google's ``phonenumbers``.

The canonical form is what the seeds store and what WhatsApp JIDs carry: the E.164 number
without its ``+`` — digits only, country code first (``79001234567``, ``442079460958``).

What is read (:func:`normalise_phone`):

* text of at most :data:`MAX_PHONE_TEXT` characters: ASCII digits, spaces, ``-``, ``.``,
  balanced parentheses, and ``+`` only first (surrounding whitespace is ignored); no letters,
  so no extensions ("доб. 89", "ext 2");
* ``+`` or ``00`` first: an international number;
* otherwise, with a ``region`` (``"RU"`` by default; web forms, YClients), the Russian trunk
  rules of the old web validator: ``8`` + 10 digits (``89001234567``) and 10 digits starting
  with ``9`` (``9001234567``, a mobile without its country code) are national numbers of
  that region; any other digits are already international (``79001234567``);
* with ``region=None`` (WhatsApp ids, which are always international) the digits are taken
  as international as they are, so a Vietnamese ``84912345678`` stays Vietnamese.

Why :data:`~phonenumbers.ValidationResult.IS_POSSIBLE` and not ``is_valid_number``: validity
checks the number against each country's allocated ranges, which change every month; a stale
copy of that table would refuse a real client's new number, and the assistant could then not
answer them. Possibility checks only the lengths the country's numbering plan allows, which
rarely change, and still refuses unknown country codes, too short and too long numbers. A
possible but unallocated number is refused by WhatsApp itself, with its own error.

Errors: :class:`InvalidPhone` (a ``ValueError``), whose message never repeats the input (it is
personal data and may reach logs).
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

__all__ = [
    "DEFAULT_REGION",
    "MAX_PHONE_TEXT",
    "PHONE_TEXT_PATTERN",
    "InvalidPhone",
    "find_phone",
    "normalise_phone",
]

#: The region whose national forms (``8 900 …``, ``900 …``) are understood without ``+``.
DEFAULT_REGION = "RU"
#: The longest phone text read: room for any E.164 number written with separators.
MAX_PHONE_TEXT = 32
#: What a phone text may look like (after surrounding whitespace); ASCII digits only.
PHONE_TEXT_PATTERN = r"\+?[0-9 ().\-]+"

_PHONE_TEXT = re.compile(PHONE_TEXT_PATTERN)
_NOT_DIGIT = re.compile(r"[^0-9]")


class InvalidPhone(ValueError):
    """The text is not a phone number this service can use; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"not a phone number: {reason}")


def _national(digits: str) -> bool:
    """Whether bare ``digits`` follow the trunk rules of a national number (see the module)."""
    return (len(digits) == 11 and digits.startswith("8")) or (
        len(digits) == 10 and digits.startswith("9")
    )


def _canonical(number: phonenumbers.PhoneNumber) -> str:
    if phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
        raise InvalidPhone("not a possible length for its country")
    # E.164 keeps an Italian leading zero that ``national_number`` (an int) would drop.
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)[1:]


def normalise_phone(text: str, *, region: str | None = DEFAULT_REGION) -> str:
    """``text`` in the canonical form (``+7 (900) 123-45-67`` → ``79001234567``).

    ``region`` names the country whose national forms are read without ``+`` (``"RU"``:
    ``8 900 123 45 67`` and ``900 123 45 67``); ``None`` reads bare digits as international,
    for WhatsApp ids. Raises :class:`InvalidPhone` for anything else (see the module).
    """
    if len(text) > MAX_PHONE_TEXT:
        raise InvalidPhone(f"longer than {MAX_PHONE_TEXT} characters")
    stripped = text.strip()
    if not stripped:
        raise InvalidPhone("empty")
    if not _PHONE_TEXT.fullmatch(stripped) or stripped.count("(") != stripped.count(")"):
        raise InvalidPhone("only digits, spaces, ( ) - . and a leading + are allowed")
    digits = _NOT_DIGIT.sub("", stripped)
    if stripped.startswith("+"):
        candidate, parse_region = "+" + digits, None
    elif digits.startswith("00"):
        candidate, parse_region = "+" + digits[2:], None
    elif region is not None and _national(digits):
        candidate, parse_region = digits, region
    else:
        candidate, parse_region = "+" + digits, None
    try:
        number = phonenumbers.parse(candidate, parse_region)
    except NumberParseException as exc:
        raise InvalidPhone("no known country code") from exc
    return _canonical(number)


def find_phone(text: str, *, region: str = DEFAULT_REGION) -> str | None:
    """The phone number in free ``text``, canonical, or ``None`` when there is none.

    For phones people typed into other systems (a salon's or a client's phone in YClients may
    read ``+7 (495) 123-45-67 доб. 89`` or list two numbers). Text that is a phone by
    :func:`normalise_phone` gives the same answer; otherwise the first number written in it
    counts and the extension and the rest are dropped. National forms are read in ``region``;
    the number must be possible, as above.
    """
    try:
        return normalise_phone(text, region=region)
    except InvalidPhone:
        pass
    matches = phonenumbers.PhoneNumberMatcher(
        text[:1000], region, leniency=phonenumbers.Leniency.POSSIBLE
    )
    for match in matches:
        try:
            return _canonical(match.number)
        except InvalidPhone:
            continue
    return None
