"""Pipeline, handoff: the bounded queue between the reader thread and the run's event loop. Bounded
in bytes (what the queued rows hold in memory), so memory does not follow the file's size.
"""

from __future__ import annotations

import asyncio
import queue
import threading

from ..payload import Payload
from .results import Block, Entry, Row

QUEUE_BYTES = 8 * 1024 * 1024  # rows the reader may have ready ahead of the sender (their JSON and
# about ENTRY_BYTES each besides): a bound in bytes, so memory does not follow the file's size. A
# full queue of 16 MB held 25-30 MB of RSS. The reader puts a chunk's entries whole, so with
# 5,000-row chunks of example-shaped rows (~7 MB by this estimate) the queue holds one chunk, 50
# requests of 100
ENTRY_BYTES = 600
BLOCK_ROW_BYTES = 100


def _weight(item: list[Entry] | BaseException | None) -> int:
    """About what ``item`` holds in memory: each row's JSON body and its record."""
    if not isinstance(item, list):
        return 0
    size = 0
    for entry in item:
        if isinstance(entry, Row):
            body = entry.built
            size += ENTRY_BYTES + (len(body.raw) if isinstance(body, Payload) else 0)
        elif isinstance(entry, Block):  # rows that need no request: a row number and an id each
            size += BLOCK_ROW_BYTES * len(entry.block.row_numbers)
        else:  # a row's result, settled by a dry run's worker
            size += ENTRY_BYTES
    return size


class Handoff:
    """Slices of entries from the reader thread (``put``) to the event loop (``next_rows``); an
    exception put is raised in the loop; None ends it."""

    def __init__(self) -> None:
        # what is ready for the sender, with its weight; bounded by QUEUE_BYTES (see put)
        self._queue: queue.Queue[tuple[list[Entry] | BaseException | None, int]] = queue.Queue()
        self._queued = 0  # bytes (estimated) of the entries in the queue
        self._last = 0  # ... of the last item put
        self._room = threading.Condition()
        self._closed = threading.Event()

    def put(self, item: list[Entry] | BaseException | None) -> bool:
        """Hand ``item`` to the sender; wait while the queue holds QUEUE_BYTES already (one item
        always fits). False when the run closed the queue meanwhile."""
        size = _weight(item)
        with self._room:
            if not self._room_for(size):
                return False
            self._queued += size
            self._last = size
        self._queue.put((item, size))
        return True

    def wait_for_room(self, *, empty: bool = False) -> None:
        """Wait until the queue has room for another item like the last one put (or the run closed
        it). The reader calls this before it reads and maps the next chunk, so that a sender that
        has fallen behind (always, at SIRO's quota) does not also leave a mapped chunk waiting in
        the reader's hands: one chunk fewer alive at once. ``empty``: wait until the queue is
        empty (results that are ready already, a dry run's worker's: one item queued at a time
        keeps the event loop busy, and holds no more in memory)."""
        with self._room:
            if empty:
                while self._queued and not self._closed.is_set():
                    self._room.wait(0.1)
            else:
                self._room_for(self._last)

    def _room_for(self, size: int) -> bool:
        """(Holding ``_room``.) Wait while an item of ``size`` would not fit beside what is queued
        (anything fits an empty queue); False when the run closed the queue meanwhile."""
        while self._queued and self._queued + size > QUEUE_BYTES:
            if self._closed.is_set():
                return False
            self._room.wait(0.1)
        return not self._closed.is_set()

    def _taken(self, size: int) -> None:
        with self._room:
            self._queued -= size
            self._room.notify()

    def _get(self) -> tuple[list[Entry] | BaseException | None, int] | None:
        try:
            return self._queue.get(timeout=0.1)
        except queue.Empty:
            return None  # nothing yet; ask again (keeps the executor thread from blocking forever)

    async def next_rows(self) -> list[Entry] | None:
        loop = asyncio.get_running_loop()
        while True:
            got: tuple[list[Entry] | BaseException | None, int] | None
            try:
                got = self._queue.get_nowait()
            except queue.Empty:
                got = await loop.run_in_executor(None, self._get)
            if got is None:
                continue
            item, size = got
            self._taken(size)
            if isinstance(item, BaseException):
                raise item
            return item  # a slice of rows, or None at the end

    def close(self) -> None:
        self._closed.set()
