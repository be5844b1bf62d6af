"""Pacer and circuit breaker, on a fake clock (no real waiting)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from bulk_sync.pace import HEADROOM, CircuitBreaker, Pacer


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def starts(pacer: Pacer, t: FakeTime, n: int) -> list[float]:
    out = []

    async def go() -> None:
        for _ in range(n):
            await pacer.acquire()
            out.append(t.now)

    asyncio.run(go())
    return out


def test_requests_are_spaced_evenly_under_the_limit() -> None:
    t = FakeTime()
    pacer = Pacer(1000, clock=t.clock, sleep=t.sleep)
    times = starts(pacer, t, 1001)
    assert times[0] == 0.0
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(times)}
    assert gaps == {round(60 / (1000 * HEADROOM), 9)}
    assert times[-1] > 60.0  # never more than 1000 starts in any 60 s window


def test_no_limit_means_no_waiting() -> None:
    t = FakeTime()
    assert starts(Pacer(None, clock=t.clock, sleep=t.sleep), t, 50) == [0.0] * 50


def test_retry_after_pauses_everyone() -> None:
    t = FakeTime()
    pacer = Pacer(None, clock=t.clock, sleep=t.sleep)
    pacer.pause(5)
    assert starts(pacer, t, 3) == [5.0, 5.0, 5.0]


def test_aimd_cuts_once_per_cooldown_and_recovers() -> None:
    t = FakeTime()
    pacer = Pacer(1200, clock=t.clock, sleep=t.sleep, decrease=0.5, cooldown=2.0, recover_seconds=10.0)
    ceiling = pacer.ceiling
    assert ceiling == pytest.approx(20 * HEADROOM)
    for _ in range(10):  # a burst of 429s from concurrent requests counts once
        pacer.on_throttled()
    assert pacer.rate == pytest.approx(ceiling / 2) and pacer.cuts == 1
    t.now += 2.5
    pacer.on_throttled()
    assert pacer.rate == pytest.approx(ceiling / 4) and pacer.cuts == 2
    for _ in range(10):  # 10 s of success climbs back (additive, by time)
        t.now += 1.0
        pacer.on_success()
    assert pacer.rate == pytest.approx(ceiling)


def test_breaker() -> None:
    b = CircuitBreaker(3)
    b.failure("x")
    b.failure("y")
    b.success()
    b.failure("z")
    b.failure("z")
    assert not b.tripped
    b.failure("z")
    assert b.tripped and b.last_error == "z"
    assert not CircuitBreaker(None).tripped
