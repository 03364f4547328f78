"""The salon page's results (issue 16): ``GET /marketplace/salon/api/<companyId>/results
[?days=N]`` — what the assistant did for the salon on each of its last N local days (1 … 90,
default 30; the salon's own dates, in the zone of its YClients card, oldest first, every day
present, zeros included), the totals over them and the summary of the clients' ratings. It
takes the salon's page cookie or the company's own credentials or the admin key
(:func:`web._salon_session.salon_caller`); a bad ``days`` is 400 ``invalid_field``.

Each day's counts (read by ``storage.results``, one grouped query per source; the exact rules
are :mod:`storage._results`'):

* ``answered`` — the assistant's replies: messages it sent to clients, not counting reminders
  and review requests, the messages the salon wrote from its page, or sends that failed.
  Messages are kept ``AIADMIN_RETENTION_DAYS`` days: ``answered_from`` names the first day
  whose count is complete (``null`` when all of them are);
* ``booked`` / ``moved`` / ``cancelled`` — visits the assistant booked, moved, cancelled
  (confirmed by YClients);
* ``reminders_sent`` — visit reminders sent (not review requests);
  ``reminders_confirmed`` — visits a client confirmed in answer to one;
* ``handed_over`` — chats the assistant handed to a person;
* ``ratings`` — clients' ratings given that day (a visit rated again counts once, on the day
  of its current rating).

``ratings`` beside the days sums up the span's ratings: ``average`` (two decimals, ``null``
without any), ``count`` and ``distribution`` by stars (``"1"`` … ``"5"``).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from quart import Blueprint, jsonify, request

from actors.reminders._planner import salon_zone
from storage import PeriodResults

from .._context import state
from .._errors import BadRequest, NotFound
from .._salon_results_docs import DEFAULT_DAYS, MAX_DAYS
from .._salon_session import salon_caller
from .._validation import parse_id

__all__ = ["DEFAULT_DAYS", "MAX_DAYS", "blueprint", "results_json"]

blueprint = Blueprint("salon_results", __name__, url_prefix="/marketplace/salon/api")


def _days(raw: str | None) -> int:
    """``days`` from the query (default :data:`DEFAULT_DAYS`), or 400 ``invalid_field``."""
    if raw is None:
        return DEFAULT_DAYS
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_DAYS):
        raise BadRequest(
            f"days must be an integer from 1 to {MAX_DAYS}.", code="invalid_field", field="days"
        )
    return int(raw)


def _answered_from(results: PeriodResults, kept_days: float) -> str | None:
    """The first day whose ``answered`` is complete when messages are kept ``kept_days``
    days (conservatively: a day the cutoff may fall in is not complete), or ``None`` when
    every day of the span is."""
    first, today = results.days[0].day, results.days[-1].day
    complete = today - timedelta(days=math.floor(kept_days) - 1)
    return None if complete <= first else complete.isoformat()


def results_json(results: PeriodResults, kept_days: float) -> dict[str, Any]:
    """The answer's body (without ``success`` and ``company_id``)."""
    summary = results.ratings
    average = summary.average
    return {
        "days": [{"date": d.day.isoformat(), **d.counts()} for d in results.days],
        "totals": results.totals(),
        "ratings": {
            "average": None if average is None else round(average, 2),
            "count": summary.count,
            "distribution": {str(stars + 1): n for stars, n in enumerate(summary.distribution)},
        },
        "answered_from": _answered_from(results, kept_days),
    }


@blueprint.get("/<company_id>/results")
async def salon_results(company_id: str) -> Any:
    cid = parse_id(company_id, "companyId")
    await salon_caller(cid)
    days = _days(request.args.get("days"))
    s = state()
    company = await s.storage.companies.get(cid)
    if company is None:
        raise NotFound("No company with this id exists", code="company_not_found")
    zone = salon_zone(company.timezone)
    results = await s.storage.results.daily(cid, zone, days)
    body = results_json(results, s.settings.retention_days)
    return jsonify({"success": True, "company_id": cid, "timezone": zone.key, **body})
