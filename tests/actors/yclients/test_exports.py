"""The public surface of actors.yclients and of the fake is exactly what __all__ says."""

from __future__ import annotations

import types

import actors.yclients
import tests.fakes.yclients


def _public(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


def test_actors_yclients_all_is_complete() -> None:
    assert set(actors.yclients.__all__) == _public(actors.yclients)
    assert len(actors.yclients.__all__) == len(set(actors.yclients.__all__))


def test_fake_all_is_complete() -> None:
    assert set(tests.fakes.yclients.__all__) == _public(tests.fakes.yclients)


def test_error_hierarchy_is_shallow() -> None:
    y = actors.yclients
    for cls in (y.YClientsUnavailable, y.YClientsRateLimited, y.YClientsRejected):
        assert cls.__bases__ == (y.YClientsError,)
    assert y.YClientsAuthError.__bases__ == (y.YClientsError,)
    for data_error in (y.InvalidSignature, y.MalformedUserData, y.MalformedWebhook):
        assert data_error.__bases__ == (y.MarketplaceDataError,)
    assert issubclass(y.MarketplaceDataError, ValueError)
