"""Pacer and circuit breaker, on a fake clock (no real waiting), and the pacer against simulated
server limiters (a token bucket, a sliding and a fixed window; with and without Retry-After)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Callable

import pytest

from bulk_sync import pace
from bulk_sync.pace import HEADROOM, RECOVER, WARM_START, CircuitBreaker, Pacer


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
            pacer.on_success()

    asyncio.run(go())
    return out


def test_requests_are_spaced_evenly_under_the_limit_after_a_warm_start() -> None:
    t = FakeTime()
    pacer = Pacer(1000, clock=t.clock, sleep=t.sleep)
    times = starts(pacer, t, 2000)
    assert times[1] - times[0] == pytest.approx(60 / (1000 * HEADROOM * WARM_START), rel=0.02)
    steady = {round(b - a, 9) for a, b in itertools.pairwise(times) if a > RECOVER + 1}
    assert steady == {round(60 / (1000 * HEADROOM), 9)}
    for i in range(len(times) - 1000):
        assert times[i + 1000] - times[i] > 60.0  # never more than 1000 starts in any 60 s


def test_no_limit_means_no_waiting() -> None:
    t = FakeTime()
    assert starts(Pacer(None, clock=t.clock, sleep=t.sleep), t, 50) == [0.0] * 50


def test_a_pause_holds_everyone() -> None:
    t = FakeTime()
    pacer = Pacer(None, clock=t.clock, sleep=t.sleep)
    pacer.pause(5)
    assert starts(pacer, t, 3) == [5.0, 5.0, 5.0]


def test_a_request_that_leaves_late_pushes_the_next_one_back() -> None:
    t = FakeTime()
    pacer = Pacer(1000, clock=t.clock, sleep=t.sleep)
    for _ in range(3):  # the usual time from a slot to the wire: 1 ms
        claimed = asyncio.run(pacer.acquire())
        t.now += 0.001
        pacer.departed(claimed)
    claimed = asyncio.run(pacer.acquire())
    t.now += 0.040  # held up 40 ms (the reader thread had the GIL)
    pacer.departed(claimed)
    left = t.now
    nxt = asyncio.run(pacer.acquire())
    assert pacer.rate is not None
    assert (
        nxt - left >= 1 / pacer.rate - 0.001 - pace.LATE_LEAVING - 1e-9
    )  # a full interval after it really left


def test_an_overshoot_is_cut_by_the_share_refused_once() -> None:
    t = FakeTime()
    pacer = Pacer(2000, clock=t.clock, sleep=t.sleep)
    sent = [asyncio.run(pacer.acquire()) for _ in range(2)]
    pacer.on_success()
    rate = pacer.rate
    assert rate is not None
    pacer.on_throttled(sent[1])  # one of two refused: the server takes about half
    assert pacer.rate == pytest.approx(rate * 0.5)
    pacer.on_throttled(sent[0])  # sent before the cut: the same overshoot, no second cut
    assert pacer.cuts == 1 and pacer.throttled == 2


def test_a_rare_429_costs_one_percent_and_the_rate_comes_back_just_under() -> None:
    t = FakeTime()
    pacer = Pacer(1000, clock=t.clock, sleep=t.sleep)
    starts(pacer, t, 200)
    before = pacer.rate
    assert before == pacer.ceiling
    sent = asyncio.run(pacer.acquire())
    pacer.on_throttled(sent)  # 1 refused of ~200 since the start: timing noise at the edge
    assert before is not None and pacer.rate == pytest.approx(before * 0.99)
    starts(pacer, t, 200)  # RECOVER seconds later: back to 0.5 % under the rate that got the 429
    assert pacer.rate == pytest.approx(before * 0.995, rel=0.002)


def test_an_early_429_costs_at_least_three_percent_and_the_rate_comes_back() -> None:
    t = FakeTime()
    pacer = Pacer(1000, clock=t.clock, sleep=t.sleep)
    starts(pacer, t, 40)
    before = pacer.rate
    sent = asyncio.run(pacer.acquire())
    pacer.on_throttled(sent)  # 1 refused of 41: not rare enough to call noise
    assert before is not None and pacer.rate is not None and pacer.rate <= before * 0.97 + 1e-9
    starts(pacer, t, 200)  # RECOVER seconds later: back just under the rate that got the 429
    assert pacer.rate == pytest.approx(before * HEADROOM, rel=0.01)


def test_a_retry_after_of_a_full_window_teaches_the_window_rate() -> None:
    t = FakeTime()
    pacer = Pacer(2000, clock=t.clock, sleep=t.sleep)
    starts(pacer, t, 1000)  # 1000 requests in ~30 s, then the window is full
    elapsed = t.now
    sent = asyncio.run(pacer.acquire())
    pacer.on_throttled(sent, retry_after=60 - elapsed)
    assert pacer.rate == pytest.approx(1000 / 60 * HEADROOM, rel=0.02)  # 1000 per minute
    assert asyncio.run(pacer.acquire()) >= 60 - 0.1  # and nobody sends before it opens


def test_a_full_window_without_retry_after_is_probed_then_learned() -> None:
    t = FakeTime()
    pacer = Pacer(2000, clock=t.clock, sleep=t.sleep)
    starts(pacer, t, 1000)
    probes = []
    while t.now < 60:  # refused until the window opens at 60 s
        sent = asyncio.run(pacer.acquire())
        probes.append(sent)
        pacer.on_throttled(sent)
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(probes)]
    # the first 429 only cuts the pace; from the second on, probes 0.25, 0.5, 1, 2, 2, ... s apart
    assert gaps[1:5] == [pytest.approx(g, abs=0.05) for g in (0.25, 0.5, 1.0, 2.0)] and max(gaps) <= 2.05
    assert len(probes) < 25
    pacer.on_success()  # it opened: learn the last minute's rate
    assert pacer.rate is not None and pacer.rate * 60 == pytest.approx(1000 * HEADROOM, rel=0.05)


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


# --------------------------------------------------------------------------- against simulated servers


class Limiter:
    """A server's rate limit at 1000/min, as a token bucket (burst 1), a sliding or a fixed window."""

    def __init__(self, kind: str, per_min: float = 1000, phase: float = 0.0) -> None:
        self.kind, self.per_s, self.phase = kind, per_min / 60, phase
        self.tokens, self.at = 1.0, 0.0
        self.window: deque[float] = deque()
        self.index, self.count = -1, 0

    def admit(self, t: float) -> float | None:
        """None when admitted, else the seconds until it would be."""
        if self.kind == "bucket":
            self.tokens = min(1.0, self.tokens + (t - self.at) * self.per_s)
            self.at = t
            if self.tokens >= 1:
                self.tokens -= 1
                return None
            return (1 - self.tokens) / self.per_s
        limit = self.per_s * 60
        if self.kind == "fixed":
            index = math.floor((t + self.phase) / 60)
            if index != self.index:
                self.index, self.count = index, 0
            if self.count < limit:
                self.count += 1
                return None
            return (index + 1) * 60 - (t + self.phase)
        while self.window and t - self.window[0] >= 60:
            self.window.popleft()
        if len(self.window) < limit:
            self.window.append(t)
            return None
        return 60 - (t - self.window[0])


def simulate(kind: str, told: int, retry_after: bool, n: int = 3000, seed: int = 0) -> tuple[float, float]:
    """n requests from 8 workers through one Pacer to a server limiting 1000/min, over a network with
    sub-millisecond jitter (0.4-2 ms up, 2-5 ms back). Returns (share of the limit reached over the
    sending span, share of requests answered 429)."""
    rng = random.Random(seed)
    now = [0.0]
    pacer = Pacer(told, clock=lambda: now[0])
    server = Limiter(kind, phase=rng.uniform(0, 60))
    events: list[tuple[float, int, Callable[[], None]]] = []
    seq = itertools.count()
    left, sent, refused, done = [n], [0], [0], [0]
    first: list[float] = []
    last = [0.0]

    def at(when: float, fn: Callable[[], None]) -> None:
        heapq.heappush(events, (when, next(seq), fn))

    def start() -> None:
        if left[0] > 0:
            left[0] -= 1
            attempt(0)

    def attempt(throttles: int) -> None:
        wait = pacer.wait()
        if wait > 0:
            at(now[0] + wait + rng.uniform(0, 0.0005), lambda: attempt(throttles))
            return
        claimed = now[0]
        sent[0] += 1
        left_at = claimed + rng.uniform(0.0003, 0.001)
        at(left_at, lambda: pacer.departed(claimed))
        at(left_at + rng.uniform(0.0001, 0.001), lambda: arrive(claimed, throttles))

    def arrive(claimed: float, throttles: int) -> None:
        wait = server.admit(now[0])
        back = now[0] + rng.uniform(0.002, 0.005)
        if wait is None:
            at(back, ok)
        else:
            at(back, lambda: throttled(claimed, throttles + 1, wait))

    def ok() -> None:
        pacer.on_success()
        done[0] += 1
        if not first:
            first.append(now[0])
        last[0] = now[0]
        start()

    def throttled(claimed: float, throttles: int, wait: float) -> None:
        refused[0] += 1
        ra = max(1, math.ceil(wait)) if retry_after else None
        pacer.on_throttled(claimed, ra)
        delay = ra if ra is not None else rng.uniform(0, min(2.0, 0.25 * 2 ** (min(throttles, 4) - 1)))
        at(now[0] + delay, lambda: attempt(throttles))

    for _ in range(8):
        at(0.0, start)
    while events:
        when, _, fn = heapq.heappop(events)
        now[0] = when
        fn()
    assert done[0] == n
    return (n - 1) / (last[0] - first[0]) / (1000 / 60), refused[0] / sent[0]


@pytest.mark.parametrize("kind", ["bucket", "sliding", "fixed"])
@pytest.mark.parametrize("told", [1000, 2000])
@pytest.mark.parametrize("retry_after", [False, True], ids=["no-retry-after", "retry-after"])
def test_the_pacer_reaches_any_limiter(kind: str, told: int, retry_after: bool) -> None:
    """The issue's bar on simulated servers: >= 95 % of the limit, <= 1 % of requests refused, for
    every kind of limiter, with and without Retry-After, told the limit or twice too much. (A fixed
    window can be beaten a little: a whole minute's quota goes at the turn of the minute.)"""
    reached, refused = simulate(kind, told, retry_after)
    assert reached >= 0.95, (reached, refused)
    assert refused <= 0.01, (reached, refused)
    if kind != "fixed":
        assert reached <= 1.0 + 1e-6
