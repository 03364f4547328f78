"""Contract: connect tokens, QR codes, rate limits, pub/sub (in-memory twin and Redis)."""

from __future__ import annotations

import pytest
import trio

from storage import MemoryKeyValue, Storage, ValidationError, open_storage


async def test_tokens_issue_resolve_revoke(storage: Storage) -> None:
    token = await storage.tokens.issue(7)
    assert len(token) >= 40
    assert await storage.tokens.resolve(token) == 7
    assert await storage.tokens.current(7) == token
    newer = await storage.tokens.issue(7)
    assert newer != token
    assert await storage.tokens.resolve(token) is None  # the previous one is revoked
    assert await storage.tokens.resolve(newer) == 7
    other = await storage.tokens.issue(8)
    await storage.tokens.revoke(7)
    assert await storage.tokens.resolve(newer) is None
    assert await storage.tokens.current(7) is None
    assert await storage.tokens.resolve(other) == 8
    for bad in ["", "nope", "x" * 300, "a\x00b", "*"]:
        assert await storage.tokens.resolve(bad) is None


async def test_racing_token_issues_leave_one_live_token(storage: Storage) -> None:
    issued: list[str] = []

    async def issue() -> None:
        issued.append(await storage.tokens.issue(9))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(issue)
    live = [t for t in issued if await storage.tokens.resolve(t) == 9]
    assert live == [await storage.tokens.current(9)]


async def test_qr_roundtrip(storage: Storage) -> None:
    assert await storage.qr.get(3) is None
    code = await storage.qr.put(3, "2@ABCdef123,xyz==", generated_at=1_700_000_000.5)
    assert await storage.qr.get(3) == code
    assert code.generated_at == 1_700_000_000.5
    assert code.lifetime == 20.0  # the default TTL
    first = await storage.qr.put(3, "2@first", ttl=60.0)  # whatsmeow's first code lives ~60 s
    assert await storage.qr.get(3) == first and first.lifetime == 60.0
    await storage.qr.clear(3)
    assert await storage.qr.get(3) is None
    with pytest.raises(ValidationError):
        await storage.qr.put(3, "bad\x00")


async def test_qr_carries_the_incarnation_that_showed_it(storage: Storage) -> None:
    """Readers tell a code of the live actor from one a dead or restarted actor left behind."""
    shown = await storage.qr.put(3, "2@live", incarnation="a1b2")
    assert shown.incarnation == "a1b2"
    assert await storage.qr.get(3) == shown
    assert (await storage.qr.put(3, "2@untagged")).incarnation == ""
    with pytest.raises(ValidationError):
        await storage.qr.put(3, "2@x", incarnation="\ud800")


async def test_rate_limit_window(storage: Storage) -> None:
    decisions = [await storage.rate_limiter.hit("ws:1.2.3.4", 3, 60) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0, 0]
    assert decisions[0].retry_after == 0
    assert 59 < decisions[3].retry_after <= 60
    assert (await storage.rate_limiter.hit("ws:5.6.7.8", 3, 60)).allowed  # keys independent
    await storage.rate_limiter.reset("ws:1.2.3.4")
    assert (await storage.rate_limiter.hit("ws:1.2.3.4", 3, 60)).remaining == 2
    with pytest.raises(ValidationError):
        await storage.rate_limiter.hit("k", 0, 60)


async def test_rate_limit_concurrent_hits_count_exactly(storage: Storage) -> None:
    allowed = 0

    async def hit() -> None:
        nonlocal allowed
        if (await storage.rate_limiter.hit("api:/x:1.1.1.1", 7, 60)).allowed:
            allowed += 1

    async with trio.open_nursery() as nursery:
        for _ in range(40):
            nursery.start_soon(hit)
    assert allowed == 7


async def test_pubsub_roundtrip(storage: Storage) -> None:
    async with storage.pubsub.subscribe("company:1") as receive:
        with trio.fail_after(5):
            # The subscription is confirmed on entry, so the first message reaches it.
            assert await storage.pubsub.publish("company:1", {"event": "status", "n": 1}) == 1
            await storage.pubsub.publish("company:2", {"event": "other"})
            await storage.pubsub.publish("company:1", {"event": "status", "n": 2})
            assert await receive.receive() == {"event": "status", "n": 1}
            assert await receive.receive() == {"event": "status", "n": 2}
    assert await storage.pubsub.publish("company:1", {"late": True}) == 0


async def test_redis_uses_seed_key_names_and_ttls(real_storage: Storage) -> None:
    assert real_storage.redis is not None
    client, prefix = real_storage.redis.client, real_storage.redis.prefix
    token = await real_storage.tokens.issue(42)
    await real_storage.qr.put(42, "2@qr")
    assert await client.get(f"{prefix}marketplace:token:{token}") == "42"
    assert await client.get(f"{prefix}marketplace:company:42:token") == token
    assert 86_000_000 < await client.pttl(f"{prefix}marketplace:company:42:token") <= 86_400_000
    assert 19_000 < await client.pttl(f"{prefix}marketplace:qr:42") <= 20_000
    assert (await real_storage.ping_redis()).ok


async def test_memory_expiry_follows_the_injected_clock(autojump_clock: object) -> None:
    async with open_storage(monotonic_clock=trio.current_time) as st:
        token = await st.tokens.issue(1, ttl=86400)
        await st.qr.put(1, "2@qr")
        first = await st.rate_limiter.hit("k", 1, 60)
        assert first.allowed and not (await st.rate_limiter.hit("k", 1, 60)).allowed
        await trio.sleep(20.5)
        assert await st.qr.get(1) is None
        assert await st.tokens.resolve(token) == 1
        await trio.sleep(40)
        assert (await st.rate_limiter.hit("k", 1, 60)).allowed  # a new window
        await trio.sleep(86400)
        assert await st.tokens.resolve(token) is None
        assert await st.tokens.current(1) is None


async def test_memory_sweeps_stale_entries(autojump_clock: object) -> None:
    kv = MemoryKeyValue(trio.current_time)
    for i in range(100):
        kv.set(f"k{i}", i, 1.0)
    kv.set("keep", 1, 10_000)
    assert len(kv) == 101
    await trio.sleep(299)
    kv.get("keep")
    assert len(kv) == 101  # not yet: sweeps run at most every 5 minutes
    await trio.sleep(2)
    assert kv.get("keep") == 1
    assert len(kv) == 1


async def test_redis_loads_a_script_the_server_does_not_know(real_storage: Storage) -> None:
    from coredis.commands.script import Script

    assert real_storage.redis is not None
    backend = real_storage.redis
    fresh: Script[str] = backend.client.register_script(
        f"-- {id(backend)} {trio.current_time()}\nreturn redis.call('INCR', KEYS[1])"
    )
    key = f"{backend.prefix}fresh"
    assert await backend.eval_script(fresh, [key], []) == 1  # NOSCRIPT, loaded, retried
    assert await backend.eval_script(fresh, [key], []) == 2


async def test_membership_heartbeat_lists_live_members_and_leave_ends_it(
    storage: Storage,
) -> None:
    """``member:{node}``: each heartbeat refreshes the node and reads every live member (with
    its advertised URL) back; ``leave`` ends the membership at once."""
    assert await storage.leases.members() == {}
    assert await storage.leases.heartbeat("node-a", "http://10.0.0.1:3000", 30) == {
        "node-a": "http://10.0.0.1:3000"
    }
    both = await storage.leases.heartbeat("node-b", "http://10.0.0.2:3000", 30)
    assert both == {"node-a": "http://10.0.0.1:3000", "node-b": "http://10.0.0.2:3000"}
    assert await storage.leases.members() == both
    assert await storage.leases.leave("node-a")
    assert not await storage.leases.leave("node-a")
    assert await storage.leases.members() == {"node-b": "http://10.0.0.2:3000"}
    with pytest.raises(ValidationError):
        await storage.leases.heartbeat("", "http://x", 30)
    with pytest.raises(ValidationError):
        await storage.leases.heartbeat("node-c", "http://x", 0)


async def test_a_renewing_heartbeat_does_not_recreate_a_lapsed_membership(
    storage: Storage,
) -> None:
    """``renew=True`` refreshes a membership that still exists, but one whose key is gone
    (Redis lost its data or its clock jumped) is not created again: the node is missing
    from the answer, holds no membership, and can take no claim until it heartbeats anew."""
    await storage.leases.heartbeat("node-a", "http://a", 30)
    await storage.leases.heartbeat("node-b", "http://b", 30)
    assert set(await storage.leases.heartbeat("node-a", "http://a", 30, renew=True)) == {
        "node-a",
        "node-b",
    }
    await storage.leases.leave("node-a")  # its key lapsed unseen
    assert await storage.leases.heartbeat("node-a", "http://a", 30, renew=True) == {
        "node-b": "http://b"
    }
    assert await storage.leases.members() == {"node-b": "http://b"}
    assert await storage.leases.claim(5, "node-a") is None
    assert "node-a" in await storage.leases.heartbeat("node-a", "http://a", 30)


async def test_a_draining_member_is_left_out_of_the_members_but_keeps_its_claims(
    storage: Storage,
) -> None:
    """``draining=True`` (a graceful stop under way): every node's list of live members leaves
    the node out, yet its claims stay its own until it releases them or leaves."""
    await storage.leases.heartbeat("node-a", "http://a", 30)
    await storage.leases.heartbeat("node-b", "http://b", 30)
    assert await storage.leases.claim(5, "node-a") == "node-a"
    assert await storage.leases.heartbeat("node-a", "http://a", 30, draining=True) == {
        "node-b": "http://b"
    }
    assert await storage.leases.members() == {"node-b": "http://b"}
    assert await storage.leases.claim(5, "node-b") == "node-a"  # still a member's claim
    assert await storage.leases.release(5, "node-a")
    assert await storage.leases.claim(5, "node-b") == "node-b"
    assert await storage.leases.claim(6, "node-a") == "node-a"
    await storage.leases.leave("node-a")
    assert await storage.leases.claim(6, "node-b") == "node-b"
    # A node that heartbeats again without draining (restarted) is listed again.
    await storage.leases.heartbeat("node-a", "http://a", 30, draining=True)
    assert "node-a" in await storage.leases.heartbeat("node-a", "http://a", 30)


async def test_claims_one_holder_while_it_is_a_member(storage: Storage) -> None:
    """``owner:{id}``: a live member takes a free claim; another live member sees the holder;
    only the holder releases; a non-member takes nothing; a holder that left loses it."""
    for node in ("node-a", "node-b"):
        await storage.leases.heartbeat(node, f"http://{node}", 30)
    assert await storage.leases.holder(5) is None
    assert await storage.leases.claim(5, "node-a") == "node-a"
    assert await storage.leases.claim(5, "node-b") == "node-a"
    assert await storage.leases.claim(5, "node-a") == "node-a"  # re-entrant
    assert await storage.leases.claim(5, "node-x") is None  # not a member: takes nothing
    assert await storage.leases.holder(5) == "node-a"
    assert not await storage.leases.release(5, "node-b")
    assert await storage.leases.claim(6, "node-b") == "node-b"  # per company
    assert await storage.leases.release(5, "node-a")
    assert await storage.leases.holder(5) is None
    assert await storage.leases.claim(5, "node-b") == "node-b"
    assert await storage.leases.claim(7, "node-b") == "node-b"
    await storage.leases.leave("node-b")  # gone: its claims are free to take, untouched
    assert await storage.leases.holder(6) == "node-b"
    assert await storage.leases.claim(6, "node-a") == "node-a"
    assert await storage.leases.release_all([5, 7, 6, 8], "node-b") == 2
    assert await storage.leases.holder(5) is None and await storage.leases.holder(7) is None
    assert await storage.leases.holder(6) == "node-a"
    with pytest.raises(ValidationError):
        await storage.leases.claim(0, "node-a")


async def test_claim_many_is_claim_for_each_in_one_call(storage: Storage) -> None:
    """``claim_many`` (a take-over's claims, one round trip per 500): each free claim, one
    already the caller's and one of a node that left are taken; one a live member holds is
    left to it (its holder answered); a non-member takes none; batches past 500 too."""
    for node in ("node-a", "node-b", "node-c"):
        await storage.leases.heartbeat(node, f"http://{node}", 30)
    assert await storage.leases.claim(21, "node-b") == "node-b"  # live: stays B's
    assert await storage.leases.claim(22, "node-c") == "node-c"  # C leaves below
    assert await storage.leases.claim(23, "node-a") == "node-a"  # already A's
    await storage.leases.leave("node-c")
    assert await storage.leases.claim_many([20, 21, 22, 23], "node-x") is None
    assert await storage.leases.holder(20) is None  # a non-member took nothing
    assert await storage.leases.claim_many([20, 21, 22, 23], "node-a") == {
        20: "node-a",
        21: "node-b",
        22: "node-a",
        23: "node-a",
    }
    assert [await storage.leases.holder(cid) for cid in (20, 21, 22, 23)] == [
        "node-a",
        "node-b",
        "node-a",
        "node-a",
    ]
    many = list(range(100, 1300))
    assert await storage.leases.claim_many(many, "node-b") == dict.fromkeys(many, "node-b")
    assert await storage.leases.claim_many(many, "node-a") == dict.fromkeys(many, "node-b")
    assert await storage.leases.holder(1299) == "node-b"
    with pytest.raises(ValidationError):
        await storage.leases.claim_many([24, 0], "node-a")


async def test_racing_batch_and_single_claims_have_one_winner(storage: Storage) -> None:
    """Batches and single claims racing over the same companies: each has one holder, and
    every caller was told that holder."""
    for i in range(4):
        await storage.leases.heartbeat(f"node-{i}", "http://x", 30)
    told: list[tuple[int, str | None]] = []

    async def batch(node: str) -> None:
        holders = await storage.leases.claim_many([31, 32, 33], node)
        assert holders is not None
        told.extend(holders.items())

    async def single(node: str) -> None:
        told.append((32, await storage.leases.claim(32, node)))

    async with trio.open_nursery() as nursery:
        for i in range(4):
            nursery.start_soon(batch if i % 2 else single, f"node-{i}")
    for cid, holder in told:
        assert holder == await storage.leases.holder(cid)


async def test_racing_claims_have_one_winner(storage: Storage) -> None:
    holders: list[str | None] = []
    for i in range(8):
        await storage.leases.heartbeat(f"node-{i}", "http://x", 30)

    async def take(node: str) -> None:
        holders.append(await storage.leases.claim(11, node))

    async with trio.open_nursery() as nursery:
        for i in range(8):
            nursery.start_soon(take, f"node-{i}")
    assert len(set(holders)) == 1
    assert await storage.leases.holder(11) == holders[0]


async def test_membership_expires_without_heartbeat(storage: Storage) -> None:
    await storage.leases.heartbeat("node-a", "http://a", 0.05)
    await storage.leases.heartbeat("node-b", "http://b", 30)
    assert await storage.leases.claim(12, "node-a") == "node-a"
    await trio.sleep(0.2)  # real time: Redis expires the key on its own clock
    assert await storage.leases.members() == {"node-b": "http://b"}
    assert await storage.leases.claim(12, "node-a") is None
    assert await storage.leases.claim(12, "node-b") == "node-b"
