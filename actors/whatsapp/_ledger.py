"""Where neonize sessions keep their ledger of sent messages (our id → WhatsApp id).

neonize cannot pass our message id to WhatsApp, so a resend (after a lost reply, a dead host
or a salon that moved) is only safe because the session looks the id up first and answers a
recorded one without sending. The ledger follows ``AIADMIN_WHATSAPP_STORE``:

- ``files``: :class:`FileLedger`, a file per company beside its credentials
  (``company_<id>.sent``), on this machine only — like the credentials themselves;
- ``postgres``: ``storage``'s ``whatsapp_sent`` table (:class:`storage._sent.PgSentLedger`),
  opened by :func:`open_pg_ledger` on a small pool of its own in whichever process runs the
  sessions (the server for in-process sessions, each session host otherwise), so the record
  is written where the send's outcome is known, even when the caller's reply is lost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import trio

from config import without_passwords
from storage import SentLedger, StorageError

from ._errors import BackendUnavailable

#: Connections of a ledger's own pool: sends of one process's sessions are paced, and each
#: needs one short statement before and one after.
LEDGER_POOL_SIZE = 2


class FileLedger:
    """:class:`~storage.SentLedger` as a file per company under ``sessions_path`` (lines
    ``ours theirs``, appended), kept in memory and brought up to date from the file's size on
    every use: another session host on this machine may have appended to it since."""

    def __init__(self, sessions_path: Path) -> None:
        self.sessions_path = Path(sessions_path)
        self._companies: dict[int, tuple[dict[str, str], int]] = {}  # → (ledger, bytes read)

    def path(self, company_id: int) -> Path:
        return self.sessions_path / f"company_{company_id}.sent"

    def _load(self, company_id: int) -> dict[str, str]:
        ledger, read = self._companies.get(company_id, ({}, 0))
        try:
            if company_id in self._companies and self.path(company_id).stat().st_size == read:
                return ledger  # nothing appended since: no read
            with open(self.path(company_id), "rb") as f:
                size = f.seek(0, 2)
                if size < read:  # deleted and begun again (a logout): read it afresh
                    ledger, read = {}, 0
                if size > read:
                    f.seek(read)
                    tail = f.read(size - read)
                    complete = tail.rfind(b"\n") + 1  # a line still being written waits
                    for line in tail[:complete].decode(errors="replace").splitlines():
                        ours, _, theirs = line.partition(" ")
                        if ours and theirs:
                            ledger.setdefault(ours, theirs)
                    read += complete
        except FileNotFoundError:
            ledger, read = {}, 0
        self._companies[company_id] = (ledger, read)
        return ledger

    async def sent(self, company_id: int, message_id: str) -> str | None:
        await trio.lowlevel.checkpoint()
        return self._load(company_id).get(message_id)

    async def record(self, company_id: int, message_id: str, wa_id: str) -> None:
        await trio.lowlevel.checkpoint()
        ledger = self._load(company_id)
        if message_id in ledger:
            return
        ledger[message_id] = wa_id
        line = f"{message_id} {wa_id}\n".encode()
        with open(self.path(company_id), "ab") as f:  # noqa: ASYNC230 -- one short line
            end = f.seek(0, 2) + f.write(line)
        _, read = self._companies[company_id]
        if end == read + len(line):  # nobody else appended: our line needs no reading
            self._companies[company_id] = (ledger, end)

    async def recent(self, company_id: int, limit: int = 1000) -> list[str]:
        await trio.lowlevel.checkpoint()
        return list(self._load(company_id).values())[::-1][:limit]

    def forget(self, company_id: int) -> None:
        """Delete the company's ledger (its credentials are being deleted too)."""
        self._companies.pop(company_id, None)
        self.path(company_id).unlink(missing_ok=True)


@asynccontextmanager
async def open_pg_ledger(database_url: str) -> AsyncIterator[SentLedger]:
    """The ledger in PostgreSQL at ``database_url`` on a pool of its own, for the block's
    lifetime; a trio-asyncio loop is opened around it unless one runs (a session host).
    :class:`BackendUnavailable` (no password in it) when PostgreSQL cannot be reached."""
    import trio_asyncio

    from storage import PgPool
    from storage._sent import PgSentLedger

    async with AsyncExitStack() as stack:
        if trio_asyncio.current_loop.get() is None:
            await stack.enter_async_context(trio_asyncio.open_loop())
        try:
            pool = await PgPool.open(database_url, min_size=1, max_size=LEDGER_POOL_SIZE)
        except StorageError as exc:
            raise BackendUnavailable(
                without_passwords(f"the sent-message ledger's database is unreachable: {exc}")
            ) from None
        stack.push_async_callback(pool.aclose)
        yield PgSentLedger(pool)


async def hold_pg_ledger(
    database_url: str, *, task_status: trio.TaskStatus[SentLedger] = trio.TASK_STATUS_IGNORED
) -> None:
    """Open the PostgreSQL ledger, hand it over with ``task_status`` and keep it open until
    cancelled (for a session host, which learns where it is only from its ``hello``)."""
    async with open_pg_ledger(database_url) as ledger:
        task_status.started(ledger)
        await trio.sleep_forever()
