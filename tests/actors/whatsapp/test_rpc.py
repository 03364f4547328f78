"""Framed JSON request/reply peers (used on host pipes and the world socket)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from actors.whatsapp import CommandTimeout, SendFailed, WhatsAppError
from actors.whatsapp._rpc import FrameError, FrameStream, PeerLost, RpcPeer, error_from_dict


def peers(
    on_request: Any = None, on_note: Any = None
) -> tuple[RpcPeer, RpcPeer, trio.testing.MemoryReceiveStream]:
    left, right = trio.testing.memory_stream_pair()
    a = RpcPeer(FrameStream(left, left), name="a")
    b = RpcPeer(FrameStream(right, right), on_request=on_request, on_note=on_note, name="b")
    return a, b, right  # type: ignore[return-value]


async def test_call_reply_error_and_notes(autojump_clock: trio.testing.MockClock) -> None:
    notes: list[dict[str, Any]] = []

    async def handle(op: str, args: dict[str, Any]) -> Any:
        if op == "add":
            return args["x"] + args["y"]
        if op == "refuse":
            raise SendFailed(3, "3EB0AA", "blocked")
        if op == "slow":
            await trio.sleep(100)
        raise RuntimeError("boom")

    a, b, _ = peers(handle, notes.append)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.run)
        nursery.start_soon(b.run)
        assert await a.call("add", {"x": 2, "y": 3}) == 5
        with pytest.raises(SendFailed) as info:
            await a.call("refuse", {})
        assert (info.value.company_id, info.value.message_id, info.value.reason) == (
            3,
            "3EB0AA",
            "blocked",
        )
        with pytest.raises(WhatsAppError, match="internal error: RuntimeError: boom"):
            await a.call("other", {})
        with pytest.raises(trio.TooSlowError):
            await a.call("slow", {}, timeout=1)
        a.notify_nowait({"n": 1})
        a.notify_nowait({"n": 2})
        await trio.testing.wait_all_tasks_blocked()
        assert notes == [{"n": 1}, {"n": 2}]
        # requests are served concurrently: a slow one does not hold up the next
        slow_outcome: list[str] = []

        async def slow_call() -> None:
            try:
                await a.call("slow", {})
            except PeerLost:
                slow_outcome.append("lost")

        with trio.fail_after(1):
            nursery.start_soon(slow_call)
            assert await a.call("add", {"x": 1, "y": 1}) == 2
        await b.aclose()
        with trio.fail_after(1):
            await a.closed.wait()
        with pytest.raises(PeerLost):
            await a.call("add", {"x": 1, "y": 1})
        await trio.testing.wait_all_tasks_blocked()
        assert slow_outcome == ["lost"]  # the call in flight learnt the peer was gone
        nursery.cancel_scope.cancel()


async def test_pending_call_fails_when_the_other_side_goes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handle(op: str, args: dict[str, Any]) -> Any:
        await trio.sleep_forever()

    a, b, _ = peers(handle)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.run)
        nursery.start_soon(b.run)

        async def close_later() -> None:
            await trio.sleep(1)
            await b.aclose()

        nursery.start_soon(close_later)
        with pytest.raises(PeerLost):
            await a.call("hang", {})
        nursery.cancel_scope.cancel()


async def test_bad_frames_end_the_peer() -> None:
    left, right = trio.testing.memory_stream_pair()
    a = RpcPeer(FrameStream(left, left), name="a")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.run)
        await right.send_all(b"\x00\x00\x00\x02[]")  # JSON, but not an object
        with trio.fail_after(1):
            await a.closed.wait()
    frames = FrameStream(*trio.testing.memory_stream_pair())
    with pytest.raises(FrameError):
        await frames.send({"x": "y" * (17 * 2**20)})


def test_unknown_error_types_become_whatsapp_error() -> None:
    exc = error_from_dict({"type": "KeyError", "message": "m"})
    assert type(exc) is WhatsAppError and str(exc) == "m"
    timeout = error_from_dict({"type": "CommandTimeout", "message": "t", "attrs": {"op": "send"}})
    assert isinstance(timeout, CommandTimeout) and timeout.op == "send"
