"""What the per-salon language-model API reads and shows (issue 15), shared by its routes,
the conversations listing and ``/openapi.json``: the body's field rules and schemas, the
parse of a change, and the salon's summary (its choice, the model in effect now, and today's
tokens against its cap, on the salon's own clock).

Default: a salon that never chose understands with the rules. The node's settings make a
model available (``AIADMIN_LLM_BASE_URL`` and ``AIADMIN_LLM_MODEL``); each salon opts in,
because the model costs money per message and sends the salon's chat text to a third party.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from actors.assistant._model_policy import (
    DEFAULT_DAILY_TOKEN_CAP,
    effective_cap,
    model_allowed,
    model_choice,
    salon_day,
)
from actors.reminders._planner import salon_zone
from config import Settings
from storage import (
    MAX_DAILY_TOKEN_CAP,
    MAX_MODEL_NAME,
    Company,
    SalonModelSettings,
    Storage,
    TokenUsage,
)

from ._errors import BadRequest
from ._validation import BOOLEAN, FieldRule, integer_in

__all__ = [
    "ANSWER_SCHEMA",
    "CHANGE_SCHEMA",
    "DEFAULTS",
    "MAX_HISTORY_DAYS",
    "SUMMARY_SCHEMA",
    "NodeModel",
    "changed_fields",
    "hold_to_node",
    "model_summary",
    "node_llm",
    "parse_change",
    "settings_json",
    "spending_history",
    "usage_json",
]


@dataclass(frozen=True)
class NodeModel:
    """The node's side: a model API or none, and its default model (``None``: salons name
    theirs)."""

    available: bool
    default: str | None
    #: ``AIADMIN_LLM_MAX_DAILY_TOKENS``: the most a salon may set as its daily cap.
    max_daily_tokens: int = 1_000_000
    #: ``AIADMIN_LLM_MODELS``: the names a salon may choose (empty: any).
    models: tuple[str, ...] = ()


#: What a salon that never chose has: the rules, and the default cap once it switches on.
DEFAULTS = SalonModelSettings(enabled=False, model=None, daily_token_cap=DEFAULT_DAILY_TOKEN_CAP)

# Model names as OpenAI-compatible servers spell them: gpt-4o-mini, deepseek-chat,
# qwen2.5:7b-instruct, meta-llama/Llama-3.1-8B-Instruct, gpt://b1g…/yandexgpt-lite/latest.
_MODEL_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:/@+\-]{{0,{MAX_MODEL_NAME - 1}}}")


def _parse_model_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not _MODEL_NAME.fullmatch(value):
        raise BadRequest(
            f"{field} must be a model name: 1 to {MAX_MODEL_NAME} letters, digits and . _ : / "
            "@ + -, starting with a letter or digit.",
            code="invalid_field",
            field=field,
        )
    return value


MODEL_NAME: FieldRule[str] = FieldRule(
    _parse_model_name,
    {
        "type": "string",
        "pattern": f"^{_MODEL_NAME.pattern}$",
        "maxLength": MAX_MODEL_NAME,
        "examples": ["gpt-4o-mini", "deepseek-chat", "qwen2.5:7b-instruct"],
    },
)
DAILY_TOKEN_CAP: FieldRule[int] = integer_in(1, MAX_DAILY_TOKEN_CAP)
_FIELDS = ("enabled", "name", "daily_token_cap")
_SHOWN_FIELD = re.compile(r"[A-Za-z0-9_]{1,40}")

CHANGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The fields to change; absent fields keep their current values",
    "additionalProperties": False,
    "properties": {
        "enabled": {**BOOLEAN.schema, "description": "Understand messages with the model"},
        "name": {
            "anyOf": [dict(MODEL_NAME.schema), {"type": "null"}],
            "description": "The model (null: the node's AIADMIN_LLM_MODEL; when the node "
            "sets AIADMIN_LLM_MODELS, one of those)",
        },
        "daily_token_cap": {
            **DAILY_TOKEN_CAP.schema,
            "description": "Most tokens (prompt + completion) per local day; then the rules "
            f"until the salon's midnight (default {DEFAULT_DAILY_TOKEN_CAP}; at most the "
            "node's AIADMIN_LLM_MAX_DAILY_TOKENS, 1,000,000 unless set)",
        },
    },
}
SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "enabled": {"type": "boolean"},
        "name": {"type": ["string", "null"], "description": "null: the node's model"},
        "daily_token_cap": {"type": "integer", "minimum": 1},
    },
    "required": ["enabled", "name", "daily_token_cap"],
}
SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The salon's language model: its choice, the model in effect now, and "
    "today's tokens (the salon's local day) against its cap",
    "properties": {
        **SETTINGS_SCHEMA["properties"],
        "customised": {"type": "boolean", "description": "false: the salon never chose"},
        "node_model": {
            "type": ["string", "null"],
            "description": "The node's default model, AIADMIN_LLM_MODEL (null: none, or the "
            "node has no language model)",
        },
        "in_effect": {
            "type": ["string", "null"],
            "description": "The model the next message is understood with (null: the rules)",
        },
        "reason": {
            "type": ["string", "null"],
            "enum": [
                "off",
                "node_has_no_model",
                "no_model_named",
                "cap_reached",
                "model_not_allowed",
                None,
            ],
            "description": "Why the rules are in effect (null when a model is): the salon "
            "switched it off; the node has no model API (AIADMIN_LLM_BASE_URL); neither the "
            "salon nor the node names a model; today's tokens reached the cap; the salon's "
            "model is not in the node's AIADMIN_LLM_MODELS",
        },
        "today": {
            "type": "object",
            "properties": {
                "day": {"type": "string", "format": "date"},
                "timezone": {"type": "string"},
                "prompt_tokens": {"type": "integer", "minimum": 0},
                "completion_tokens": {"type": "integer", "minimum": 0},
                "total_tokens": {"type": "integer", "minimum": 0},
                "calls": {"type": "integer", "minimum": 0},
                "daily_token_cap": {"type": "integer", "minimum": 1},
                "capped": {"type": "boolean"},
            },
            "required": [
                "day",
                "timezone",
                "prompt_tokens",
                "completion_tokens",
                "total_tokens",
                "calls",
                "daily_token_cap",
                "capped",
            ],
        },
    },
    "required": [
        *SETTINGS_SCHEMA["required"],
        "customised",
        "node_model",
        "in_effect",
        "reason",
        "today",
    ],
}
#: ``?days=`` of the GET route: the most local days of spending it lists.
MAX_HISTORY_DAYS = 90
DAY_USAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "day": {"type": "string", "format": "date"},
        "prompt_tokens": {"type": "integer", "minimum": 0},
        "completion_tokens": {"type": "integer", "minimum": 0},
        "total_tokens": {"type": "integer", "minimum": 0},
        "calls": {"type": "integer", "minimum": 0},
    },
    "required": ["day", "prompt_tokens", "completion_tokens", "total_tokens", "calls"],
}
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "company_id": {"type": "integer", "minimum": 1},
        "model": SUMMARY_SCHEMA,
        "history": {
            "type": "array",
            "items": DAY_USAGE_SCHEMA,
            "description": "With ?days=N (GET only): the salon's last N local days that used "
            "the model, newest first",
        },
    },
    "required": ["success", "company_id", "model"],
}


def node_llm(settings: Settings) -> NodeModel:
    """Whether the node has a model API (``AIADMIN_LLM_BASE_URL``) and its default model."""
    llm = settings.llm
    return NodeModel(llm.enabled, llm.model or None, llm.max_daily_tokens, llm.models)


def hold_to_node(body: dict[str, Any], change: SalonModelSettings, node: NodeModel) -> None:
    """400 ``invalid_field`` when the body sets a cap above the node's
    ``AIADMIN_LLM_MAX_DAILY_TOKENS`` or a model outside its ``AIADMIN_LLM_MODELS`` (for any
    caller: the node's key pays for both)."""
    if "daily_token_cap" in body and change.daily_token_cap > node.max_daily_tokens:
        raise BadRequest(
            f"daily_token_cap must be at most {node.max_daily_tokens}, this node's limit "
            "(AIADMIN_LLM_MAX_DAILY_TOKENS).",
            code="invalid_field",
            field="daily_token_cap",
        )
    name = change.model
    if "name" in body and name is not None and not model_allowed(name, node.default, node.models):
        raise BadRequest(
            f"name must be one of this node's models (AIADMIN_LLM_MODELS): "
            f"{', '.join(node.models)}, or null for the node's own.",
            code="invalid_field",
            field="name",
        )


def settings_json(settings: SalonModelSettings) -> dict[str, Any]:
    return {
        "enabled": settings.enabled,
        "name": settings.model,
        "daily_token_cap": settings.daily_token_cap,
    }


def parse_change(body: dict[str, Any], current: SalonModelSettings) -> SalonModelSettings:
    """``current`` with the body's fields applied; 400 ``invalid_field`` (naming the field)
    for a bad value or an unknown field, 400 ``missing_field`` for an empty body."""
    for key in body:
        if key not in _FIELDS:
            shown = key if _SHOWN_FIELD.fullmatch(key) else "a key"
            raise BadRequest(
                f"{shown} is not a model setting (enabled, name, daily_token_cap).",
                code="invalid_field",
                field=shown,
            )
    if not body:
        raise BadRequest(
            "Give at least one of enabled, name, daily_token_cap.", code="missing_field"
        )
    enabled = current.enabled
    if "enabled" in body:
        enabled = BOOLEAN(body["enabled"], "enabled")
    name = current.model
    if "name" in body:
        name = None if body["name"] is None else MODEL_NAME(body["name"], "name")
    cap = current.daily_token_cap
    if "daily_token_cap" in body:
        cap = DAILY_TOKEN_CAP(body["daily_token_cap"], "daily_token_cap")
    return SalonModelSettings(enabled=enabled, model=name, daily_token_cap=cap)


def changed_fields(body: dict[str, Any]) -> frozenset[str]:
    """The stored fields a change body (already read by :func:`parse_change`) sets."""
    return frozenset("model" if key == "name" else key for key in body)


def _why_rules(settings: SalonModelSettings, node: NodeModel, capped: bool) -> str:
    if not settings.enabled:
        return "off"
    if not node.available:
        return "node_has_no_model"
    if capped:
        return "cap_reached"
    if settings.model and not model_allowed(settings.model, node.default, node.models):
        return "model_not_allowed"
    return "no_model_named"


def usage_json(used: TokenUsage) -> dict[str, Any]:
    return {
        "day": used.day.isoformat(),
        "prompt_tokens": used.prompt_tokens,
        "completion_tokens": used.completion_tokens,
        "total_tokens": used.total,
        "calls": used.calls,
    }


async def spending_history(
    storage: Storage, company: Company, days: int, now: datetime
) -> list[dict[str, Any]]:
    """The salon's spending over its last ``days`` local days (today included), newest
    first; days without a model call are left out."""
    today = salon_day(salon_zone(company.timezone), now)
    first = today - timedelta(days=days - 1)
    return [usage_json(u) for u in await storage.model_usage.history(company.id, first, today)]


async def model_summary(
    storage: Storage, company: Company, node: NodeModel, now: datetime
) -> dict[str, Any]:
    """The salon's choice, the model in effect now and today's spending (one storage read)."""
    zone = salon_zone(company.timezone)
    stored, used = await storage.model_usage.current(company.id, salon_day(zone, now))
    settings = stored or DEFAULTS
    in_effect = (
        model_choice(
            settings,
            used,
            node.default,
            max_daily_tokens=node.max_daily_tokens,
            models=node.models,
        )
        if node.available
        else None
    )
    cap = effective_cap(settings, node.max_daily_tokens)
    capped = used.total >= cap
    return {
        **settings_json(settings),
        "customised": stored is not None,
        "node_model": node.default if node.available else None,
        "in_effect": in_effect,
        "reason": None if in_effect else _why_rules(settings, node, capped),
        "today": {
            **usage_json(used),
            "timezone": zone.key,
            "daily_token_cap": cap,
            "capped": capped,
        },
    }
