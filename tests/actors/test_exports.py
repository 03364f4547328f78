"""``actors.__all__`` lists exactly the public names the package defines or re-exports."""

from __future__ import annotations

import types

import pytest

import actors


def public_names(package: types.ModuleType) -> set[str]:
    """Public attributes (names loaded on first use included), submodules left out."""
    return {
        name
        for name in dir(package)
        if not name.startswith("_") and not isinstance(getattr(package, name), types.ModuleType)
    }


def test_all_lists_every_public_name() -> None:
    assert public_names(actors) == set(actors.__all__)
    assert len(actors.__all__) == len(set(actors.__all__))


def test_all_names_resolve() -> None:
    for name in actors.__all__:
        assert getattr(actors, name) is not None


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = actors.no_such_name  # type: ignore[attr-defined]
