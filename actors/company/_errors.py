"""Errors a company actor answers an ``ask`` with (they do not crash the actor).

CompanyError
├── CompanyNotFound       no such company (never registered)
├── OwnedElsewhere        its actor runs in another node (cluster mode: that node's lease)
├── OutboundQueueFull     too many messages waiting to be sent; try later
└── SendingUnavailable    the company cannot send now (not linked, uninstalled, frozen)
"""

from __future__ import annotations


class CompanyError(Exception):
    """Base class of the company actor's answers-as-errors."""


class CompanyNotFound(CompanyError):
    def __init__(self, company_id: int) -> None:
        self.company_id = company_id
        super().__init__(f"company {company_id} does not exist")


class OwnedElsewhere(CompanyError):
    def __init__(self, company_id: int, owner: str) -> None:
        self.company_id = company_id
        self.owner = owner
        super().__init__(f"company {company_id} is served by another node")


class OutboundQueueFull(CompanyError):
    def __init__(self, company_id: int, limit: int) -> None:
        self.company_id = company_id
        self.limit = limit
        super().__init__(f"company {company_id} has {limit} messages waiting; try again later")


class SendingUnavailable(CompanyError):
    def __init__(self, company_id: int, reason: str) -> None:
        self.company_id = company_id
        self.reason = reason
        super().__init__(f"company {company_id} cannot send messages: {reason}")
