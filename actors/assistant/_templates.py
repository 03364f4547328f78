"""Every word the assistant says to a salon's client, in one place.

Short, polite, addressing the client as «вы». The assistant speaks as a woman administrator
("записала", "отменила", "перенесла", "поняла") in every reply. A claim that something was
done ("записала вас", "отменила", "перенесла") appears only in the templates ``booked``,
``cancelled`` and ``moved``, which ``decide`` uses only after YClients confirmed the action.

Functions take typed values (services, masters, slots, visits) and format them through
``_format``: prices ``1 500 ₽`` / ``от 2 500 до 3 500 ₽``, days ``пт 14 марта`` (with
``сегодня`` / ``завтра`` when apt), masters declined ("к Сергею", "у Марины").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal

from ._catalog import AssistantCatalog, Master, SalonCard, Service
from ._effects import Slot, Visit
from ._format import decline_name, format_day, format_price, format_time
from ._morph import analyzer

__all__ = [
    "already_booked",
    "ask_day",
    "ask_move_when",
    "ask_name",
    "ask_service",
    "bad_date",
    "booked",
    "booking_in_progress",
    "booking_not_confirmed",
    "booking_not_made",
    "booking_pending",
    "booking_refused",
    "booking_summary",
    "booking_unavailable",
    "cancel_failed",
    "cancel_kept",
    "cancelled",
    "capabilities",
    "category_list",
    "confirm_cancel",
    "confirm_move",
    "day_passed",
    "deny_booking",
    "display_name",
    "goodbye",
    "greeting",
    "handoff",
    "how_can_i_help",
    "master_does_not_do",
    "masters_list",
    "move_failed",
    "move_kept",
    "move_taken",
    "moved",
    "no_free_time",
    "no_such_option",
    "no_visits",
    "non_text",
    "not_understood",
    "nothing_soon",
    "offered_times",
    "ok",
    "opted_out",
    "price_list",
    "prices",
    "salon_address",
    "salon_hours",
    "salon_phone",
    "service_info",
    "slot_passed",
    "slots_unavailable",
    "thanks",
    "time_just_taken",
    "time_taken",
    "unknown_service",
    "visit_gone",
    "visits_list",
    "visits_unavailable",
    "which_service",
    "which_service_of",
    "which_visit",
]


# --------------------------------------------------------------------------- pieces


def display_name(master: Master, masters: Iterable[Master]) -> str:
    """How a master is called in replies: the first name, or the full name when another
    bookable master shares that first name."""
    first = master.name.split()[0] if master.name.split() else master.name
    clash = any(m.id != master.id and (m.name.split() or [""])[0] == first for m in masters)
    return master.name if clash else first


def _master_of(catalog: AssistantCatalog, staff_id: int | None) -> str | None:
    master = catalog.master(staff_id) if staff_id is not None else None
    return display_name(master, catalog.masters) if master is not None else None


def _at(start: dt.datetime, today: dt.date) -> str:
    """``завтра, пт 14 марта в 15:00``."""
    return f"{format_day(start.date(), today)} в {format_time(start)}"


def _titles(catalog: AssistantCatalog, service_ids: Sequence[int]) -> str:
    titles = [s.title for i in service_ids if (s := catalog.service(i)) is not None]
    return " и ".join(titles) if titles else "Услуга"


def _total_price(catalog: AssistantCatalog, service_ids: Sequence[int]) -> str:
    chosen = [catalog.service(i) for i in service_ids]
    services = [s for s in chosen if s is not None]
    if not services or any(s.price_min is None and s.price_max is None for s in services):
        return ""
    low = sum(
        (s.price_min if s.price_min is not None else s.price_max or Decimal(0) for s in services),
        Decimal(0),
    )
    high = sum(
        (s.price_max if s.price_max is not None else s.price_min or Decimal(0) for s in services),
        Decimal(0),
    )
    return format_price(low, high)


def _price_line(service: Service) -> str:
    price = format_price(service.price_min, service.price_max)
    return (
        f"{service.title} — {price}" if price else f"{service.title} — цену уточнит администратор"
    )


def _visit_line(catalog: AssistantCatalog, visit: Visit, today: dt.date) -> str:
    """``Стрижка мужская у Игоря, чт 13 марта в 17:00``."""
    titles = (
        " и ".join(visit.service_titles)
        if visit.service_titles
        else _titles(catalog, visit.service_ids)
    )
    master = _master_of(catalog, visit.staff_id)
    with_master = f" у {decline_name(master, 'gent')}" if master else ""
    return f"{titles}{with_master}, {_at(visit.start, today)}"


# --------------------------------------------------------------------------- conversation


def greeting(name: str | None) -> str:
    return f"Здравствуйте, {name}!" if name else "Здравствуйте!"


def how_can_i_help() -> str:
    return (
        "Чем могу помочь? Могу записать вас, перенести или отменить запись, подсказать цены "
        "и адрес."
    )


def capabilities() -> str:
    return (
        "Я могу записать вас на услугу, перенести или отменить запись, подсказать цены, "
        "адрес и часы работы. Напишите, например: «запишите на стрижку завтра в 15:00»."
    )


def not_understood(question: str | None) -> str:
    if question:
        return f"Не совсем поняла вас. {question}"
    return f"Не совсем поняла вас. {capabilities()}"


def thanks() -> str:
    return "Пожалуйста! Если что-то понадобится — пишите."


def goodbye() -> str:
    return "До свидания! Будем рады вас видеть."


def ok() -> str:
    return "Хорошо."


def non_text() -> str:
    return "Я читаю только текст. Напишите, пожалуйста, словами, чем могу помочь."


def catalog_unavailable() -> str:
    """The salon's services are not known to us yet (never synced): no claim, a person."""
    return (
        "Сейчас я не вижу список услуг и цен салона. Передаю ваш вопрос администратору — "
        "вам ответят здесь, в этом чате."
    )


def handoff(complaint: bool) -> str:
    if complaint:
        return (
            "Мне очень жаль, что так вышло. Передаю ваше сообщение администратору — "
            "вам ответят здесь, в этом чате."
        )
    return "Передаю ваш вопрос администратору — вам ответят здесь, в этом чате."


def opted_out() -> str:
    return "Хорошо, больше не будем вам писать. Если захотите записаться — просто напишите нам."


def bad_date() -> str:
    return "Такой даты нет. Напишите, пожалуйста, день иначе — например, «завтра» или «14 марта»."


def day_passed() -> str:
    return "Этот день уже прошёл."


def no_such_option(count: int) -> str:
    if count <= 1:
        return "Такого варианта нет — есть только один, напишите «1» или «да»."
    return f"Такого варианта нет. Напишите номер от 1 до {count}."


# --------------------------------------------------------------------------- booking


def ask_service(master: str | None) -> str:
    if master:
        return f"На какую услугу вас записать к {decline_name(master, 'datv')}?"
    return "На какую услугу вас записать?"


def which_service(services: Sequence[Service]) -> str:
    lines = "\n".join(f"{n}) {_price_line(x)}" for n, x in enumerate(services, start=1))
    return f"Какую именно услугу?\n{lines}\nНапишите номер или название."


def which_service_of(master: str, services: Sequence[Service]) -> str:
    lines = "\n".join(f"{n}) {_price_line(x)}" for n, x in enumerate(services, start=1))
    return (
        f"На какую услугу вас записать к {decline_name(master, 'datv')}?\n{lines}\n"
        "Напишите номер или название."
    )


def slots_unavailable() -> str:
    return (
        "Не получается сейчас посмотреть свободное время: система записи салона не "
        "отвечает. Попробуйте, пожалуйста, через несколько минут."
    )


def visits_unavailable() -> str:
    return (
        "Не получается сейчас посмотреть ваши записи: система записи салона не отвечает. "
        "Попробуйте, пожалуйста, через несколько минут."
    )


def ask_day(time: dt.time | None) -> str:
    if time is not None:
        return f"На какой день вас записать в {format_time(time)}?"
    return "На какой день вас записать?"


def ask_name(start: dt.datetime, today: dt.date) -> str:
    return f"Время {_at(start, today)} свободно. Как вас зовут?"


def master_does_not_do(
    master: str, catalog: AssistantCatalog, service_ids: Sequence[int], others: Sequence[Master]
) -> str:
    titles = _titles(catalog, service_ids)
    if not others:
        return f"{master} не делает «{titles}»."
    names = ", ".join(display_name(m, catalog.masters) for m in others)
    return f"{master} не делает «{titles}». Эту услугу делает: {names}."


def _as_named(phrase: str) -> str:
    """The client's words for a service in the nominative, as a name is quoted: "на
    лазерную эпиляцию" said → «лазерная эпиляция» (the first noun and the adjectives before
    it; what follows, "для рук", stays as written; a word the dictionary cannot inflect too)."""
    words = phrase.split()
    morph = analyzer()
    parsed = [morph.parse(w.lower())[0] if w.isalpha() else None for w in words]
    head = next(
        (k for k, p in enumerate(parsed) if p is not None and p.tag.POS == "NOUN"),
        None,
    )
    if head is None:
        return phrase
    noun = parsed[head]
    assert noun is not None
    number = noun.tag.number or "sing"
    out = list(words)
    for k in range(head + 1):
        p = parsed[k]
        if p is None or p.tag.POS not in ("NOUN", "ADJF", "PRTF"):
            continue
        wanted = {"nomn", number}
        if p.tag.POS != "NOUN" and number == "sing" and noun.tag.gender:
            wanted.add(noun.tag.gender)
        form = p.inflect(wanted)
        if form is not None:
            word = form.word
            out[k] = word[:1].upper() + word[1:] if words[k][:1].isupper() else word
    return " ".join(out)


def unknown_service(text: str, closest: Sequence[Service]) -> str:
    text = _as_named(text.strip())
    what = f"«{text}»" if text else "такой услуги"
    head = (
        f"К сожалению, {what} у нас нет."
        if text.strip()
        else "К сожалению, такой услуги у нас нет."
    )
    if not closest:
        return head
    lines = "\n".join(_price_line(s) for s in closest)
    return f"{head} Из похожего есть:\n{lines}"


def offered_times(
    catalog: AssistantCatalog, slots: Sequence[Slot], today: dt.date, *, with_masters: bool
) -> str:
    """A numbered list of free times (one day: times only; several days: day and time), then
    the question. Master names are added when the list mixes masters."""
    days = {s.start.date() for s in slots}
    lines = []
    for number, slot in enumerate(slots, start=1):
        when = format_time(slot.start) if len(days) == 1 else _at(slot.start, today)
        master = _master_of(catalog, slot.staff_id) if with_masters else None
        suffix = f" — {master}" if master else ""
        lines.append(f"{number}) {when}{suffix}")
    header = f"Свободно {format_day(next(iter(days)), today)}:" if len(days) == 1 else "Свободно:"
    return header + "\n" + "\n".join(lines) + "\nКакой вариант подходит? Напишите номер."


def time_taken(start: dt.datetime, master: str | None, today: dt.date) -> str:
    who = f" у {decline_name(master, 'gent')}" if master else ""
    when = _at(start, today)
    return f"{when[:1].upper()}{when[1:]}{who} уже занято."


def no_free_time(
    days: Sequence[dt.date],
    master: str | None,
    today: dt.date,
    *,
    window: tuple[dt.time, dt.time] | None,
) -> str:
    who = f"У {decline_name(master, 'gent')} " if master else ""
    if len(days) == 1:
        when = format_day(days[0], today)
    else:
        when = f"{format_day(days[0], today)} – {format_day(days[-1], today)}"
    part = f" с {format_time(window[0])} до {format_time(window[1])}" if window else ""
    text = f"{who}на {when}{part} свободного времени нет."
    return text[0].upper() + text[1:]


def nothing_soon(days: int) -> str:
    return (
        f"В ближайшие {days} дней свободного времени на эту услугу нет. "
        "Могу передать ваш запрос администратору — напишите «администратор»."
    )


def booking_summary(
    catalog: AssistantCatalog,
    service_ids: Sequence[int],
    slot: Slot,
    client_name: str,
    today: dt.date,
) -> str:
    """``Стрижка мужская у Игоря, пт 14 марта в 15:00, 1 200 ₽. Записать на имя Тимур?``"""
    master = _master_of(catalog, slot.staff_id)
    with_master = f" у {decline_name(master, 'gent')}" if master else ""
    price = _total_price(catalog, service_ids)
    price_part = f", {price}" if price else ""
    return (
        f"{_titles(catalog, service_ids)}{with_master}, {_at(slot.start, today)}{price_part}. "
        f"Записать на имя {client_name}?"
    )


def booked(
    catalog: AssistantCatalog, service_ids: Sequence[int], slot: Slot, today: dt.date
) -> str:
    master = _master_of(catalog, slot.staff_id)
    to_master = f" к {decline_name(master, 'datv')}" if master else ""
    return (
        f"Готово, записала вас{to_master}: {_titles(catalog, service_ids)}, "
        f"{_at(slot.start, today)}. Ждём вас!"
    )


def already_booked(
    catalog: AssistantCatalog, service_ids: Sequence[int], slot: Slot, today: dt.date
) -> str:
    master = _master_of(catalog, slot.staff_id)
    with_master = f" у {decline_name(master, 'gent')}" if master else ""
    return (
        f"Ваша запись уже создана: {_titles(catalog, service_ids)}{with_master}, "
        f"{_at(slot.start, today)}. Ждём вас!"
    )


def booking_pending() -> str:
    return "Уточняю запись в системе салона — подтвержу в ближайшие минуты."


def booking_in_progress() -> str:
    return "Ещё уточняю вашу запись в системе салона — напишу, как только будет ответ."


def booking_not_made() -> str:
    return "К сожалению, запись не создалась: система салона не ответила вовремя."


def booking_not_confirmed() -> str:
    return (
        "Не получается подтвердить запись в системе салона. Передаю администратору — "
        "он проверит и напишет вам здесь."
    )


def booking_unavailable() -> str:
    return (
        "Система записи салона сейчас не отвечает, запись пока не создана. "
        "Попробовать ещё раз? Напишите «да»."
    )


def booking_refused() -> str:
    return (
        "Система салона не приняла запись. Передаю администратору — вам ответят здесь, в этом чате."
    )


def slot_passed() -> str:
    return "Это время уже прошло."


def time_just_taken() -> str:
    return "Это время только что заняли."


def deny_booking() -> str:
    return "Хорошо, не записываю. Если подобрать другой день или время — напишите."


# --------------------------------------------------------------------------- visits


def visits_list(catalog: AssistantCatalog, visits: Sequence[Visit], today: dt.date) -> str:
    if len(visits) == 1:
        return f"Ваша предстоящая запись: {_visit_line(catalog, visits[0], today)}."
    lines = "\n".join(
        f"{n}) {_visit_line(catalog, v, today)}" for n, v in enumerate(visits, start=1)
    )
    return f"Ваши предстоящие записи:\n{lines}"


def no_visits() -> str:
    return "У вас нет предстоящих записей в нашем салоне."


def which_visit(
    catalog: AssistantCatalog, visits: Sequence[Visit], today: dt.date, *, move: bool
) -> str:
    verb = "перенести" if move else "отменить"
    lines = "\n".join(
        f"{n}) {_visit_line(catalog, v, today)}" for n, v in enumerate(visits, start=1)
    )
    return f"Какую запись {verb}? Напишите номер.\n{lines}"


def confirm_cancel(catalog: AssistantCatalog, visit: Visit, today: dt.date) -> str:
    return f"Отменить запись: {_visit_line(catalog, visit, today)}?"


def cancelled(catalog: AssistantCatalog, visit: Visit, today: dt.date) -> str:
    return f"Готово, отменила запись: {_visit_line(catalog, visit, today)}."


def cancel_kept() -> str:
    return "Хорошо, запись остаётся."


def cancel_failed() -> str:
    return (
        "Не получилось отменить запись: система салона сейчас не отвечает, запись пока "
        "остаётся. Попробуйте чуть позже или напишите «администратор»."
    )


def see_you() -> str:
    """The answer to a yes after a reminder (the visit is confirmed)."""
    return "Ждём вас!"


def review_comment_thanks() -> str:
    """The answer to words about a visit sent after its rating."""
    return "Спасибо, что написали! Мы передали ваш отзыв салону."


def visit_gone() -> str:
    return "Этой записи уже нет в системе салона — возможно, её уже отменили."


def ask_move_when(catalog: AssistantCatalog, visit: Visit, today: dt.date) -> str:
    return f"На какой день и время перенести запись ({_visit_line(catalog, visit, today)})?"


def confirm_move(catalog: AssistantCatalog, visit: Visit, slot: Slot, today: dt.date) -> str:
    master = _master_of(catalog, slot.staff_id)
    with_master = f" у {decline_name(master, 'gent')}" if master else ""
    return (
        f"Перенести запись ({_visit_line(catalog, visit, today)}) "
        f"на {_at(slot.start, today)}{with_master}?"
    )


def moved(catalog: AssistantCatalog, visit: Visit, slot: Slot, today: dt.date) -> str:
    titles = (
        " и ".join(visit.service_titles)
        if visit.service_titles
        else _titles(catalog, visit.service_ids)
    )
    master = _master_of(catalog, slot.staff_id)
    with_master = f" у {decline_name(master, 'gent')}" if master else ""
    return f"Готово, перенесла: {titles}{with_master}, теперь {_at(slot.start, today)}. Ждём вас!"


def move_kept() -> str:
    return "Хорошо, запись остаётся как была."


def move_taken() -> str:
    return "Это время уже занято, запись осталась как была."


def move_failed() -> str:
    return (
        "Не получилось перенести: система салона сейчас не отвечает, запись осталась как "
        "была. Попробуйте чуть позже или напишите «администратор»."
    )


# --------------------------------------------------------------------------- answers


def prices(services: Sequence[Service]) -> str:
    """Prices of the services named (one line each)."""
    return "\n".join(_price_line(s) for s in services)


def price_list(catalog: AssistantCatalog, services: Sequence[Service] | None = None) -> str:
    """The price list grouped by category (all services, or those given)."""
    chosen = list(services if services is not None else catalog.services)
    if not chosen:
        return "Прайс пока не заполнен — подскажет администратор."
    groups: dict[int | None, list[Service]] = {}
    for service in chosen:
        groups.setdefault(service.category_id, []).append(service)
    blocks = []
    for category_id, items in groups.items():
        category = catalog.category(category_id)
        lines = "\n".join(_price_line(s) for s in items)
        blocks.append(f"{category.title}:\n{lines}" if category is not None else lines)
    return "\n\n".join(blocks)


def category_list(catalog: AssistantCatalog, category_id: int) -> str:
    category = catalog.category(category_id)
    services = catalog.in_category(category_id)
    if not services:
        return "В этом разделе сейчас нет услуг."
    head = f"{category.title}:\n" if category is not None else ""
    return head + "\n".join(_price_line(s) for s in services)


def service_info(service: Service) -> str:
    price = format_price(service.price_min, service.price_max)
    facts = ", ".join(
        part for part in (price, f"{service.minutes} мин" if service.minutes else "") if part
    )
    tail = f" ({facts})" if facts else ""
    if service.description.strip():
        return f"{service.title}{tail}: {service.description.strip()}"
    return f"{service.title}{tail}. Подробнее расскажет мастер или администратор."


def masters_list(
    catalog: AssistantCatalog, masters: Sequence[Master], service_ids: Sequence[int]
) -> str:
    if not masters:
        return "Сейчас нет мастеров, к которым можно записаться онлайн."
    lines = "\n".join(
        f"{m.name} — {m.specialization}" if m.specialization else m.name for m in masters
    )
    if service_ids:
        return f"«{_titles(catalog, service_ids)}» делают:\n{lines}"
    return f"Наши мастера:\n{lines}"


def salon_address(card: SalonCard) -> str:
    if card.address:
        return f"Наш адрес: {card.address}."
    return "Адрес подскажет администратор."


def salon_hours(card: SalonCard) -> str:
    if card.schedule:
        return f"Часы работы: {card.schedule}."
    if card.opening is not None:
        start, end = card.opening
        return f"Работаем ежедневно с {format_time(start)} до {format_time(end)}."
    return "Часы работы подскажет администратор."


def salon_phone(card: SalonCard) -> str:
    if card.phone:
        return f"Телефон салона: {card.phone}."
    return "Телефон салона подскажет администратор — или пишите сюда."
