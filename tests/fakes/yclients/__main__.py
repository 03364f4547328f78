"""``python -m tests.fakes.yclients [--catalog FILE] [--port N]``: serve the fake YClients.

Without ``--catalog`` it serves its three built-in salons; with it, exactly the salons of FILE
(the format of ``shared/assistant/catalog.example.json``). The first line on stdout is always
``fake YClients on http://HOST:PORT`` (``--port 0`` picks a free port). Point the server at it
with ``YCLIENTS_BASE_URL`` and ``YCLIENTS_API_KEY`` / ``YCLIENTS_APPLICATION_ID`` set to the
values printed at start. A catalog it cannot read ends it at once with exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
from functools import partial

import trio

from ._app import APPLICATION_ID, PARTNER_TOKEN, YCLIENTS_LIMITS
from ._catalog import CatalogError, load_catalog
from ._server import serve_fake_yclients


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.yclients", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--partner-token", default=PARTNER_TOKEN)
    parser.add_argument("--application-id", type=int, default=APPLICATION_ID)
    parser.add_argument("--user-token", default=None)
    parser.add_argument("--no-rate-limit", action="store_true", help="do not enforce 5/s, 200/min")
    parser.add_argument("--catalog", default=None, help="serve exactly the salons of this file")
    args = parser.parse_args(argv)
    salons = None
    if args.catalog is not None:
        try:
            salons = load_catalog(args.catalog)
        except CatalogError as exc:
            parser.exit(2, f"{parser.prog}: bad catalog: {exc}\n")

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            fake = await nursery.start(
                partial(
                    serve_fake_yclients,
                    args.host,
                    args.port,
                    partner_token=args.partner_token,
                    application_id=args.application_id,
                    user_token=args.user_token,
                    rate_limits=None if args.no_rate_limit else YCLIENTS_LIMITS,
                    salons=salons,
                )
            )
            served = ", ".join(f"{s.id} {s.title}" for s in fake.salons.values())
            print(f"fake YClients on {fake.base_url}", flush=True)
            print(f"  YCLIENTS_BASE_URL={fake.base_url}")
            print(f"  YCLIENTS_APPLICATION_ID={args.application_id}")
            print("  YCLIENTS_API_KEY=<the --partner-token value>")
            print(f"  salons: {served}", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(run)


if __name__ == "__main__":
    main()
