"""``runtime.__all__`` lists exactly the public names the package defines or re-exports."""

from __future__ import annotations

import runtime


def test_all_is_complete_and_importable() -> None:
    public = {name for name in dir(runtime) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(runtime, name)).__name__ == "module"}
    assert set(runtime.__all__) == public - modules - {"annotations"}
    assert len(runtime.__all__) == len(set(runtime.__all__))
    for name in runtime.__all__:
        assert getattr(runtime, name) is not None


def test_error_hierarchy_is_shallow() -> None:
    for name in ("ActorCrashed", "ActorUnavailable", "AskTimeout", "MailboxFull"):
        cls = getattr(runtime, name)
        assert cls.__bases__ == (runtime.ActorError,)
    assert runtime.ActorError.__bases__ == (Exception,)


def test_backoff_is_public_for_every_retry_loop() -> None:
    assert {"Backoff", "Jitter"} <= set(runtime.__all__)
    assert runtime.Backoff.__module__ == "runtime._backoff"
