"""Sessions in child processes ("session hosts"), so a Go panic kills a host, not the server.

:class:`HostedGateway` implements the gateway interface in the main process. Placement: a
session is placed on ``start()`` (or ``logout()``) on the first ready host with room (at most
``per_host`` sessions each), else it waits for a host that is starting, else a new host is
started; ``min_hosts`` hosts are started with the gateway. A stopped session leaves its host.

Supervision: each host runs in a loop: spawn ``python -m actors.whatsapp.host``, say
``hello``, serve; when the process dies, every command in flight on it raises
:class:`HostCrashed` (outcome unknown: resend with the same message id), every session on it
gets ``SessionLost`` and becomes unplaced (the session object stays usable: call ``start()``
again), and the host is restarted after a capped exponential backoff (``runtime.Backoff``:
the supervisor limits' ``backoff_initial`` doubling up to ``backoff_max``, ± 25 %, drawn from the
gateway's injected ``random.Random``) that resets after ``stable_after`` seconds of good
running. ``snapshot()`` shows each host's pid, state, sessions and restarts.

Backpressure: a host sends a session's events only with credit (:data:`WIRE_WINDOW` in flight);
the session grants it back as events enter its buffer, so a session whose reader lags makes
its host wait (and the host's backend, down to WhatsApp), while the pipe keeps carrying the
other sessions' events and every reply. Nothing is dropped.

Shutdown (``aclose``): stop every session within the deadline, close each host's stdin (the
host stops its sessions and exits), then kill what is left.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from config import SupervisorLimits
from runtime import Backoff, Jitter

from ._errors import (
    BackendUnavailable,
    CommandTimeout,
    HostCrashed,
    PairingUnavailable,
    SessionNotConnected,
    WhatsAppError,
)
from ._events import SessionEvent, SessionLost, event_from_dict
from ._rpc import FrameStream, PeerLost, RpcPeer
from ._session import (
    WIRE_CREDIT_BATCH,
    GatewaySnapshot,
    HostSnapshot,
    SessionBase,
    SessionSnapshot,
    SessionState,
)

if TYPE_CHECKING:
    from ._world import SimulatedWorld

log = logging.getLogger(__name__)

#: Host restart delays are spread ± this fraction (``Jitter.SPREAD``), capped at ``backoff_max``.
HOST_RESTART_JITTER = 0.25

_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class HostedSession(SessionBase):
    """A session whose backend runs in a session host; same contract as every session."""

    def __init__(self, gateway: HostedGateway, sid: int, company_id: int, jid: str | None) -> None:
        super().__init__(company_id, gateway._spawn)
        self._gateway = gateway
        self._sid = sid
        self._jid = jid
        self._host: _Host | None = None
        self._credit = 0  # events taken into the buffer, not yet granted back to the host

    def _from_host(self, event: SessionEvent) -> None:
        """An event from the host: into the buffer (credit back) or the overflow."""
        if self._emit(event):
            self._taken()

    def _taken(self) -> None:
        self._credit += 1
        host = self._host
        if self._credit >= WIRE_CREDIT_BATCH and host is not None:
            host.notify({"sid": self._sid, "credit": self._credit})
            self._credit = 0

    @property
    def host_pid(self) -> int | None:
        """The pid of the host running this session, if placed."""
        return self._host.pid if self._host is not None else None

    async def _call(self, op: str, **args: Any) -> Any:
        host = self._host
        if host is None:
            raise SessionNotConnected(self._company_id, self._state.value)
        return await host.call(op, {"sid": self._sid, **args}, self._gateway.command_timeout)

    async def _ensure_placed(self) -> None:
        if self._state is SessionState.CLOSED:
            raise BackendUnavailable("this session is closed")
        self._gateway._check_open()
        if self._host is None:
            await self._gateway._place(self, self._jid)

    async def start(self) -> None:
        """Place the session on a host (if needed) and start it there."""
        await self._ensure_placed()
        if self._state is SessionState.IDLE:
            self._state = SessionState.CONNECTING
        try:
            await self._call("start")
        except BaseException:
            if self._state is SessionState.CONNECTING:
                self._state = SessionState.IDLE
            raise

    async def send_text(self, to_phone: str, text: str, message_id: str) -> str:
        """Send through the host; ``HostCrashed``/``CommandTimeout`` mean: resend, same id."""
        if self._host is None or self._state is not SessionState.CONNECTED:
            raise SessionNotConnected(self._company_id, self._state.value)
        return str(await self._call("send", to_phone=to_phone, text=text, message_id=message_id))

    async def pair_phone(self, phone: str) -> str:
        """A pairing code from the session on its host (only while linking)."""
        if self._host is None:
            raise PairingUnavailable(self._company_id, f"session is {self._state.value}")
        return str(await self._call("pair", phone=phone))

    async def logout(self) -> None:
        """Unlink and drop credentials (placing the session on a host to do it)."""
        await self._ensure_placed()
        try:
            await self._call("logout")
        finally:
            await self._leave_host()

    async def stop(self) -> None:
        """Stop the session on its host (credentials kept) and leave the host."""
        if self._host is None:
            return
        try:
            await self._call("stop")
        except (HostCrashed, CommandTimeout, SessionNotConnected):
            pass
        finally:
            await self._leave_host()

    async def _leave_host(self) -> None:
        host, self._host = self._host, None
        if self._state is not SessionState.CLOSED:
            self._state = SessionState.IDLE
        if host is None:
            return
        host.sessions.pop(self._sid, None)
        try:
            with trio.CancelScope(shield=True):
                await host.call("close", {"sid": self._sid}, self._gateway.command_timeout)
        except WhatsAppError:
            pass

    def _lost(self, reason: str) -> None:
        self._host = None
        self._emit(SessionLost(reason))

    async def aclose(self) -> None:
        """Stop, leave the host and release the session; ``events`` ends."""
        await self.stop()
        self._gateway._sessions.pop(self._sid, None)
        self._close_events()

    def snapshot(self) -> SessionSnapshot:
        base = super().snapshot()
        return SessionSnapshot(base.company_id, base.state, base.queued_events, self.host_pid)


class _Host:
    """One supervised host slot: its process comes and goes, the slot stays."""

    def __init__(self, gateway: HostedGateway, index: int) -> None:
        self.gateway = gateway
        self.index = index
        self.state = "starting"
        self.pid: int | None = None
        self.restarts = 0
        self.last_exit: str | None = None
        self.sessions: dict[int, HostedSession] = {}
        self._peer: RpcPeer | None = None
        self._changed = trio.Event()
        self._backoff_scope: trio.CancelScope | None = None

    @property
    def ready(self) -> bool:
        return self.state == "ready" and self._peer is not None and not self._peer.lost

    @property
    def has_room(self) -> bool:
        return len(self.sessions) < self.gateway.per_host

    def _set_state(self, state: str) -> None:
        self.state = state
        self._changed.set()
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        await self._changed.wait()

    async def call(self, op: str, args: dict[str, Any], timeout: float) -> Any:
        peer = self._peer
        if peer is None or peer.lost:
            raise HostCrashed(self.pid, "the host is not running")
        try:
            return await peer.call(op, args, timeout=timeout)
        except PeerLost:
            raise HostCrashed(self.pid, f"lost during {op!r}") from None
        except trio.TooSlowError:
            raise CommandTimeout(op, timeout) from None

    async def run(self) -> None:
        """Keep a host process alive until the gateway closes (restart with backoff)."""
        limits = self.gateway.limits
        backoff = Backoff(
            limits.backoff_initial, limits.backoff_max, HOST_RESTART_JITTER, Jitter.SPREAD
        )
        attempt = 0  # restarts since the host last ran stably
        while not self.gateway.closing:
            started = trio.current_time()
            await self._run_once()
            if self.gateway.closing:
                break
            if trio.current_time() - started >= limits.stable_after:
                attempt = 0
            attempt += 1
            delay = backoff.delay(attempt, self.gateway.rng)
            self._set_state("backoff")
            log.warning(
                "session host %d (pid %s) ended: %s; restarting in %.2f s",
                self.index,
                self.pid,
                self.last_exit,
                delay,
            )
            with trio.CancelScope() as self._backoff_scope:
                await trio.sleep(delay)
            self._backoff_scope = None
            self.restarts += 1
        self._set_state("stopped")

    async def _run_once(self) -> None:
        self._set_state("starting")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PROJECT_ROOT, env.get("PYTHONPATH", "")) if p
        )
        try:
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "actors.whatsapp.host"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            self.last_exit = f"could not start: {exc}"
            return
        assert proc.stdout is not None and proc.stdin is not None
        self.pid = proc.pid
        peer = RpcPeer(
            FrameStream(proc.stdout, proc.stdin), on_note=self._on_note, name=f"host-{self.index}"
        )
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(peer.run)
                self._peer = peer
                try:
                    hello = await peer.call(
                        "hello", {"config": self.gateway.host_config}, timeout=30
                    )
                    problem = hello.get("problem") if isinstance(hello, dict) else None
                    self.gateway.note_problem(self.index, problem)
                except (PeerLost, trio.TooSlowError, WhatsAppError) as exc:
                    log.error("session host %d failed to start: %s", self.index, exc)
                    nursery.cancel_scope.cancel()
                    return
                self._set_state("ready")
                await peer.closed.wait()
                nursery.cancel_scope.cancel()
        finally:
            self._peer = None
            with trio.CancelScope(shield=True):
                with trio.move_on_after(5):
                    await proc.wait()
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                self.last_exit = _describe_exit(proc.returncode)
                lost, self.sessions = self.sessions, {}
                for session in lost.values():
                    session._lost(f"session host pid {proc.pid} died ({self.last_exit})")

    def _on_note(self, note: dict[str, Any]) -> None:
        session = self.sessions.get(int(note.get("sid", -1)))
        if session is None:
            return
        try:
            session._from_host(event_from_dict(note["event"]))
        except (KeyError, ValueError) as exc:
            log.error("session host %d sent a bad event: %s", self.index, exc)

    def notify(self, note: dict[str, Any]) -> None:
        """Send a one-way note to the host (dropped if it is not running)."""
        peer = self._peer
        if peer is not None and not peer.lost:
            peer.notify_nowait(note)

    async def close(self) -> None:
        """Close the host's stdin: it stops its sessions and exits."""
        if self._backoff_scope is not None:
            self._backoff_scope.cancel()
        peer = self._peer
        if peer is not None:
            await peer.aclose()

    def snapshot(self) -> HostSnapshot:
        return HostSnapshot(
            index=self.index,
            pid=self.pid,
            state=self.state,
            sessions=len(self.sessions),
            capacity=self.gateway.per_host,
            restarts=self.restarts,
            last_exit=self.last_exit,
        )


class HostedGateway:
    """The gateway whose sessions run in supervised session hosts (see module docstring).

    ``host_config`` tells each host which backend to build (``{"backend": "simulated",
    "world_path": ...}`` or ``{"backend": "neonize", "sessions_path": ...}``).
    """

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        backend: str,
        host_config: Mapping[str, Any],
        per_host: int = 50,
        min_hosts: int = 1,
        limits: SupervisorLimits | None = None,
        command_timeout: float = 30.0,
        place_timeout: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self._nursery = nursery
        self.backend = backend
        self.host_config = {**host_config, "backend": backend}
        self.per_host = per_host
        self.limits = limits or SupervisorLimits()
        self.rng = rng if rng is not None else random.Random()  # host restart jitter
        self.command_timeout = command_timeout
        self.place_timeout = place_timeout
        self.closing = False
        self._problems: dict[int, str] = {}  # host index → why its backend cannot work
        self.world: SimulatedWorld | None = None  # set by open_gateway for the simulated backend
        self._hosts: list[_Host] = []
        self._sessions: dict[int, HostedSession] = {}
        self._sids = itertools.count(1)
        for _ in range(min_hosts):
            self._add_host()

    def _add_host(self) -> _Host:
        host = _Host(self, len(self._hosts))
        self._hosts.append(host)
        self._nursery.start_soon(host.run)
        return host

    def _check_open(self) -> None:
        if self.closing:
            raise BackendUnavailable("the WhatsApp gateway is closed")

    def _spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run a session's background task (its event drain) in the gateway's nursery."""
        self._nursery.start_soon(fn)

    async def _place(self, session: HostedSession, jid: str | None) -> None:
        try:
            with trio.fail_after(self.place_timeout):
                while True:
                    self._check_open()
                    host = next((h for h in self._hosts if h.ready and h.has_room), None)
                    if host is not None:
                        break
                    waiting = next(
                        (h for h in self._hosts if h.state != "ready" and h.has_room), None
                    )
                    if waiting is None:
                        waiting = self._add_host()
                    await waiting.wait_changed()
        except trio.TooSlowError:
            raise BackendUnavailable(
                f"no session host became ready within {self.place_timeout:g} s"
            ) from None
        host.sessions[session._sid] = session
        session._host = host
        session._credit = 0  # the host opens the session with a full window
        try:
            await host.call(
                "open",
                {"sid": session._sid, "company_id": session.company_id, "jid": jid},
                self.command_timeout,
            )
        except BaseException:
            host.sessions.pop(session._sid, None)
            session._host = None
            raise

    def open_session(self, company_id: int, *, jid: str | None = None) -> HostedSession:
        """A new idle session; it is placed on a host when started."""
        self._check_open()
        sid = next(self._sids)
        session = HostedSession(self, sid, company_id, jid)
        self._sessions[sid] = session
        return session

    @property
    def problem(self) -> str | None:
        """Why the backend cannot work in some host (naming the fix), or ``None``."""
        return next(iter(self._problems.values()), None)

    def note_problem(self, host: int, problem: str | None) -> None:
        """Host ``host`` said whether its backend can work (logged when that changes)."""
        if problem is None:
            self._problems.pop(host, None)
        elif self._problems.get(host) != problem:
            log.error(
                "WhatsApp backend %s cannot work in session host %d: %s",
                self.backend,
                host,
                problem,
            )
            self._problems[host] = problem

    def ping(self) -> bool:
        """Healthy: open, the backend can work, and every host is ready or starting."""
        if self.closing or self.problem is not None:
            return False
        return all(h.state in ("ready", "starting") for h in self._hosts)

    def snapshot(self) -> GatewaySnapshot:
        """Backend, health, open sessions, and each host's pid, state, sessions, restarts."""
        return GatewaySnapshot(
            backend=f"{self.backend}+hosts",
            healthy=self.ping(),
            sessions=len(self._sessions),
            hosts=tuple(h.snapshot() for h in self._hosts),
            problem=self.problem,
        )

    async def aclose(self) -> None:
        """Stop every session and every host within about 15 s. Idempotent."""
        if self.closing:
            return
        with trio.CancelScope(shield=True):
            with trio.move_on_after(10):
                for session in list(self._sessions.values()):
                    await session.aclose()
            self.closing = True
            for host in self._hosts:
                await host.close()
            with trio.move_on_after(5):
                for host in self._hosts:
                    while host.state != "stopped":
                        await host.wait_changed()
