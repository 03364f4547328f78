"""A salon's reminder and review settings (the admin key or the company's own credentials):

* ``GET /marketplace/company/<companyId>/reminders`` — the settings in effect (the defaults
  when the salon has none), the defaults, and the placeholders its texts may use;
* ``PUT`` — replace them: the body is the whole document, absent fields take their defaults;
* ``PATCH`` — change some: the given fields (and texts) replace the current ones.

Both changes are validated by :meth:`actors.reminders.ReminderSettings.from_json`: a bad value
or an unknown field is 400 ``invalid_settings`` naming the field, and nothing is stored. A
change of an uninstalled salon is 410. Each change that alters something is audited
(``reminder_settings_changed`` with the names of the changed fields, never their values).

A change of a setting that decides when messages are due (``actors.reminders.affects_planning``:
the switches, times, offsets, quiet hours) re-plans the salon's stored visits, so visits
already planned follow it. That runs in the background (a salon may hold thousands of upcoming
visits): the answer says ``"replanning": true`` when it was started, ``false`` otherwise (no
such change, or a node that sends no reminders). Its failure is logged; the change stays stored
and the next sync of the salon's visits plans them anew.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify, request

from actors.reminders import ReminderSettings, affects_planning

from .._auth import require_company
from .._context import principal_from, state
from .._errors import Gone, NotFound
from .._reminder_settings import (
    changed_fields,
    current_settings,
    parse_settings,
    settings_answer,
    storable,
)
from .._validation import parse_id, read_json_object

blueprint = Blueprint("reminders", __name__, url_prefix="/marketplace")


async def _company(company_id: str) -> tuple[int, str, bool]:
    """The path's company for a caller allowed to it: ``(id, caller kind, uninstalled)``."""
    cid = parse_id(company_id, "companyId")
    principal = require_company(await principal_from(request.headers), cid)
    company = await state().storage.companies.get(cid)
    if company is None:
        raise NotFound("No company with this id exists", code="company_not_found")
    return cid, principal.kind, company.integration_status == "uninstalled"


@blueprint.get("/company/<company_id>/reminders")
async def reminder_settings(company_id: str) -> Any:
    cid, _, _ = await _company(company_id)
    settings = await current_settings(state().storage, cid)
    return jsonify(settings_answer(cid, settings))


@blueprint.route("/company/<company_id>/reminders", methods=["PUT", "PATCH"])
async def change_reminder_settings(company_id: str) -> Any:
    cid, caller, uninstalled = await _company(company_id)
    s = state()
    body = await read_json_object(request, max_bytes=s.settings.max_body_bytes)
    before = await current_settings(s.storage, cid)
    after: ReminderSettings = parse_settings(body, before if request.method == "PATCH" else None)
    if uninstalled:
        raise Gone("The app was uninstalled for this salon", code="uninstalled")
    await s.storage.reminder_settings.put(cid, storable(after))
    changed = changed_fields(before, after)
    if changed:
        await s.storage.audit.append(
            cid, "reminder_settings_changed", {"by": caller, "fields": changed}
        )
    replanner = s.node.replanner
    replanning = False
    if replanner is not None and affects_planning(changed):
        replanner.request(cid)  # never blocks; visits already planned follow the change
        replanning = True
    return jsonify({**settings_answer(cid, after), "replanning": replanning})
