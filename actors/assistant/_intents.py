"""What a client's message asks for, from its words: a flow (book, cancel, move, list), a
question, a person, an opt-out, small talk, yes or no, "any master", an option by ordinal.

``read_signals(words)`` looks at each word's lower-case form and lemma and at short phrases
(the words joined by single spaces, so punctuation does not matter). Negation is read for the
flows: a cancel or move word with "не" just before it, or "не надо" / "не нужно" just after
("не надо отменять", "отменять не нужно"), is no request; the fixed phrases "не смогу
прийти" (cancel) and "не пишите" (opt-out) are matched as phrases first. ``positions`` keep
where each flow was said, so "отменить или перенести" takes the first. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ._commands import Flow, HandOverReason, SmallTalkKind, Topic
from ._words import Word

__all__ = ["ORDINALS", "Signals", "read_signals"]


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _phrases(*items: str) -> tuple[str, ...]:
    return items


# ----------------------------------------------------------------------------- vocabulary

_OPT_OUT_WORDS = _set("стоп stop отписать отписаться отпишись unsubscribe спам")
_OPT_OUT_PHRASES = _phrases(
    "не пишите",
    "не писать мне",
    "не пиши мне",
    "хватит писать",
    "хватит мне писать",
    "хватит присылать",
    "не присылайте",
    "не беспокойте",
    "не беспокоить",
    "удалите мой номер",
    "удалите меня",
    "прекратите писать",
    "перестаньте писать",
    "отстаньте",
    "не надо мне писать",
    "не нужно мне писать",
    "больше не пиши",
)
_HANDOVER_WORDS = _set(
    "администратор админ админа админу администратора администратору администрация "
    "менеджер оператор руководитель директор управляющий хозяин"
)
_HANDOVER_PHRASES = _phrases(
    "живой человек",
    "живого человека",
    "живым человеком",
    "с человеком",
    "позовите",
    "позови",
    "соедините",
    "перезвоните",
    "позвоните мне",
    "свяжитесь со мной",
    "наберите меня",
    "хочу поговорить с",
    "не с ботом",
    "не бот",
)
_COMPLAINT_WORDS = _set(
    "жалоба жаловаться пожаловаться ужасно ужасный ужас отвратительно отвратительный "
    "недовольный недовольна недоволен безобразие кошмар хамство хамить нахамить хам "
    "претензия обман обмануть испортить позор отстой возмутительно возмущенный "
    "безответственность"
)
_COMPLAINT_PHRASES = _phrases(
    "не понравилось", "верните деньги", "вернуть деньги", "возврат денег", "плохо сделали"
)

_CANCEL_LEMMAS = _set("отменить отменять отмена аннулировать отказаться")
_CANCEL_PHRASES = _phrases(
    "не смогу прийти",
    "не смогу придти",
    "не смогу подойти",
    "не смогу быть",
    "не могу прийти",
    "не могу придти",
    "не приду",
    "не подойду",
    "не получится прийти",
    "не получится придти",
    "не получится подойти",
    "не успею прийти",
    "не успеваю прийти",
    "не смогу сходить",
)
# Said with nothing on the table, these are a visit that cannot happen ("я не смогу завтра");
# as an answer to a summary or a list of times they are a no.
_CANNOT = _phrases("не смогу", "не получится", "не успею", "не могу")
_MOVE_LEMMAS = _set(
    "перенести переносить перенос перезаписать перезаписаться передвинуть сдвинуть "
    "подвинуть перенесение"
)
_MOVE_PHRASES = _phrases(
    "поменять время",
    "изменить время",
    "сменить время",
    "поменять запись",
    "изменить запись",
    "поменять день",
    "изменить день",
    "перенести запись",
    "на другое время",
    "на другой день",
    "в другое время",
    "в другой день",
)
_VISITS_PHRASES = _phrases(
    "мои записи",
    "моя запись",
    "моих записей",
    "мои визиты",
    "у меня запись",
    "у меня записи",
    "есть запись",
    "есть ли запись",
    "я записан",
    "я записана",
    "я записаны",
    "когда я записан",
    "когда я записана",
    "у меня есть запись",
    "куда я записан",
    "куда я записана",
)
_BOOK_LEMMAS = _set(
    "записать записаться записывать записываться запись окошко окно забронировать бронь "
    "бронировать попасть свободный свободно"
)
_BOOK_PHRASES = _phrases(
    "есть время",
    "есть места",
    "есть место",
    "свободное время",
    "когда можно прийти",
    "можно прийти",
    "хочу прийти",
)
_WISH = _set("хотеть хотеться можно нужно надо планировать желать мочь")

_PRICE_WORDS = _set("стоить стоимость цена почем почём скок скоко скока сколько-то ценник расценка")
_PRICE_PHRASES = _phrases("сколько стоит", "сколько стоят", "сколько будет", "по чем", "сколько за")
_PRICE_LIST_WORDS = _set("прайс прайс-лист прайслист прейскурант расценка")
_PRICE_LIST_PHRASES = _phrases(
    "все цены",
    "цены на все",
    "ваши цены",
    "какие цены",
    "какие у вас цены",
    "цены на услуги",
    "стоимость услуг",
    "список цен",
)
_INFO_PHRASES = _phrases(
    "что входит",
    "что такое",
    "что за",
    "что это",
    "расскажите про",
    "расскажите о",
    "расскажите об",
    "расскажи про",
    "подробнее о",
    "подробнее про",
    "как проходит",
    "как делается",
    "как делают",
    "чем отличается",
    "в чем разница",
    "в чем отличие",
    "сколько длится",
    "сколько по времени",
    "как долго",
    "описание",
)
_SERVICES_PHRASES = _phrases(
    "какие услуги",
    "какие у вас услуги",
    "список услуг",
    "что вы делаете",
    "что у вас есть",
    "что есть",
    "какие есть",
    "что предлагаете",
    "чем занимаетесь",
    "какие виды",
    "делаете ли",
    "вы делаете",
    "у вас есть",
    "есть ли у вас",
    "есть у вас",
)
_ADDRESS_WORDS = _set("адрес адресок находиться добраться доехать дойти проехать метро ориентир")
_ADDRESS_PHRASES = _phrases(
    "где вы",
    "где салон",
    "где это",
    "где у вас",
    "куда идти",
    "куда приходить",
    "куда подойти",
    "куда ехать",
    "как найти",
    "как пройти",
    "как вас найти",
    "в каком районе",
)
_HOURS_PHRASES = _phrases(
    "до скольки",
    "до скольких",
    "со скольки",
    "со скольких",
    "до какого времени",
    "с какого времени",
    "во сколько открываетесь",
    "во сколько закрываетесь",
    "режим работы",
    "график работы",
    "часы работы",
    "время работы",
    "когда работаете",
    "когда вы работаете",
    "когда открыты",
    "вы работаете",
    "работаете ли",
    "вы открыты",
    "во сколько вы открываетесь",
    "до которого часа",
)
_HOURS_WORDS = _set("открываться закрываться")
_PHONE_WORDS = _set("телефон телефончик")
_PHONE_PHRASES = _phrases(
    "куда позвонить",
    "как позвонить",
    "как с вами связаться",
    "как связаться",
    "номер салона",
    "ваш номер",
    "номер телефона",
    "можно позвонить",
)
_MASTERS_PHRASES = _phrases(
    "кто делает",
    "кто у вас делает",
    "кто стрижет",
    "кто работает",
    "какие мастера",
    "какие у вас мастера",
    "кто мастер",
    "кто из мастеров",
    "список мастеров",
    "к кому можно",
    "какой мастер",
    "кто сегодня работает",
    "кто завтра работает",
    "к какому мастеру",
    "какого мастера",
    "какой мастер лучше",
)
_CAPABILITY_PHRASES = _phrases(
    "что ты умеешь",
    "что вы умеете",
    "что умеешь",
    "что ты можешь",
    "что вы можете",
    "ты бот",
    "вы бот",
    "ты робот",
    "вы робот",
    "с кем я говорю",
    "с кем я общаюсь",
    "чем можешь помочь",
    "чем можете помочь",
    "как пользоваться",
    "помощь",
    "меню",
    "help",
)

_GREETING_PHRASES = _phrases(
    "привет",
    "приветик",
    "приветствую",
    "здравствуйте",
    "здравствуй",
    "здрасьте",
    "здрасте",
    "здрасти",
    "здравствуйте здравствуйте",
    "добрый день",
    "добрый вечер",
    "доброе утро",
    "доброго утра",
    "доброго дня",
    "доброго вечера",
    "доброй ночи",
    "доброго времени суток",
    "хай",
    "салам",
    "салют",
    "ассаламу алейкум",
    "салам алейкум",
)
_THANKS_PHRASES = _phrases(
    "спасибо",
    "спасибочки",
    "спасибки",
    "благодарю",
    "спс",
    "пасиб",
    "пасибо",
    "благодарствую",
    "мерси",
    "большое спасибо",
)
#: "не знаю пока", "не решила пока": "пока" is "yet" after these, not a goodbye.
_NOT_YET_BEFORE = _set("знаю решила решил решили уверена уверен понятно ясно")
_GOODBYE_PHRASES = _phrases(
    "до свидания",
    "досвидания",
    "всего доброго",
    "всего хорошего",
    "до встречи",
    "хорошего дня",
    "хорошего вечера",
    "до связи",
    "пока пока",
)
# An acknowledgement ("понятно") is answered like thanks: never a "not understood".
_ACK_PHRASES = _phrases("понятно", "ясно", "понял", "поняла", "понятненько", "принято")

_YES_WORDS = _set(
    "да ага угу давайте давай записывайте записывай подтверждаю подтверждаем ок окей ok "
    "okay хорошо конечно верно точно отлично супер договорились идет годится подходит "
    "устраивает согласна согласен разумеется ладно + 👍 👌 ✅ дада го пойдет сойдет "
    "запишите"
)
_NO_WORDS = _set("нет неа нее нету не-а отбой передумал передумала передумали")
_NO_PHRASES = _phrases(
    "не надо",
    "не нужно",
    "не хочу",
    "не подходит",
    "не устраивает",
    "не стоит",
    "не сейчас",
    "в другой раз",
    "не записывайте",
    "не отменяйте",
    "не переносите",
    "пожалуй нет",
    "не буду",
    "не получится",
    "не смогу",
    "не могу",
)
_CONTRAST = _set("но только однако хотя правда")
_ANY_MASTER_PHRASES = _phrases(
    "к любому",
    "любой мастер",
    "любого мастера",
    "любому мастеру",
    "все равно к кому",
    "неважно к кому",
    "не важно к кому",
    "без разницы к кому",
    "к кому угодно",
    "к кому-нибудь",
    "кто свободен",
    "любой свободный",
    "к любой",
)

ORDINALS: dict[str, int] = {
    "первый": 1,
    "второй": 2,
    "третий": 3,
    "четвертый": 4,
    "пятый": 5,
    "шестой": 6,
    "седьмой": 7,
    "восьмой": 8,
    "девятый": 9,
    "десятый": 10,
}


# ----------------------------------------------------------------------------- reading


@dataclass
class Signals:
    """What ``read_signals`` found; ``spans`` cover the words of small talk, yes/no and
    intent phrases (never a name, a service or a master)."""

    flows: dict[Flow, int] = field(default_factory=dict)  # flow → first word index
    explicit_book: bool = False  # a booking word ("запишите", "окошки"), not only a wish
    wish: bool = False  # хочу / можно / нужно …
    topics: list[Topic] = field(default_factory=list)
    handover: HandOverReason | None = None
    opt_out: bool = False
    small_talk: list[SmallTalkKind] = field(default_factory=list)
    yes: bool = False
    no: bool = False
    contrast: bool = False
    any_master: bool = False
    cannot: bool = False  # "не смогу": a cancel when nothing is asked, else a no
    taken: set[int] = field(default_factory=set)  # word indexes used by the above


class _Text:
    """The message's words as one space-joined string, to find phrases and their words."""

    def __init__(self, ws: Sequence[Word]) -> None:
        self.ws = ws
        self.lows = [w.low for w in ws]
        self.lemmas = [w.lemma for w in ws]
        self.joined = " " + " ".join(self.lows) + " "
        self._starts: list[int] = []
        at = 1
        for low in self.lows:
            self._starts.append(at)
            at += len(low) + 1

    def find(self, phrase: str) -> int | None:
        """Index of the first word of ``phrase`` (whole words), or None."""
        at = self.joined.find(f" {phrase} ")
        if at < 0:
            return None
        return self._starts.index(at + 1) if at + 1 in self._starts else None

    def has(self, phrases: Sequence[str], signals: Signals | None = None) -> int | None:
        """First position of any of ``phrases``; marks their words as taken."""
        best: int | None = None
        for phrase in phrases:
            k = self.find(phrase)
            if k is not None:
                if signals is not None:
                    signals.taken.update(range(k, k + len(phrase.split())))
                best = k if best is None else min(best, k)
        return best

    def word(self, vocabulary: frozenset[str], *, negatable: bool = False) -> int | None:
        """First word whose form or lemma is in ``vocabulary`` (not negated, if asked)."""
        for k, (low, lemma) in enumerate(zip(self.lows, self.lemmas, strict=True)):
            if low in vocabulary or lemma in vocabulary:
                if negatable and self.negated(k):
                    continue
                return k
        return None

    def negated(self, k: int) -> bool:
        before = self.lows[max(0, k - 2) : k]
        after = self.lows[k + 1 : k + 3]
        return "не" in before or after in (["не", "надо"], ["не", "нужно"], ["не", "стоит"])


def read_signals(ws: Sequence[Word]) -> Signals:
    """Every signal in ``ws`` (see the module docstring)."""
    text = _Text(ws)
    s = Signals()
    if text.has(_OPT_OUT_PHRASES, s) is not None or text.word(_OPT_OUT_WORDS) is not None:
        s.opt_out = True
    if text.has(_COMPLAINT_PHRASES, s) is not None or text.word(_COMPLAINT_WORDS) is not None:
        s.handover = HandOverReason.COMPLAINT
    elif text.has(_HANDOVER_PHRASES, s) is not None or text.word(_HANDOVER_WORDS) is not None:
        s.handover = HandOverReason.ASKED
    _read_flows(text, s)
    _read_topics(text, s)
    _read_small_talk(text, s)
    _read_yes_no(text, s)
    if text.has(_ANY_MASTER_PHRASES, s) is not None:
        s.any_master = True
    return s


def _read_flows(text: _Text, s: Signals) -> None:
    cancel = text.has(_CANCEL_PHRASES, s)
    if cancel is None:
        cancel = text.word(_CANCEL_LEMMAS, negatable=True)
    cannot = text.has(_CANNOT)
    if cannot is not None:
        s.cannot = True
    move = text.has(_MOVE_PHRASES, s)
    moved_word = text.word(_MOVE_LEMMAS, negatable=True)
    if moved_word is not None:
        move = moved_word if move is None else min(move, moved_word)
    if cancel is not None:
        s.flows[Flow.CANCEL] = cancel
        s.taken.add(cancel)
    if move is not None:
        s.flows[Flow.MOVE] = move
        s.taken.add(move)
    visits = text.has(_VISITS_PHRASES, s)
    if visits is not None:
        s.flows[Flow.VISITS] = visits
    book = text.has(_BOOK_PHRASES, s)
    for k, (low, lemma) in enumerate(zip(text.lows, text.lemmas, strict=True)):
        if (lemma in _BOOK_LEMMAS or low in _BOOK_LEMMAS) and not text.negated(k):
            if text.ws[k].info.pos == "PRTS":  # "я записана" — a question about visits
                continue
            book = k if book is None else min(book, k)
            s.taken.add(k)
            break
    if book is not None:
        s.flows[Flow.BOOK] = book
        s.explicit_book = True
    wish = text.word(_WISH)
    if wish is not None and not text.negated(wish):
        s.wish = True


def _read_topics(text: _Text, s: Signals) -> None:
    def add(topic: Topic, found: int | None) -> None:
        if found is not None and topic not in s.topics:
            s.topics.append(topic)
            s.taken.add(found)

    price_list = text.has(_PRICE_LIST_PHRASES, s)
    if price_list is None:
        price_list = text.word(_PRICE_LIST_WORDS)
    add(Topic.PRICE_LIST, price_list)
    price = text.has(_PRICE_PHRASES, s)
    if price is None:
        price = text.word(_PRICE_WORDS)
    add(Topic.PRICE, price)
    add(Topic.SERVICE_INFO, text.has(_INFO_PHRASES, s))
    add(Topic.SERVICES, text.has(_SERVICES_PHRASES, s))
    address = text.has(_ADDRESS_PHRASES, s)
    add(Topic.ADDRESS, address if address is not None else text.word(_ADDRESS_WORDS))
    hours = text.has(_HOURS_PHRASES, s)
    add(Topic.HOURS, hours if hours is not None else text.word(_HOURS_WORDS))
    phone = text.has(_PHONE_PHRASES, s)
    if phone is None:
        phone = text.word(_PHONE_WORDS)
        if phone is not None and text.find("мой") is not None:
            phone = None
    add(Topic.PHONE, phone)
    add(Topic.MASTERS, text.has(_MASTERS_PHRASES, s))
    add(Topic.CAPABILITIES, text.has(_CAPABILITY_PHRASES, s))


def _read_small_talk(text: _Text, s: Signals) -> None:
    for kind, phrases in (
        (SmallTalkKind.GREETING, _GREETING_PHRASES),
        (SmallTalkKind.THANKS, _THANKS_PHRASES),
        (SmallTalkKind.GOODBYE, _GOODBYE_PHRASES),
        (SmallTalkKind.THANKS, _ACK_PHRASES),
    ):
        if text.has(phrases, s) is not None and kind not in s.small_talk:
            s.small_talk.append(kind)
    # "пока" is goodbye only at the end of a short message ("ну всё, пока"), not "yet" after
    # a doubt ("не знаю пока").
    if (
        text.lows
        and text.lows[-1] == "пока"
        and len(text.lows) <= 4
        and not (len(text.lows) >= 2 and text.lows[-2] in _NOT_YET_BEFORE)
    ):
        if SmallTalkKind.GOODBYE not in s.small_talk:
            s.small_talk.append(SmallTalkKind.GOODBYE)
        s.taken.add(len(text.lows) - 1)


def _read_yes_no(text: _Text, s: Signals) -> None:
    no = text.has(_NO_PHRASES, s)
    for k, low in enumerate(text.lows):
        if low in _NO_WORDS or (low == "не" and len(text.lows) == 1):
            no = k if no is None else min(no, k)
            s.taken.add(k)
    # "нет" deep inside a sentence ("у меня нет времени") is not an answer.
    s.no = no is not None and (no <= 1 or len(text.lows) <= 4 or text.lows[no] != "нет")
    for k, (low, lemma) in enumerate(zip(text.lows, text.lemmas, strict=True)):
        if (low in _YES_WORDS or lemma in {"подтверждать", "согласный"}) and not (
            k > 0 and text.lows[k - 1] == "не"
        ):
            s.yes = True
            s.taken.add(k)
            if any(w in _CONTRAST for w in text.lows[k + 1 :]):
                s.contrast = True
    if "да" in text.lows and any(w in _CONTRAST for w in text.lows):
        s.contrast = True
