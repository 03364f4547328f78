"""``without_passwords``: URL passwords never reach logs, stored errors or status frames."""

from __future__ import annotations

from config import without_passwords


def test_url_passwords_are_masked_and_the_rest_kept() -> None:
    text = (
        'pq: connect to "postgresql://ai:s3cr%40t@db.internal:5432/aiadmin?sslmode=prefer" '
        "failed; redis://:hunter2@cache:6379/0 too"
    )
    masked = without_passwords(text)
    assert "s3cr" not in masked and "hunter2" not in masked
    assert "postgresql://ai:***@db.internal:5432/aiadmin?sslmode=prefer" in masked
    assert "redis://:***@cache:6379/0" in masked


def test_text_without_credentials_is_unchanged() -> None:
    for text in (
        'Get "https://web.whatsapp.com/ws/chat": dial tcp: no such host',
        "postgresql://postgres@127.0.0.1:5432/db",
        "time 12:30 at user@example.com",
    ):
        assert without_passwords(text) == text
