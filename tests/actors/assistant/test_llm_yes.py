"""A model's "yes" is not taken where the client said no (issue 15 review): a summary's yes is
what books, cancels or moves, so a model that misreads (or obeys) "нет, не отменяйте" as a
confirmation must not act on it."""

from __future__ import annotations

import pytest

from actors.assistant._commands import Confirm, Deny, Expecting, Flow, TurnContext
from actors.assistant._llm_schema import Unresolvable, check, to_commands
from actors.assistant._understand import understand_rules

from .booking_stand import NOW
from .example_catalog import assistant_catalog

CATALOG = assistant_catalog()
SUMMARY = TurnContext(expecting=Expecting.CONFIRM, flow=Flow.CANCEL)
YES = check({"commands": [{"type": "confirm"}]})


@pytest.mark.parametrize("text", ["нет, не отменяйте", "нет", "не, передумал"])
def test_a_model_yes_to_a_no_is_refused(text: str) -> None:
    with pytest.raises(Unresolvable):
        to_commands(YES, text, SUMMARY, CATALOG, NOW)
    assert understand_rules(text, SUMMARY, CATALOG, NOW) == (Deny(),)  # what then answers


@pytest.mark.parametrize("text", ["да", "ну давайте, отменяйте уже", "ок"])
def test_a_model_yes_the_rules_do_not_contradict_is_taken(text: str) -> None:
    assert to_commands(YES, text, SUMMARY, CATALOG, NOW) == (Confirm(),)
