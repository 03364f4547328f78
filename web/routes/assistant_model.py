"""A salon's language model (issue 15; the admin key or the company's own credentials):

* ``GET /marketplace/company/<companyId>/assistant/model[?days=N]`` — the salon's choice (the
  defaults when it never chose: off, the node's model, a cap of 200,000 tokens a day), the
  model in effect now (``null``: the rules, with the reason) and today's tokens against the
  cap, on the salon's own clock; with ``days`` (1 … 90) also ``history``, its spending on each
  of its last N local days that used the model, newest first;
* ``PATCH`` ``{"enabled": bool, "name": str | null, "daily_token_cap": int}`` (any of them) —
  switch the model on or off, choose it (``null``: the node's ``AIADMIN_LLM_MODEL``), set the
  cap. A bad value or an unknown field is 400 naming the field (so is a cap above the node's
  ``AIADMIN_LLM_MAX_DAILY_TOKENS`` or a name outside its ``AIADMIN_LLM_MODELS``, for the admin
  key too), and nothing is stored; a
  change of an uninstalled salon is 410. Only the given fields are written, in one atomic
  step, so concurrent changes of different fields all stay. A change is audited
  (``assistant_model_changed``, with the new values).

Once today's tokens reach the cap the salon's messages are understood by the rules until its
next local midnight; raising the cap lets the model answer again at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from quart import Blueprint, jsonify, request

from storage import Company

from .._auth import require_company
from .._context import principal_from, state
from .._errors import BadRequest, Gone, NotFound
from .._model_settings import (
    DEFAULTS,
    MAX_HISTORY_DAYS,
    changed_fields,
    hold_to_node,
    model_summary,
    node_llm,
    parse_change,
    settings_json,
    spending_history,
)
from .._validation import parse_id, read_json_object

blueprint = Blueprint("assistant_model", __name__, url_prefix="/marketplace")

PATH = "/company/<company_id>/assistant/model"


async def _company(company_id: str) -> tuple[Company, str]:
    """The path's company for a caller allowed to it, and the caller's kind."""
    cid = parse_id(company_id, "companyId")
    principal = require_company(await principal_from(request.headers), cid)
    company = await state().storage.companies.get(cid)
    if company is None:
        raise NotFound("No company with this id exists", code="company_not_found")
    return company, principal.kind


async def _answer(company: Company, history_days: int | None = None) -> Any:
    s = state()
    now = datetime.now(UTC)
    summary = await model_summary(s.storage, company, node_llm(s.settings), now)
    answer: dict[str, Any] = {"success": True, "company_id": company.id, "model": summary}
    if history_days is not None:
        answer["history"] = await spending_history(s.storage, company, history_days, now)
    return jsonify(answer)


def _days(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_HISTORY_DAYS):
        raise BadRequest(
            f"days must be an integer from 1 to {MAX_HISTORY_DAYS}.",
            code="invalid_field",
            field="days",
        )
    return int(raw)


@blueprint.get(PATH)
async def model_settings(company_id: str) -> Any:
    company, _ = await _company(company_id)
    return await _answer(company, _days(request.args.get("days")))


@blueprint.patch(PATH)
async def change_model_settings(company_id: str) -> Any:
    company, caller = await _company(company_id)
    s = state()
    body = await read_json_object(request, max_bytes=s.settings.max_body_bytes)
    change = parse_change(body, DEFAULTS)  # the whole choice for a salon that never chose
    hold_to_node(body, change, node_llm(s.settings))
    if company.integration_status == "uninstalled":
        raise Gone("The app was uninstalled for this salon", code="uninstalled")
    # one conditional upsert of the given fields only: concurrent changes of others are kept
    after, changed = await s.storage.model_usage.update_settings(
        company.id, change, changed_fields(body)
    )
    if changed:
        await s.storage.audit.append(
            company.id, "assistant_model_changed", {"by": caller, **settings_json(after)}
        )
    return await _answer(company)
