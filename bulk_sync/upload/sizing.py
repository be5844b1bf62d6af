"""Upload stage, sizing: how many records a batch request holds. Fixed (``--batch-size N``), or
learned (``--batch-size auto``): SIRO documents no batch limit, so the size starts at what is known
to work and looks for the largest one SIRO takes in time. No I/O; the uploader tells it what
happened to each batch.

* **Grow** (doubling, then halfway to a size that failed) after ``GROW_AFTER`` answers in a row at
  the current size, while the answers come back well inside the time budget: the per-record time
  of the last batches times the next size stays under ``budget`` (a third of the request timeout).
  A larger size is a *trial*, on one batch at a time (with many requests in flight, a size that
  fails costs one request, not one per worker); it becomes the size when SIRO takes it. A search
  that has closed in to ``CLOSE_ENOUGH`` of a size that failed stops there.
* **413** (too many records): never try the refused size again; a failed trial leaves the size
  at the last one that worked (half of it, while doubling); a size that worked before and is
  refused now is halved.
* **504 or a timeout** (a gateway that gave up; the records may have been stored): the same (back
  to the last size that worked, or half), and the batch's records are sent again in batches of
  the new size (an upsert by externalId: one
  record each whatever happened).
* **Another 5xx for a batch larger than any that worked** (one that starts right after a size was
  raised): back to the last size that worked, and that batch sent again at it.

A fixed size never grows; a 413 still lowers it for the run, and a 5xx or a timeout is retried as
it is (the uploader's retry loop).
"""

from __future__ import annotations

from collections import deque

GROW_AFTER = 3  # answers in a row at the current size before it grows
CLOSE_ENOUGH = 0.05  # stop searching when a size that failed is this close above the current one
RECENT = 4  # per-record times of this many last answers


class BatchSizer:
    def __init__(self, start: int, *, auto: bool, upper: int, budget: float) -> None:
        self.auto = auto
        self.upper = max(1, upper)  # --max-batch-size: never more
        self.size = max(1, min(start, self.upper))  # records a batch holds now (the last that worked)
        self.good = 0  # the largest size SIRO took in time (0: none yet)
        self.ceiling = self.upper  # the largest size that may still be tried
        self.budget = budget  # seconds a batch's work may take (a third of the request timeout)
        self.shrunk = 0  # times a size failed
        self.trial: int | None = None  # a larger size to try, on one batch at a time
        self._trial_out = False  # that batch is on its way
        self._trials = 0  # trials sent
        self._streak = 0  # answers in a row at the current size
        self._per_record: deque[float] = deque(maxlen=RECENT)

    @property
    def limit(self) -> int:
        """The most records the next batch may hold: the size, or the trial size for one batch."""
        return self.trial if self.trial is not None and not self._trial_out else self.size

    @property
    def learned(self) -> int | None:
        """The size to start at next time, or None when nothing was learned (a fixed size, or no
        batch answered). While nothing failed it is the size in force: a run whose batches were all
        partial (30 changed rows) proves nothing against it, and must not teach the next night 30.
        After a failure, the largest size that worked, as far as it was used."""
        if not self.auto or not self.good:
            return None
        return self.size if not self.shrunk else min(self.good, self.size)

    def sending(self, records: int) -> int:
        """A batch of ``records`` leaves; when it is the trial, its number (give it back to
        :meth:`settled`), else 0."""
        if self.trial is not None and not self._trial_out and records >= self.trial:
            self._trial_out = True
            self._trials += 1
            return self._trials
        return 0

    def settled(self, trial: int) -> None:
        """Trial number ``trial`` is done; if its answer said nothing of its size (a 422, retries
        given up), another batch may try it."""
        if trial == self._trials:
            self._trial_out = False

    def answered(self, records: int, seconds: float) -> None:
        """A batch of ``records`` was answered 2xx after ``seconds`` (its last attempt)."""
        if not self.auto or records < 1:
            return
        self._per_record.append(seconds / records)
        self.good = max(self.good, min(records, self.ceiling))
        if self.trial is not None and records >= self.trial:  # the trial worked: the new size
            self.size, self.trial, self._streak = self.trial, None, 0
            return
        if records < self.size:  # a partial batch (the end of a file, the body cap) says nothing of it
            return
        self._streak += 1
        if self._streak < GROW_AFTER or self.trial is not None:
            return
        nxt = self._next()
        if nxt > self.size and max(self._per_record) * nxt < self.budget:
            self.trial, self._trial_out = nxt, False

    def _next(self) -> int:
        if not self.shrunk:  # nothing failed yet: double
            return min(self.upper, self.size * 2)
        if self.ceiling - self.size <= max(1, int(self.size * CLOSE_ENOUGH)):
            return self.size
        return min(self.ceiling, self.size + (self.ceiling + 1 - self.size) // 2)

    def refused(self, records: int) -> None:
        """A 413 for a batch of ``records``: never try it again; if it was not a trial, halve."""
        self._failed(records)

    def too_slow(self, records: int) -> bool:
        """A 504 or a timeout for a batch of ``records``. True: send its records again in batches of
        the new size (learning); False: retry the batch as it is (a fixed size, or a single record)."""
        if not self.auto or records <= 1:
            return False
        self._failed(records)
        return True

    def failed(self, records: int) -> bool:
        """Another 5xx for a batch of ``records``. True when the batch is larger than any that worked
        (the size was just raised): back to the last size that worked, and send it again at that."""
        if not self.auto or records <= 1 or not self.good or records <= self.good:
            return False
        self._failed(records)
        return True

    def _failed(self, records: int) -> None:
        self.ceiling = max(1, min(self.ceiling, records - 1))
        if self.trial is not None and records >= self.trial:  # the trial failed: the size stays
            self.trial = None
        elif records <= self.size:  # the size itself failed (SIRO changed, a size from last time): halve
            self.size = max(1, records // 2)
        self.size = min(self.size, self.ceiling)
        self.good = min(self.good, self.size)
        self._streak = 0
        self.shrunk += 1
