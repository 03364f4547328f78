"""The OpenAPI field schemas and the validators agree: each body field's schema comes from the
validator's :class:`~web._validation.FieldRule`, every value a validator accepts is valid under
its schema, and the served document uses those schemas route by route."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import MAX_PHONE_TEXT
from storage import MAX_ID
from tests.web.conftest import WebHarness, register
from web._errors import BadRequest
from web._message_fields import CAPTION, KIND, MESSAGE_TEXT
from web._validation import BOOLEAN, EMAIL, ID, PHONE, TEXT, FieldRule, object_schema

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=5,
)
PHONE_LIKE = st.one_of(
    st.text(alphabet="+0123456789 ()-.", max_size=40),
    st.from_regex(r"\s*\+?[0-9 ()\-.]{0,36}\s*", fullmatch=True),
    st.integers(min_value=-(10**16), max_value=10**16),
)


def accepts(rule: FieldRule[Any], value: object) -> bool:
    try:
        rule(value, "field")
    except BadRequest:
        return False
    return True


def schema_allows(schema: Any, value: object) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(value)


@pytest.mark.parametrize("rule", [ID, PHONE, EMAIL, TEXT], ids=["id", "phone", "email", "text"])
def test_rule_schemas_are_valid_json_schemas(rule: FieldRule[Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(dict(rule.schema))


@given(st.one_of(JSON_VALUES, PHONE_LIKE))
def test_every_accepted_phone_fits_the_schema(value: object) -> None:
    if accepts(PHONE, value):
        assert schema_allows(PHONE.schema, value), value


@given(st.one_of(JSON_VALUES, st.integers(), st.from_regex(r"[0-9]{1,11}", fullmatch=True)))
def test_every_accepted_id_fits_the_schema(value: object) -> None:
    if accepts(ID, value):
        assert schema_allows(ID.schema, value), value


@given(st.one_of(JSON_VALUES, st.emails()))
def test_every_accepted_email_fits_the_schema(value: object) -> None:
    if accepts(EMAIL, value):
        assert schema_allows(EMAIL.schema, value), value


@given(JSON_VALUES)
def test_every_accepted_text_fits_the_schema(value: object) -> None:
    if accepts(TEXT, value):
        assert schema_allows(TEXT.schema, value), value


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("+7 (900) 123-45-67", True),
        (79001234567, True),
        ("+7 900 123 45 67".ljust(MAX_PHONE_TEXT), True),
        ("+7 900 123 45 67".ljust(MAX_PHONE_TEXT + 1), False),
        ("+7 900 123 45 67 ext 2", False),
        (0, False),
        (True, False),
        (["79001234567"], False),
    ],
)
def test_phone_schema_and_validator_draw_the_same_lines(value: object, allowed: bool) -> None:
    assert schema_allows(PHONE.schema, value) is allowed
    assert accepts(PHONE, value) is allowed


def test_integral_floats_are_refused_though_json_schema_calls_them_integers() -> None:
    # JSON Schema's "integer" includes 7.9e10 (no fraction); the validators refuse every float,
    # as they always did (a phone or an id is never computed). Documented on FieldRule.
    assert schema_allows(PHONE.schema, 7.9e10) and not accepts(PHONE, 7.9e10)
    assert schema_allows(ID.schema, 5.0) and not accepts(ID, 5.0)


@pytest.mark.parametrize(
    ("value", "allowed"),
    [(1, True), (MAX_ID, True), ("42", True), (0, False), (MAX_ID + 1, False), ("042", False)],
)
def test_id_schema_and_validator_draw_the_same_lines(value: object, allowed: bool) -> None:
    assert accepts(ID, value) is allowed
    if not isinstance(value, str):  # a digit string's size is beyond what a pattern says
        assert schema_allows(ID.schema, value) is allowed


def test_object_schema_follows_require_and_optional_field() -> None:
    schema = object_schema({"salon_id": ID}, {"phone": PHONE})
    assert schema["required"] == ["salon_id"]
    assert schema_allows(schema, {"salon_id": 1, "phone": None})  # null is "absent"
    assert schema_allows(schema, {"salon_id": 1})
    assert not schema_allows(schema, {"salon_id": None})  # required: null is missing_field
    assert not schema_allows(schema, {"phone": "+79001234567"})


# ------------------------------------------------------------------------- route by route

#: (method, path, body field) → the rule its handler reads it with.
ROUTE_FIELDS: list[tuple[str, str, str, FieldRule[Any], bool]] = [
    ("post", "/marketplace/register", "salon_id", ID, True),
    ("post", "/marketplace/register", "phone", PHONE, False),
    ("post", "/marketplace/register", "email", EMAIL, False),
    ("post", "/marketplace/register", "title", TEXT, False),
    ("post", "/marketplace/connect-url", "company_id", ID, False),
    ("post", "/marketplace/connect-url", "salon_id", ID, False),
    ("post", "/marketplace/token", "company_id", ID, False),
    ("post", "/marketplace/token", "salon_id", ID, False),
    ("post", "/marketplace/callback", "company_id", ID, False),
    ("post", "/marketplace/callback", "salon_id", ID, False),
    ("post", "/dev/simulator/{companyId}/inbound", "phone", PHONE, True),
    # text is required for a text message and the caption of media (the route checks which)
    ("post", "/dev/simulator/{companyId}/inbound", "text", CAPTION, False),
    ("post", "/dev/simulator/{companyId}/inbound", "kind", KIND, False),
    ("post", "/dev/simulator/{companyId}/staff-message", "phone", PHONE, True),
    ("post", "/dev/simulator/{companyId}/staff-message", "text", MESSAGE_TEXT, True),
    ("post", "/marketplace/company/{companyId}/assistant", "enabled", BOOLEAN, True),
    ("patch", "/marketplace/company/{companyId}/assistant", "enabled", BOOLEAN, True),
]


async def test_served_document_uses_the_validators_schemas(web: WebHarness) -> None:
    response = await web.client.get("/openapi.json")
    document = await response.get_json()
    for method, path, field, rule, required in ROUTE_FIELDS:
        body = document["paths"][path][method]["requestBody"]["content"]["application/json"]
        schema = body["schema"]
        expected = dict(rule.schema)
        if not required:
            expected = {"anyOf": [expected, {"type": "null"}]}
        assert schema["properties"][field] == expected, (method, path, field)
        assert (field in schema.get("required", [])) is required, (method, path, field)


async def test_register_takes_what_the_document_allows(web: WebHarness) -> None:
    longest = "+7 900 123 45 67".ljust(MAX_PHONE_TEXT)
    for phone in (longest, 79001234567, None):
        await register(web, phone=phone)
    response = await web.client.post(
        "/marketplace/register",
        json={"salon_id": 4_200_001, "phone": longest + " "},
        headers=web.admin,
    )
    body = await response.get_json()
    assert response.status_code == 400
    assert body["error"]["code"] == "invalid_field"
    assert body["error"]["message"].startswith("phone must be")
