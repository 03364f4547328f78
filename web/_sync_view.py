"""The salon sync state as the API shows it (``/marketplace/status/:id`` and the sync route)."""

from __future__ import annotations

from typing import Any

from storage import SyncState

from ._context import state


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def sync_state_json(sync: SyncState | None) -> dict[str, Any]:
    """``{last_success_at, last_error, last_attempt_at}`` (all ``None`` before the first sync)."""
    if sync is None:
        return {"last_success_at": None, "last_error": None, "last_attempt_at": None}
    return {
        "last_success_at": _iso(sync.last_success_at),
        "last_error": sync.last_error,
        "last_attempt_at": _iso(sync.last_attempt_at),
    }


async def sync_json(company_id: int) -> dict[str, Any]:
    """The company's sync state as the status endpoint shows it."""
    return sync_state_json(await state().storage.catalog.get_sync_state(company_id))
