"""Our YClients REST client: httpx on trio, behind the shared rate limiter.

What every call does, in order: take a slot from the rate limiter (waits, never skips), send
one HTTP request with the partner (and user) token and a per-attempt timeout, unwrap
``{success, data, meta}``, and turn anything else into one of our errors (``_errors.py``).

Retries:

- **Reads** (GET) are retried on network errors, timeouts and 5xx, with capped exponential
  backoff and jitter, and on 429 after the ``Retry-After`` YClients asked for.
- **Writes** (POST, PUT, DELETE) are retried only on 429: a 429 proves the request was not
  processed. On a network error, timeout or 5xx a write raises ``YClientsUnavailable`` with
  ``outcome_unknown`` set (unless the connection was never made); the caller (the outbox, for
  the activation callback) decides.
- **Booking** (``book_record``) carries our ``api_id``. When its outcome is unknown the client
  looks for a record with that ``api_id`` before trying again, so it never books twice.

Every attempt takes a rate-limiter slot, retries included. A 429 with a ``Retry-After`` longer
than ``RetryPolicy.max_retry_after`` is raised at once as ``YClientsRateLimited``.

Timeouts apply per attempt; time spent waiting for the limiter is not counted. Wrap a call in
``trio.move_on_after`` for an overall deadline: cancellation is clean at any point.

Logging: method, path, status and duration only. Tokens, API keys and bodies are never
logged, and ``repr(client)`` hides the tokens.
"""

from __future__ import annotations

import email.utils
import enum
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import trio

from runtime import Backoff, Jitter

from ._errors import (
    YClientsAuthError,
    YClientsError,
    YClientsRateLimited,
    YClientsRejected,
    YClientsUnavailable,
)
from ._models import (
    Appointment,
    Attendance,
    BookedRecord,
    SalonDetails,
    SalonService,
    SalonStaff,
    ServiceCategory,
)
from ._ratelimit import YClientsRateLimiter

log = logging.getLogger("actors.yclients")
_T = TypeVar("_T")

ACCEPT = "application/vnd.yclients.v2+json"
API = "/api/v1"
MARKETPLACE = "/marketplace"
_SAFE_METHODS = frozenset({"GET", "HEAD"})
#: Pages read at most when searching records by ``api_id``.
MAX_LOOKUP_PAGES = 20
LOOKUP_PAGE_SIZE = 100


def equal_jitter(initial: float, maximum: float) -> Backoff:
    """Doubling waits from ``initial`` up to ``maximum``, each drawn from ``[d/2, d]`` of the
    doubling delay ``d`` ("equal jitter"): the YClients client, inbox and activation retries."""
    return Backoff(initial, maximum, jitter=0.5, mode=Jitter.BELOW)


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a call gets and how long to wait between them.

    ``attempts`` counts the first try. Backoff before retry *n* (1-based) is a random value in
    ``[d/2, d]`` with ``d = min(backoff_max, backoff_initial * 2**(n-1))`` (:func:`equal_jitter`,
    drawn from the client's injected ``random.Random``). A 429 waits the
    ``Retry-After`` it carries plus up to ``backoff_initial`` of jitter, unless that exceeds
    ``max_retry_after``.
    """

    attempts: int = 3
    backoff_initial: float = 0.25
    backoff_max: float = 5.0
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    @property
    def retry_backoff(self) -> Backoff:
        """The waits between retries (equal jitter)."""
        return equal_jitter(self.backoff_initial, self.backoff_max)

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The wait before retry number ``retry`` (1 for the first retry), drawn from ``rng``."""
        return self.retry_backoff.delay(retry, rng)


class _State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class _Envelope:
    status: int
    data: Any
    meta: dict[str, Any] = field(default_factory=dict)


def _retry_after(headers: httpx.Headers) -> float:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); 1 s if absent."""
    raw = headers.get("retry-after")
    if raw is None:
        return 1.0
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return 1.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_details(payload: Any, fallback: str) -> tuple[str, tuple[int, ...]]:
    """YClients' error message and error codes, from wherever this answer put them."""
    if not isinstance(payload, dict):
        return fallback, ()
    meta = payload.get("meta")
    message: str | None = None
    codes: list[int] = []
    for holder in (meta, payload):
        if not isinstance(holder, dict):
            continue
        if message is None and isinstance(holder.get("message"), str) and holder["message"]:
            message = holder["message"]
        errors = holder.get("errors")
        items = errors if isinstance(errors, list) else [errors]
        for item in items:
            if isinstance(item, dict):
                code = item.get("code")
                if isinstance(code, int) and not isinstance(code, bool):
                    codes.append(code)
                if message is None and isinstance(item.get("message"), str):
                    message = item["message"]
    if message == "An error has occurred" and isinstance(meta, dict):
        # The generic text; the specific one sits in meta.errors[].message.
        specific = [
            e["message"]
            for e in meta.get("errors") or []
            if isinstance(e, dict) and isinstance(e.get("message"), str)
        ]
        if specific:
            message = "; ".join(specific)
    return message or fallback, tuple(dict.fromkeys(codes))


def _error_for(response: httpx.Response, payload: Any, *, write: bool) -> YClientsError:
    status = response.status_code
    message, codes = _error_details(payload, response.reason_phrase or f"HTTP {status}")
    if status == 429:
        return YClientsRateLimited(_retry_after(response.headers))
    if status >= 500:
        return YClientsUnavailable(f"YClients answered {status}", outcome_unknown=write)
    if status == 401 or (status == 403 and not codes):
        return YClientsAuthError(status, message)
    return YClientsRejected(status, message, codes)


class YClientsClient:
    """One connection pool to YClients for the partner token (and optional user token).

    ``base_url`` is the host root (``https://api.yclients.com`` or the fake's URL); booking
    calls go to ``/api/v1/...``, partner calls to ``/marketplace/...``. ``rate_limiter`` must be
    the process's one shared limiter in production (``None`` disables limiting: tests only).
    ``timeout`` bounds each attempt as a whole (and each of its phases). ``sleep`` is used for
    backoff and ``Retry-After`` waits (injectable for tests), ``rng`` draws their jitter (a
    fresh ``random.Random`` by default; seed one for a reproducible schedule). ``transport`` is
    passed to httpx.

    Use as ``async with YClientsClient(...) as client:`` or call ``aclose()`` (idempotent).
    All methods raise only ``YClientsError`` subclasses (and ``RuntimeError`` after
    ``aclose()``).
    """

    def __init__(
        self,
        base_url: str,
        partner_token: str,
        user_token: str | None = None,
        *,
        rate_limiter: YClientsRateLimiter | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = trio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not partner_token:
            raise ValueError("a partner token is required")
        self._base_url = base_url.rstrip("/")
        self._has_user_token = bool(user_token)
        auth = f"Bearer {partner_token}"
        if user_token:
            auth += f", User {user_token}"
        self._limiter = rate_limiter
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            headers={
                "Authorization": auth,
                "Accept": ACCEPT,
                "Content-Type": "application/json",
            },
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            transport=transport,
        )
        self._state = _State.OPEN

    def __repr__(self) -> str:
        user = "set" if self._has_user_token else "none"
        return (
            f"<YClientsClient base_url={self._base_url!r} partner_token=*** "
            f"user_token={user} state={self._state.value}>"
        )

    async def __aenter__(self) -> Self:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool; safe to call more than once."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await self._http.aclose()

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise RuntimeError("YClientsClient is closed")

    # -- machinery -------------------------------------------------------------------------

    async def _acquire_slot(self) -> None:
        if self._limiter is None:
            return
        try:
            await self._limiter.acquire()
        except Exception as exc:  # the shared counter (Redis) failed
            raise YClientsUnavailable(f"rate limiter unavailable: {type(exc).__name__}") from exc

    async def _send_once(
        self,
        method: str,
        path: str,
        params: Sequence[tuple[str, str | int]] | None,
        body: Any,
        *,
        write: bool,
    ) -> _Envelope:
        """One attempt: one limiter slot, one HTTP exchange, one answer or one of our errors.

        The attempt as a whole (connect, send, read the body) is bounded by ``timeout``, so a
        server trickling bytes cannot hold it longer than httpx's per-phase timeouts would.
        """
        self._check_open()
        await self._acquire_slot()
        started = trio.current_time()
        response: httpx.Response | None = None
        try:
            with trio.move_on_after(self._timeout):
                response = await self._http.request(
                    method, path, params=list(params) if params else None, json=body
                )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            log.warning("yclients %s %s -> %s", method, path, type(exc).__name__)
            raise YClientsUnavailable(f"{method} {path}: cannot connect") from exc
        except httpx.TimeoutException as exc:
            log.warning("yclients %s %s -> timeout", method, path)
            raise YClientsUnavailable(f"{method} {path} timed out", outcome_unknown=write) from exc
        except httpx.HTTPError as exc:
            log.warning("yclients %s %s -> %s", method, path, type(exc).__name__)
            raise YClientsUnavailable(
                f"{method} {path}: connection lost ({type(exc).__name__})", outcome_unknown=write
            ) from exc
        if response is None:
            log.warning("yclients %s %s -> timeout", method, path)
            raise YClientsUnavailable(f"{method} {path} timed out", outcome_unknown=write)
        elapsed_ms = (trio.current_time() - started) * 1000
        log.info("yclients %s %s -> %d (%.0f ms)", method, path, response.status_code, elapsed_ms)
        payload: Any = None
        readable = True
        if response.content:
            try:
                payload = response.json()
            except ValueError:
                readable = False
        if response.is_success:
            if not readable:
                raise YClientsUnavailable(
                    f"{method} {path}: unreadable answer", outcome_unknown=write
                )
            if isinstance(payload, dict) and payload.get("success") is False:
                message, codes = _error_details(payload, "success: false")
                raise YClientsRejected(response.status_code, message, codes)
            if isinstance(payload, dict) and ("data" in payload or "success" in payload):
                meta = payload.get("meta")
                meta_dict = meta if isinstance(meta, dict) else {}
                return _Envelope(response.status_code, payload.get("data"), meta_dict)
            return _Envelope(response.status_code, payload)
        raise _error_for(response, payload, write=write)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str | int]] | None = None,
        body: Any = None,
        read_only: bool | None = None,
    ) -> _Envelope:
        """Send with the retry rules of the module docstring.

        ``read_only`` overrides what the method implies (a search sent as POST only reads).
        """
        policy = self._retry
        retryable = method in _SAFE_METHODS if read_only is None else read_only
        for attempt in range(1, policy.attempts + 1):
            last = attempt == policy.attempts
            try:
                return await self._send_once(method, path, params, body, write=not retryable)
            except YClientsRateLimited as exc:
                if last or exc.retry_after > policy.max_retry_after:
                    raise
                await self._sleep(exc.retry_after + self._rng.uniform(0, policy.backoff_initial))
            except YClientsUnavailable:
                if last or not retryable:
                    raise
                await self._sleep(policy.backoff(attempt, self._rng))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- partner (marketplace) calls ---------------------------------------------------------

    async def send_activation_callback(
        self,
        salon_id: int,
        application_id: int,
        api_key: str,
        webhook_urls: Iterable[str],
        channels: Iterable[str] = ("whatsapp",),
    ) -> None:
        """Confirm an installation: ``POST /marketplace/partner/callback`` (expects 201).

        A write: never retried here except on 429; the outbox retries ``YClientsUnavailable``
        and records ``YClientsRejected`` / ``YClientsAuthError`` as permanent.
        """
        await self._request(
            "POST",
            f"{MARKETPLACE}/partner/callback",
            body={
                "salon_id": salon_id,
                "application_id": application_id,
                "api_key": api_key,
                "webhook_urls": list(webhook_urls),
                "channels": list(channels),
            },
        )

    async def get_installation(self, salon_id: int, application_id: int) -> dict[str, Any]:
        """The installation as YClients sees it; ``["connection_status"]["status"]`` is
        ``pending``, ``active`` or ``freezed``."""
        env = await self._request(
            "GET", f"{MARKETPLACE}/salon/{salon_id}/application/{application_id}"
        )
        return env.data if isinstance(env.data, dict) else {}

    async def uninstall(self, salon_id: int, application_id: int) -> None:
        """Remove our app from a salon (``POST .../uninstall``)."""
        await self._request(
            "POST", f"{MARKETPLACE}/salon/{salon_id}/application/{application_id}/uninstall"
        )

    # -- booking API ----------------------------------------------------------------------

    async def get_company(self, company_id: int) -> SalonDetails:
        """The salon's title, address, phone and time zone."""
        env = await self._request("GET", f"{API}/company/{company_id}")
        return _parse(SalonDetails.from_api, env.data, "company")

    async def get_services(
        self,
        company_id: int,
        *,
        staff_id: int | None = None,
        at: datetime | None = None,
        service_ids: Iterable[int] = (),
    ) -> list[SalonService]:
        """Bookable services (optionally those a master offers, or at a time)."""
        params = _params(staff_id=staff_id, datetime=at, service_ids=service_ids)
        env = await self._request("GET", f"{API}/book_services/{company_id}", params=params)
        data = env.data
        items = data.get("services") if isinstance(data, dict) else data
        return [_parse(SalonService.from_api, item, "service") for item in _as_list(items)]

    async def get_company_services(
        self, company_id: int, *, category_id: int | None = None
    ) -> list[SalonService]:
        """Every service of the salon (inactive ones included, ``active`` says), with its
        description (``comment``) and the masters who do it (``staff_ids``):
        ``GET company/{id}/services``."""
        params = _params(category_id=category_id)
        env = await self._request("GET", f"{API}/company/{company_id}/services", params=params)
        return [_parse(SalonService.from_api, item, "service") for item in _as_list(env.data)]

    async def get_service_categories(self, company_id: int) -> list[ServiceCategory]:
        """The salon's service categories: ``GET company/{id}/service_categories``."""
        env = await self._request("GET", f"{API}/company/{company_id}/service_categories")
        return [_parse(ServiceCategory.from_api, item, "category") for item in _as_list(env.data)]

    async def get_staff(
        self,
        company_id: int,
        *,
        service_ids: Iterable[int] = (),
        at: datetime | None = None,
    ) -> list[SalonStaff]:
        """Masters that can be booked (optionally for given services, or at a time)."""
        params = _params(service_ids=service_ids, datetime=at)
        env = await self._request("GET", f"{API}/book_staff/{company_id}", params=params)
        return [_parse(SalonStaff.from_api, item, "staff") for item in _as_list(env.data)]

    async def get_book_dates(
        self,
        company_id: int,
        *,
        service_ids: Iterable[int] = (),
        staff_id: int | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
    ) -> list[date]:
        """Days with free time, in order."""
        params = _params(
            service_ids=service_ids, staff_id=staff_id, date_from=date_from, date_to=date_to
        )
        env = await self._request("GET", f"{API}/book_dates/{company_id}", params=params)
        raw = env.data.get("booking_dates") if isinstance(env.data, dict) else env.data
        days: list[date] = []
        for item in _as_list(raw):
            try:
                days.append(date.fromisoformat(str(item)[:10]))
            except ValueError:
                continue
        return sorted(set(days))

    async def get_book_times(
        self, company_id: int, staff_id: int, day: date, *, service_ids: Iterable[int] = ()
    ) -> list[dict[str, Any]]:
        """Free start times of a master on a day: ``[{time, seance_length, datetime}]``."""
        env = await self._request(
            "GET",
            f"{API}/book_times/{company_id}/{staff_id}/{day.isoformat()}",
            params=_params(service_ids=service_ids),
        )
        return [item for item in _as_list(env.data) if isinstance(item, dict)]

    async def book_check(self, company_id: int, appointments: Sequence[Appointment]) -> None:
        """Check that the appointments can be booked; ``YClientsRejected`` with codes 433
        (slot taken), 436 (no master), 437 (overlap), 438 (service gone) if not."""
        await self._request(
            "POST",
            f"{API}/book_check/{company_id}",
            body={"appointments": [a.to_api() for a in appointments]},
        )

    async def book_record(
        self,
        company_id: int,
        *,
        phone: str,
        fullname: str,
        appointments: Sequence[Appointment],
        api_id: str,
        email: str | None = None,
        comment: str | None = None,
    ) -> list[BookedRecord]:
        """Book the appointments for a client, at most once per ``api_id``.

        ``api_id`` is our idempotency key (unique per booking attempt of ours). When the answer
        is lost (timeout, connection closed, 5xx) the client lists the records of the
        appointments' days and looks for ``api_id`` before anything else: found means booked
        (the records come back with ``recovered=True``), not found means the request may be
        sent again. Raises ``YClientsRejected`` (codes 431 bad phone, 433 slot taken,
        434 blacklisted, 435 no name ...) and, when the outcome stays unknown after the
        attempts, ``YClientsUnavailable(outcome_unknown=True)``: look again later with
        ``find_records_by_api_id`` before booking anew.
        """
        if not api_id:
            raise ValueError("book_record needs our api_id")
        if not appointments:
            raise ValueError("book_record needs at least one appointment")
        appts = tuple(appointments)
        body: dict[str, Any] = {
            "phone": phone,
            "fullname": fullname,
            "email": email or "",
            "comment": comment or "",
            "api_id": api_id,
            "appointments": [a.to_api() for a in appts],
        }
        days = sorted(a.day for a in appts)
        path = f"{API}/book_record/{company_id}"
        attempts = self._retry.attempts
        for attempt in range(1, attempts + 1):
            try:
                env = await self._request("POST", path, body=body)
            except YClientsUnavailable as exc:
                if exc.outcome_unknown:
                    try:
                        found = await self.find_records_by_api_id(
                            company_id,
                            api_id,
                            start_date=date.fromisoformat(days[0]),
                            end_date=date.fromisoformat(days[-1]),
                        )
                    except YClientsError as lookup_exc:
                        raise YClientsUnavailable(
                            "booking answer lost and the lookup by api_id failed",
                            outcome_unknown=True,
                        ) from lookup_exc
                    if found:
                        log.info("yclients booking recovered by api_id (%d records)", len(found))
                        return [BookedRecord.from_record(r, appts) for r in found]
                if attempt == attempts:
                    raise YClientsUnavailable(
                        f"booking not confirmed after {attempts} attempts",
                        outcome_unknown=exc.outcome_unknown,
                    ) from exc
                await self._sleep(self._retry.backoff(attempt, self._rng))
                continue
            return [_parse(BookedRecord.from_api, item, "booking") for item in _as_list(env.data)]
        raise AssertionError("unreachable")  # pragma: no cover

    async def list_records(
        self,
        company_id: int,
        *,
        client_id: int | None = None,
        start_date: date | None = None,
        end_date: date | None = None,
        changed_after: datetime | None = None,
        page: int = 1,
        count: int = 50,
    ) -> list[dict[str, Any]]:
        """One page of records. With ``client_id``, records of other clients are dropped here
        too (the endpoint has been seen to return them)."""
        records, _ = await self._records_page(
            company_id,
            client_id=client_id,
            start_date=start_date,
            end_date=end_date,
            changed_after=changed_after,
            page=page,
            count=count,
        )
        if client_id is None:
            return records
        mine = [r for r in records if _record_client_id(r) == client_id]
        if len(mine) != len(records):
            log.warning(
                "yclients records list returned %d records of other clients; dropped",
                len(records) - len(mine),
            )
        return mine

    async def _records_page(
        self,
        company_id: int,
        *,
        client_id: int | None,
        start_date: date | None,
        end_date: date | None,
        changed_after: datetime | None,
        page: int,
        count: int,
    ) -> tuple[list[dict[str, Any]], int | None]:
        params = _params(
            client_id=client_id,
            start_date=start_date,
            end_date=end_date,
            changed_after=changed_after,
            page=page,
            count=count,
        )
        env = await self._request("GET", f"{API}/records/{company_id}", params=params)
        total = env.meta.get("count") if isinstance(env.meta.get("count"), int) else None
        return [r for r in _as_list(env.data) if isinstance(r, dict)], total

    async def find_records_by_api_id(
        self, company_id: int, api_id: str, *, start_date: date, end_date: date
    ) -> list[dict[str, Any]]:
        """Records between the dates whose ``api_id`` is ours (filtered on our side)."""
        found: list[dict[str, Any]] = []
        seen = 0
        for page in range(1, MAX_LOOKUP_PAGES + 1):
            records, total = await self._records_page(
                company_id,
                client_id=None,
                start_date=start_date,
                end_date=end_date,
                changed_after=None,
                page=page,
                count=LOOKUP_PAGE_SIZE,
            )
            found.extend(
                r for r in records if str(r.get("api_id") or "") == api_id and not r.get("deleted")
            )
            seen += len(records)
            if len(records) < LOOKUP_PAGE_SIZE or (total is not None and seen >= total):
                break
        return found

    async def get_record(self, company_id: int, record_id: int) -> dict[str, Any]:
        """One record."""
        env = await self._request("GET", f"{API}/record/{company_id}/{record_id}")
        return env.data if isinstance(env.data, dict) else {}

    async def delete_record(self, company_id: int, record_id: int) -> None:
        """Cancel a visit (204). Not retried on an unknown outcome: read the record to know."""
        await self._request("DELETE", f"{API}/record/{company_id}/{record_id}")

    async def move_record(
        self, company_id: int, record_id: int, when: datetime, *, comment: str | None = None
    ) -> dict[str, Any]:
        """Move a visit to another time, same master and services:
        ``PUT book_record/{company_id}/{record_id}`` ``{datetime, comment}``.

        The record keeps its id; the answer is the record as it now stands. When the time is
        taken or the master does not work then, ``YClientsRejected`` with code 433 and nothing
        moved. A write: retried only on 429; when the outcome is unknown
        (``YClientsUnavailable(outcome_unknown=True)``) read the record to know where it is.
        """
        if when.tzinfo is None:
            raise ValueError("move_record needs a timezone-aware datetime")
        body: dict[str, Any] = {"datetime": when.isoformat()}
        if comment:
            body["comment"] = comment
        env = await self._request("PUT", f"{API}/book_record/{company_id}/{record_id}", body=body)
        return env.data if isinstance(env.data, dict) else {}

    async def set_visit_attendance(
        self,
        visit_id: int,
        record_id: int,
        attendance: Attendance,
        *,
        comment: str | None = None,
    ) -> dict[str, Any]:
        """Mark a visit confirmed, arrived, waiting or no-show:
        ``PUT visits/{visit_id}/{record_id}`` ``{attendance, comment}``.

        Never a way to cancel (that is ``delete_record``). A write: retried only on 429.
        Returns what YClients answered (the record, for our fake).
        """
        body: dict[str, Any] = {"attendance": int(Attendance(attendance))}
        if comment:
            body["comment"] = comment
        env = await self._request("PUT", f"{API}/visits/{visit_id}/{record_id}", body=body)
        return env.data if isinstance(env.data, dict) else {}

    async def search_clients(
        self, company_id: int, query: str, *, page: int = 1, page_size: int = 50
    ) -> list[dict[str, Any]]:
        """Clients whose name or phone matches ``query`` (YClients' quick search).

        A POST that only reads, so it is retried like a read.
        """
        body = {
            "filters": [{"type": "quick_search", "state": {"value": query}}],
            "page": page,
            "page_size": max(1, min(page_size, 200)),
        }
        path = f"{API}/company/{company_id}/clients/search"
        env = await self._request("POST", path, body=body, read_only=True)
        return [c for c in _as_list(env.data) if isinstance(c, dict)]

    async def create_client(
        self,
        company_id: int,
        *,
        name: str,
        phone: str,
        email: str | None = None,
        comment: str | None = None,
    ) -> dict[str, Any]:
        """Create a client card in the salon (a write: not retried on an unknown outcome)."""
        body: dict[str, Any] = {"name": name, "phone": phone}
        if email:
            body["email"] = email
        if comment:
            body["comment"] = comment
        env = await self._request("POST", f"{API}/clients/{company_id}", body=body)
        return env.data if isinstance(env.data, dict) else {}


def _parse(build: Callable[[dict[str, Any]], _T], raw: Any, what: str) -> _T:
    if not isinstance(raw, dict):
        raise YClientsUnavailable(f"unreadable {what} in YClients' answer")
    try:
        return build(raw)
    except ValueError as exc:
        raise YClientsUnavailable(f"unreadable {what} in YClients' answer: {exc}") from exc


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _record_client_id(record: dict[str, Any]) -> int | None:
    client = record.get("client")
    raw = client.get("id") if isinstance(client, dict) else record.get("client_id")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.isdigit():
        return int(raw)
    return None


def _params(**values: Any) -> list[tuple[str, str | int]]:
    """Query parameters in YClients' style: lists as ``name[]``, dates ISO, ``None`` left out."""
    out: list[tuple[str, str | int]] = []
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, list | tuple | set | frozenset) or (
            not isinstance(value, str | int | date) and isinstance(value, Iterable)
        ):
            out.extend((f"{name}[]", int(v)) for v in value)
        elif isinstance(value, datetime | date):
            out.append((name, value.isoformat()))
        else:
            out.append((name, value))
    return out
