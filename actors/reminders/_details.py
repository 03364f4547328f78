"""A planned message's ``details``: what the scheduler needs, besides the row's own columns,
to word the message when it sends it (the visit as planning last saw it).

Pure (standard library only). Planning writes :func:`visit_details` into each row's opaque
``details`` JSON; the scheduler rebuilds the visit with :func:`visit_from_details` and renders
the text at the moment of sending, so a template or a name changed in between is used as it
is then, and a re-plan (a new master, another service) refreshes the words of a row that has
not gone out yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ._plan import VisitFacts, VisitStatus

__all__ = ["DetailsUnreadable", "visit_details", "visit_from_details"]

#: A visit's length when the details do not say (YClients' shortest common service).
DEFAULT_LENGTH = dt.timedelta(hours=1)


class DetailsUnreadable(ValueError):
    """A row's ``details`` cannot be read back into a visit (written by something else)."""


def visit_details(visit: VisitFacts) -> dict[str, Any]:
    """The JSON-able ``details`` of every row planned for ``visit``."""
    return {
        "client_name": visit.client_name,
        "service_titles": list(visit.service_titles),
        "master_name": visit.master_name,
        "ends_at": visit.ends_at.astimezone(dt.UTC).isoformat(),
        "booked_at": visit.booked_at.astimezone(dt.UTC).isoformat(),
        "status": visit.status.value,
    }


def _moment(value: object, fallback: dt.datetime) -> dt.datetime:
    if not isinstance(value, str):
        return fallback
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise DetailsUnreadable(f"not a moment: {value!r}") from exc
    if moment.tzinfo is None:
        raise DetailsUnreadable(f"a moment without its offset: {value!r}")
    return moment.astimezone(dt.UTC)


def _texts(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def visit_from_details(
    *,
    company_id: int,
    record_id: int,
    visit_id: int | None,
    phone: str,
    visit_time: dt.datetime,
    details: Mapping[str, Any],
) -> VisitFacts:
    """The visit a row was planned for, from its columns and its ``details``; missing words
    are left empty (the templates read well without them), a malformed moment or status
    raises :class:`DetailsUnreadable`."""
    starts = visit_time.astimezone(dt.UTC)
    ends = _moment(details.get("ends_at"), starts + DEFAULT_LENGTH)
    booked = _moment(details.get("booked_at"), starts)
    try:
        status = VisitStatus(details.get("status", VisitStatus.UPCOMING.value))
    except ValueError as exc:
        raise DetailsUnreadable(f"unknown status: {details.get('status')!r}") from exc
    name = details.get("client_name")
    master = details.get("master_name")
    try:
        return VisitFacts(
            company_id=company_id,
            record_id=record_id,
            visit_id=visit_id,
            client_phone=phone,
            client_name=name if isinstance(name, str) else "",
            service_titles=_texts(details.get("service_titles")),
            master_name=master if isinstance(master, str) else "",
            starts_at=starts,
            ends_at=max(ends, starts),
            booked_at=booked,
            status=status,
        )
    except ValueError as exc:
        raise DetailsUnreadable(str(exc)) from exc
