"""The supervision-tree snapshot, mailbox statistics and the reply slot."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

from runtime import (
    ChildSpec,
    ChildState,
    Mailbox,
    MailboxStatistics,
    Registry,
    Supervisor,
)
from runtime._mailbox import Reply

from ._helpers import Boom, Echo, running


async def test_tree_snapshot_reports_every_node(autojump_clock: trio.abc.Clock) -> None:
    reg: Registry[int] = Registry("companies", lambda k: Echo(f"c{k}"), idle_timeout=None)
    root = Supervisor(
        "root",
        [
            ChildSpec("clock", Echo, mailbox_capacity=8),
            ChildSpec("infra", lambda: Supervisor("infra", [ChildSpec("db", Echo)])),
            ChildSpec("companies", lambda: reg),
        ],
    )
    async with running(root):
        await trio.sleep(5)
        with pytest.raises(Exception, match="crashed"):
            await reg.ref(42).ask("crash")
        await reg.ref(42).ask("after")
        await root.ref("clock").ask("a")
        root.ref("clock").tell("b")
        snap = root.snapshot()
        doc = snap.to_json()
    assert json.loads(json.dumps(doc)) == doc
    assert doc["id"] == "root"
    assert doc["kind"] == "supervisor"
    assert doc["state"] == "running"
    clock = snap.find("clock")
    assert clock is not None
    assert clock.kind == "actor"
    assert clock.state is ChildState.RUNNING
    assert clock.started_at == 0.0
    assert clock.uptime == 5.0
    assert clock.handled == 1  # "b" still queued
    assert clock.mailbox == MailboxStatistics(
        capacity=8, depth=1, accepted=2, rejected=0, dropped=0
    )
    assert snap.find("infra/db") is not None
    assert snap.find("infra").kind == "supervisor"  # type: ignore[union-attr]
    company = snap.find("companies/42")
    assert company is not None
    assert company.restarts == 1
    assert company.last_error is not None
    assert (company.last_error.type, company.last_error.message) == (
        "Boom",
        "c42 crashed on purpose",
    )
    entry = next(c for c in doc["children"] if c["id"] == "companies")["children"][0]
    assert entry["last_error"] == {"type": "Boom", "message": "c42 crashed on purpose"}
    assert entry["mailbox"]["capacity"] == 64
    assert set(entry) >= {
        "id",
        "kind",
        "state",
        "restarts",
        "last_error",
        "started_at",
        "mailbox",
        "handled",
    }
    assert [n.id for n in snap.walk()] == ["root", "clock", "infra", "db", "companies", "42"]
    assert snap.find("nope/x") is None
    after = root.snapshot()
    assert after.state is ChildState.STOPPED
    assert {n.state for n in after.walk()[1:]} <= {ChildState.STOPPED}


def test_mailbox_keeps_channel_semantics() -> None:
    box = Mailbox(2)
    with pytest.raises(trio.ClosedResourceError):
        box.send_nowait(("x", None))
    box.open()
    box.send_nowait(("a", None))
    reply = Reply()
    box.send_nowait(("b", reply))
    with pytest.raises(trio.WouldBlock):
        box.send_nowait(("c", None))
    assert box.statistics() == MailboxStatistics(2, 2, 2, 1, 0)
    left = box.close()
    assert left == [("a", None), ("b", reply)]
    assert box.statistics() == MailboxStatistics(2, 0, 2, 1, 2)
    assert box.close() == []
    with pytest.raises(ValueError):
        Mailbox(0)


async def test_reply_slot_first_outcome_wins(autojump_clock: trio.abc.Clock) -> None:
    reply = Reply()
    reply.set(1)
    reply.fail(Boom())
    assert reply.done
    assert await reply.wait() == 1

    failing = Reply()
    results: list[Any] = []

    async def waiter() -> None:
        try:
            await failing.wait()
        except Boom as exc:
            results.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        failing.fail(Boom("x"))
    assert len(results) == 1

    abandoned = Reply()
    with trio.move_on_after(1):
        await abandoned.wait()
    abandoned.set("late")  # nobody waits: dropped, no error
