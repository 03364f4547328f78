from __future__ import annotations

import storage


def test_all_lists_every_public_name() -> None:
    public = {name for name in dir(storage) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(storage, name)).__name__ == "module"}
    assert set(storage.__all__) == public - modules


def test_all_names_resolve() -> None:
    for name in storage.__all__:
        assert getattr(storage, name) is not None
