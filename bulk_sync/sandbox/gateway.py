"""Sandbox, gateway: a SIRO with hidden limits, as a serverless function behind a gateway: each
record takes some work, and a gateway that gives up on a request after ``timeout`` seconds answers
504 while the function behind it runs on and stores the records all the same (the client cannot
tell whether they were stored: it must send them again, and the upsert by externalId keeps one each).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Gateway:
    """Runs a request's work (``work_per_record`` seconds a record, all requests at once, as a
    serverless platform does) and stores its records when it is done; answers None when the gateway
    gave up first (the 504)."""

    def __init__(self, work_per_record: float = 0.0, timeout: float | None = None) -> None:
        self.work_per_record = work_per_record
        self.timeout = timeout
        self._running: set[asyncio.Task[object]] = set()  # functions outliving their gateway

    async def run(self, records: int, store: Callable[[], T]) -> T | None:
        if not self.work_per_record and self.timeout is None:
            return store()
        task: asyncio.Task[T] = asyncio.ensure_future(self._work(records, store))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        done, _ = await asyncio.wait({task}, timeout=self.timeout)
        if task in done:
            return task.result()
        return None

    async def _work(self, records: int, store: Callable[[], T]) -> T:
        await asyncio.sleep(records * self.work_per_record)
        return store()
