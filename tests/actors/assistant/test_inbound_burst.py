"""The assistant and a backlog: a salon's phone back online with 10,000 queued messages.

Fifty clients wrote 200 messages each while the phone was offline; WhatsApp delivers them all
at once. Every message is logged, and the assistant answers each client's burst once (one
turn per client after the quiet period, the per-client flood limit cutting the rest), not
10,000 times; nothing crashes. On ``booking_stand`` (fake YClients, trio's mock clock).
"""

from __future__ import annotations

import collections
import random

from trio.testing import MockClock

from .booking_stand import open_stand

CLIENTS = 50
BACKLOG = 10_000
TEXTS = ("Здравствуйте", "Сколько стоит маникюр?", "Можно записаться на стрижку?", "ау")


async def test_a_backlog_of_ten_thousand_gets_one_answer_per_client(
    autojump_clock: MockClock,
) -> None:
    async with open_stand() as stand:
        cid = stand.company_id
        stand.world.go_offline(cid)
        rng = random.Random(12)
        phones = [f"7999200{i:04d}" for i in range(CLIENTS)]
        for _ in range(BACKLOG):
            stand.send(rng.choice(phones), rng.choice(TEXTS))
        stand.world.go_online(cid)
        await stand.quiet(600)  # ten minutes: every reply that is coming has come
        replies = collections.Counter(d.to_phone for d in stand.world.delivered(cid))
        assert replies == {phone: 1 for phone in phones}
        logged = collections.Counter[str]()
        for phone in phones:
            for row in await stand.storage.messages.recent(cid, limit=BACKLOG, peer_phone=phone):
                logged[row.direction] += 1
        assert logged == {"in": BACKLOG, "out": CLIENTS}
        assert stand.node.healthy and stand.node.restarts_total() == 0
