"""The salon page's settings (issue 16), under ``/marketplace/salon/api/<companyId>``; each
route takes the salon's page cookie (with CSRF on changes) or the company's own credentials or
the admin key (:func:`web._salon_session.salon_caller`):

* ``GET /settings`` — the assistant switch, the reminder and review settings (with their
  defaults and the placeholders the texts may use), and every active service of the catalog
  with the salon's own words for it;
* ``PATCH /settings`` — change any of them (``assistant_enabled``, ``reminders`` as a partial
  settings document, ``synonyms`` as ``[{"service_id", "words"}]`` for the services named);
  everything is checked before anything is stored, and a refusal is 400 ``invalid_settings``
  with a Russian ``message`` and the ``field``. The answer is the new settings;
* ``POST /templates/preview`` ``{"kind", "text"}`` — a text as a client would read it,
  filled with the placeholders' example values;
* ``GET /reminders/plan`` — the next 50 reminders and review requests still to go out.

The salon's words are ours (``storage.synonyms``): a catalog sync never erases them. Once
changed, the salon's assistant reads its catalog again at its next turn (in a cluster a change
of the words is served by the process running the salon's actor, where its conversations
run). A change of when reminders are due re-plans the salon's visits in the background, as
``PATCH /marketplace/company/<id>/reminders`` does.
"""

from __future__ import annotations

import contextlib
from typing import Any

from quart import Blueprint, jsonify, request

from actors.reminders import ReminderSettings, affects_planning
from storage import MAX_SYNONYM_CHARS, MAX_SYNONYMS_PER_SERVICE, Company, Storage

from .._context import state
from .._errors import Gone, NotFound
from .._forward import company_ref
from .._reminder_settings import (
    changed_fields,
    current_settings,
    settings_answer,
    storable,
)
from .._salon_session import SalonCaller, salon_caller
from .._salon_settings import (
    PLAN_SIZE,
    SettingsInvalid,
    check_synonyms,
    plan_json,
    preview_body_text,
    preview_kind,
    preview_text,
    reminder_change,
    synonyms_json,
)
from .._validation import parse_id, read_json_object

blueprint = Blueprint("salon_settings", __name__, url_prefix="/marketplace/salon/api")

_CHANGEABLE = ("assistant_enabled", "reminders", "synonyms")


async def _salon(company_id: str) -> tuple[int, SalonCaller, Company]:
    """The path's salon for a caller allowed to it: ``(id, caller, company)``."""
    cid = parse_id(company_id, "companyId")
    caller = await salon_caller(cid)
    company = await state().storage.companies.get(cid)
    if company is None:
        raise NotFound("No company with this id exists", code="company_not_found")
    return cid, caller, company


async def _answer(storage: Storage, company: Company) -> dict[str, Any]:
    """The settings as ``GET`` shows them."""
    cid = company.id
    reminders = settings_answer(cid, await current_settings(storage, cid))
    catalog = await storage.catalog.get_catalog(cid)
    words = await storage.synonyms.get(cid)
    return {
        "success": True,
        "company_id": cid,
        "assistant_enabled": company.ai_enabled,
        "reminders": reminders["settings"],
        "reminders_customised": reminders["customised"],
        "reminder_defaults": reminders["defaults"],
        "placeholders": reminders["placeholders"],
        "synonyms": synonyms_json(catalog.services, words),
        "synonym_limits": {"words": MAX_SYNONYMS_PER_SERVICE, "chars": MAX_SYNONYM_CHARS},
    }


@blueprint.get("/<company_id>/settings")
async def salon_settings(company_id: str) -> Any:
    """``GET …/settings``: the salon page's settings."""
    _, _, company = await _salon(company_id)
    return jsonify(await _answer(state().storage, company))


@blueprint.patch("/<company_id>/settings")
async def change_salon_settings(company_id: str) -> Any:
    """``PATCH …/settings``: check every given part, then store them; the new settings."""
    cid, caller, company = await _salon(company_id)
    s = state()
    body = await read_json_object(request, max_bytes=s.settings.max_body_bytes)
    unknown = sorted(key for key in body if key not in _CHANGEABLE)
    if unknown:
        raise SettingsInvalid("settings", "Такой настройки нет: " + unknown[0][:40] + ".")
    # Everything is checked before anything is stored.
    enabled = body.get("assistant_enabled")
    if "assistant_enabled" in body and not isinstance(enabled, bool):
        raise SettingsInvalid(
            "assistant_enabled", "Ассистента можно только включить или выключить."
        )
    before = await current_settings(s.storage, cid)
    after: ReminderSettings | None = None
    if "reminders" in body:
        after = reminder_change(body["reminders"], before)
    synonyms = None
    if "synonyms" in body:
        # In a cluster the salon's conversations run where its company actor runs: the
        # request is served there (forwarded whole, before any write), so the catalog copy
        # dropped below is the one its assistant reads.
        await company_ref(s.node, cid)
        catalog = await s.storage.catalog.get_catalog(cid)
        synonyms = check_synonyms(body["synonyms"], catalog.services)
    if company.integration_status == "uninstalled":
        raise Gone("The app was uninstalled for this salon", code="uninstalled")

    by = caller.kind
    if isinstance(enabled, bool) and enabled != company.ai_enabled:
        # Marked (``Storage.changes``) as the assistant switch route does: the company actor
        # keeps the switch for the status route and must know to read it again.
        changes = s.storage.changes
        with changes.changing(cid) if changes is not None else contextlib.nullcontext():
            await s.storage.companies.update(cid, ai_enabled=enabled)
        event = "assistant_enabled" if enabled else "assistant_disabled"
        await s.storage.audit.append(cid, event, {"by": by})
    replanning = False
    if after is not None:
        await s.storage.reminder_settings.put(cid, storable(after))
        changed = changed_fields(before, after)
        if changed:
            await s.storage.audit.append(
                cid, "reminder_settings_changed", {"by": by, "fields": changed}
            )
        replanner = s.node.replanner
        if replanner is not None and affects_planning(changed):
            replanner.request(cid)  # never blocks; visits already planned follow the change
            replanning = True
    if synonyms:
        await s.storage.synonyms.replace(cid, synonyms)
        await s.storage.audit.append(
            cid, "salon.synonyms_changed", {"by": by, "services": sorted(synonyms)}
        )
        if s.node.assistant is not None:
            s.node.assistant.catalog_synced(cid)  # its next turn reads the words
    fresh = await s.storage.companies.get(cid)
    return jsonify({**await _answer(s.storage, fresh or company), "replanning": replanning})


@blueprint.post("/<company_id>/templates/preview")
async def preview_template(company_id: str) -> Any:
    """``POST …/templates/preview``: a text filled with the example values."""
    cid, _, _ = await _salon(company_id)
    s = state()
    body = await read_json_object(request, max_bytes=s.settings.max_body_bytes)
    kind = preview_kind(body.get("kind"))
    text = preview_body_text(body.get("text"))
    base = await current_settings(s.storage, cid)
    return jsonify({"success": True, "kind": kind, "preview": preview_text(kind, text, base)})


@blueprint.get("/<company_id>/reminders/plan")
async def reminder_plan(company_id: str) -> Any:
    """``GET …/reminders/plan``: what is still to go out, soonest first."""
    cid, _, company = await _salon(company_id)
    rows = await state().storage.reminders.upcoming(cid, PLAN_SIZE)
    return jsonify(
        {
            "success": True,
            "company_id": cid,
            "timezone": company.timezone,
            "reminders": plan_json(rows),
        }
    )
