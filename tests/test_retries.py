"""One request's retries (upload/retries.py), the same for the sync and SIRO's other calls: how long
to wait, and when to stop. A fake clock and a seeded random, nothing else."""

from __future__ import annotations

import random

from bulk_sync.settings import RetryPolicy
from bulk_sync.upload.retries import Retries


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_back_off_within_the_doubling_cap_and_stop_at_max_attempts() -> None:
    clock = Clock()
    r = Retries(RetryPolicy(max_attempts=4, backoff_base=1.0, backoff_cap=3.0), random.Random(7), clock)
    waits = []
    for _ in range(3):
        r.failed()
        wait = r.wait(None)
        assert wait is not None
        waits.append(wait)
    assert waits[0] <= 1.0 and waits[1] <= 2.0 and waits[2] <= 3.0  # 1, 2, then the cap (not 4)
    r.failed()
    assert r.wait(None) is None and r.why == "retries exhausted"


def test_a_429_is_bounded_by_time_not_by_the_count() -> None:
    clock = Clock()
    r = Retries(RetryPolicy(max_attempts=1, max_elapsed=10.0), random.Random(1), clock)
    for _ in range(50):  # fifty 429s: no count stops them
        r.throttled()
        wait = r.wait(None, throttled=True)
        assert wait is not None and wait <= 2.0
    clock.now += 9.5
    r.throttled()
    assert r.wait(2.0, throttled=True) is None  # 9.5 s + 2 s: past the 10 s budget


def test_a_retry_after_is_waited_for_up_to_its_cap_unless_it_asks_past_the_budget() -> None:
    clock = Clock()
    policy = RetryPolicy(max_elapsed=120.0, retry_after_cap=30.0, backoff_base=0.0)
    r = Retries(policy, random.Random(3), clock)
    r.failed()
    assert r.wait(12.0) == 12.0
    assert r.wait(90.0) == 30.0  # capped
    assert r.wait(600.0) is None and "SIRO asked to wait 600 s" in r.why
