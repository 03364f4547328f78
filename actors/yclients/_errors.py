"""Errors raised by the YClients client and the marketplace helpers.

Calls to YClients (``YClientsClient``)::

    YClientsError
    ├── YClientsUnavailable   network error, timeout, 5xx, unreadable answer: retryable.
    │                         ``outcome_unknown`` is true when a write may have taken effect.
    ├── YClientsRateLimited   429 that outlived our retries; ``retry_after`` in seconds.
    ├── YClientsRejected      a permanent 4xx; ``status``, YClients' ``meta.message`` and the
    │                         YClients error ``codes`` (433 slot taken, 434 blacklisted, ...).
    └── YClientsAuthError     401, or 403 without a YClients error code: the token is wrong or
                              the salon took the app's access away.

Data coming in from YClients (``decode_user_data``, ``webhook_dedupe_key``)::

    MarketplaceDataError (a ValueError)
    ├── InvalidSignature      ``user_data_sign`` missing or not the HMAC of ``user_data``.
    ├── MalformedUserData     ``user_data`` is not base64 of a JSON object.
    └── MalformedWebhook      a webhook body without the fields its kind needs.

Messages never contain tokens, API keys or request bodies.
"""

from __future__ import annotations


class YClientsError(Exception):
    """Base of every error a call to YClients raises; nothing from httpx leaves the client."""


class YClientsUnavailable(YClientsError):
    """YClients could not be reached or answered with a server error; try again later.

    ``outcome_unknown`` is true when the request was a write that may have been applied
    (timeout, connection lost, 5xx after sending): never repeat it blindly.
    """

    def __init__(self, message: str, *, outcome_unknown: bool = False) -> None:
        self.outcome_unknown = outcome_unknown
        suffix = " (outcome unknown)" if outcome_unknown else ""
        super().__init__(f"{message}{suffix}")


class YClientsRateLimited(YClientsError):
    """YClients answered 429 and kept doing so through our retries."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"YClients rate limit hit, retry after {retry_after:g} s")


class YClientsRejected(YClientsError):
    """YClients refused the request for good (4xx): retrying the same request cannot help."""

    def __init__(self, status: int, message: str, codes: tuple[int, ...] = ()) -> None:
        self.status = status
        self.message = message
        self.codes = codes
        code_text = f" codes={list(codes)}" if codes else ""
        super().__init__(f"YClients rejected the request: {status}{code_text}: {message}")


class YClientsAuthError(YClientsError):
    """The partner (or user) token was refused: 401, or 403 without a booking error code."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"YClients refused our credentials: {status}: {message}")


class MarketplaceDataError(ValueError):
    """Base of the errors about data YClients (or someone posing as it) sent us."""


class InvalidSignature(MarketplaceDataError):
    """The marketplace signature is missing or wrong: the data must not be trusted."""


class MalformedUserData(MarketplaceDataError):
    """``user_data`` is not base64 of a UTF-8 JSON object."""


class MalformedWebhook(MarketplaceDataError):
    """A webhook body lacks a field its kind needs (or has one of the wrong type)."""
