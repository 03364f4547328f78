"""``actors.reminders.__all__`` lists exactly the public names the package re-exports."""

from __future__ import annotations

import types

import pytest

import actors.reminders


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name in dir(actors.reminders)
        if not name.startswith("_")
        and not isinstance(getattr(actors.reminders, name), types.ModuleType)
    }
    assert public == set(actors.reminders.__all__)
    assert len(actors.reminders.__all__) == len(set(actors.reminders.__all__))


def test_all_names_resolve_to_the_private_modules() -> None:
    for name in actors.reminders.__all__:
        value = getattr(actors.reminders, name)
        assert value.__module__.startswith("actors.reminders._"), name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = actors.reminders.no_such_name  # type: ignore[attr-defined]
