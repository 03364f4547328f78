"""Operators: ``/health`` (alive), ``/health/ready`` (dependencies, and the start-up restore
of linked salons), ``/health/tree`` (the supervision tree, admin key), ``/metrics``
(Prometheus text format)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from quart import Blueprint, Response, jsonify, request

from metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from storage import BackendHealth, StorageError

from .._auth import require_admin
from .._context import principal_from, state

blueprint = Blueprint("health", __name__)


@blueprint.get("/health")
async def health() -> Any:
    node = state().node
    return jsonify({"success": True, "status": "ok" if node.healthy else "degraded"})


# The longest a readiness probe waits for one backend (less when the storage timeout is).
READY_PROBE_TIMEOUT = 3.0


async def _probe(
    checks: dict[str, dict[str, Any]],
    name: str,
    kind: str,
    ping: Callable[[], Awaitable[BackendHealth]],
    bound: float,
) -> None:
    """Fill ``checks[name]`` from one backend's ping, bounded on its own: a backend that hangs
    is the only one reported (both used to share one deadline, so one hung part failed both)."""
    checks[name] = {"ok": False, "backend": kind, "error": f"no answer within {bound:g}s"}
    with trio.move_on_after(bound):
        health = await ping()
        checks[name] = {"ok": health.ok, "backend": kind}
        if not health.ok:
            checks[name]["error"] = health.error


@blueprint.get("/health/ready")
async def ready() -> Any:
    s = state()
    checks: dict[str, dict[str, Any]] = {}
    bound = min(READY_PROBE_TIMEOUT, s.settings.storage_timeout)
    async with trio.open_nursery() as nursery:  # both at once, each with its own deadline
        nursery.start_soon(
            _probe, checks, "database", s.storage.database_kind, s.storage.ping_database, bound
        )
        nursery.start_soon(
            _probe, checks, "redis", s.storage.redis_kind, s.storage.ping_redis, bound
        )
    checks = {name: checks[name] for name in ("database", "redis")}  # a stable order
    gateway = s.node.gateway.snapshot()
    checks["whatsapp"] = {
        "ok": gateway.healthy,
        "backend": gateway.backend,
        "sessions": gateway.sessions,
        "hosts": [{"index": h.index, "state": h.state, "pid": h.pid} for h in gateway.hosts],
    }
    if gateway.problem is not None:
        checks["whatsapp"]["error"] = gateway.problem
    checks["supervisor"] = {"ok": s.node.healthy}
    failing = [name for name, check in checks.items() if not check["ok"]]
    restore = s.node.restore
    # linked salons still being restored in the background: not ready yet, but nothing failed
    ok = not failing and restore.done
    body: dict[str, Any] = {
        "success": ok,
        "status": "ready" if ok else "restoring" if not failing else "not_ready",
        "checks": checks,
    }
    if not restore.done:
        body.update(restored=restore.restored, total=restore.total, failed=restore.failed)
    body["restore"] = restore.to_json()
    if failing:
        body["failing"] = failing
    response = jsonify(body)
    response.status_code = 200 if ok else 503
    if not ok:
        response.headers["Retry-After"] = "5"
    return response


ATTENTION_LIMIT = 100


async def companies_needing_attention() -> list[dict[str, Any]]:
    """Salons an operator should look at: YClients refused the activation, or their last
    catalog sync failed — with the reason (YClients' message, the sync error)."""
    s = state()
    found: list[dict[str, Any]] = []
    for company in await s.storage.companies.list_by_status(
        "activation_failed", limit=ATTENTION_LIMIT
    ):
        found.append(
            {
                "company_id": company.id,
                "salon_id": company.yclients_id,
                "problem": "activation_failed",
                "error": company.last_error,
            }
        )
    sync = s.services.sync
    failing = sync.failing()[:ATTENTION_LIMIT] if sync is not None else []
    for company_id in failing:
        sync_state = await s.storage.catalog.get_sync_state(company_id)
        found.append(
            {
                "company_id": company_id,
                "problem": "sync_failing",
                "error": sync_state.last_error if sync_state is not None else None,
            }
        )
    return found


async def _refresh_reminders() -> None:
    """The reminder scheduler's backlog and next due time as of now (bounded; the last
    pass's figures stay when the schedule cannot be read in time)."""
    scheduler = state().node.reminders
    if scheduler is None:
        return
    bound = min(READY_PROBE_TIMEOUT, state().settings.storage_timeout)
    # the tree still shows the last pass's figures when the schedule cannot be read
    with trio.move_on_after(bound), contextlib.suppress(StorageError):
        await scheduler.refresh_status()


@blueprint.get("/health/tree")
async def tree() -> Any:
    require_admin(await principal_from(request.headers))
    await _refresh_reminders()
    return jsonify(
        {
            "success": True,
            "tree": state().node.tree(),
            "attention": await companies_needing_attention(),
        }
    )


@blueprint.get("/metrics")
async def metrics() -> Response:
    require_admin(await principal_from(request.headers))
    s = state()
    stored = s.metrics.stored
    try:
        # The only figures read from storage: refreshed per scrape, then rendered with the
        # gauges registered once in ``WebMetrics`` (which read the node's live state).
        stored["companies"] = dict(await s.storage.companies.count_by_status())
        stored["outbox_backlog"] = await s.storage.outbox.backlog()
        stored["inbox_pending"] = await s.storage.inbox.pending_count()
    except StorageError:
        stored.update(companies={}, outbox_backlog=-1, inbox_pending=-1)
    except Exception as exc:  # a bug in a storage read: counted and shown like a failed gauge
        s.node.metrics.record_scrape_error("storage", exc)
        stored.update(companies={}, outbox_backlog=-1, inbox_pending=-1)
    # render() never raises: a collector that does is left out and counted (metrics/).
    return Response(s.node.metrics.render(), content_type=METRICS_CONTENT_TYPE)
