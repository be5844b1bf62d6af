"""Pace: how fast to send. A shared, adaptive rate limiter and a circuit breaker (no I/O).

SIRO allows 1000 requests per minute per token and documents nothing else: not how it keeps the
limit (a token bucket, a sliding or a fixed window), not its burst, not Retry-After. So
:class:`Pacer` assumes the strictest server and learns the rest:

* **Even spacing, from when a request leaves.** Request *k* may start no sooner than ``1/rate``
  after request *k-1* actually started (not after the slot it was given: a request that leaves
  late pushes the next one back). Even spacing at the limit fits a burst-1 token bucket, and no
  60-second window, sliding or fixed, ever holds more than the limit.
* **The server's real rate, learned from its 429s.** A 429 means the rate is too high. With a
  Retry-After of a window's length (3 s or more), the pacer works out what the server *did*
  admit: the successful requests of the last minute (or since the first one), over that time
  plus the wait; that is the window's rate, and the pace drops just under it. Otherwise it cuts
  by the share of requests refused since the last cut (3 % to 50 %); a rare 429 (at most 1 % of
  100 or more: timing noise at the right rate) costs 1 % and the pace comes back to 0.5 % under
  the rate that got it. One cut per overshoot: a 429 for a request sent before the last cut
  changes nothing.
* **A refusing server is probed, not hammered.** A Retry-After of a window's length, or one on a
  second 429 in a row, pauses every request until then; a short one amid successes (a token bucket
  a token short) holds back only the refused request, and the pace is lowered.
  Without it, a second 429 with no success between (a window that is full) pauses everyone for
  0.25 s, then 0.5, 1, 2 s between probes; the first success after that re-learns the rate from
  the last minute of successes.
* **Climbing back** (additive increase): quickly to just under the learned rate, then slowly past
  it (+1 % of it per 15 s), so a learned rate that was too low is found out, while a right one
  costs a 429 at most every few minutes. Never above ``--rate-per-min``.

:class:`CircuitBreaker` trips after ``threshold`` consecutive failed requests (server down).
Clock and sleep are injectable so tests run without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

HEADROOM = 0.985  # pace 1.5 % under a limit: network jitter must not tip a window over
HISTORY = 60.0  # seconds of successes kept to learn a window's rate (SIRO's limit is per minute)
WINDOW_WAIT = 3.0  # a Retry-After this long or longer says a window is full (a bucket's says ~1 s)
# a start this much behind its slot (a timer wakes up to a millisecond late), and a request this
# much slower to leave than usual, still keep the next one on schedule: together they stay within
# the headroom's 0.9 ms a request at 1000/min
LATE_START, LATE_LEAVING = 0.0006, 0.0002
WARM_START = 0.9  # the first requests go at this share of the ceiling
RECOVER = 5.0  # seconds to climb back from a cut to just under the rate that got the 429
PROBE_STEP = 0.01  # past that rate: +1 % of it ...
PROBE_EVERY = 15.0  # ... per this many seconds
RARE, RARE_AFTER, RARE_CUT = 0.01, 100, 0.01  # at most 1 % refused of 100 or more: timing noise;
# cut 1 % and climb back to 0.5 % under the rate that got it
SAME_EDGE = 0.03  # two 429s at rates this close: the server's rate is found ...
SETTLED_FOR = 300.0  # ... and not probed past for this many seconds
FIRST_PROBE, LAST_PROBE = 0.25, 2.0  # pauses between probes of a server refusing everything


class Pacer:
    def __init__(
        self,
        per_minute: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        floor_fraction: float = 0.02,
    ) -> None:
        self.ceiling = per_minute * HEADROOM / 60.0 if per_minute else None  # requests per second
        # a warm start: the first requests meet cold connections at both ends, so the pace starts a
        # little lower and reaches the ceiling within RECOVER seconds
        self.rate = None if self.ceiling is None else self.ceiling * WARM_START
        self.edge = None if self.ceiling is None else self.ceiling / HEADROOM  # the rate that got a 429
        self._clock, self._sleep = clock, sleep
        self._next = 0.0  # earliest start of the next request
        self._paused_until = 0.0
        self._cut_at = -1e18  # when the pace was last cut
        self._settled_at: float | None = None  # when the same edge was met twice
        self._margin = HEADROOM  # the pace climbs back to this share of the edge
        self._cut_from = self.rate or 0.0  # the rate it was cut to
        self._grown_at = clock()
        self._started: float | None = None  # the first request's start
        self._ok: deque[float] = deque()  # when requests succeeded, the last HISTORY seconds
        self._refused = 0  # 429s since the last success
        self._usual_delay: float | None = None  # seconds from a slot to the wire, as usual
        self._sent = self._refusals = 0  # requests sent since the last cut, and 429s among them
        self._floor = (self.ceiling or 0.0) * floor_fraction
        self.throttled = 0  # 429s seen
        self.cuts = 0

    def free(self) -> bool:
        """True when a request may start now without taking a slot (no limit, no pause): the fast path."""
        return self.rate is None and self._clock() >= self._paused_until

    def wait(self) -> float:
        """Seconds until a request may start; 0.0 when it may start now, and then it has taken the slot."""
        now = self._clock()
        if now < self._paused_until:
            return self._paused_until - now
        if self._started is None:
            self._started = now
        if self.rate is None:
            return 0.0
        if now < self._next:
            return self._next - now
        # the next slot: one interval on from this one's, or from now when it starts later than
        # LATE_START (that much stretches no gap)
        self._next = max(self._next, now - LATE_START) + 1.0 / self.rate
        self._sent += 1
        return 0.0

    def departed(self, claimed_at: float) -> None:
        """The request given its slot at ``claimed_at`` has really left now. The usual time from a
        slot to the wire is part of every gap alike; more than that (the request was held up, say
        by the reader thread's hold on the GIL) pushes the next request back by as much, so the
        hold-up does not squeeze the gap after it."""
        now = self._clock()
        delay = now - claimed_at
        usual = self._usual_delay
        # the usual delay: follows drops at once, rises by a tenth of a longer delay
        self._usual_delay = delay if usual is None or delay < usual else usual + 0.1 * (delay - usual)
        if self.rate is not None and (usual is None or delay > usual + LATE_LEAVING):
            self._next = max(self._next, now - min((usual or 0.0) + LATE_LEAVING, delay) + 1.0 / self.rate)

    async def acquire(self) -> float:
        """Wait for this request's slot; the time it leaves (give it back to on_throttled)."""
        while (delay := self.wait()) > 0.0:
            await self._sleep(delay)
        return self._clock()

    def pause(self, seconds: float) -> None:
        """Nobody starts a request for ``seconds`` (and the pace does not climb meanwhile)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._grown_at = max(self._grown_at, self._paused_until)

    def on_success(self) -> None:
        now = self._clock()
        self._ok.append(now)
        while self._ok and now - self._ok[0] > HISTORY:
            self._ok.popleft()
        if self._refused >= 2 and self.rate is not None:  # a full window opened again: learn its rate
            self._learn(self._admitted(now, 0.0), now)
        self._refused = 0
        self._grow(now)

    def on_throttled(self, sent_at: float | None = None, retry_after: float | None = None) -> None:
        """A 429 for a request that left at ``sent_at``; ``retry_after``: the wait its Retry-After asks."""
        now = self._clock()
        self.throttled += 1
        self._refused += 1
        if retry_after is not None and (retry_after >= WINDOW_WAIT or self._refused >= 2):
            self.pause(retry_after)  # a full window, or nothing gets through: everyone waits
        elif retry_after is None and self._refused >= 2:  # refused again, no success between: probe
            self.pause(min(LAST_PROBE, FIRST_PROBE * 2 ** (self._refused - 2)))
        # a short Retry-After amid successes (a bucket short of a token): the refused request waits
        # it (the uploader's business), the others go on at the lowered pace below
        if self.rate is None or (sent_at is not None and sent_at < self._cut_at):
            return  # no pace to steer, or sent before the last cut: that overshoot is answered
        self._refusals += 1
        if retry_after is not None and retry_after >= WINDOW_WAIT:  # a full window, and when it opens
            self._learn(self._admitted(now, retry_after), now)
        elif self._refused == 1:
            refused = self._refusals / max(1, self._sent)
            if self._sent >= RARE_AFTER and refused <= RARE:  # a rare one (timing noise): just under
                self._cut(self.rate * (1.0 - RARE_CUT), now, margin=1.0 - RARE_CUT / 2)
            else:  # too fast: cut by the share refused since the last cut (3 % to 50 %)
                self._cut(self.rate * max(0.5, min(0.97, 1.0 - refused)), now)

    def _admitted(self, now: float, wait: float) -> float | None:
        """Requests per second the server admitted over the last minute (or since the first
        request), counting the wait it asks for: a window's rate. None with too little history."""
        if self._started is None or len(self._ok) < 10:
            return None
        return len(self._ok) / (min(HISTORY, now - self._started) + wait)

    def _learn(self, admitted: float | None, now: float) -> None:
        if admitted is not None and self.rate is not None:
            self._cut(min(self.rate, admitted * HEADROOM), now, edge=admitted)

    def _cut(self, rate: float, now: float, edge: float | None = None, margin: float = HEADROOM) -> None:
        assert self.rate is not None
        previous, self.edge = self.edge, self.rate if edge is None else edge
        self._margin = margin  # the pace climbs back to this share of the edge
        # the same edge twice: that is the server's rate; stop probing past it (for a while)
        self._settled_at = now if previous and abs(self.edge / previous - 1) <= SAME_EDGE else None
        self.rate = self._cut_from = max(self._floor, rate)
        self._cut_at, self._grown_at = now, max(now, self._paused_until)
        self._sent = self._refusals = 0
        self.cuts += 1

    def _grow(self, now: float) -> None:
        """Climb back: within RECOVER seconds to just under the rate that got the 429, then slowly
        past it (additive increase). Never above the ceiling."""
        if self.rate is None or self.ceiling is None or self.rate >= self.ceiling or self.edge is None:
            return
        if now <= self._grown_at:  # an answer that came in a pause
            return
        elapsed, self._grown_at = now - self._grown_at, now
        target = self.edge * self._margin
        if self.rate < target:
            self.rate = min(target, self.rate + elapsed * max(target - self._cut_from, 0.0) / RECOVER)
        elif self._settled_at is None or now - self._settled_at > SETTLED_FOR:
            self.rate += elapsed * self.edge * PROBE_STEP / PROBE_EVERY
        self.rate = min(self.rate, self.ceiling)


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
