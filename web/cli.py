"""``aiadmin``: serve, migrate, and print the supervision tree.

aiadmin serve [--demo]        the server (``make run`` adds --demo: a demo salon)
aiadmin migrate               apply database migrations (DATABASE_URL)
aiadmin tree --url URL        print the supervision tree of a running server
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from dataclasses import replace

import httpx
import trio

from config import ConfigError, Settings, settings_from_env

from ._logging import configure_logging
from ._tree_text import render_tree


def _settings(demo: bool = False) -> Settings:
    try:
        settings = settings_from_env()
    except ConfigError as exc:
        print("aiadmin: the configuration is not valid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        raise SystemExit(2) from None
    return replace(settings, demo=settings.demo or demo)


def cmd_serve(args: argparse.Namespace) -> int:
    from ._startup import check_redis_at_start, explain_startup_failure
    from .server import serve

    settings = _settings(demo=args.demo)
    configure_logging(settings.log_level, json_lines=settings.production)
    started = False

    async def main() -> None:
        nonlocal started
        await check_redis_at_start(settings)
        async with trio.open_nursery() as nursery:
            info = await nursery.start(serve, settings)
            started = True
            base = settings.public_base_url
            print(f"AI Admin is serving on {', '.join(info.urls)}  ({settings!r})", flush=True)
            if settings.admin_api_key_generated:
                print(f"  admin key (generated for this run): {settings.admin_api_key}", flush=True)
            if info.demo_connect_url:
                print(f"  demo salon connect page: {info.demo_connect_url}", flush=True)
            print(f"  health: {base}/health   tree: {base}/health/tree   api: {base}/openapi.json")

    try:
        with contextlib.suppress(KeyboardInterrupt):
            trio.run(main)
    except Exception as exc:
        # A known reason the server could not start is one line (what, where, what to check)
        # and exit code 1; anything else, or a failure once serving, keeps its traceback.
        line = None if started else explain_startup_failure(exc, settings)
        if line is None:
            raise
        print(f"aiadmin: {line}", file=sys.stderr)
        return 1
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    configure_logging(settings.log_level, json_lines=settings.production)
    if not settings.database_url:
        print("aiadmin migrate: DATABASE_URL is not set", file=sys.stderr)
        return 2
    import trio_asyncio

    from storage import migrate

    async def run(url: str) -> list[str]:
        async with trio_asyncio.open_loop():
            return await migrate(url)

    try:
        applied = trio.run(run, settings.database_url)
    except Exception as exc:
        from ._startup import explain_startup_failure

        line = explain_startup_failure(exc, settings)
        if line is None:
            raise
        print(f"aiadmin migrate: {line}", file=sys.stderr)
        return 1
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def cmd_tree(args: argparse.Namespace) -> int:
    key = args.admin_key or os.environ.get("ADMIN_API_KEY", "")
    url = args.url.rstrip("/") + "/health/tree"
    try:
        response = httpx.get(url, headers={"X-API-Key": key}, timeout=10.0)
    except httpx.HTTPError as exc:
        print(f"aiadmin tree: cannot reach {args.url}: {type(exc).__name__}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"aiadmin tree: {url} answered {response.status_code}", file=sys.stderr)
        return 1
    tree = response.json()["tree"]
    print(json.dumps(tree, indent=2, ensure_ascii=False) if args.json else render_tree(tree))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aiadmin", description="AI Admin server and tools")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--demo", action="store_true", help="register a demo salon at start")
    serve.set_defaults(func=cmd_serve)
    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=cmd_migrate)
    tree = sub.add_parser("tree", help="print the supervision tree of a running server")
    tree.add_argument("--url", required=True, help="the server's base URL")
    tree.add_argument("--admin-key", help="the admin key (default: $ADMIN_API_KEY)")
    tree.add_argument("--json", action="store_true", help="print the raw JSON")
    tree.set_defaults(func=cmd_tree)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
