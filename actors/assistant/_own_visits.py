"""Reminders for the visits the assistant itself booked, moved or cancelled.

After a turn in which YClients confirmed a booking (``Booked``), a move (``VisitMoved``) or a
cancel (``VisitCancelled``), the conversation hands those outcomes here, once its replies are
queued and its state stored: a booked or moved visit is read back from YClients
(``GET record``, counted as the effect ``record``), stored (``storage.records.apply``, so the
scheduler's checks see the new time at once) and planned (``ReminderPlanner.plan_record``); a
cancelled one has its planned rows dropped (``cancelled``).

Nothing here may fail the client's booking: every error is logged and planning left to the
record webhook or the periodic sync, which plan the same visit again. Cancellation passes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from storage import Company, SalonRecord, Storage, StorageError

from ..yclients import YClientsError, record_from_api
from ._effects import Booked, Event, VisitCancelled, VisitMoved
from ._operations import YClientsOperations

if TYPE_CHECKING:
    from ..reminders import ReminderPlanner

__all__ = ["VISIT_CHANGES", "plan_own_changes"]

log = logging.getLogger(__name__)

#: The outcomes after which the visit's reminders are planned again.
VISIT_CHANGES = (Booked, VisitMoved, VisitCancelled)


async def _stored(
    storage: Storage, operations: YClientsOperations, company: Company, record_id: int
) -> SalonRecord | None:
    """The record as YClients holds it now, stored; ours when the stored one is newer."""
    raw = await operations.read_record(company.yclients_id, record_id)
    record = record_from_api(company.id, raw, timezone=company.timezone)
    if record.record_id != record_id:
        raise ValueError("YClients answered with another record")
    if await storage.records.apply(record):
        return record
    return await storage.records.get(company.id, record_id)


async def plan_own_changes(
    storage: Storage,
    operations: YClientsOperations | None,
    planner: ReminderPlanner,
    company_id: int,
    changes: Sequence[Event],
) -> None:
    """Plan (or drop) the reminders of each visit in ``changes`` (see the module docstring);
    never raises but for cancellation."""
    company: Company | None = None
    for change in changes:
        try:
            if isinstance(change, VisitCancelled):
                await planner.drop_record(company_id, change.record_id)
                continue
            if not isinstance(change, Booked | VisitMoved) or operations is None:
                continue
            if company is None:
                company = await storage.companies.get(company_id)
                if company is None:
                    return
            record = await _stored(storage, operations, company, change.record_id)
            if record is not None:
                await planner.plan_record(company, record)
        except (YClientsError, StorageError, ValueError) as exc:
            log.warning(
                "company %s: reminders of record %s not planned now (%s); the webhook or the "
                "sync will",
                company_id,
                getattr(change, "record_id", None),
                type(exc).__name__,
            )
        except Exception:  # a bug in planning must not touch the client's booking
            log.exception("company %s: planning reminders of our own change failed", company_id)
