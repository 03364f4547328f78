"""Request body and field validation: clean values out, BadRequest/413/415 for the rest."""

from __future__ import annotations

import functools
import json
from typing import Any

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from quart import Response, jsonify, request
from quart_trio import QuartTrio

from storage import MAX_ID
from tests.actors.test_phones import CANONICAL, REFUSED
from web._errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, register_error_handlers
from web._validation import (
    bounded_text,
    optional_field,
    parse_id,
    parse_json_object,
    parse_phone,
    read_json_object,
    require_field,
    validate_email,
)

# ------------------------------------------------------------------ read_json_object via Quart


def make_app(max_bytes: int = 64) -> QuartTrio:
    app = QuartTrio(__name__)
    register_error_handlers(app)

    @app.post("/echo")
    async def echo() -> Response:
        body = await read_json_object(request, max_bytes=max_bytes)
        return jsonify(body)

    return app


async def post(data: bytes, content_type: str | None = "application/json") -> tuple[int, Any]:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await make_app().test_client().post("/echo", data=data, headers=headers)
    return response.status_code, json.loads(await response.get_data())


async def test_json_object_is_returned() -> None:
    assert await post(b'{"salon_id": 1, "phone": "+7 900"}') == (
        200,
        {"salon_id": 1, "phone": "+7 900"},
    )


async def test_charset_parameter_is_fine() -> None:
    status, _ = await post(b"{}", "application/json; charset=utf-8")
    assert status == 200


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_wrong_content_type_is_415(content_type: str | None) -> None:
    status, body = await post(b"{}", content_type)
    assert status == 415
    assert body["error"]["code"] == "unsupported_media_type"


async def test_body_over_limit_is_413() -> None:
    status, body = await post(b'{"a": "' + b"x" * 100 + b'"}')
    assert status == 413
    assert body["error"]["code"] == "payload_too_large"


async def test_body_at_limit_is_fine() -> None:
    payload = b'{"a": "' + b"x" * (64 - 9) + b'"}'
    assert len(payload) == 64
    status, _ = await post(payload)
    assert status == 200


@pytest.mark.parametrize(
    "raw",
    [b"{", b"", b"{'a': 1}", b'{"a": NaN}', b'{"a": 1, "a": 2}', b"\xff\xfe{}", b"[" * 100_000],
)
async def test_malformed_json_is_400(raw: bytes) -> None:
    app = make_app(max_bytes=200_000)
    response = await app.test_client().post(
        "/echo", data=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    body = json.loads(await response.get_data())
    assert body["error"]["code"] == "malformed_json"


@pytest.mark.parametrize("raw", [b"[]", b"1", b'"x"', b"null"])
async def test_non_object_is_400_invalid_body(raw: bytes) -> None:
    status, body = await post(raw)
    assert status == 400
    assert body["error"]["code"] == "invalid_body"


class FakeRequest:
    """A request whose declared length is larger than the limit; the body must not be read."""

    mimetype = "application/json"
    content_length = 10_000

    @property
    def body(self) -> Any:
        raise AssertionError("the body was read although Content-Length was too large")


async def test_declared_length_over_limit_is_413_before_reading() -> None:
    with pytest.raises(PayloadTooLarge):
        await read_json_object(FakeRequest(), max_bytes=100)


async def test_content_type_checked_before_length() -> None:
    request_like = FakeRequest()
    request_like.mimetype = "text/plain"
    with pytest.raises(UnsupportedMediaType):
        await read_json_object(request_like, max_bytes=100)


def test_parse_json_object_accepts_bom_and_unicode() -> None:
    assert parse_json_object('\ufeff{"title": "Салон"}'.encode()) == {"title": "Салон"}


# ------------------------------------------------------------------------------- parse_id


@pytest.mark.parametrize(
    ("value", "expected"), [(1, 1), ("42", 42), (MAX_ID, MAX_ID), ("962302", 962302)]
)
def test_parse_id_accepts(value: object, expected: int) -> None:
    assert parse_id(value, "salon_id") == expected


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        MAX_ID + 1,
        "0",
        "-1",
        "+1",
        " 1",
        "1 ",
        "01",
        "1.0",
        1.0,
        5.5,
        True,
        False,
        None,
        "",
        "abc",
        "١٢",
        str(MAX_ID + 1),
        "99999999999",
        [],
        {},
    ],
)
def test_parse_id_rejects(value: object) -> None:
    with pytest.raises(BadRequest) as info:
        parse_id(value, "salon_id")
    assert info.value.field == "salon_id"
    assert info.value.code == "invalid_field"
    assert "salon_id" in info.value.message


@given(st.one_of(st.integers(), st.text(), st.floats(), st.booleans(), st.none(), st.binary()))
def test_parse_id_never_raises_anything_but_bad_request(value: object) -> None:
    try:
        result = parse_id(value, "id")
    except BadRequest:
        return
    assert isinstance(result, int) and not isinstance(result, bool)
    assert 1 <= result <= MAX_ID


@given(st.integers(min_value=1, max_value=MAX_ID))
def test_parse_id_round_trips_valid_ids(number: int) -> None:
    assert parse_id(number, "id") == number
    assert parse_id(str(number), "id") == number


# ------------------------------------------------------------------------- parse_phone


# The phone rule's own cases (tests/actors/test_phones.py) hold here too; below, what the
# web adds: JSON types, the field's name in the error.
@pytest.mark.parametrize(("value", "expected"), [*CANONICAL, (79001234567, "79001234567")])
def test_parse_phone_accepts(value: object, expected: str) -> None:
    assert parse_phone(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        *REFUSED,
        True,
        None,
        7.9e10,
        -79001234567,
        "+7 900 123 45 67".ljust(33),  # decided: at most 32 characters, as the schema says
        0,
    ],
)
def test_parse_phone_rejects(value: object) -> None:
    with pytest.raises(BadRequest) as info:
        parse_phone(value, "whatsapp_phone")
    assert info.value.field == "whatsapp_phone"
    assert "whatsapp_phone" in info.value.message


@given(st.one_of(st.text(), st.integers(), st.floats(), st.none(), st.booleans()))
def test_parse_phone_never_raises_anything_but_bad_request(value: object) -> None:
    try:
        result = parse_phone(value)
    except BadRequest:
        return
    assert result.isascii() and result.isdigit()
    # The numbering plan decides the length (the old 10-digit minimum refused Niue: see
    # tests/actors/test_phones.py); E.164 caps it at 15.
    assert len(result) <= 15 and phonenumbers.is_possible_number(phonenumbers.parse("+" + result))
    assert not result.startswith("0")


@given(st.text(alphabet="+0123456789 ()-.", max_size=30))
def test_parse_phone_on_phone_like_text(value: str) -> None:
    try:
        result = parse_phone(value)
    except BadRequest:
        return
    assert len(result) <= 15 and result.isdigit()
    assert phonenumbers.is_possible_number(phonenumbers.parse("+" + result))
    # The result is the international number: with "+" in front it normalises to itself.
    assert parse_phone("+" + result) == result


@given(st.from_regex(r"9[0-9]{9}", fullmatch=True))
def test_russian_mobile_forms_agree(ten: str) -> None:
    expected = "7" + ten
    pretty = f"+7 ({ten[:3]}) {ten[3:6]}-{ten[6:8]}-{ten[8:]}"
    assert parse_phone(pretty) == expected
    assert parse_phone("8" + ten) == expected
    assert parse_phone(expected) == expected
    assert parse_phone(ten) == expected


# -------------------------------------------------------------------------- validate_email


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("salon@example.com", "salon@example.com"),
        (" Salon.Admin+yc@Example.COM ", "Salon.Admin+yc@example.com"),
        ("info@салон.рф", "info@салон.рф"),
        ("a@b.co", "a@b.co"),
        ("x@mail.xn--p1ai", "x@mail.xn--p1ai"),
    ],
)
def test_validate_email_accepts(value: str, expected: str) -> None:
    assert validate_email(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain",
        "a@b",
        "a@@b.com",
        "a@b@c.com",
        ".a@b.com",
        "a.@b.com",
        "a..b@c.com",
        "a@-b.com",
        "a@b-.com",
        "a@b..com",
        "a@b.c",
        "a@b.123",
        "a b@c.com",
        "a@b c.com",
        "<script>@x.com",
        "a@" + "b" * 64 + ".com",
        "x" * 65 + "@b.com",
        "a@" + "b." * 130 + "com",
        "a\x00@b.com",
        None,
        5,
        ["a@b.com"],
    ],
)
def test_validate_email_rejects(value: object) -> None:
    with pytest.raises(BadRequest) as info:
        validate_email(value)
    assert info.value.field == "email"


@given(st.text(max_size=300))
def test_validate_email_never_raises_anything_but_bad_request(value: str) -> None:
    try:
        result = validate_email(value)
    except BadRequest:
        return
    assert len(result) <= 255 and result.count("@") == 1


# --------------------------------------------------------------------------- bounded_text


def test_bounded_text_strips_and_bounds() -> None:
    assert bounded_text("  Салон «Ромашка»  ", "title") == "Салон «Ромашка»"
    assert bounded_text("x" * 255, "title") == "x" * 255
    assert bounded_text(" " + "x" * 255 + " ", "title") == "x" * 255
    assert bounded_text("line one\nline two\ttab", "note") == "line one\nline two\ttab"
    assert bounded_text("  ", "note", allow_empty=True) == ""
    assert bounded_text("abc", "code", 3) == "abc"


@pytest.mark.parametrize(
    ("value", "kwargs"),
    [
        ("x" * 256, {}),
        ("a\x00b", {}),
        ("a\x1bb", {}),
        ("a\x7fb", {}),
        ("", {}),
        ("   ", {}),
        (None, {}),
        (5, {}),
        (b"bytes", {}),
        ("abcd", {"max_len": 3}),
    ],
)
def test_bounded_text_rejects(value: object, kwargs: dict[str, Any]) -> None:
    with pytest.raises(BadRequest) as info:
        bounded_text(value, "title", **kwargs)
    assert info.value.field == "title"


# ---------------------------------------------------------------------- field helpers


def test_require_and_optional_field() -> None:
    body = {"salon_id": "962302", "email": None, "title": " Салон "}
    assert require_field(body, "salon_id", parse_id) == 962302
    assert optional_field(body, "email", validate_email) is None
    assert optional_field(body, "phone", parse_phone) is None
    title = functools.partial(bounded_text, max_len=10)
    assert require_field(body, "title", title) == "Салон"
    with pytest.raises(BadRequest) as info:
        require_field(body, "phone", parse_phone)
    assert (info.value.code, info.value.field) == ("missing_field", "phone")
    with pytest.raises(BadRequest) as info:
        require_field(body, "email", validate_email)
    assert info.value.code == "missing_field"
    with pytest.raises(BadRequest) as info:
        optional_field({"phone": "nope"}, "phone", parse_phone)
    assert info.value.code == "invalid_field"


async def test_a_trickled_body_times_out_with_408(autojump_clock: object) -> None:
    """A client that sends a few bytes and then nothing cannot hold the handler forever."""
    import trio

    from web._errors import ApiError
    from web._validation import BODY_TIMEOUT, read_json_object

    class Trickle:
        mimetype = "application/json"
        content_length = 100

        @property
        def body(self) -> object:
            async def chunks() -> object:
                yield b'{"salon_id": '
                await trio.sleep_forever()

            return chunks()

    start = trio.current_time()
    with pytest.raises(ApiError) as info:
        await read_json_object(Trickle(), max_bytes=1000)  # type: ignore[arg-type]
    assert info.value.status == 408
    assert info.value.code == "request_timeout"
    assert trio.current_time() - start == pytest.approx(BODY_TIMEOUT)
