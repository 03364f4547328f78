"""The one phone rule (``actors.normalise_phone``): the union of the two old rules' cases, and
tests that document what was decided where they disagreed."""

from __future__ import annotations

import contextlib

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import MAX_PHONE_TEXT, InvalidPhone, find_phone, normalise_phone

#: Text → canonical form: every case of the two old rules (the web layer checks them too).
CANONICAL: list[tuple[str, str]] = [
    # both old rules
    ("+7 (900) 123-45-67", "79001234567"),
    ("79001234567", "79001234567"),
    ("+79001234567", "79001234567"),
    ("  +7 900 123.45.67 ", "79001234567"),
    # the old web rule: Russian trunk forms, 00 prefix, other countries
    ("8 900 123 45 67", "79001234567"),
    ("89001234567", "79001234567"),
    ("9001234567", "79001234567"),
    ("+44 20 7946 0958", "442079460958"),
    ("0044 20 7946 0958", "442079460958"),
    ("+1 (415) 555-2671", "14155552671"),
    ("+380 44 123 4567", "380441234567"),
    # bare digits that are not a Russian national form are international already
    ("442079460958", "442079460958"),
    # an Italian number keeps its leading zero after the country code
    ("+39 06 1234 5678", "390612345678"),
]

#: Text refused by the rule: every refusal of the two old rules, and more.
REFUSED: list[str] = [
    # the old web rule's refusals
    "",
    "+",
    "12345",
    "+7 900",
    "7900123456789012",
    "+7 900 123 45 67 ext 2",
    "79001234567a",
    "7+9001234567",
    "++79001234567",
    "(900 123 45 67",
    "0123456789",
    "7900\u0661234567",
    "x" * 100,
    # the old WhatsApp rule's refusals
    "123",
    "0790012345",
    "abc",
    "1" * 16,
    # a country code nobody has
    "+999 123 456 789",
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_canonical_forms(text: str, canonical: str) -> None:
    assert normalise_phone(text) == canonical


@pytest.mark.parametrize("text", REFUSED)
def test_refused(text: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalise_phone(text)
    assert info.value.reason
    if len(text) > 3:
        assert text not in str(info.value)  # personal data stays out of messages and logs


def test_text_longer_than_the_limit_is_refused_even_when_the_number_is_fine() -> None:
    padded = "+7 900 123 45 67".ljust(MAX_PHONE_TEXT)
    assert normalise_phone(padded) == "79001234567"
    with pytest.raises(InvalidPhone):
        normalise_phone(padded + " ")


def test_whatsapp_ids_from_other_countries_are_read_as_international() -> None:
    # Decided: with region=None (WhatsApp ids, always international) a Vietnamese mobile stays
    # Vietnamese; read as a Russian form (the default, for people typing) 8 is the trunk prefix.
    assert normalise_phone("84912345678", region=None) == "84912345678"
    assert normalise_phone("84912345678") == "74912345678"
    assert normalise_phone("9613123456", region=None) == "9613123456"
    assert normalise_phone("+84 91 234 56 78") == "84912345678"


def test_old_whatsapp_rule_kept_trunk_forms_now_refused_as_ids() -> None:
    # Decided: the old WhatsApp rule passed 89001234567 through unchanged (country code 8 does
    # not exist); as an id it is now refused, as a typed phone it is the Russian 79001234567.
    with pytest.raises(InvalidPhone):
        normalise_phone("89001234567", region=None)
    assert normalise_phone("89001234567") == "79001234567"


def test_short_national_plans_are_accepted() -> None:
    # Decided: the old web rule wanted 10-15 digits, the old WhatsApp rule 7-15; the numbering
    # plan decides now, so Niue's 4-digit numbers (7 digits with +683) work on WhatsApp.
    assert normalise_phone("+683 4002") == "6834002"
    with pytest.raises(InvalidPhone):
        normalise_phone("+7 123 45 67")


def test_possible_not_valid_is_the_check() -> None:
    # An unallocated Russian range of the right length passes (WhatsApp refuses it itself);
    # a stale copy of the allocation tables must never refuse a client's real number.
    number = phonenumbers.parse("+70000000000")
    assert not phonenumbers.is_valid_number(number)
    assert normalise_phone("+7 000 000 00 00") == "70000000000"


@given(st.text(alphabet="+0123456789 ()-.", max_size=40))
def test_result_is_canonical_and_a_fixed_point_with_plus(text: str) -> None:
    try:
        result = normalise_phone(text)
    except InvalidPhone:
        return
    assert result.isascii() and result.isdigit() and len(result) <= 15
    assert not result.startswith("0")
    assert normalise_phone("+" + result) == result
    assert normalise_phone(result, region=None) == result
    assert phonenumbers.is_possible_number(phonenumbers.parse("+" + result))


@given(st.from_regex(r"9[0-9]{9}", fullmatch=True))
def test_russian_mobile_forms_agree(ten: str) -> None:
    expected = "7" + ten
    for form in (f"+7 ({ten[:3]}) {ten[3:6]}-{ten[6:8]}-{ten[8:]}", "8" + ten, expected, ten):
        assert normalise_phone(form) == expected


@given(st.text(max_size=60))
def test_never_raises_anything_but_invalid_phone(text: str) -> None:
    with contextlib.suppress(InvalidPhone):
        normalise_phone(text)
    found = find_phone(text)
    assert found is None or found.isdigit()


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("+7 (495) 123-45-67 доб. 89", "74951234567"),
        ("8 (495) 123-45-67, 8 916 000 11 22", "74951234567"),
        ("+7 495 123-45-67", "74951234567"),
        ("звоните: +44 20 7946 0958", "442079460958"),
        ("нет телефона", None),
        ("", None),
    ],
)
def test_find_phone_in_free_text(text: str, canonical: str | None) -> None:
    assert find_phone(text) == canonical
