"""One simulated WhatsApp for every process of a local cluster (development and tests only).

Each ``aiadmin serve`` with ``WHATSAPP_PROVIDER=simulated`` builds its own simulated world, so
a salon linked in one process would be unknown to the process that takes it over. With
``AIADMIN_SIMULATED_WORLD=<socket>`` the processes' sessions connect to this one world instead
(like real sessions to WhatsApp's servers), and it outlives a killed process: credentials,
queued inbound messages and every delivered outbound message stay here.

    python scripts/cluster_world.py --socket /tmp/x/world.sock --port 3990

serves the world on the Unix socket and its phones on loopback HTTP (no authentication; it
binds 127.0.0.1 only), and prints ``ready`` once both listen:

=====================================  ===========================================
``GET  /world/{company}``              ``{linked, connected, live_qr, send_attempts}``
``POST /world/{company}/scan``         the phone scans the live QR (409 without one)
``POST /world/{company}/inbound``      ``{phone, text}``: a client writes; ``{message_id}``
``GET  /world/{company}/delivered``    outbound messages WhatsApp accepted, once per id
=====================================  ===========================================

The processes' own ``/dev/simulator`` routes answer 404 with a shared world (they drive the
in-process one): use these instead.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from quart import jsonify, request
from quart_trio import QuartTrio

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the repository's packages
    sys.path.insert(0, str(ROOT))

from actors.whatsapp import SimulatedWorld, WorldError, serve_world  # noqa: E402


def world_app(world: SimulatedWorld) -> QuartTrio:
    """The phones of ``world`` over HTTP (see the module docstring)."""
    app = QuartTrio("aiadmin-world")

    def problem(status: int, message: str) -> Any:
        return jsonify({"success": False, "error": message}), status

    @app.get("/world/<int:company_id>")
    async def company(company_id: int) -> Any:
        return jsonify(
            {
                "company_id": company_id,
                "linked": world.linked_jid(company_id) is not None,
                "connected": world.is_connected(company_id),
                "live_qr": world.live_qr(company_id),
                "send_attempts": world.send_attempts(company_id),
            }
        )

    @app.post("/world/<int:company_id>/scan")
    async def scan(company_id: int) -> Any:
        try:
            jid = world.scan(company_id)
        except WorldError as exc:
            return problem(409, str(exc))
        return jsonify({"success": True, "jid": jid})

    @app.post("/world/<int:company_id>/inbound")
    async def inbound(company_id: int) -> Any:
        body = await request.get_json(silent=True)
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) for k in ("phone", "text")
        ):
            return problem(400, "send a JSON object with string fields phone and text")
        try:
            message_id = world.send_inbound(company_id, body["phone"], body["text"])
        except (WorldError, ValueError) as exc:
            return problem(409, str(exc))
        return jsonify({"success": True, "message_id": message_id})

    @app.get("/world/<int:company_id>/delivered")
    async def delivered(company_id: int) -> Any:
        return jsonify(
            {
                "messages": [
                    {"message_id": m.message_id, "to": m.to_phone, "text": m.text}
                    for m in world.delivered(company_id)
                ]
            }
        )

    return app


async def run_world(
    socket_path: str,
    port: int,
    world: SimulatedWorld | None = None,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``world`` (default: a new one) on ``socket_path`` and its phones on
    ``127.0.0.1:port`` until cancelled; ``started()`` once both listen."""
    world = world or SimulatedWorld()
    config = HypercornConfig()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    config.graceful_timeout = 0.5
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_world, world, socket_path)
        await nursery.start(hypercorn_serve, world_app(world), config)
        task_status.started()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--socket", required=True, help="the Unix socket the sessions reach")
    parser.add_argument("--port", type=int, required=True, help="loopback HTTP port (phones)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(run_world, args.socket, args.port)
            print("ready", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(serve)


if __name__ == "__main__":
    main()
