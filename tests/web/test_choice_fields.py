"""The field rules for booleans, fixed choices, bounded integers and simulated messages' text:
each accepts what its JSON schema allows (booleans, choices and integers exactly, bar floats
like ``5.0`` as for ids)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from web._errors import BadRequest
from web._message_fields import CAPTION, MAX_MESSAGE_TEXT, MESSAGE_TEXT
from web._validation import BOOLEAN, FieldRule, integer_in, one_of

JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=5,
)
MODE = one_of("assistant", "handoff")
MINUTES = integer_in(1, 10_080)


def accepts(rule: FieldRule[Any], value: object) -> bool:
    try:
        rule(value, "field")
    except BadRequest:
        return False
    return True


def schema_allows(rule: FieldRule[Any], value: object) -> bool:
    return jsonschema.Draft202012Validator(dict(rule.schema)).is_valid(value)


@pytest.mark.parametrize(
    "rule",
    [BOOLEAN, MODE, MINUTES, MESSAGE_TEXT, CAPTION],
    ids=["bool", "choice", "int", "message", "caption"],
)
def test_the_schemas_are_valid_json_schemas(rule: FieldRule[Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(dict(rule.schema))


@given(JSON_VALUES)
def test_boolean_draws_the_schemas_line(value: object) -> None:
    assert accepts(BOOLEAN, value) == schema_allows(BOOLEAN, value)


@given(st.one_of(JSON_VALUES, st.sampled_from(["assistant", "handoff", "Handoff", " handoff"])))
def test_a_choice_draws_the_schemas_line(value: object) -> None:
    assert accepts(MODE, value) == schema_allows(MODE, value)


@given(st.one_of(JSON_VALUES, st.integers(min_value=-5, max_value=10_090)))
def test_a_bounded_integer_draws_the_schemas_line_except_integral_floats(value: object) -> None:
    if isinstance(value, float) and value.is_integer():
        assert not accepts(MINUTES, value)
        return
    assert accepts(MINUTES, value) == schema_allows(MINUTES, value)


@pytest.mark.parametrize(
    ("rule", "good", "bad"),
    [
        (BOOLEAN, [True, False], [1, 0, "true", None, []]),
        (MODE, ["assistant", "handoff"], ["opted_out", "ASSISTANT", "", 1, None]),
        (MINUTES, [1, 60, 10_080], [0, -1, 10_081, 5.0, True, "60", None]),
    ],
    ids=["bool", "choice", "int"],
)
def test_the_rules_on_plain_cases(rule: FieldRule[Any], good: list[Any], bad: list[Any]) -> None:
    assert [rule(value, "field") for value in good] == good
    for value in bad:
        with pytest.raises(BadRequest) as caught:
            rule(value, "field")
        assert caught.value.code == "invalid_field"
        assert "field" in caught.value.message


@given(st.one_of(JSON_VALUES, st.text(max_size=MAX_MESSAGE_TEXT + 5)))
def test_every_accepted_message_text_or_caption_fits_the_schema(value: object) -> None:
    for rule in (MESSAGE_TEXT, CAPTION):
        if accepts(rule, value):
            assert schema_allows(rule, value), value


def test_a_message_text_may_be_long_but_not_endless() -> None:
    longest = "ы" * MAX_MESSAGE_TEXT
    assert MESSAGE_TEXT(longest, "text") == longest
    assert CAPTION("", "text") == ""
    for rule in (MESSAGE_TEXT, CAPTION):
        with pytest.raises(BadRequest):
            rule(longest + "ы", "text")
    with pytest.raises(BadRequest):
        MESSAGE_TEXT("  ", "text")
