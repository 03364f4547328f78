"""``actors.company.__all__`` lists exactly the public names the package re-exports."""

from __future__ import annotations

import types

import pytest

import actors.company as company
from tests.actors.test_exports import public_names


def test_all_lists_every_public_name() -> None:
    # ``messages`` is the one submodule exported on purpose: the actor's protocol.
    assert public_names(company) | {"messages"} == set(company.__all__)
    assert len(company.__all__) == len(set(company.__all__))


def test_all_names_resolve_to_the_modules_that_define_them() -> None:
    for name in company.__all__:
        assert getattr(company, name) is not None
    assert company.CompanyActor.__module__ == "actors.company._actor"
    assert company.CommandResult.__module__ == "actors.company._messages"


def test_the_messages_module_is_public() -> None:
    assert isinstance(company.messages, types.ModuleType)
    assert {"RequestQr", "Subscribe", "SendText"} <= set(vars(company.messages))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = company.no_such_name  # type: ignore[attr-defined]
