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

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from config import without_passwords
from storage import SentLedger, StorageError

from ._errors import BackendUnavailable

#: Connections of a ledger's own pool: sends of one process's sessions are paced, and each
#: needs one short statement before and one after.
LEDGER_POOL_SIZE = 2


#: Bytes of a ledger file's first line kept to tell that file from a later one of the salon.
HEAD_BYTES = 1024


def _stamp(status: os.stat_result) -> tuple[int, int, int]:
    """What changes when a ledger file is appended to, or deleted and begun again."""
    return status.st_ino, status.st_size, status.st_mtime_ns


@dataclass
class _Read:
    """What a :class:`FileLedger` knows of one company's file."""

    ledger: dict[str, str] = field(default_factory=dict)
    read: int = 0  # bytes of complete lines read
    head: bytes = b""  # the file's first complete line (b"": none read yet)
    stamp: tuple[int, int, int] | None = None  # the file as last seen (None: read it)


class FileLedger:
    """:class:`~storage.SentLedger` as a file per company under ``sessions_path`` (lines
    ``ours theirs``, appended), kept in memory and brought up to date on every use: another
    session host on this machine may have appended to it since, or deleted it (a logout) and
    begun it again — a file whose first line is not the one read before is read from its
    start."""

    def __init__(self, sessions_path: Path) -> None:
        self.sessions_path = Path(sessions_path)
        self._companies: dict[int, _Read] = {}

    def path(self, company_id: int) -> Path:
        return self.sessions_path / f"company_{company_id}.sent"

    def _load(self, company_id: int) -> dict[str, str]:
        known = self._companies.get(company_id)
        try:
            if known is not None and known.stamp == _stamp(self.path(company_id).stat()):
                return known.ledger  # not touched since: no read
            with open(self.path(company_id), "rb") as f:
                stamp = _stamp(os.fstat(f.fileno()))
                first = f.readline(HEAD_BYTES)
                head = first if first.endswith(b"\n") else b""
                size = f.seek(0, 2)
                if known is None or size < known.read or known.head not in (b"", head):
                    known = _Read(head=head)  # new, or deleted and begun again: read it whole
                if size > known.read:
                    f.seek(known.read)
                    tail = f.read(size - known.read)
                    complete = tail.rfind(b"\n") + 1  # a line still being written waits
                    for line in tail[:complete].decode(errors="replace").splitlines():
                        ours, _, theirs = line.partition(" ")
                        if ours and theirs:
                            known.ledger.setdefault(ours, theirs)
                    known.read += complete
                known.head = known.head or head
                known.stamp = stamp if size == known.read else None
        except FileNotFoundError:
            known = _Read()
        self._companies[company_id] = known
        return known.ledger

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
        known = self._companies[company_id]
        with open(self.path(company_id), "ab") as f:  # noqa: ASYNC230 -- one short line
            end = f.seek(0, 2) + f.write(line)
            f.flush()
            if end == known.read + len(line):  # nobody else appended: no need to read it
                known.read = end
                known.head = known.head or line
                known.stamp = _stamp(os.fstat(f.fileno()))
            else:
                known.stamp = None

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
    from storage._groups import BodyError, unwrap_single
    from storage._sent import PgSentLedger

    body = BodyError()
    async with AsyncExitStack() as stack:
        if trio_asyncio.current_loop.get() is None:
            # The loop's nursery must not wrap our refusal (or the caller's own error) in a
            # group: a session host would report it as an "internal error", not say why.
            await stack.enter_async_context(unwrap_single(body))
            await stack.enter_async_context(trio_asyncio.open_loop())
        try:
            try:
                pool = await PgPool.open(database_url, min_size=1, max_size=LEDGER_POOL_SIZE)
            except StorageError as exc:
                raise BackendUnavailable(
                    without_passwords(f"the sent-message ledger's database is unreachable: {exc}")
                ) from None
            stack.push_async_callback(pool.aclose)
            yield PgSentLedger(pool)
        except BaseException as exc:
            body.error = exc
            raise


async def hold_pg_ledger(
    database_url: str, *, task_status: trio.TaskStatus[SentLedger] = trio.TASK_STATUS_IGNORED
) -> None:
    """Open the PostgreSQL ledger, hand it over with ``task_status`` and keep it open until
    cancelled (for a session host, which learns where it is only from its ``hello``)."""
    async with open_pg_ledger(database_url) as ledger:
        task_status.started(ledger)
        await trio.sleep_forever()
