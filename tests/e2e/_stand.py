"""The acceptance stands: the fake YClients serving a catalog, our server for real, and the
dialogues played through the simulated WhatsApp.

:func:`play` runs in one ``trio.run`` a few stands at once (``_stand_plan.py`` deals the
salons out; each stand is its own partner, with its own limit). A stand is the fake YClients
(``running_fake_yclients(catalog=)``, the same loader as ``--catalog``, with YClients' 5/s and
200/min) and ``web.server.serve`` on loopback sockets, on a throwaway PostgreSQL database and
Redis key prefix (so our client's shared limiter is the stand's own), in development with the
simulated WhatsApp, ``AIADMIN_ASSISTANT_WAIT=0.4`` and ``AIADMIN_SEND_MIN_GAP=0``. Each salon
is registered, linked (WebSocket ``request-qr``, ``POST /dev/simulator/{id}/scan``) and synced
(``POST /marketplace/sync/{id}`` until ``sync.last_success_at``). Then the dialogues play:
one salon's in file order, one after another (so each dialogue's changes in YClients are its
own), the salons at the same time. Everything goes through HTTP, as a client's phone and the
salon would: ``POST /dev/simulator/{id}/inbound``, ``GET /dev/simulator/{id}/chat?phone=P``,
``GET /marketplace/conversations/{id}?phone=P``.

Nothing waits unbounded: a reply within :data:`REPLY_TIMEOUT`, setting up within its own
timeouts, and each stand as a whole within :attr:`StandPlan.bound` (``trio.fail_after``); a
stand that overruns or fails tells each dialogue it did not finish why, with what it played.
"""

from __future__ import annotations

import copy
import json
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import trio
from trio_websocket import open_websocket_url

from actors import normalise_phone
from config import Settings, settings_from_env
from tests.fakes.yclients import APPLICATION_ID, PARTNER_TOKEN, FakeYClients, running_fake_yclients
from tests.support.databases import REDIS_URL, delete_redis_prefix, new_redis_prefix, temp_database
from web.server import ServerInfo, serve

from ._dialogues import Dialogue, DialogueSet, Turn, render
from ._expectations import Exchange, Played
from ._stand_plan import DEFAULT_STANDS, StandPlan, plan_stands

ADMIN_KEY = "adm_dialogues_0123456789abcdef"
JWT_SECRET = "dialogues-jwt-secret-0123456789abcdef-0123"
ASSISTANT_WAIT = 0.4
#: How long a client waits for the assistant's first reply to a turn (and at most how long a
#: reply may go on). Generous: a stand's salons share one partner limit (about 3 calls a
#: second), so a turn that needs several calls may wait behind the other salons'.
REPLY_TIMEOUT = 25.0
#: A reply is complete once the chat has been quiet this long (a reply may be several messages).
QUIET = 0.5
#: How long to watch for a reply that may not come (``reply_optional``, ``silent``, staff turns).
SILENCE = 3.0
#: How often the chat is read while a reply is awaited.
POLL = 0.1
START_TIMEOUT = 30.0
LINK_TIMEOUT = 30.0
SYNC_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0


class StandError(Exception):
    """The stand could not be set up (a salon not linked or not synced in time)."""


@dataclass(frozen=True)
class Salon:
    """A catalog salon as registered with our server."""

    salon_id: int
    company_id: int
    zone: ZoneInfo
    phones: Mapping[int, str]  # catalog client id -> canonical phone


@dataclass
class Stand:
    fake: FakeYClients
    http: httpx.AsyncClient
    base_url: str
    now: datetime

    @property
    def admin(self) -> dict[str, str]:
        return {"X-API-Key": ADMIN_KEY}


#: Run for each salon once it is linked and synced, before its dialogues play.
SalonSetup = Callable[[Stand, Salon], Awaitable[None]]
#: Run on a stand once all its dialogues have played, before it stops (e.g. to read metrics).
StandDone = Callable[[Stand], Awaitable[None]]


def stand_settings(
    yclients_url: str,
    database_url: str,
    redis_prefix: str,
    extra_env: Mapping[str, str] | None = None,
) -> Settings:
    """Development settings for the stand (built from an explicit environment, no ``.env``;
    ``extra_env`` adds to it, e.g. a language model's API)."""
    env = {
        "AIADMIN_ENV": "development",
        "WHATSAPP_PROVIDER": "simulated",
        "ADMIN_API_KEY": ADMIN_KEY,
        "JWT_SECRET": JWT_SECRET,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "AIADMIN_REDIS_PREFIX": redis_prefix,
        "YCLIENTS_BASE_URL": yclients_url,
        "YCLIENTS_API_KEY": PARTNER_TOKEN,
        "YCLIENTS_APPLICATION_ID": str(APPLICATION_ID),
        "AIADMIN_ASSISTANT_WAIT": str(ASSISTANT_WAIT),
        "AIADMIN_SEND_MIN_GAP": "0",
        # Many clients of one salon in a few minutes, all from one IP: lift the per-salon
        # send cap and the per-IP API and WebSocket limits (not what is tested here).
        "AIADMIN_SEND_PER_MINUTE": "10000",
        "AIADMIN_API_RATE_LIMIT": "100000/60",
        "AIADMIN_WS_RATE_LIMIT": "1000/60",
        **(extra_env or {}),
    }
    settings = settings_from_env(env, dotenv=None)
    return replace(settings, host="127.0.0.1", port=0)


@asynccontextmanager
async def open_stand(
    catalog: Mapping[str, Any], now: datetime, extra_env: Mapping[str, str] | None = None
) -> AsyncIterator[Stand]:
    """The fake YClients on ``catalog`` (relative days counted from ``now``) and our server."""
    prefix = new_redis_prefix("dialogues")
    try:
        async with (
            temp_database() as database_url,
            running_fake_yclients(catalog=catalog, now=now) as fake,
        ):
            settings = stand_settings(fake.base_url, database_url, prefix, extra_env)
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                with trio.fail_after(START_TIMEOUT):
                    info: ServerInfo = await nursery.start(
                        partial(serve, settings, shutdown_trigger=stop.wait)
                    )
                base = next(u for u in info.urls if u.startswith("http://127.0.0.1:"))
                try:
                    async with httpx.AsyncClient(base_url=base, timeout=30.0) as http:
                        yield Stand(fake, http, base, now)
                finally:
                    stop.set()
                    nursery.cancel_scope.deadline = trio.current_time() + STOP_TIMEOUT
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await delete_redis_prefix(prefix)


# -- setting a salon up -----------------------------------------------------------------------


async def link_salon(stand: Stand, salon: Mapping[str, Any]) -> Salon:
    """Register the salon, link its WhatsApp through the connect page's socket, sync it."""
    sid = int(salon["id"])
    http = stand.http
    registered = await http.post(
        "/marketplace/register", json={"salon_id": sid}, headers=stand.admin
    )
    if registered.status_code != 201:
        raise StandError(
            f"salon {sid}: register answered {registered.status_code} {registered.text}"
        )
    body = registered.json()
    cid = int(body["company_id"])
    token = httpx.URL(body["connect_url"]).params["token"]
    ws_url = stand.base_url.replace("http://", "ws://") + "/marketplace/ws"
    with trio.fail_after(LINK_TIMEOUT):
        async with open_websocket_url(ws_url) as ws:
            await ws.send_message(json.dumps({"event": "auth", "data": {"token": token}}))
            await ws.send_message(json.dumps({"event": "request-qr", "data": {}}))
            await _frame(ws, "qr-update")
            scanned = await http.post(f"/dev/simulator/{cid}/scan", headers=stand.admin)
            if scanned.status_code != 200:
                raise StandError(f"salon {sid}: scan answered {scanned.status_code} {scanned.text}")
            await _frame(ws, "whatsapp-connected")
    synced = await http.post(f"/marketplace/sync/{cid}", headers=stand.admin)
    if synced.status_code != 202:
        raise StandError(f"salon {sid}: sync answered {synced.status_code} {synced.text}")
    with trio.move_on_after(SYNC_TIMEOUT):
        while True:
            status = (await http.get(f"/marketplace/status/{cid}", headers=stand.admin)).json()
            if status.get("sync", {}).get("last_success_at"):
                break
            await trio.sleep(0.25)
    if not status.get("sync", {}).get("last_success_at"):
        raise StandError(f"salon {sid}: not synced within {SYNC_TIMEOUT:g} s: {status.get('sync')}")
    phones = {int(c["id"]): normalise_phone(str(c["phone"])) for c in salon.get("clients", [])}
    return Salon(sid, cid, ZoneInfo(str(salon.get("timezone", "Europe/Moscow"))), phones)


async def _frame(ws: Any, event: str) -> dict[str, Any]:
    while True:
        frame = json.loads(await ws.get_message())
        if frame.get("event") == event:
            return dict(frame)
        if frame.get("event") == "error":
            raise StandError(f"the connect socket sent an error: {frame}")


# -- playing ----------------------------------------------------------------------------------


async def play(
    sets: Sequence[DialogueSet],
    selected: Collection[tuple[str, str]] | None = None,
    *,
    stands: int = DEFAULT_STANDS,
    extra_env: Mapping[str, str] | None = None,
    salon_setup: SalonSetup | None = None,
    stand_done: StandDone | None = None,
) -> dict[tuple[str, str], Played]:
    """Play the sets' dialogues (only ``selected`` keys when given) on ``stands`` stands at
    once (:func:`plan_stands` deals the salons out). Never raises for what happens on a stand:
    a stand that cannot be set up, fails or overruns its bound gives each of its dialogues not
    played to the end a :class:`Played` whose errors say so. ``extra_env`` adds to the
    server's settings; ``salon_setup`` runs for each salon once it is linked and synced,
    ``stand_done`` on each stand once its dialogues have played."""
    now = datetime.now(UTC)
    results: dict[tuple[str, str], Played] = {}
    async with trio.open_nursery() as nursery:
        for plan in plan_stands(sets, selected, stands):
            nursery.start_soon(play_stand, plan, now, results, extra_env, salon_setup, stand_done)
    return results


async def play_stand(
    plan: StandPlan,
    now: datetime,
    results: dict[tuple[str, str], Played],
    extra_env: Mapping[str, str] | None = None,
    salon_setup: SalonSetup | None = None,
    stand_done: StandDone | None = None,
) -> None:
    """Set a stand up and play its salons' dialogues, the salons at the same time, each
    salon's in file order; all of it within :attr:`StandPlan.bound`."""
    players: dict[tuple[str, str], DialoguePlayer] = {}
    try:
        with trio.fail_after(plan.bound):
            async with open_stand(plan.catalog, now, extra_env) as stand:
                salons: dict[int, Salon] = {}

                async def link(sid: int) -> None:
                    salons[sid] = await link_salon(stand, plan.salons[sid])
                    if salon_setup is not None:
                        await salon_setup(stand, salons[sid])

                async with trio.open_nursery() as nursery:
                    for sid in plan.chains:
                        nursery.start_soon(link, sid)
                async with trio.open_nursery() as nursery:
                    for sid, chain in plan.chains.items():
                        number = plan.salon_numbers[sid]
                        nursery.start_soon(
                            _play_chain, stand, salons[sid], number, chain, results, players
                        )
                if stand_done is not None:
                    await stand_done(stand)
        return
    except trio.TooSlowError:
        problem = f"{plan.describe()} did not finish within its bound of {plan.bound:g} s"
        detail = ""
    except Exception as exc:  # every dialogue not finished is told, nothing re-raised
        leaves = _leaves(exc)
        problem = f"{plan.describe()} failed: " + "; ".join(
            str(e) if isinstance(e, StandError) else f"{type(e).__name__}: {e}" for e in leaves
        )
        detail = "".join(
            "\n" + "".join(traceback.format_exception(e)).rstrip()
            for e in leaves
            if not isinstance(e, StandError)
        )
    for d in plan.dialogues:
        if d.key in results:
            continue
        player = players.get(d.key)
        if player is not None:
            results[d.key] = player.cut_short(problem, detail)
        else:
            error = f"{problem}; this dialogue was not played{detail}"
            results[d.key] = Played(d, "", errors=[error])


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions a (possibly nested) exception group holds, or ``exc`` itself."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


async def _play_chain(
    stand: Stand,
    salon: Salon,
    number: int,
    chain: Sequence[Dialogue],
    results: dict[tuple[str, str], Played],
    players: dict[tuple[str, str], DialoguePlayer],
) -> None:
    for d in chain:
        phone = salon.phones[d.client_id] if d.client_id is not None else new_phone(number, d.index)
        player = players[d.key] = DialoguePlayer(stand, salon, d, phone)
        results[d.key] = await player.run()


class DialoguePlayer:
    """Plays one dialogue from one phone and collects its :class:`Played`."""

    def __init__(self, stand: Stand, salon: Salon, dialogue: Dialogue, phone: str) -> None:
        self.stand = stand
        self.salon = salon
        self.dialogue = dialogue
        self.phone = phone
        self.seen = 0  # chat lines before this dialogue or already attributed to a turn
        self.staff_texts: list[str] = []
        fake_salon = stand.fake.salons[salon.salon_id]
        today = stand.now.astimezone(salon.zone).date()
        self.burst = [replace(t, text=render(t.text, today)) for t in dialogue.burst]
        self.turns = [replace(t, text=render(t.text, today)) for t in dialogue.turns]
        self.played = Played(
            dialogue,
            phone,
            record_keys=dict(fake_salon.record_keys),
            zone=salon.zone,
            today=today,
        )

    def _snapshot(self) -> dict[int, dict[str, Any]]:
        return {
            int(r["id"]): copy.deepcopy(r) for r in self.stand.fake.all_records(self.salon.salon_id)
        }

    async def run(self) -> Played:
        played = self.played
        played.before = self._snapshot()
        optional = bool(self.dialogue.expect.get("reply_optional"))
        try:
            self.seen = len(await self._chat())
            if self.burst:
                for turn in self.burst:
                    await self._send(turn)
                said = " | ".join(t.describe() for t in self.burst)
                replies = await self._replies(optional)
                played.exchanges.append(Exchange(said, replies))
                if not replies and not optional:
                    raise _NoReply(said)
            for number, turn in enumerate(self.turns, start=1):
                await self._turn(turn, optional, last=number == len(self.turns))
        except _NoReply as exc:
            played.errors.append(
                f"no reply to {exc.args[0]!r} within {REPLY_TIMEOUT:g} s; the dialogue stopped"
            )
        except _NeverQuiet as exc:
            played.errors.append(
                f"the assistant sent {exc.args[0]} messages and kept writing for "
                f"{REPLY_TIMEOUT:g} s after a turn; the dialogue stopped"
            )
        except (httpx.HTTPError, _HttpProblem) as exc:
            played.errors.append(f"the stand failed mid-dialogue: {type(exc).__name__}: {exc}")
        played.after = self._snapshot()
        played.today_at_end = datetime.now(UTC).astimezone(self.salon.zone).date()
        played.mode = await self._mode()
        return played

    def cut_short(self, problem: str, detail: str = "") -> Played:
        """What the dialogue played before its stand stopped (``problem`` says why, ``detail``
        may add a traceback): the exchanges so far and what YClients shows now (the fake's
        records stay readable after it stopped)."""
        played = self.played
        played.after = self._snapshot()
        played.errors.append(f"{problem}; this dialogue was cut short{detail}")
        return played

    async def _turn(self, turn: Turn, optional: bool, *, last: bool) -> None:
        played = self.played
        expect = self.dialogue.expect
        if turn.is_plain_yes and "booked" in expect and set(self._snapshot()) - set(played.before):
            played.exchanges.append(Exchange(turn.describe(), (), skipped=True))
            return
        if turn.kind == "mode":
            await self._post(
                f"/marketplace/conversations/{self.salon.company_id}/mode",
                {"phone": self.phone, "mode": turn.mode},
            )
            played.exchanges.append(Exchange(turn.describe(), (), client_turn=False))
            return
        await self._send(turn)
        if turn.kind == "staff":
            self.staff_texts.append(turn.text)
            replies = await self._replies(True)
            played.exchanges.append(Exchange(turn.describe(), replies, client_turn=False))
            return
        may_be_silent = optional or (last and bool(expect.get("silent")))
        replies = await self._replies(may_be_silent)
        played.exchanges.append(Exchange(turn.describe(), replies))
        if not replies and not may_be_silent:
            raise _NoReply(turn.describe())

    async def _send(self, turn: Turn) -> None:
        cid = self.salon.company_id
        if turn.kind == "staff":
            await self._post(
                f"/dev/simulator/{cid}/staff-message", {"phone": self.phone, "text": turn.text}
            )
        elif turn.kind == "media":
            body = {"phone": self.phone, "kind": turn.media}
            if turn.text:
                body["text"] = turn.text
            await self._post(f"/dev/simulator/{cid}/inbound", body)
        else:
            await self._post(
                f"/dev/simulator/{cid}/inbound", {"phone": self.phone, "text": turn.text}
            )

    async def _replies(self, may_be_silent: bool) -> tuple[str, ...]:
        """The assistant's messages after what was sent: wait for the first (polled every
        :data:`POLL`, bounded), then until no new line has come for :data:`QUIET` since the
        last one was seen (one look when that time is up: a line that came meanwhile starts
        the quiet over, from when it was seen, so the wait is never shorter than polling's)."""
        wait = SILENCE if may_be_silent else REPLY_TIMEOUT
        deadline = trio.current_time() + wait
        lines = await self._chat()
        while not self._outs(lines) and trio.current_time() < deadline:
            await trio.sleep(POLL)
            lines = await self._chat()
        if self._outs(lines):
            seen_at, count = trio.current_time(), len(lines)
            give_up = seen_at + REPLY_TIMEOUT
            while True:
                await trio.sleep_until(seen_at + QUIET)
                lines = await self._chat()
                if len(lines) == count:
                    break
                seen_at, count = trio.current_time(), len(lines)
                if seen_at > give_up:
                    raise _NeverQuiet(len(self._outs(lines)))
        replies = self._outs(lines)
        self.seen = len(lines)
        return tuple(replies)

    def _outs(self, lines: list[dict[str, Any]]) -> list[str]:
        """The assistant's messages among the lines not yet attributed (staff lines left out)."""
        staff = list(self.staff_texts)
        outs: list[str] = []
        for line in lines[self.seen :]:
            if line["direction"] != "out":
                continue
            if line["text"] in staff:
                staff.remove(line["text"])
                continue
            outs.append(str(line["text"]))
        return outs

    async def _chat(self) -> list[dict[str, Any]]:
        response = await self.stand.http.get(
            f"/dev/simulator/{self.salon.company_id}/chat",
            params={"phone": self.phone},
            headers=self.stand.admin,
        )
        if response.status_code != 200:
            raise _HttpProblem(f"GET chat answered {response.status_code}: {response.text[:200]}")
        return list(response.json()["messages"])

    async def _mode(self) -> str | None:
        try:
            response = await self.stand.http.get(
                f"/marketplace/conversations/{self.salon.company_id}",
                params={"phone": self.phone},
                headers=self.stand.admin,
            )
        except httpx.HTTPError as exc:
            self.played.errors.append(f"GET conversation failed: {exc}")
            return None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            self.played.errors.append(f"GET conversation answered {response.status_code}")
            return None
        mode = response.json().get("mode")
        return str(mode) if mode is not None else None

    async def _post(self, path: str, body: dict[str, Any]) -> None:
        response = await self.stand.http.post(path, json=body, headers=self.stand.admin)
        if response.status_code != 200:
            raise _HttpProblem(
                f"POST {path} answered {response.status_code}: {response.text[:200]}"
            )


class _NoReply(Exception):
    """A client turn got no reply in time (``args[0]``: the turn)."""


class _NeverQuiet(Exception):
    """The assistant kept writing for :data:`REPLY_TIMEOUT` after a turn (``args[0]``: how
    many messages by then)."""


class _HttpProblem(Exception):
    """Our server answered a stand request with an unexpected status."""


def new_phone(chain: int, index: int) -> str:
    """A phone no catalog client has: ``7998`` + the salon's chain number + the index."""
    return f"7998{chain:02d}{index:05d}"
