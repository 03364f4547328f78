"""Understanding by rules: ``understand_rules(text, context, catalog, now)`` → commands.

Pure (pymorphy3 and rapidfuzz, no I/O), never raises, some hundreds of µs for a typical
message once the word caches are warm. How one message is read:

1. ``parse_when`` reads days and times (greetings like "доброе утро" blanked first, so
   "утро" is no time window); the words it consumed are read by nothing else, so "10" in
   "утро 10" is neither an option nor a date.
2. ``_intents.read_signals`` finds flows, questions, a person, an opt-out, small talk,
   yes / no; ``_services_match`` the services (or an ambiguity, or one the salon lacks, or a
   category); ``_names`` the masters and the client's own name.
3. Composition, by what the last reply asked for (``context``):
   - an opt-out, or a request for a person or a complaint, is answered alone;
   - with numbered options on offer, "2" / "второй" / "последний" picks one
     (``ChooseOption``, ``ChooseVisit`` for a list of visits); a time picks one only when it
     is among ``context.offered_times`` (else it is a new ``SetWhen``); "на 2" with no 14:00
     or 02:00 on offer is option 2;
   - in a cancel or a move, a service or (for a cancel) a day names the visit meant
     (``ChooseVisit``); "перенесите с пятницы на субботу" splits into the visit's day and the
     new day;
   - a service with a day, a time, a master or a wish ("хочу", "можно") is a booking wish
     (``StartFlow(BOOK)``) unless a question is asked; a question about services ("сколько
     стоит маникюр") is an ``Ask`` with their ids, or a category's;
   - one service naming several of the catalog's equally is ``AmbiguousService`` when
     booking (narrowed by a master named with it), all of them when asking;
   - ``Confirm`` only for a plain yes (a yes with "но", or with a new detail, is not one);
     ``Deny`` for a no, unless the no comes with a correction ("нет, давайте завтра" is the
     correction alone) or a request (a cancel, a move);
   - nothing usable → ``NotUnderstood``.
4. After a reminder or a review request (``context.prompt``, nothing else under way): "буду",
   "приду", "всё в силе", "подтверждаю запись" are a yes (``Confirm``; the conversation
   confirms the reminded visit), "до завтра" a farewell rather than a day, and "а во
   сколько?" asks for the client's visits (``StartFlow(VISITS)``); a 1–5 rating is ``Rate``
   (``_ratings``), read before a complaint (the low rating tells the salon); after a rating,
   a message with no request in it is its ``Comment``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from dataclasses import replace

from ._catalog import AssistantCatalog
from ._commands import (
    AmbiguousService,
    Ask,
    ChooseOption,
    ChooseVisit,
    Command,
    Comment,
    Confirm,
    Deny,
    Expecting,
    Flow,
    HandOver,
    HandOverReason,
    NotUnderstood,
    OptOut,
    Rate,
    SetMaster,
    SetName,
    SetServices,
    SetWhen,
    SmallTalk,
    StartFlow,
    Topic,
    TurnContext,
    UnknownService,
)
from ._intents import ORDINALS, read_signals
from ._lexicon import GENERAL_NOUNS
from ._names import MasterIndex, read_client_name
from ._prompts import PromptKind
from ._ratings import COMMENT_LIMIT, read_rating
from ._services_match import ServiceIndex, ServiceMatch
from ._when import When, parse_when
from ._words import Word, words

__all__ = ["MAX_CHARS", "RuleUnderstander", "understand_rules"]

log = logging.getLogger(__name__)

MAX_CHARS = 5000  # WhatsApp allows far more; nobody books in an essay, and speed is bounded
_OPTION_EXPECTED = frozenset(
    {Expecting.OPTION, Expecting.SERVICE, Expecting.MASTER, Expecting.DAY, Expecting.TIME}
)
_FILLER = frozenset(
    re.findall(
        r"\S+",
        "давайте давай вариант номер мне пожалуйста лучше хочу выбираю беру ну тогда можно я "
        "на в вот этот это такой ой ий ый й ая е ое время а да ок окей",
    )
)
_BLANK_FOR_WHEN = re.compile(
    r"доброе\s+утро|доброго\s+утра|добрый\s+день|добрый\s+вечер|доброго\s+дня|доброго\s+"
    r"вечера|доброй\s+ночи|хорошего\s+дня|хорошего\s+вечера|спокойной\s+ночи|"
    r"доброго\s+времени\s+суток|"
    # "опоздаю минут на 10", "на 10-15 минут": minutes, not 10:00 or 10:15 (while "на 30
    # минут на 15:00" is 15:00)
    r"(?<!\d)(?<!\d\s)\bминут\w*\s+на\s+\d{1,3}(?:\s*[-–]\s*\d{1,3})?(?![\d:.\-–])|"
    r"\bна\s+\d{1,3}\s*[-–]\s*\d{1,3}\s+минут",
    re.IGNORECASE,
)
#: Farewells that look like days: after a reminder "да, до завтра!" says goodbye, no day.
_FAREWELL = re.compile(r"до\s+завтра", re.IGNORECASE)
_CONSONANTS = frozenset("бвгджзклмнпрстфхцчшщ")
_PROCEDURE_ENDINGS = ("терапия", "пластика", "ция", "инг", "аж", "ание", "ение")
_WISH_VERBS = frozenset({"хотеть", "хотеться", "нужный", "нужно", "надо", "можно", "сделать"})
_QUESTION_OPENERS = frozenset({"какие", "какой", "какая", "какую", "что", "есть", "делаете"})


def understand_rules(
    text: str, context: TurnContext, catalog: AssistantCatalog, now: dt.datetime
) -> tuple[Command, ...]:
    """The commands in ``text`` (rules: module docstring); ``now`` is aware, in the salon's
    zone. Never raises: an unexpected error is logged and read as ``NotUnderstood``."""
    try:
        return read_message(text, context, catalog, now)
    except Exception:  # a bug must not silence the assistant; the log shows it
        log.exception("understanding failed on a message of %d characters", len(text))
        return (NotUnderstood(),)


class RuleUnderstander:
    """The ``Understander`` of the rules: ``understand_rules`` behind the async interface
    (it does no I/O and never raises, so it needs no cancellation handling)."""

    async def understand(
        self,
        text: str,
        context: TurnContext,
        catalog: AssistantCatalog,
        now: dt.datetime,
    ) -> tuple[Command, ...]:
        """Commands for ``text`` (see ``understand_rules``)."""
        return understand_rules(text, context, catalog, now)


class _Reading:
    """Everything read from one message, before composition."""

    def __init__(
        self, text: str, context: TurnContext, catalog: AssistantCatalog, now: dt.datetime
    ) -> None:
        self.text = text
        self.context = context
        self.catalog = catalog
        self.ws = words(text)
        opening = catalog.salon.opening
        blanked = _BLANK_FOR_WHEN.sub(lambda m: " " * len(m.group()), text)
        if context.prompt is not None and context.prompt.is_reminder:
            blanked = _FAREWELL.sub(lambda m: " " * len(m.group()), blanked)
        self.when = (
            parse_when(blanked, now, opening=opening) if opening else parse_when(blanked, now)
        )
        self.now = now
        self.in_when = frozenset(
            k for k, w in enumerate(self.ws) if self.when.covers(w.start, w.end)
        )
        self.signals = read_signals(self.ws)
        free = [w for k, w in enumerate(self.ws) if k not in self.in_when]
        self.index = ServiceIndex.of(catalog)
        self.services = self.index.match(
            free, qualifiers_alone=context.expecting is Expecting.SERVICE
        )
        in_services = frozenset(
            k
            for k, w in enumerate(self.ws)
            if any(s < w.end and w.start < e for s, e in self.services.spans)
        )
        not_a_name = self.in_when | in_services | frozenset(self.signals.taken)
        sig = self.signals
        asking = bool(sig.flows or sig.wish or sig.topics) or not self.when.is_empty
        self.name = read_client_name(
            self.ws,
            asked=context.expecting is Expecting.NAME,
            not_a_name=not_a_name,
            text=text,
            signed=asking and context.expecting is not Expecting.MASTER,
        )
        if self.name is not None and not _pronounceable(self.name[0]):
            self.name = None
        skip = set(self.in_when | in_services)
        if self.name is not None:
            skip |= {k for k, w in enumerate(self.ws) if self.name[1] <= w.start < self.name[2]}
        self.masters = MasterIndex.of(catalog).find(self.ws, frozenset(skip))
        if _asks_availability(self):
            # "на бритьё завтра что есть?", "какие есть на пятницу": free times, not a list
            self.signals.topics.remove(Topic.SERVICES)
            if context.flow in (None, Flow.BOOK):
                self.signals.flows.setdefault(Flow.BOOK, 0)
                self.signals.explicit_book = True
        self.master_words = frozenset(
            k
            for k, w in enumerate(self.ws)
            if any(h.start <= w.start < h.end for h in self.masters)
        )
        self.used = not_a_name | self.master_words | frozenset(skip)
        unknown = _unknown_object(self)
        if unknown is not None:
            self.services = replace(self.services, unknown=(*self.services.unknown, unknown))


def _unknown_object(r: _Reading) -> tuple[str, tuple[int, ...]] | None:
    """A thing asked for that the catalog does not name, as a service the salon lacks:
    "хочу на парафинотерапию", "запишите на консультацию", "сколько стоит мезотерапия?".
    Only when nothing in the message names a service or a master, and only a
    noun booked "на" it, or one shaped like a procedure's name (-терапия, -ция, -инг, -аж,
    -ние) right after a wish or in a question about prices or services."""
    s, found = r.signals, r.services
    if found.mentions or found.unknown or r.masters:
        return None
    asking = Topic.PRICE in s.topics or Topic.SERVICES in s.topics
    asking |= _is_question(r) and any(w.lemma in {"делать", "есть"} for w in r.ws)
    if not (asking or s.wish or Flow.BOOK in s.flows):
        return None
    for k, w in enumerate(r.ws):
        info = w.info
        if k in r.used or info.pos != "NOUN" or not w.cyrillic or len(w.low) < 4:
            continue
        if info.name_first or info.lemma in GENERAL_NOUNS or not info.cases & {"nomn", "accs"}:
            continue
        before = r.ws[k - 1].low if k > 0 else ""
        booked_on = before in {"на", "за"}
        shaped = info.lemma.endswith(_PROCEDURE_ENDINGS)
        after_wish = k > 0 and r.ws[k - 1].lemma in _WISH_VERBS
        if booked_on or (shaped and (asking or after_wish or Flow.BOOK in s.flows)):
            return _unknown_phrase(r, k)
    return None


def _unknown_phrase(r: _Reading, k: int) -> tuple[str, tuple[int, ...]]:
    """The words of the thing at ``k`` (an adjective before, "для рук" after) and the
    catalog's closest services (by the area of the words around it, else by spelling)."""
    first, last = k, k
    if k > 0 and r.ws[k - 1].info.pos == "ADJF" and k - 1 not in r.used:
        first = k - 1
    if k + 2 < len(r.ws) and r.ws[k + 1].low == "для" and r.ws[k + 2].cyrillic:
        last = k + 2
    elif k + 1 < len(r.ws) and r.ws[k + 1].info.pos == "NOUN" and k + 1 not in r.in_when:
        last = k + 1
    text = " ".join(w.raw for w in r.ws[first : last + 1])
    around = [w.lemma for w in r.ws[first : last + 1] if w is not r.ws[k]]
    closest = r.index.closest(r.ws[k].lemma, r.ws[k].lemma, around, near=around)
    return text, closest


def _asks_availability(r: _Reading) -> bool:
    """ "что есть" / "какие есть" / "у вас есть" said with a day or a time, or right after a
    service asked for with "на": a question about free times, not about what is offered."""
    s = r.signals
    if Topic.SERVICES not in s.topics or Topic.PRICE in s.topics or Topic.PRICE_LIST in s.topics:
        return False
    if not r.when.is_empty:
        return True
    starts = {w.start: k for k, w in enumerate(r.ws)}
    for mention in r.services.mentions:
        k = starts.get(mention.start)
        if k is not None and k > 0 and r.ws[k - 1].low in {"на", "к"}:
            return True
        if k is not None and k > 1 and r.ws[k - 2].low == "на" and r.ws[k - 1].info.pos == "ADJF":
            return True
    return False


def _pronounceable(name: str) -> bool:
    """A name a person could have: not "Ывапролдж" (keyboard mashing)."""
    low = name.lower().split()[0]
    if low[:1] in {"ы", "ь", "ъ"} or len(low) > 20:
        return False
    run = 0
    for ch in low:
        run = run + 1 if ch in _CONSONANTS else 0
        if run >= 4:
            return False
    return not all(ch in _CONSONANTS for ch in low[-3:])


def read_message(
    text: str, context: TurnContext, catalog: AssistantCatalog, now: dt.datetime
) -> tuple[Command, ...]:
    """``understand_rules`` without its safety net (tests call this, so a bug fails them)."""
    r = _Reading(text[:MAX_CHARS], context, catalog, now)
    s = r.signals
    if s.opt_out:
        return (OptOut(),)
    if context.prompt is PromptKind.REVIEW and not _requests(r):
        rated = read_rating(r.text)
        if rated is not None:
            return (Rate(*rated),)
    if context.prompt is PromptKind.REVIEW_COMMENT and _is_comment(r):
        return (Comment(" ".join(r.text.split())[:COMMENT_LIMIT]),)
    if context.prompt is not None and context.prompt.is_reminder:
        _read_attendance(r)
    if s.handover is not None:
        return (HandOver(s.handover),)
    out: list[Command] = []
    flow = _flow(r)
    if flow is not None and not (
        context.expecting is Expecting.CONFIRM and flow == context.flow and s.yes
    ):
        out.append(StartFlow(flow))
    current = flow or context.flow
    picked = _option(r)
    asks = _asks(r, flow)
    out.extend(asks)
    when = r.when
    visit_day: dt.date | None = None
    if current is Flow.MOVE and len(when.dates) >= 2:
        visit_day, when = _split_move(r)
    picking_visit = current in (Flow.CANCEL, Flow.MOVE) and (
        flow in (Flow.CANCEL, Flow.MOVE)
        or context.expecting in (Expecting.VISIT, Expecting.NOTHING)
    )
    if current is Flow.CANCEL and picking_visit and when.date is not None:
        visit_day, when = when.date, When()
    if context.expecting is Expecting.VISIT and when.date is not None and visit_day is None:
        visit_day, when = when.date, When()
    if not asks:
        out.extend(_service_commands(r, picking_visit, visit_day))
    else:
        if visit_day is not None and picking_visit:
            out.append(ChooseVisit(day=visit_day))
        out.extend(UnknownService(text, closest) for text, closest in r.services.unknown)
    if picked is not None:
        out.append(picked)
        by_time = isinstance(picked, ChooseOption) and picked.time is not None
        if by_time or when.bare_hour:
            when = When()  # the time (or "на 2") was the pick, not a new wish
    if r.masters and not asks:
        out.append(SetMaster(r.masters[0].staff_id))
    elif s.any_master or (context.expecting is Expecting.MASTER and _any_master_word(r)):
        out.append(SetMaster(None))
    if not when.is_empty and (not asks or flow is not None) and current is not Flow.VISITS:
        out.append(SetWhen(when))
    if r.name is not None:
        out.append(SetName(r.name[0]))
    substantive = [c for c in out if not isinstance(c, (SetName, Ask))]
    if _is_yes(r, substantive):
        out.append(Confirm())
    elif (
        s.no
        and flow is None
        and not any(
            isinstance(c, (SetWhen, SetServices, SetMaster, ChooseOption, AmbiguousService))
            for c in out
        )
    ):
        out.append(Deny())
    elif s.no and not s.yes and context.expecting is Expecting.CONFIRM and flow is None:
        pass  # a no with a correction: the correction stands alone
    out.extend(SmallTalk(kind) for kind in s.small_talk)
    if not out:
        return (NotUnderstood(),)
    return tuple(out)


#: Said after a reminder, these confirm the visit ("буду", "обязательно приду", "всё в силе").
_ATTEND_WORDS = frozenset(
    [
        "буду",
        "будем",
        "приду",
        "придем",
        "придём",
        "придет",
        "придёт",
        "подойду",
        "подойдем",
        "подойдём",
        "обязательно",
        "непременно",
        "жду",
        "ждите",
        # as clients write them: misspelt, or slang the general yes list lacks
        "прийду",
        "прийдем",
        "прийдём",
        "норм",
        "окк",
        "оки",
        "подверждаю",
        "потверждаю",
        "подтвеждаю",
    ]
)
_ATTEND_PHRASES = ("в силе", "до встречи", "до завтра", "увидимся")
#: After a reminder these ask when the visit is ("а во сколько?"): the client's visits.
_WHEN_IS_IT = re.compile(
    r"(а\s+)?(во\s+сколько|когда|в\s+какое\s+время)(\s+мне)?(\s+(приходить|подходить))?"
)


def _read_attendance(r: _Reading) -> None:
    """After a reminder: a word of coming is a yes (never when negated: "не буду" is a no);
    "подтверждаю запись" / "запись в силе" confirm the visit, they book nothing new."""
    s = r.signals
    lows = [w.low.replace("ё", "е") for w in r.ws]
    for k, low in enumerate(lows):
        if (low in _ATTEND_WORDS or low.replace("е", "ё") in _ATTEND_WORDS) and not (
            k > 0 and lows[k - 1] == "не"
        ):
            s.yes = True
            s.taken.add(k)
            if any(w in {"но", "только", "однако", "хотя"} for w in lows[k + 1 :]):
                s.contrast = True
    joined = " " + " ".join(lows) + " "
    if any(f" {p} " in joined for p in _ATTEND_PHRASES) and " не " not in joined:
        s.yes = True
    if not s.flows and _WHEN_IS_IT.fullmatch(" ".join(lows)):
        s.flows[Flow.VISITS] = 0
    book_at = s.flows.get(Flow.BOOK)
    if (
        s.yes
        and book_at is not None
        and r.ws[book_at].lemma == "запись"
        and not (r.services.mentions or r.services.unknown or r.masters)
        and r.when.is_empty
    ):
        del s.flows[Flow.BOOK]
        s.explicit_book = False


def _requests(r: _Reading) -> bool:
    """The message asks for something (a booking, a cancel, a move, a question)."""
    s = r.signals
    return bool(s.flows or s.topics or s.handover is HandOverReason.ASKED)


def _is_comment(r: _Reading) -> bool:
    """After a rating: words about the visit, with no request in them ("мастер опоздал"),
    not only thanks, a yes or a no."""
    if _requests(r):
        return False
    free = [w for k, w in enumerate(r.ws) if k not in r.signals.taken and w.cyrillic]
    return len(free) >= 2 or (len(free) == 1 and len(r.ws) == 1 and len(free[0].low) > 3)


def _flow(r: _Reading) -> Flow | None:
    """The flow this message starts, if any."""
    s, ctx = r.signals, r.context
    request = {f: k for f, k in s.flows.items() if f is not Flow.BOOK}
    if ctx.expecting is Expecting.CONFIRM:
        # While a summary waits for a yes: "отменяйте" in a cancel (or "переносите" in a
        # move) is the yes; "отмена", or a cancel word in a booking, is a no.
        for said in (Flow.CANCEL, Flow.MOVE):
            if said not in request:
                continue
            if said is ctx.flow and r.ws[request[said]].low != "отмена":
                s.yes = True
            elif said is Flow.CANCEL:
                s.no = True
            else:
                continue
            del request[said]
    nothing_asked = ctx.expecting is Expecting.NOTHING and ctx.flow in (None, Flow.CANCEL)
    if s.cannot and not request and Flow.BOOK not in s.flows and nothing_asked:
        request[Flow.CANCEL] = 0  # "я не смогу завтра"
        s.no = False
    if Flow.CANCEL in request or Flow.MOVE in request:
        request.pop(Flow.VISITS, None)
    if request:
        return min(request, key=request.__getitem__)
    if Flow.BOOK in s.flows:
        return Flow.BOOK
    if s.wish and r.when.has_day and not s.topics and ctx.flow is None:
        return Flow.BOOK  # "сегодня в 10 можно?"
    if r.services.mentions or r.services.unknown or r.masters:
        asking = (bool(s.topics) or _asks_what_there_is(r)) and not s.explicit_book
        if asking:
            return None
        wants = s.wish or not r.when.is_empty or bool(r.masters) or _service_verb(r)
        if ctx.flow in (Flow.CANCEL, Flow.MOVE) and ctx.expecting in (
            Expecting.VISIT,
            Expecting.CONFIRM,
        ):
            return None
        if wants and ctx.flow is None:
            return Flow.BOOK
        if ctx.flow is None and ctx.expecting is Expecting.NOTHING and r.services.mentions:
            return Flow.BOOK  # "маникюр" alone: what else would a client of a salon mean
    return None


def _service_verb(r: _Reading) -> bool:
    """A service said as a verb ("постричься", "покрасить"): a wish to have it done."""
    return any(
        w.info.pos in {"INFN", "VERB"}
        and any(m.start <= w.start < m.end for m in r.services.mentions)
        for w in r.ws
    )


def _asks(r: _Reading, flow: Flow | None) -> list[Ask]:
    """The questions asked, with the services or category they are about."""
    s = r.signals
    topics = list(s.topics)
    if s.explicit_book or flow in (Flow.CANCEL, Flow.MOVE, Flow.VISITS):
        topics = [t for t in topics if t not in (Topic.SERVICES, Topic.MASTERS)]
        if flow is not None and flow is not Flow.BOOK:
            topics = [t for t in topics if t in (Topic.ADDRESS, Topic.HOURS, Topic.PHONE)]
    ids = r.services.ids
    category = r.services.categories[0] if r.services.categories else None
    named = bool(ids) or category is not None or bool(r.services.unknown)
    unasked = not topics and flow is None and r.context.flow is None
    if unasked and named and _asks_what_there_is(r):
        topics = [Topic.SERVICES]
    if Topic.PRICE_LIST in topics and Topic.PRICE in topics:
        topics.remove(Topic.PRICE if not ids and category is None else Topic.PRICE_LIST)
    if Topic.SERVICE_INFO in topics and not ids:
        topics.remove(Topic.SERVICE_INFO)
        if not topics and not r.services.unknown:
            topics = [Topic.CAPABILITIES] if _is_question(r) else []
    if Topic.SERVICES in topics and Topic.PRICE in topics:
        topics.remove(Topic.SERVICES)
    out: list[Ask] = []
    for topic in topics:
        if topic in (Topic.PRICE, Topic.SERVICES, Topic.SERVICE_INFO, Topic.MASTERS):
            out.append(Ask(topic, ids, None if ids else category))
        else:
            out.append(Ask(topic))
    return out


def _is_question(r: _Reading) -> bool:
    first = r.ws[0].low if r.ws else ""
    return "?" in r.text or first in _QUESTION_OPENERS


def _asks_what_there_is(r: _Reading) -> bool:
    """ "какие стрижки есть?", "маникюр делаете?": a question about services, no wish, no
    day, no master — so no booking starts."""
    s = r.signals
    if s.wish or s.explicit_book or r.masters or not r.when.is_empty:
        return False
    opener = bool(r.ws) and r.ws[0].low in _QUESTION_OPENERS
    return opener or ("?" in r.text and r.context.expecting is Expecting.NOTHING)


def _service_commands(r: _Reading, picking_visit: bool, visit_day: dt.date | None) -> list[Command]:
    """Services named, as a booking reads them, or as hints to a visit."""
    match: ServiceMatch = r.services
    if picking_visit:
        if match.ids or visit_day is not None:
            return [ChooseVisit(service_ids=match.ids, day=visit_day)]
        return []
    out: list[Command] = []
    resolved: list[int] = []
    ambiguous: list[tuple[str, tuple[int, ...]]] = []
    staff = r.masters[0].staff_id if r.masters else None
    for mention in match.mentions:
        ids = mention.ids
        if len(ids) > 1 and staff is not None:
            theirs = tuple(
                i
                for i in ids
                if (svc := r.catalog.service(i)) is not None
                and (not svc.staff_ids or staff in svc.staff_ids)
            )
            ids = theirs or ids
        if len(ids) == 1:
            resolved.append(ids[0])
        else:
            ambiguous.append((mention.text, ids))
    if resolved:
        out.append(SetServices(r.index.sort(resolved)))
    out.extend(AmbiguousService(text, ids) for text, ids in ambiguous)
    out.extend(UnknownService(text, closest) for text, closest in match.unknown)
    if not match.mentions and not match.unknown and match.categories:
        services = r.catalog.in_category(match.categories[0])
        ids = tuple(s.id for s in services)
        if len(ids) == 1:
            out.append(SetServices(ids))
        elif ids and (r.signals.flows or r.signals.wish or r.context.flow is Flow.BOOK):
            out.append(AmbiguousService(" ".join(_category_words(r)), ids))
        elif ids:
            out.append(Ask(Topic.SERVICES, (), match.categories[0]))
    return out


def _category_words(r: _Reading) -> list[str]:
    return [w.raw for w in r.ws if any(s < w.end and w.start < e for s, e in r.services.spans)] or [
        r.text.strip()
    ]


def _option(r: _Reading) -> Command | None:
    """An offered option picked by number, ordinal or time (rules: module docstring)."""
    ctx = r.context
    visit = ctx.expecting is Expecting.VISIT
    if not visit and ctx.expecting not in _OPTION_EXPECTED:
        return None
    count = ctx.offered_count
    if count <= 0:
        return None
    if not visit and r.when.time is not None and ctx.offered_times:
        at = r.when.time
        date = r.when.date
        for offered in ctx.offered_times:
            same_day = date is None or offered.date() == date
            if (offered.hour, offered.minute) == (at.hour, at.minute) and same_day:
                return ChooseOption(time=offered.time().replace(tzinfo=None))
    number = _number(r, count)
    if number is None:
        return None
    return ChooseVisit(number=number) if visit else ChooseOption(number=number)


def _number(r: _Reading, count: int) -> int | None:
    """The option number said: a digit, an ordinal, "последний"; None when out of range."""
    for k, w in enumerate(r.ws):
        n: int | None = None
        if w.low.isdigit() and len(w.low) <= 2:
            bare_on = (
                k in r.in_when
                and r.when.bare_hour
                and k > 0
                and r.ws[k - 1].low == "на"
                and r.when.time is not None
            )
            if k in r.in_when and not bare_on:
                continue
            if k + 1 < len(r.ws) and not _option_follower(r.ws[k + 1]):
                continue
            n = int(w.low)
        elif w.lemma in ORDINALS and k not in r.in_when:
            n = ORDINALS[w.lemma]
        elif w.lemma == "последний":
            n = count
        elif w.lemma == "предпоследний":
            n = count - 1
        if n is not None:
            return n if 1 <= n <= count else None
    return None


def _option_follower(word: Word) -> bool:
    return word.low in _FILLER or word.info.lemma in {"вариант", "пожалуйста", "подходить"}


def _any_master_word(r: _Reading) -> bool:
    return any(w.low in {"любой", "любому", "любая", "любую", "любого"} for w in r.ws) or (
        "без разницы" in r.text.lower() or "все равно" in r.text.lower().replace("ё", "е")
    )


def _is_yes(r: _Reading, substantive: Sequence[Command]) -> bool:
    """A plain yes: a yes word, no contrast, nothing new but a flow already under way."""
    s = r.signals
    if not s.yes or s.contrast or s.no:
        return False
    if any(not isinstance(c, StartFlow) for c in substantive):
        return False
    starts = [c for c in substantive if isinstance(c, StartFlow)]
    return not starts or all(c.flow == r.context.flow for c in starts)


def _split_move(r: _Reading) -> tuple[dt.date | None, When]:
    """ "перенесите с пятницы на субботу": the visit's day (after с / со) and the new when."""
    for k, w in enumerate(r.ws):
        if w.low in {"с", "со"} and k + 1 < len(r.ws) and k + 1 in r.in_when:
            end = next(
                (x.start for x in r.ws[k + 2 :] if x.low == "на"),
                len(r.text),
            )
            old_text = r.text[w.start : end]
            new_text = r.text[: w.start] + " " * (end - w.start) + r.text[end:]
            opening = r.catalog.salon.opening
            old = parse_when(old_text, r.now, opening=opening) if opening else None
            old = old if old is not None else parse_when(old_text, r.now)
            new = (
                parse_when(new_text, r.now, opening=opening)
                if opening
                else parse_when(new_text, r.now)
            )
            return old.date, new
    return None, r.when
