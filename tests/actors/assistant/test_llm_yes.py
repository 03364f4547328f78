"""A model's "yes" or rating is not taken where the rules read the opposite (issue 15
review): a summary's yes is what books, cancels or moves, so a model that misreads (or obeys)
"нет, не отменяйте" as a confirmation must not act on it."""

from __future__ import annotations

import pytest

from actors.assistant._commands import (
    Confirm,
    Deny,
    Expecting,
    Flow,
    Rate,
    TurnContext,
)
from actors.assistant._llm_schema import Unresolvable, check, to_commands
from actors.assistant._prompts import PromptKind
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


def test_a_model_rating_the_client_did_not_give_is_refused() -> None:
    # "ужасно" after a review request is a 1: a model's 5 would skip the salon's low-rating
    # alert and send the review link
    review = TurnContext(prompt=PromptKind.REVIEW)
    five = check({"commands": [{"type": "rate", "rating": 5}]})
    with pytest.raises(Unresolvable):
        to_commands(five, "ужасно", review, CATALOG, NOW)
    assert to_commands(five, "всё отлично, 5", review, CATALOG, NOW) == (Rate(5, ""),)
