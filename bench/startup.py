"""How soon a real ``aiadmin serve`` listens with many linked salons, beside an empty database.

    .venv/bin/python bench/startup.py [--salons 10000] [--rounds 3] [--quick]

``startup_to_listen_seconds``: a throwaway PostgreSQL database (migrated) and a throwaway
Redis key prefix; ``--salons`` salons stored as a stopped node leaves them (WhatsApp linked:
``active``, a device, connected). ``aiadmin serve`` is spawned as a subprocess on loopback
(simulated WhatsApp, no YClients) and timed from the spawn to the first ``GET /health``
answering 200 (polled every 10 ms on a fresh connection). Baseline: the same with no salon
stored, same run. Rounds alternate (empty, linked) on fresh databases; the medians are
printed, and for the linked rounds the ``/health/ready`` progress seen at listen time and the
seconds until it answered 200 (the background restore done).

``last_salon_status_at_listen_ms``: ``GET /marketplace/status/{id}`` (admin key) of the last
salon in the restore's order, sent as soon as ``/health`` answered: a salon asked for first
is activated by that request, not in its turn.

The simulated WhatsApp keeps its devices in process, so the restored actors of a new process
find no credentials for the stored devices (each salon is then marked logged out and must
link again): the restore does the storage work of a real one, not the reconnects.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

# ``python bench/startup.py`` puts ``bench/`` first on sys.path, where ``bench/http.py`` would
# shadow the standard library's ``http`` (httpx imports it): the repository root instead.
if Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench._server import free_port, serve_env
from storage import Storage, open_storage
from tests.support.databases import REDIS_URL, delete_redis_prefix, new_redis_prefix, temp_database

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "adm_bench_startup_0123456789abcdef"
FIRST_SALON = 300_000
#: How long a server may take to listen, and its restore to end, before the bench gives up.
LISTEN_LIMIT = 120.0
RESTORE_LIMIT = 900.0
POLL = 0.01


@dataclass(frozen=True)
class Startup:
    """One spawn: seconds to the first ``/health`` 200, the restore's progress then, and
    seconds to the first ``/health/ready`` 200 (``None`` if not waited for)."""

    salons: int
    listen: float
    progress_at_listen: dict[str, Any]
    ready: float | None
    #: Milliseconds of one ``GET /marketplace/status/{id}`` of the last salon in the restore's
    #: order, sent as soon as the server listened (``None`` without salons).
    last_salon_status_ms: float | None = None
    #: WARNING and ERROR lines the server logged (the first one, if any).
    problems: int = 0
    first_problem: str | None = None


async def seed_linked(storage: Storage, n: int, concurrency: int = 32) -> list[int]:
    """``n`` salons stored linked (``active``, a device, connected), ``concurrency`` at once;
    their company ids, ascending."""
    pending = iter(range(n))
    ids: list[int] = []

    async def worker() -> None:
        for i in pending:
            created = await storage.companies.create(FIRST_SALON + i, title=f"Салон {i}")
            phone = f"7900{i:07d}"
            ids.append(created.company.id)
            await storage.companies.transition(
                created.company.id,
                ["pending"],
                "active",
                whatsapp_jid=f"{phone}:1@s.whatsapp.net",
                whatsapp_phone=phone,
                whatsapp_connected=True,
            )

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    assert len(await storage.companies.list_linked()) == n
    return sorted(ids)


async def startup(salons: int) -> Startup:
    """A fresh database with ``salons`` linked salons; one ``aiadmin serve`` timed on it."""
    prefix = new_redis_prefix("bench-startup")
    try:
        async with temp_database() as database_url:
            if salons:
                async with open_storage(
                    database_url=database_url, redis_url=REDIS_URL, redis_prefix=prefix
                ) as storage:
                    ids = await seed_linked(storage, salons)
            last = ids[-1] if salons else None
            with tempfile.TemporaryDirectory(prefix="aiadmin-bench-startup-") as workdir:
                return await _timed_serve(database_url, prefix, Path(workdir), salons, last)
    finally:
        with trio.CancelScope(shield=True):
            await delete_redis_prefix(prefix)


async def _timed_serve(
    database_url: str, prefix: str, workdir: Path, salons: int, last: int | None
) -> Startup:
    port = free_port()
    env = serve_env(database_url, prefix, port, ADMIN_KEY, "startup")
    executable = Path(sys.executable).with_name("aiadmin")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "web.cli"]
    log_path = workdir / "server.log"
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        spawned = time.perf_counter()
        process = await trio.lowlevel.open_process(
            [*command, "serve"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        # a fresh connection per poll: a refused connect is cheap, and nothing is pooled
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as http:
            with trio.fail_after(LISTEN_LIMIT):
                while True:
                    if process.poll() is not None:
                        raise RuntimeError("aiadmin serve exited")
                    try:
                        if (await http.get("/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await trio.sleep(POLL)
            listen = time.perf_counter() - spawned
            body = (await http.get("/health/ready")).json()
            progress = body.get("restore", {})
            status_ms = None
            if last is not None:
                asked = time.perf_counter()
                status = await http.get(
                    f"/marketplace/status/{last}", headers={"X-API-Key": ADMIN_KEY}
                )
                status_ms = (time.perf_counter() - asked) * 1000
                if status.status_code != 200:
                    raise RuntimeError(f"status of {last}: {status.status_code} {status.text}")
            with trio.fail_after(RESTORE_LIMIT):
                while True:  # the server is polled over HTTP: no event to wait on here
                    if (await http.get("/health/ready")).status_code == 200:
                        break
                    await trio.sleep(0.1)
            ready = time.perf_counter() - spawned
        problems = [
            line
            for line in log_path.read_text().splitlines()
            if " WARNING " in line or " ERROR " in line or "Traceback" in line
        ]
        first = problems[0] if problems else None
        return Startup(salons, listen, progress, ready, status_ms, len(problems), first)
    except BaseException:
        print("aiadmin serve's log (tail):\n" + log_path.read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        process.terminate()
        with trio.move_on_after(30):
            await process.wait()
        if process.poll() is None:
            process.kill()
            await process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--salons", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="300 salons, one round")
    args = parser.parse_args()
    if args.quick:
        args.salons, args.rounds = 300, 1
    empty: list[Startup] = []
    linked: list[Startup] = []
    for round_ in range(args.rounds):
        empty.append(trio.run(startup, 0))
        linked.append(trio.run(startup, args.salons))
        e, f = empty[-1], linked[-1]
        print(
            f"round {round_ + 1}: empty {e.listen:.3f} s; {args.salons:,} linked "
            f"{f.listen:.3f} s (restore then {f.progress_at_listen}; last salon's status then "
            f"{f.last_salon_status_ms:.0f} ms; ready at {f.ready:.1f} s; "
            f"{e.problems + f.problems} warnings/errors logged)",
            flush=True,
        )
        for problem in (e.first_problem, f.first_problem):
            if problem is not None:
                print(f"  first logged problem: {problem}", flush=True)
    ours = statistics.median(s.listen for s in linked)
    base = statistics.median(s.listen for s in empty)
    ready = statistics.median(s.ready or 0.0 for s in linked)
    first_hit = statistics.median(s.last_salon_status_ms or 0.0 for s in linked)
    print(
        f"startup_to_listen_seconds: {ours:.3f} s with {args.salons:,} linked salons "
        f"(baseline: {base:.3f} s with an empty database, same run; difference "
        f"{ours - base:+.3f} s; target: within 1 s of it) — PostgreSQL + Redis, simulated "
        f"WhatsApp, median of {args.rounds}; /health/ready 200 after {ready:.1f} s "
        f"(the background restore)"
    )
    print(
        f"last_salon_status_at_listen_ms: {first_hit:.0f} ms (GET /marketplace/status of the "
        f"last salon in the restore's order, sent once the port answered; median)"
    )


if __name__ == "__main__":
    main()
