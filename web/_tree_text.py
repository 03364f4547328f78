"""Render the ``/health/tree`` JSON as an indented text tree for ``aiadmin tree``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def _describe(node: Mapping[str, Any]) -> str:
    parts = [f"{node.get('id', '?')} [{node.get('kind', '?')}] {node.get('state', '?')}"]
    if node.get("restarts"):
        parts.append(f"restarts={node['restarts']}")
    mailbox = node.get("mailbox")
    if isinstance(mailbox, Mapping):
        parts.append(f"mailbox={mailbox.get('depth', 0)}/{mailbox.get('capacity', 0)}")
    if node.get("handled"):
        parts.append(f"handled={node['handled']}")
    if node.get("uptime_seconds") is not None:
        parts.append(f"up={node['uptime_seconds']:.0f}s")
    if node.get("next_restart_in") is not None:
        parts.append(f"next_restart_in={node['next_restart_in']:.1f}s")
    if node.get("stop_timed_out"):
        parts.append("STOP-TIMED-OUT")
    reminders = node.get("reminders")  # the reminder scheduler's figures
    if isinstance(reminders, Mapping):
        parts.append(
            f"backlog={reminders.get('backlog')} next_due={reminders.get('next_due')} "
            f"sent={reminders.get('sent')} skipped={reminders.get('skipped')}"
        )
    error = node.get("last_error")
    if isinstance(error, Mapping):
        parts.append(f"last_error={error.get('type')}: {error.get('message')}")
    return "  ".join(parts)


def _lines(node: Mapping[str, Any], prefix: str, last: bool, root: bool) -> Iterator[str]:
    if root:
        yield _describe(node)
        child_prefix = ""
    else:
        yield prefix + ("└── " if last else "├── ") + _describe(node)
        child_prefix = prefix + ("    " if last else "│   ")
    children = [c for c in node.get("children", []) if isinstance(c, Mapping)]
    for i, child in enumerate(children):
        yield from _lines(child, child_prefix, i == len(children) - 1, False)


def render_tree(tree: Mapping[str, Any]) -> str:
    """One line per node, children indented under their supervisor."""
    return "\n".join(_lines(tree, "", True, True))
