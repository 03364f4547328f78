"""``conversations``: the assistant's chats, one row per (company, client phone): the rules
both backends share, and the in-memory twin (PostgreSQL: ``_pg_conversations``).

Writes are optimistic: every write bumps ``version`` by one, and :meth:`save` names the
version it read (``0``: the row must not exist yet), so of two writers racing from the same
version exactly one wins and the other gets :class:`Conflict` (re-read, decide again).
``set_mode`` (the salon taking a chat over, the assistant handing over or a client opting
out) and ``expire_idle`` bump the version too, so a conversation actor holding an older copy
cannot silently overwrite them.

The newest-first order is ``(last_message_at or updated_at, phone)`` descending; a page's
cursor is that pair of its last row. ``search`` matches a phone by digits (separators
ignored) or the client's name case-insensitively (Python's ``str.lower`` in memory,
PostgreSQL's ``lower`` under the database's ``ctype``: the same for Cyrillic and Latin).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import trio

from . import _validate as v
from ._errors import Conflict, ValidationError
from ._fields import limit_value
from ._memory_db import MemoryDatabase
from ._models import Conversation, ConversationMode

_PHONE = re.compile(r"[0-9]{5,15}")
_SEPARATORS = re.compile(r"[\s()+.\-]")


def check_phone(phone: object) -> str:
    """A canonical phone: the E.164 digits without ``+`` (5 to 15 of them)."""
    if not isinstance(phone, str) or not _PHONE.fullmatch(phone):
        raise ValidationError("phone", "must be canonical digits (E.164 without '+')")
    return phone


def check_mode(mode: object) -> ConversationMode:
    """A :class:`ConversationMode` (or its value)."""
    try:
        return ConversationMode(str(mode))
    except ValueError:
        raise ValidationError("mode", f"unknown conversation mode {mode!r}") from None


def check_version(version: object) -> int:
    """``expected_version``: 0 (create) or a stored version."""
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < v.MAX_INT32:
        raise ValidationError("expected_version", "must be an integer ≥ 0")
    return version


def search_terms(search: str | None) -> tuple[str | None, str | None]:
    """``(digits, name)`` to match: the digits when the search is a phone-like text, and the
    lower-cased text for names (``None`` for an empty search)."""
    if search is None:
        return None, None
    text = v.text("search", search, 255).strip()
    if not text:
        return None, None
    digits = _SEPARATORS.sub("", text)
    return (digits if digits.isdigit() else None), text.lower()


def check_cursor(before: tuple[datetime, str] | None) -> tuple[datetime, str] | None:
    if before is None:
        return None
    if not isinstance(before, tuple) or len(before) != 2:
        raise ValidationError("before", "must be (time, phone) of the previous page's last row")
    at = v.timestamp("before", before[0])
    if at is None or not isinstance(before[1], str) or "\x00" in before[1]:
        raise ValidationError("before", "must be (time, phone) of the previous page's last row")
    return at, before[1]


def sort_key(conversation: Conversation) -> tuple[datetime, str]:
    """The list order's key (and a page cursor): newest first means descending."""
    at = conversation.last_message_at or conversation.updated_at
    assert at is not None  # stored rows always have updated_at
    return at, conversation.phone


def matches(conversation: Conversation, digits: str | None, name: str | None) -> bool:
    """Whether a conversation fits the search terms of :func:`search_terms`."""
    if name is None:
        return True
    if digits is not None and digits in conversation.phone:
        return True
    return conversation.client_name is not None and name in conversation.client_name.lower()


# -- in memory -----------------------------------------------------------------------------


class MemoryConversations:
    """:class:`Conversations` in memory (each call atomic after one checkpoint)."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    async def get(self, company_id: int, phone: str) -> Conversation | None:
        await trio.lowlevel.checkpoint()
        number = check_phone(phone)
        self._db.require_company(company_id)
        return self._db.conversations.get((company_id, number))

    async def get_many(
        self, keys: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], Conversation]:
        await trio.lowlevel.checkpoint()
        checked = [(company_id, check_phone(phone)) for company_id, phone in keys]
        found = ((key, self._db.conversations.get(key)) for key in dict.fromkeys(checked))
        return {key: row for key, row in found if row is not None}

    async def save(
        self,
        company_id: int,
        phone: str,
        *,
        state: dict[str, Any],
        expected_version: int,
        client_name: str | None = None,
        last_message_at: datetime | None = None,
    ) -> Conversation:
        await trio.lowlevel.checkpoint()
        number = check_phone(phone)
        body = v.json_object("state", state)
        expected = check_version(expected_version)
        name = v.optional_text("client_name", client_name, 255)
        at = v.timestamp("last_message_at", last_message_at)
        self._db.require_company(company_id)
        key = (company_id, number)
        old = self._db.conversations.get(key)
        if (0 if old is None else old.version) != expected:
            raise Conflict(f"conversation {number} is not at version {expected}")
        now = self._db.clock()
        if old is None:
            fresh = Conversation(
                company_id=company_id,
                phone=number,
                mode=ConversationMode.ASSISTANT,
                state=body,
                version=1,
                client_name=name,
                last_message_at=at,
                created_at=now,
                updated_at=now,
            )
        else:
            fresh = replace(
                old,
                state=body,
                version=old.version + 1,
                client_name=name if name is not None else old.client_name,
                last_message_at=at if at is not None else old.last_message_at,
                updated_at=now,
            )
        self._db.conversations[key] = fresh
        return fresh

    async def set_mode(
        self,
        company_id: int,
        phone: str,
        mode: ConversationMode,
        *,
        until: datetime | None = None,
        needs_person: bool | None = None,
    ) -> Conversation:
        await trio.lowlevel.checkpoint()
        number = check_phone(phone)
        wanted = check_mode(mode)
        ends = v.timestamp("until", until)
        person = None if needs_person is None else v.boolean("needs_person", needs_person)
        self._db.require_company(company_id)
        key = (company_id, number)
        old = self._db.conversations.get(key)
        now = self._db.clock()
        if old is None:
            fresh = Conversation(
                company_id=company_id,
                phone=number,
                mode=wanted,
                state={},
                version=1,
                mode_until=ends,
                needs_person=bool(person),
                created_at=now,
                updated_at=now,
            )
        else:
            fresh = replace(
                old,
                mode=wanted,
                mode_until=ends,
                needs_person=old.needs_person if person is None else person,
                version=old.version + 1,
                updated_at=now,
            )
        self._db.conversations[key] = fresh
        return fresh

    async def list(
        self,
        company_id: int,
        *,
        limit: int = 50,
        before: tuple[datetime, str] | None = None,
        mode: ConversationMode | None = None,
        needs_person: bool | None = None,
        search: str | None = None,
    ) -> list[Conversation]:
        await trio.lowlevel.checkpoint()
        limit_value(limit)
        cursor = check_cursor(before)
        wanted = None if mode is None else check_mode(mode)
        person = None if needs_person is None else v.boolean("needs_person", needs_person)
        digits, name = search_terms(search)
        self._db.require_company(company_id)
        rows = [
            c
            for c in self._db.conversations.of(company_id)
            if (cursor is None or sort_key(c) < cursor)
            and (wanted is None or c.mode is wanted)
            and (person is None or c.needs_person is person)
            and matches(c, digits, name)
        ]
        rows.sort(key=sort_key, reverse=True)
        return rows[:limit]

    async def expire_idle(self, idle_before: datetime, *, limit: int = 500) -> int:
        await trio.lowlevel.checkpoint()
        limit_value(limit)
        cutoff = v.timestamp("idle_before", idle_before)
        if cutoff is None:
            raise ValidationError("idle_before", "must be a timezone-aware datetime")
        idle = sorted(
            (
                c
                for c in map(self._db.conversations.__getitem__, self._db.conversations.flagged)
                if c.updated_at is not None and c.updated_at < cutoff
            ),
            key=lambda c: c.updated_at or cutoff,
        )[:limit]
        for c in idle:
            self._db.conversations[(c.company_id, c.phone)] = replace(
                c, state={}, version=c.version + 1
            )
        return len(idle)
