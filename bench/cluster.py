"""Three ``aiadmin serve`` processes behind nginx (``scripts/cluster.py``), on loopback over
PostgreSQL + Redis, simulated WhatsApp (one world for the three, served by this process).

    .venv/bin/python bench/cluster.py [--quick]

Each run stores its salons linked (``active``, credentials in the world) on a throwaway
database and Redis prefix, starts the cluster (``AIADMIN_MEMBER_TTL`` 6 s, the default) and
waits until every process's start-up restore is over, then measures:

``renewal_ops_per_second``: Redis commands under the run's key prefix per second while the
cluster idles (no request), sampled with ``MONITOR`` for :data:`SAMPLE_SECONDS`, by command;
once with ``--salons`` (10,000; ``--quick``: 1,000) and once with ``--few`` (1,000;
``--quick``: 100) salons. Ownership costs one heartbeat per process per tick, so the two
figures should match.

``forwarded_status_ratio`` (the ``--few`` run): ``GET /marketplace/status/{id}`` (admin key) of
salons that process 0 owns, :data:`CLIENTS` clients, through an nginx whose only upstreams
are the other processes (every request is forwarded to the owner) divided by an nginx whose
only upstream is process 0; :data:`ROUNDS` alternating windows of :data:`LOAD_SECONDS` each
way (this machine's load drifts; per-round ratios are printed too).

``failover_seconds`` (the ``--few`` run, last): process 0 (the owner of about a third of the
salons) is killed with SIGKILL; the figure is the time from the kill until every one of its
salons is claimed by one of the other two processes (its ``owner:{id}`` claim in Redis, read
every :data:`CLAIM_POLL` s; the winner takes the claim just before it starts the actor).
``failover_status_200_seconds``: meanwhile :data:`PROBE_CLIENTS` clients ask those salons'
status through the cluster's nginx in turn until each answered 200 (a salon is asked again
only after all the others, so this one is as coarse as a round).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import trio

# ``python bench/cluster.py`` puts ``bench/`` first on sys.path, where ``bench/http.py`` would
# shadow the standard library's ``http`` (httpx imports it): the repository root instead.
if Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import coredis
import httpx

from actors.whatsapp import SimulatedWorld
from bench._server import free_port, serve_env
from config._settings import AIADMIN_KEYS
from scripts.cluster import Cluster, open_cluster, spawn_nginx, stop_process, wait_http
from scripts.cluster_world import run_world
from storage import Storage, open_storage
from storage._keys import owner_key
from tests.support.databases import REDIS_URL, delete_redis_prefix, new_redis_prefix, temp_database
from tests.support.startup import link_stored

ADMIN_KEY = "adm_bench_cluster_0123456789abcdef"
FIRST_SALON = 400_000
PROCESSES = 3
SAMPLE_SECONDS = 20.0
LOAD_SECONDS = 5.0
ROUNDS = 4
CLIENTS = 8
PROBE_CLIENTS = 4
CLAIM_POLL = 0.5
RESTORE_LIMIT = 900.0
FAILOVER_LIMIT = 120.0
#: Every limit out of the way of a benchmark that polls from one address.
UNLIMITED = {"AIADMIN_API_RATE_LIMIT": "1000000/60", "AIADMIN_ADMIN_RATE_LIMIT": "1000000/60"}


async def seed(storage: Storage, world: SimulatedWorld, n: int, concurrency: int = 32) -> None:
    """``n`` salons stored linked, their credentials in ``world`` (as a stopped node leaves
    them), ``concurrency`` at once."""
    pending = iter(range(n))

    async def worker() -> None:
        for i in pending:
            created = await storage.companies.create(FIRST_SALON + i, title=f"Салон {i}")
            await link_stored(storage, world, created.company.id, f"7900{i:07d}")

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)


async def wait_restored(cluster: Cluster) -> None:
    """Until every process's ``/health/ready`` is 200 (its start-up restore is over)."""
    async with httpx.AsyncClient(timeout=10) as http:
        with trio.fail_after(RESTORE_LIMIT):
            for member in cluster.members:
                while True:  # polled over HTTP: no event to wait on here
                    if (await http.get(f"{member.base}/health/ready")).status_code == 200:
                        break
                    await trio.sleep(0.5)


async def owned(base: str) -> list[int]:
    """The company ids whose actors run in the process at ``base`` (its supervision tree)."""
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.get(f"{base}/health/tree", headers={"X-API-Key": ADMIN_KEY})
        answer.raise_for_status()
    registry = next(c for c in answer.json()["tree"]["children"] if c["id"] == "companies")
    return [int(c["id"]) for c in registry.get("children", [])]


def _key_shape(key: str, prefix: str) -> str:
    return re.sub(r"[0-9a-f]{32}|\d+", "N", key.removeprefix(prefix))


async def monitor(prefix: str, seconds: float) -> tuple[int, Counter[str]]:
    """Redis commands naming a key under ``prefix`` during ``seconds`` (``MONITOR``), and
    their count by command and key shape (ids as N)."""
    host, port = "127.0.0.1", 6379
    stream = await trio.open_tcp_stream(host, port)
    shapes: Counter[str] = Counter()
    total = 0
    quoted = re.compile(r'"((?:[^"\\]|\\.)*)"')
    async with stream:
        await stream.send_all(b"MONITOR\r\n")
        buffer = b""
        with trio.move_on_after(seconds):
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    break
                buffer += data
                *lines, buffer = buffer.split(b"\r\n")
                for raw in lines:
                    line = raw.decode(errors="replace")
                    if prefix not in line:
                        continue
                    args = quoted.findall(line)
                    if not args:
                        continue
                    total += 1
                    key = next((a for a in args[1:] if a.startswith(prefix)), "")
                    shapes[f"{args[0].upper()} {_key_shape(key, prefix)}"] += 1
    return total, shapes


async def status_load(base: str, ids: Sequence[int], seconds: float) -> tuple[float, Counter[int]]:
    """Requests per second of ``GET /marketplace/status/{id}`` (ids in turn) by
    :data:`CLIENTS` clients for ``seconds``, and the statuses answered."""
    statuses: Counter[int] = Counter()
    done = 0
    started = time.perf_counter()
    deadline = trio.current_time() + seconds

    async def client(offset: int) -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            i = offset
            while trio.current_time() < deadline:
                answer = await http.get(
                    f"/marketplace/status/{ids[i % len(ids)]}", headers={"X-API-Key": ADMIN_KEY}
                )
                statuses[answer.status_code] += 1
                done += 1
                i += CLIENTS

    async with trio.open_nursery() as nursery:
        for n in range(CLIENTS):
            nursery.start_soon(client, n)
    return done / (time.perf_counter() - started), statuses


async def forwarded_ratio(cluster: Cluster, ids: Sequence[int]) -> None:
    """Status throughput through nginx onto non-owners only, over nginx onto the owner only:
    both nginx instances run at once and the loads alternate, :data:`ROUNDS` windows of
    :data:`LOAD_SECONDS` each way, so the machine's drift hits both sides alike."""
    owner, others = cluster.members[0], cluster.members[1:]
    sides = {
        "owner": [f"127.0.0.1:{owner.port}"],
        "non-owners": [f"127.0.0.1:{m.port}" for m in others],
    }
    bases: dict[str, str] = {}
    spawned = []
    try:
        for name, upstreams in sides.items():
            port = free_port()
            prefix = cluster.workdir / f"nginx-{name}"
            nginx = await spawn_nginx(prefix, port, upstreams)
            spawned.append(nginx)
            bases[name] = f"http://127.0.0.1:{port}"
            await wait_http(f"{bases[name]}/health", nginx, f"nginx ({name})", prefix / "error.log")
            await status_load(bases[name], ids, 2.0)  # warm: actors asked, connections open
        rates: dict[str, list[float]] = {name: [] for name in sides}
        codes: dict[str, Counter[int]] = {name: Counter() for name in sides}
        for _ in range(ROUNDS):
            for name in sides:
                rate, answered = await status_load(bases[name], ids, LOAD_SECONDS)
                rates[name].append(rate)
                codes[name].update(answered)
    finally:
        for nginx in spawned:
            await stop_process(nginx)
    direct = sum(rates["owner"]) / ROUNDS
    forwarded = sum(rates["non-owners"]) / ROUNDS
    per_round = ", ".join(
        f"{f / d:.2f}" for f, d in zip(rates["non-owners"], rates["owner"], strict=True)
    )
    print(
        f"forwarded_status_ratio = {forwarded / direct:.2f}  (non-owners {forwarded:.0f} req/s "
        f"{dict(codes['non-owners'])}, owner {direct:.0f} req/s {dict(codes['owner'])}; per "
        f"round {per_round}; {len(ids)} salons of process 0, {CLIENTS} clients, {ROUNDS} x "
        f"{LOAD_SECONDS:g} s each way, alternating; load average {os.getloadavg()[0]:.1f})",
        flush=True,
    )


async def holders(prefix: str, ids: Sequence[int]) -> list[str | None]:
    """Each company's claim in Redis (``owner:{id}``): the node id holding it, or ``None``."""
    client: coredis.Redis[str] = coredis.Redis.from_url(REDIS_URL, decode_responses=True)
    async with client:
        values = await client.mget([owner_key(prefix, cid) for cid in ids])
    return [None if v is None else str(v) for v in values]


async def failover(
    cluster: Cluster,
    prefix: str,
    ids: Sequence[int],
    killed_node: str | None,
    probe_clients: int = PROBE_CLIENTS,
) -> None:
    """Kill process 0; time until each of its salons is claimed by a survivor, and until each
    answers 200 through nginx.

    The claims are read every :data:`CLAIM_POLL` s (one ``MGET``: cheap, so the measuring
    does not slow the take-over on a 2-core machine); meanwhile
    ``probe_clients`` (:data:`PROBE_CLIENTS`) clients ask the salons' status through nginx in
    turn (a salon not answering 200 yet goes to the back of the line): with few clients the
    figure is bounded by how fast they get round the salons, not by the take-over. Once every
    salon runs elsewhere, the probe goes on until each has answered 200."""
    seen: Counter[int] = Counter()
    answered: dict[int, float] = {}
    line: deque[int] = deque(ids)
    assert killed_node is not None, "process 0's salons hold no claim"
    cluster.members[0].kill()
    killed = time.perf_counter()
    moved_at: list[tuple[float, int]] = []

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=cluster.nginx_base, timeout=10) as http:
            while line:
                cid = line.popleft()
                try:
                    answer = await http.get(
                        f"/marketplace/status/{cid}", headers={"X-API-Key": ADMIN_KEY}
                    )
                    seen[answer.status_code] += 1
                    if answer.status_code == 200:
                        answered[cid] = time.perf_counter() - killed
                        continue
                except httpx.TransportError:
                    seen[0] += 1
                line.append(cid)
                await trio.sleep(0.05)

    async def watch() -> None:
        while True:
            now = await holders(prefix, ids)
            count = sum(1 for h in now if h is not None and h != killed_node)
            moved_at.append((time.perf_counter() - killed, count))
            if count == len(ids):
                return
            await trio.sleep(CLAIM_POLL)

    with trio.fail_after(FAILOVER_LIMIT):
        async with trio.open_nursery() as nursery:
            for _ in range(probe_clients):
                nursery.start_soon(probe)
            nursery.start_soon(watch)
    half = next(t for t, n in moved_at if n >= len(ids) / 2)
    first = next(t for t, n in moved_at if n > 0)
    print(
        f"failover_seconds = {moved_at[-1][0]:.2f}  (every one of the {len(ids)} salons of the "
        f"killed process claimed by a survivor, claims read every {CLAIM_POLL:g} s; the first "
        f"after {first:.2f} s, half after {half:.2f} s; load average "
        f"{os.getloadavg()[0]:.1f})",
        flush=True,
    )
    times = sorted(answered.values())
    print(
        f"failover_status_200_seconds = {times[-1]:.2f}  (each salon's GET /marketplace/status "
        f"through nginx answered 200 once; first {times[0]:.2f} s, median "
        f"{times[len(times) // 2]:.2f} s; {probe_clients} probe requests in flight; statuses "
        f"seen {dict(seen)})",
        flush=True,
    )


async def run(
    salons: int, *, measure_all: bool, extra: dict[str, str], probe_clients: int = PROBE_CLIENTS
) -> None:
    """One cluster over ``salons`` linked salons: renewal ops, and with ``measure_all`` the
    forwarding ratio and the failover."""
    prefix = new_redis_prefix("bench-cluster")
    world = SimulatedWorld()
    try:
        async with (
            temp_database() as database_url,
            trio.open_nursery() as nursery,
        ):
            workdir = Path(await trio.to_thread.run_sync(tempfile.mkdtemp, "", "aiadmin-bcl-"))
            socket_path = str(workdir / "world.sock")
            await nursery.start(run_world, socket_path, free_port(), world)
            started = time.perf_counter()
            async with open_storage(
                database_url=database_url, redis_url=REDIS_URL, redis_prefix=prefix
            ) as storage:
                await seed(storage, world, salons)
            print(f"# {salons:,} linked salons stored in {time.perf_counter() - started:.1f} s")
            env = serve_env(database_url, prefix, 0, ADMIN_KEY, "cluster")
            env |= {k: v for k, v in UNLIMITED.items() if k in AIADMIN_KEYS}
            env |= {"AIADMIN_WHATSAPP_STORE": "postgres", "LOG_LEVEL": "warning"} | extra
            async with open_cluster(
                processes=PROCESSES,
                env=env,
                admin_key=ADMIN_KEY,
                world_socket=socket_path,
                workdir=workdir / "cluster",
            ) as cluster:
                try:
                    started = time.perf_counter()
                    await wait_restored(cluster)
                    print(f"# restored in {time.perf_counter() - started:.1f} s", flush=True)
                    spread = [len(await owned(m.base)) for m in cluster.members]
                    print(f"# salons per process: {spread}", flush=True)
                    await trio.sleep(2.0)  # settle after the restore
                    total, shapes = await monitor(prefix, SAMPLE_SECONDS)
                    print(
                        f"renewal_ops_per_second = {total / SAMPLE_SECONDS:.2f}  ({salons:,} "
                        f"salons, {PROCESSES} processes, idle, {SAMPLE_SECONDS:g} s of MONITOR; "
                        f"{dict(shapes.most_common(8))})",
                        flush=True,
                    )
                    if measure_all:
                        # Process 0's salons: listed in its tree and claimed by it (the tree
                        # may also show a moment's actor of a salon owned elsewhere).
                        listed = await owned(cluster.members[0].base)
                        claims = await holders(prefix, listed)
                        node0 = Counter(claims).most_common(1)[0][0]
                        ids = [c for c, h in zip(listed, claims, strict=True) if h == node0]
                        await forwarded_ratio(cluster, ids)
                        await failover(cluster, prefix, ids, node0, probe_clients)
                except BaseException:
                    print(cluster.logs(), file=sys.stderr)
                    raise
            nursery.cancel_scope.cancel()
        shutil.rmtree(workdir, ignore_errors=True)
    finally:
        with trio.CancelScope(shield=True):
            await delete_redis_prefix(prefix)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--salons", type=int, default=10_000, help="the large run (10,000)")
    parser.add_argument("--few", type=int, default=1_000, help="the small run (1,000)")
    parser.add_argument("--quick", action="store_true", help="1,000 and 100 salons")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for every process (e.g. AIADMIN_RESTORE_CONCURRENCY=32); repeat",
    )
    parser.add_argument(
        "--probe-clients",
        type=int,
        default=PROBE_CLIENTS,
        help=f"failover_status_200_seconds: status requests in flight ({PROBE_CLIENTS})",
    )
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    if args.quick:
        args.salons, args.few = 1_000, 100
    print(
        f"# bench/cluster.py: {PROCESSES} aiadmin serve processes behind nginx, PostgreSQL + "
        "Redis on loopback, simulated WhatsApp"
    )
    if extra:
        print(f"# settings: {extra}")
    trio.run(
        partial(run, args.few, measure_all=True, extra=extra, probe_clients=args.probe_clients)
    )
    if args.salons:  # --salons 0: the small run only
        trio.run(partial(run, args.salons, measure_all=False, extra=extra))


if __name__ == "__main__":
    main()
