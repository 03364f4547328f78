"""``Backoff``: nominal doubling, both jitter modes, bounds, determinism and validation."""

from __future__ import annotations

import random

import pytest

from runtime import Backoff, Jitter, RestartPolicy


def test_nominal_doubles_from_initial_up_to_maximum() -> None:
    backoff = Backoff(initial=1.0, maximum=5.0)
    assert [backoff.nominal(n) for n in range(1, 7)] == [1, 2, 4, 5, 5, 5]
    assert backoff.nominal(0) == backoff.nominal(-3) == 1.0
    assert backoff.nominal(10_000) == 5.0  # no float overflow on long streaks


def test_no_jitter_is_the_nominal_delay_in_both_modes() -> None:
    for mode in Jitter:
        backoff = Backoff(initial=0.5, maximum=3.0, jitter=0.0, mode=mode)
        rng = random.Random(1)
        assert [backoff.delay(n, rng) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_spread_stays_within_plus_minus_jitter_and_below_maximum() -> None:
    backoff = Backoff(initial=1.0, maximum=60.0, jitter=0.3)
    rng = random.Random(7)
    seen_above = seen_below = False
    for n in range(1, 12):
        d = backoff.nominal(n)
        for _ in range(50):
            delay = backoff.delay(n, rng)
            assert d * 0.7 - 1e-9 <= delay <= min(60.0, d * 1.3) + 1e-9
            seen_above |= delay > d
            seen_below |= delay < d
    assert seen_above and seen_below


def test_below_stays_within_the_lower_fraction_and_never_above_nominal() -> None:
    backoff = Backoff(initial=0.25, maximum=5.0, jitter=0.5, mode=Jitter.BELOW)
    rng = random.Random(11)
    for n in range(1, 10):
        d = backoff.nominal(n)
        delays = [backoff.delay(n, rng) for _ in range(50)]
        assert all(d / 2 <= delay <= d for delay in delays)
        assert min(delays) < d * 0.6 and max(delays) > d * 0.9


def test_below_half_is_bit_for_bit_the_equal_jitter_formula() -> None:
    # The YClients retry loops used ``ceiling / 2 + rng.uniform(0, ceiling / 2)``.
    backoff = Backoff(initial=5.0, maximum=900.0, jitter=0.5, mode=Jitter.BELOW)
    ours, theirs = random.Random(5), random.Random(5)
    for n in range(1, 15):
        ceiling = min(900.0, 5.0 * 2.0 ** (n - 1))
        assert backoff.delay(n, ours) == ceiling / 2 + theirs.uniform(0, ceiling / 2)


def test_same_seed_same_schedule_and_one_draw_per_delay() -> None:
    backoff = Backoff(initial=0.1, maximum=30.0, jitter=0.2)
    a = [backoff.delay(n, random.Random(3)) for n in range(1, 20)]
    b = [backoff.delay(n, random.Random(3)) for n in range(1, 20)]
    assert a == b
    rng, twin = random.Random(9), random.Random(9)
    Backoff(initial=1.0, maximum=2.0).delay(1, rng)
    twin.random()
    assert rng.random() == twin.random()


def test_restart_policy_uses_its_backoff_with_an_immediate_first_restart() -> None:
    policy = RestartPolicy(backoff_initial=0.1, backoff_max=30.0, jitter=0.2)
    assert policy.restart_backoff == Backoff(0.1, 30.0, 0.2, Jitter.SPREAD)
    ours, theirs = random.Random(4), random.Random(4)
    assert policy.backoff(0, ours) == 0.0
    assert [policy.backoff(n, ours) for n in range(1, 10)] == [
        policy.restart_backoff.delay(n, theirs) for n in range(1, 10)
    ]


@pytest.mark.parametrize(
    ("initial", "maximum", "jitter"), [(-1.0, 1.0, 0.0), (1.0, -1.0, 0.0), (1.0, 2.0, 1.5)]
)
def test_invalid_values_are_refused(initial: float, maximum: float, jitter: float) -> None:
    with pytest.raises(ValueError):
        Backoff(initial=initial, maximum=maximum, jitter=jitter)


def test_is_a_frozen_value() -> None:
    backoff = Backoff(1.0, 2.0)
    with pytest.raises(AttributeError):
        backoff.initial = 3.0  # type: ignore[misc]
    assert backoff == Backoff(1.0, 2.0, 0.0, Jitter.SPREAD)
    assert hash(backoff) == hash(Backoff(1.0, 2.0))
