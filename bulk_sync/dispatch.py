"""Dispatch: payloads -> concurrent (batched) uploads -> one outcome per payload, through callbacks.

``concurrency`` workers share one ready queue. In batch mode a worker takes up to the uploader's
current batch limit (lowered by a 413) and never more than the body-size cap. Only full batches
leave while the reader is producing: a rerun where scattered rows changed sends
ceil(changed / batch size) requests, not one per chunk read. A partial batch leaves at the end,
when the run is stopping, or when the reader cannot go on without it (:meth:`Dispatcher.flush`:
too many results wait behind it, or too many records are pending).

Ordering: two records with the same externalId are never in flight together, and for
duplicates the file order is kept: a record whose key is busy waits in a per-key line and is
released, in order, when the earlier one is done.

Memory is bounded: :meth:`Dispatcher.submit` waits while too many records are pending.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import AuthError, FatalError
from .payload import Payload
from .settings import RunSettings
from .upload import Outcome, Uploader

RAMP_SECONDS = 0.002  # worker i starts i * this late


@dataclass(slots=True)
class Item:
    payload: Payload
    tag: Any  # the caller's: (sequence number, record)


class Dispatcher:
    def __init__(
        self,
        uploader: Uploader,
        settings: RunSettings,
        *,
        on_done: Callable[[Item, Outcome], None],
        on_delivered: Callable[[], None] = lambda: None,
        on_abandoned: Callable[[Item], None],
        on_lost: Callable[[Item], None],
        on_fatal: Callable[[FatalError], None],
        stopping: Callable[[], bool],
    ) -> None:
        self._up = uploader
        self._batch = settings.batch
        self._max_body = settings.max_body_bytes
        self._on_done, self._on_abandoned, self._on_lost = on_done, on_abandoned, on_lost
        self._on_delivered = on_delivered
        self._on_fatal, self._stopping = on_fatal, stopping
        self._ready: deque[Item] = deque()
        self._waiting: dict[str, deque[Item]] = {}
        self._n_waiting = 0
        self._busy: set[str] = set()
        self._closed = False
        self._flushing = False  # partial batches may leave until the ready queue is empty
        self._changed = asyncio.Event()
        self._space = asyncio.Event()
        self.in_flight = 0  # requests (batches) being delivered now
        # records that may wait to be sent: three batches a worker of the size it starts with (that
        # many records' memory at most), and at least four batches of the size learned since
        per_worker = settings.batch_size if settings.batch else 1
        self._least_pending = max(64, 3 * settings.concurrency * per_worker)
        self.workers = [
            asyncio.create_task(self._work(i * RAMP_SECONDS)) for i in range(settings.concurrency)
        ]

    # -- producer side -------------------------------------------------------------

    async def submit(self, item: Item) -> None:
        key = item.payload.external_id
        if key in self._busy:
            self._waiting.setdefault(key, deque()).append(item)
            self._n_waiting += 1
        else:
            self._busy.add(key)
            self._ready.append(item)
            self._changed.set()
        while self._pending >= self._max_pending and not all(w.done() for w in self.workers):
            self.flush()  # the reader waits: what is ready must go, full batch or not
            self._space.clear()
            await self._space.wait()

    def flush(self) -> None:
        """Let what is ready leave now, in partial batches if need be (the reader is about to wait)."""
        if self._ready:
            self._flushing = True
            self._changed.set()

    def close(self) -> None:
        """No more items will be submitted."""
        self._closed = True
        self._changed.set()

    async def join(self) -> None:
        await asyncio.gather(*self.workers, return_exceptions=True)

    def leftovers(self) -> Iterator[Item]:
        """Items never sent (after a hard stop), in submission order per key."""
        yield from self._ready
        for line in self._waiting.values():
            yield from line
        self._ready.clear()
        self._waiting.clear()
        self._n_waiting = 0

    @property
    def _max_pending(self) -> int:
        return max(self._least_pending, 4 * self._up.batch_limit if self._batch else 0)

    @property
    def _pending(self) -> int:
        return len(self._ready) + self._n_waiting

    # -- worker side ---------------------------------------------------------------

    async def _work(self, delay: float) -> None:
        if delay:  # ramp up: workers that start together stay in lock-step and answers arrive in waves
            await asyncio.sleep(delay)
        while batch := await self._take():
            self.in_flight += 1
            try:
                await self._deliver(batch)
            finally:
                self.in_flight -= 1
                for item in batch:
                    self._release(item.payload.external_id)

    async def _deliver(self, batch: list[Item]) -> None:
        if self._stopping():
            for item in batch:
                self._on_abandoned(item)
            return
        try:
            if self._batch:
                outcomes = await self._up.send_batch([i.payload for i in batch])
            else:
                outcomes = [await self._up.send(batch[0].payload)]
        except FatalError as exc:
            self._on_fatal(exc)
            slug = "auth-refused" if isinstance(exc, AuthError) else "server-unavailable"
            for item in batch:
                self._on_done(item, Outcome("failed", 1, None, slug, str(exc)))
            return
        except asyncio.CancelledError:
            for item in batch:
                self._on_lost(item)
            raise
        for item, outcome in zip(batch, outcomes, strict=True):
            self._on_done(item, outcome)
        self._on_delivered()

    async def _take(self) -> list[Item]:
        while True:
            limit = self._up.batch_limit if self._batch else 1
            if self._ready and (
                len(self._ready) >= limit or self._closed or self._flushing or self._stopping()
            ):
                batch = self._pop(limit)
                if not self._ready:
                    self._flushing = False
                return batch
            if self._closed and not self._ready and not self._n_waiting:
                return []
            self._changed.clear()
            await self._changed.wait()

    def _pop(self, limit: int) -> list[Item]:
        batch = [self._ready.popleft()]
        size = len(batch[0].payload.raw) + 2
        while self._ready and len(batch) < limit:
            nxt = len(self._ready[0].payload.raw) + 1
            if size + nxt > self._max_body:
                break
            batch.append(self._ready.popleft())
            size += nxt
        if self._pending < self._max_pending:
            self._space.set()
        return batch

    def _release(self, key: str) -> None:
        line = self._waiting.get(key)
        if line:
            self._ready.append(line.popleft())
            self._n_waiting -= 1
            if not line:
                del self._waiting[key]
            self._changed.set()
        else:
            self._busy.discard(key)
        if self._pending < self._max_pending:
            self._space.set()
