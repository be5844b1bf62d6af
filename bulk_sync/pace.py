"""Pace: how fast to send. A shared, adaptive rate limiter and a circuit breaker (no I/O).

:class:`Pacer` spaces requests evenly (a leaky bucket / GCRA: request *k* may start no sooner than
``interval`` after request *k-1*), which keeps any 60-second window under the limit whatever the
server's own window looks like. It adapts:

* a 429 **with** ``Retry-After`` pauses every request until then (not just the one that got it);
* a 429 **without** it lowers the rate multiplicatively (at most once per ``cooldown``), and the rate
  climbs back additively while requests succeed (AIMD), up to the configured ceiling.

:class:`CircuitBreaker` trips after ``threshold`` consecutive failed requests (server down).
Clock and sleep are injectable so tests run without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

HEADROOM = 0.985  # pace 1.5 % under the configured limit: network jitter must not tip a window over


class Pacer:
    def __init__(
        self,
        per_minute: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        decrease: float = 0.7,
        cooldown: float = 2.0,
        recover_seconds: float = 20.0,
        floor_fraction: float = 0.05,
    ) -> None:
        self.ceiling = per_minute * HEADROOM / 60.0 if per_minute else None  # requests per second
        self.rate = self.ceiling
        self._clock, self._sleep = clock, sleep
        self._next = 0.0  # earliest start of the next request
        self._paused_until = 0.0
        self._last_cut = -1e9
        self._last_grow = clock()
        self._decrease, self._cooldown = decrease, cooldown
        # additive increase: from the floor back to the ceiling in about `recover_seconds` of success
        self._step = (self.ceiling or 0.0) / recover_seconds
        self._floor = (self.ceiling or 0.0) * floor_fraction
        self.throttled = 0  # 429s seen
        self.cuts = 0

    def free(self) -> bool:
        """True when a request may start now without taking a slot (no limit, no pause): the fast path."""
        return self.rate is None and self._clock() >= self._paused_until

    async def acquire(self) -> None:
        """Wait for this request's slot."""
        while True:
            now = self._clock()
            if now < self._paused_until:
                await self._sleep(self._paused_until - now)
                continue
            if self.rate is None:
                return
            start = max(now, self._next)
            self._next = start + 1.0 / self.rate
            if start > now:
                await self._sleep(start - now)
            return

    def pause(self, seconds: float) -> None:
        """Retry-After: nobody starts a request for `seconds`."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self.throttled += 1

    def on_throttled(self) -> None:
        """A 429 without Retry-After: slow down (multiplicative decrease, once per cooldown)."""
        self.throttled += 1
        if self.rate is None or self.ceiling is None:
            return
        now = self._clock()
        if now - self._last_cut >= self._cooldown:
            self.rate = max(self._floor, self.rate * self._decrease)
            self._last_cut = now
            self._last_grow = now
            self.cuts += 1

    def on_success(self) -> None:
        """Climb back towards the ceiling (additive increase, proportional to time since the last step)."""
        if self.rate is None or self.ceiling is None or self.rate >= self.ceiling:
            return
        now = self._clock()
        self.rate = min(self.ceiling, self.rate + self._step * (now - self._last_grow))
        self._last_grow = now


class CircuitBreaker:
    """Counts consecutive failed requests; ``tripped`` once there were ``threshold`` in a row."""

    def __init__(self, threshold: int | None) -> None:
        self.threshold = threshold
        self.consecutive = 0
        self.last_error = ""

    def success(self) -> None:
        self.consecutive = 0

    def failure(self, error: str) -> None:
        self.consecutive += 1
        self.last_error = error

    @property
    def tripped(self) -> bool:
        return self.threshold is not None and self.consecutive >= self.threshold
