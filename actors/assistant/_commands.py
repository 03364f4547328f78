"""What understanding makes of one client message: typed commands, and what it is told.

``Understander`` is the one interface both understandings implement — the rules (default,
offline) and, later, a language model. Its output is a tuple of the commands below, in the
order they matter; nothing in it is an id the client could not have meant (services and
masters are resolved against the salon's catalog, times are only what the text said or an
option the assistant itself offered). ``decide`` (pure) turns commands plus the conversation
state into the next state and effects; neither ever calls YClients.

A message may carry several commands: "Запишите на мужскую стрижку к Игорю послезавтра в
15:00. Меня зовут Тимур" → ``StartFlow(BOOK), SetServices((6101,)), SetMaster(6201),
SetWhen(...), SetName("Тимур")``.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Protocol

from ._catalog import AssistantCatalog
from ._prompts import PromptKind
from ._when import When

__all__ = [
    "AmbiguousService",
    "Ask",
    "ChooseOption",
    "ChooseVisit",
    "Command",
    "Comment",
    "Confirm",
    "Deny",
    "Expecting",
    "Flow",
    "HandOver",
    "HandOverReason",
    "NotUnderstood",
    "OptOut",
    "Rate",
    "SetMaster",
    "SetName",
    "SetServices",
    "SetWhen",
    "SmallTalk",
    "SmallTalkKind",
    "StartFlow",
    "Topic",
    "TurnContext",
    "Understander",
    "UnknownService",
]


class Flow(enum.StrEnum):
    """What the client wants done."""

    BOOK = "book"  # a new visit
    CANCEL = "cancel"  # cancel one of their upcoming visits
    MOVE = "move"  # move one of their upcoming visits to another time
    VISITS = "visits"  # "покажите мои записи"


class Topic(enum.StrEnum):
    """A question answered from the catalog or the salon card, changing nothing."""

    PRICE = "price"  # of the services / category named (or the whole list if none)
    PRICE_LIST = "price_list"  # "пришлите прайс"
    SERVICES = "services"  # "какие стрижки есть?" (a category or everything)
    SERVICE_INFO = "service_info"  # "что входит в ..." — the service's description
    ADDRESS = "address"
    HOURS = "hours"
    PHONE = "phone"
    MASTERS = "masters"  # "кто у вас делает маникюр?"
    CAPABILITIES = "capabilities"  # "что вы умеете?"


class HandOverReason(enum.StrEnum):
    """Why a person should answer."""

    ASKED = "asked"  # "позовите администратора"
    COMPLAINT = "complaint"


class SmallTalkKind(enum.StrEnum):
    GREETING = "greeting"
    THANKS = "thanks"
    GOODBYE = "goodbye"


class Expecting(enum.StrEnum):
    """What the assistant's last reply asked for: it decides how a short answer is read
    ("2" is an option number after a list of times, "Лилия" is a name after "как вас
    зовут?", "да" confirms only after a summary)."""

    NOTHING = "nothing"
    SERVICE = "service"
    MASTER = "master"
    DAY = "day"
    TIME = "time"
    OPTION = "option"  # a numbered list of free times (or days) was offered
    NAME = "name"
    CONFIRM = "confirm"  # a summary ending "Записать?" / "Отменить?" / "Перенести?"
    VISIT = "visit"  # a numbered list of the client's visits was offered


@dataclass(frozen=True)
class TurnContext:
    """What understanding is told besides the text: what was asked, and what was offered.

    ``offered_times`` are the local start times of the numbered options, in their order
    (option 1 first), so "давайте на 17:00" can pick one; ``offered_count`` is how many
    numbered items (times, days or visits) the last reply listed. ``prompt`` is the reminder or
    review request the salon sent last, when the message may answer it (nothing else is under
    way): "буду" confirms a reminded visit, "5" rates a visit after a review request.
    ``history`` is the conversation's last few messages before this one, oldest first, as
    ``(role, text)`` with role ``"client"`` or ``"assistant"``: only a language-model
    understanding reads it (the rules ignore it, and it is empty unless one is in use).
    """

    expecting: Expecting = Expecting.NOTHING
    offered_count: int = 0
    offered_times: tuple[dt.datetime, ...] = ()
    flow: Flow | None = None
    prompt: PromptKind | None = None
    history: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class StartFlow:
    flow: Flow


@dataclass(frozen=True)
class SetServices:
    """Services named, resolved to catalog ids ("стрижка и борода" gives two)."""

    ids: tuple[int, ...]


@dataclass(frozen=True)
class AmbiguousService:
    """One service was named that fits several of the catalog's equally ("стрижка": мужская
    or женская; "маникюр": с покрытием or без), so decide asks "Какой именно: …?".

    ``candidates`` are catalog ids in catalog order (two or more), already narrowed by a
    master named in the same message; ``text`` is the client's words for it. A later
    ``SetServices`` (or an option number among the candidates) settles it.
    """

    text: str
    candidates: tuple[int, ...]


@dataclass(frozen=True)
class UnknownService:
    """A service was asked for that the salon does not offer; ``closest`` are the catalog's
    nearest ones (may be empty)."""

    text: str
    closest: tuple[int, ...] = ()


@dataclass(frozen=True)
class SetMaster:
    """A master named (``staff_id``), or ``None`` for "к любому мастеру"."""

    staff_id: int | None


@dataclass(frozen=True)
class SetWhen:
    """A day and/or a time or window (``parse_when``'s reading)."""

    when: When


@dataclass(frozen=True)
class ChooseOption:
    """An offered option picked: by its 1-based ``number`` ("2", "второй") or by the time it
    starts at ("давайте на 17:00") — exactly one of the two is set."""

    number: int | None = None
    time: dt.time | None = None


@dataclass(frozen=True)
class ChooseVisit:
    """Which of the client's visits is meant: a number from the list, or hints (a service
    named, a day) the conversation matches against the visits it found."""

    number: int | None = None
    service_ids: tuple[int, ...] = ()
    day: dt.date | None = None


@dataclass(frozen=True)
class SetName:
    """The client's name as they wrote it ("Тимур")."""

    name: str


@dataclass(frozen=True)
class Confirm:
    """A clear yes ("да", "записывайте", "👍"); never "да, но ..."."""


@dataclass(frozen=True)
class Deny:
    """A no ("нет", "не надо", "отбой")."""


@dataclass(frozen=True)
class Ask:
    """A question to answer from the catalog or salon card."""

    topic: Topic
    service_ids: tuple[int, ...] = ()
    category_id: int | None = None


@dataclass(frozen=True)
class HandOver:
    reason: HandOverReason


@dataclass(frozen=True)
class OptOut:
    """ "стоп", "отпишите меня", "не пишите мне"."""


@dataclass(frozen=True)
class SmallTalk:
    kind: SmallTalkKind


@dataclass(frozen=True)
class Rate:
    """A 1–5 rating of the visit a review request asked about ("5", "на 4", "⭐⭐⭐⭐",
    "отлично"), with the rest of the message as its comment ("" for none)."""

    rating: int
    comment: str = ""


@dataclass(frozen=True)
class Comment:
    """Words about the visit just rated, sent after the rating (no request in them)."""

    text: str


@dataclass(frozen=True)
class NotUnderstood:
    """Nothing usable in the message (gibberish, digits out of context, another language)."""


Command = (
    StartFlow
    | SetServices
    | AmbiguousService
    | UnknownService
    | SetMaster
    | SetWhen
    | ChooseOption
    | ChooseVisit
    | SetName
    | Confirm
    | Deny
    | Ask
    | HandOver
    | OptOut
    | SmallTalk
    | Rate
    | Comment
    | NotUnderstood
)


class Understander(Protocol):
    """Reads one client message. The rules' implementation wraps a pure function; a
    model-backed one does I/O, and falls back to the rules on any failure, returning the
    same types."""

    async def understand(
        self,
        text: str,
        context: TurnContext,
        catalog: AssistantCatalog,
        now: dt.datetime,
    ) -> tuple[Command, ...]:
        """Commands for ``text``; ``now`` is aware, in the salon's zone. Never raises."""
        ...
