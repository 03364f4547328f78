"""What noting a sent reminder reads (``Assistant.note_sent_prompt``): the company row its
caller passes is not read again, and a conversation actor started by the note uses the row it
read at start instead of reading it a second time; a later note reads the row afresh (a
mode switched meanwhile is seen)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from trio.testing import MockClock

from storage import ConversationMode

from .booking_stand import FRIDAY, IGOR, MSK, open_stand
from .test_reminder_replies_e2e import prompt_for, state_of, visit_for


def counted(calls: list[Any], read: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``read``, its calls' arguments kept."""

    async def reading(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return await read(*args, **kwargs)

    return reading


async def test_a_note_with_the_company_row_reads_it_not_and_the_chat_once(
    autojump_clock: MockClock,
) -> None:
    async with open_stand() as stand:
        assistant = stand.node.assistant
        assert assistant is not None
        phone = "79991110301"
        record = await visit_for(stand, phone, IGOR, 12)
        prompt = prompt_for(record, dt.datetime.combine(FRIDAY, dt.time(12), MSK))
        company = await stand.storage.companies.get(stand.company_id)
        assert company is not None
        company_reads: list[Any] = []
        chat_reads: list[Any] = []
        storage = stand.storage
        storage.companies.get = counted(company_reads, storage.companies.get)  # type: ignore[method-assign,assignment]
        storage.conversations.get = counted(chat_reads, storage.conversations.get)  # type: ignore[method-assign,assignment]

        assert await assistant.note_sent_prompt(stand.company_id, phone, prompt, company=company)
        assert company_reads == []
        assert chat_reads == [(stand.company_id, phone)]  # the actor's start, used once
        assert (await state_of(stand, phone)).prompt == prompt
        chat_reads.clear()

        # the actor runs now: its next note reads the row again and sees the handoff
        await storage.conversations.set_mode(stand.company_id, phone, ConversationMode.HANDOFF)
        assert not await assistant.note_sent_prompt(
            stand.company_id, phone, prompt, company=company
        )
        assert chat_reads == [(stand.company_id, phone)]

        # another company's row is never used for this one: the actor reads its own
        other = "79991110302"
        stranger = replace(company, id=company.id + 1)
        assert await assistant.note_sent_prompt(stand.company_id, other, prompt, company=stranger)
        assert company_reads == [(stand.company_id,)]
