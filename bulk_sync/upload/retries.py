"""Upload stage, retries: one request's retries, counted and timed the same way for the sync and
for SIRO's other calls (its users, the mirror's soft-delete, deletes): failures back off
exponentially with full jitter and count against ``max_attempts``; a 429 is flow control, bounded
by time, not by a count (the sync's pacer steers everyone's pace; a call on its own counts it as a
failure); a Retry-After is waited for, up to a cap, unless it asks past the time budget.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ..settings import RetryPolicy
from .answers import backoff_delay, too_long


@dataclass
class Retries:
    """The retries of one request under ``policy``: call :meth:`failed` or :meth:`throttled` for
    each attempt that did not give the final answer, then :meth:`wait` for how long to wait before
    the next one (None: give up, :attr:`why` says why)."""

    policy: RetryPolicy
    rng: random.Random
    clock: Callable[[], float]
    started: float = field(init=False)
    failures: int = 0  # attempts that failed (count against max_attempts)
    throttles: int = 0  # 429s (flow control: bounded by time only)
    why: str = ""

    def __post_init__(self) -> None:
        self.started = self.clock()

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    def failed(self) -> None:
        self.failures += 1

    def throttled(self) -> None:
        self.throttles += 1

    def wait(self, retry_after: float | None, *, throttled: bool = False) -> float | None:
        """Seconds before the next attempt after one that failed (``throttled``: a 429) and asked to
        wait ``retry_after`` (None: it did not say); None when it is not worth another: the attempts
        are used up, or the wait would end past the time budget."""
        policy = self.policy
        if policy.max_attempts is not None and self.failures >= policy.max_attempts:
            self.why = "retries exhausted"
            return None
        if retry_after is not None and (why := too_long(retry_after, self.elapsed, policy)):
            self.why = why  # SIRO asked to wait past the budget: say so, rather than wait in vain
            return None
        asked = min(retry_after, policy.retry_after_cap) if retry_after is not None else None
        if throttled:  # a short jitter without Retry-After (the pacer holds everyone back too)
            delay = asked if asked is not None else backoff_delay(min(self.throttles, 4), 0.25, 2.0, self.rng)
        else:
            delay = max(
                asked or 0.0, backoff_delay(self.failures, policy.backoff_base, policy.backoff_cap, self.rng)
            )
        if self.elapsed + max(delay, asked or 0.0) > policy.max_elapsed:
            self.why = "retries exhausted"
            return None
        return delay
