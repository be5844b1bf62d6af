"""The reader thread's queue to the sender is bounded by what the queued rows hold, not by a count."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from bulk_sync.payload import Payload
from bulk_sync.pipeline import handoff
from bulk_sync.pipeline.results import Row


def _slice(rows: int, body_bytes: int) -> list[Row]:
    body = b"x" * body_bytes
    return [Row(seq=i, rec=None, built=Payload(f"id-{i}", None, body)) for i in range(rows)]  # type: ignore[arg-type]


def settled(count: Callable[[], int], expected: int) -> None:
    """Until ``count()`` reaches ``expected`` (a busy machine may be slow to run the reader), then
    0.3 s more, for a count that would go past it."""
    deadline = time.monotonic() + 30
    while count() < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)


def test_the_reader_waits_while_the_queue_holds_its_bytes() -> None:
    one = _slice(100, 10_000)  # ~1 MB (estimated) a slice
    weight = handoff._weight(one)
    assert 100 * 10_000 < weight < 100 * 11_000
    room = handoff.QUEUE_BYTES // weight
    h = handoff.Handoff()
    put = 0

    def reader() -> None:
        nonlocal put
        for _ in range(room + 3):
            if not h.put(one):
                return
            put += 1

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    settled(lambda: put, room)
    assert put == room  # full: the next slice waits for the sender
    assert h._queued <= handoff.QUEUE_BYTES

    async def take(n: int) -> None:
        for _ in range(n):
            assert await h.next_rows() is one

    asyncio.run(take(2))
    settled(lambda: put, room + 2)
    assert put == room + 2  # each slice taken made room for one more
    h.close()  # the run ends: the waiting reader is let go, its slice not queued
    t.join(2)
    assert not t.is_alive() and put == room + 2


def test_one_slice_bigger_than_the_bound_still_goes() -> None:
    big = _slice(10, handoff.QUEUE_BYTES)  # one slice of 10x the bound
    h = handoff.Handoff()
    assert h.put(big)  # an empty queue takes any one slice: a huge row is not a deadlock

    async def take() -> object:
        return await h.next_rows()

    assert asyncio.run(take()) is big
    assert h._queued == 0


def test_the_reader_reads_on_only_when_another_chunk_would_fit() -> None:
    """wait_for_room: the reader does not read and map the next chunk while the queue could not take
    it (a mapped chunk waiting in the reader's hands is memory too)."""
    chunk = _slice(100, handoff.QUEUE_BYTES // 150)  # ~2/3 of the bound: one fits, two do not
    h = handoff.Handoff()
    assert h.put(chunk)
    waited = threading.Event()

    def reader() -> None:
        h.wait_for_room()
        waited.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    assert not waited.wait(0.4)  # a second chunk would not fit: the reader waits

    async def take() -> object:
        return await h.next_rows()

    assert asyncio.run(take()) is chunk
    assert waited.wait(2)  # taken: it reads on
    small = _slice(10, 1_000)
    h2 = handoff.Handoff()
    assert h2.put(small) and h2.put(small)
    h2.wait_for_room()  # small items: room for more, no wait
    assert h2._queued == 2 * handoff._weight(small)
    h2.put(chunk)
    closer = threading.Timer(0.3, h2.close)
    closer.start()
    started = time.monotonic()
    h2.wait_for_room()  # full: waits until the run closes the queue
    assert 0.2 < time.monotonic() - started < 2
