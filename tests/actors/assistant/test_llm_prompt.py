"""The prompt's size stays bounded whatever the salon's catalog (issue 15 review)."""

from __future__ import annotations

import dataclasses
import json

from actors.assistant._catalog import AssistantCatalog, Service
from actors.assistant._commands import SetServices, TurnContext
from actors.assistant._llm_prompt import messages
from actors.assistant._llm_schema import check, to_commands

from .booking_stand import NOW
from .example_catalog import assistant_catalog

CATALOG = assistant_catalog()


def _sent(catalog: AssistantCatalog) -> str:
    return "".join(m["content"] for m in messages("привет", TurnContext(), catalog, NOW))


def test_a_small_catalog_sends_every_service_under_its_category() -> None:
    state = json.loads(messages("привет", TurnContext(), CATALOG, NOW)[1]["content"])
    grouped = state["services_by_category"]
    titles = {c.id: c.title for c in CATALOG.categories}
    for service in CATALOG.services:
        assert service.title in grouped[titles.get(service.category_id or -1, "")]
    assert sum(len(names) for names in grouped.values()) == len(CATALOG.services)


def test_a_thousand_services_do_not_make_every_message_a_hundred_thousand_characters() -> None:
    category = CATALOG.services[0].category_id
    many = tuple(
        Service(
            id=90_000 + i, title=f"Окрашивание длинных волос, техника {i}", category_id=category
        )
        for i in range(1000)
    )
    big = dataclasses.replace(CATALOG, services=(*CATALOG.services, *many))
    sent = _sent(big)
    assert len(sent) < 5_000  # it was ~93,000 characters per message
    assert "техника 7" not in sent
    state = json.loads(messages("привет", TurnContext(), big, NOW)[1]["content"])
    assert sorted(c.title for c in CATALOG.categories) == state["service_categories"]
    # the model names the service in the client's words; the rules' matcher still finds it
    answer = check({"commands": [{"type": "set_services", "names": ["мужская стрижка"]}]})
    text = "хочу мужскую стрижку"
    assert to_commands(answer, text, TurnContext(), big, NOW) == (SetServices((6101,)),)
