"""Pipeline, chunks: the reader thread, a chunk at a time: read it, have it mapped and checked
(:class:`~bulk_sync.pipeline.work.ChunkWork`, here or in a dry run's worker processes), hand the
results and the rows to send to the run (Producer).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Generator, Iterator
from functools import partial

from .. import payload
from ..errorfile import Kept
from ..load import Chunk, Source, Split
from ..report import NOT_SENT, ResultBlock
from ..settings import ReadSettings
from ..state import StateStore
from .handoff import Handoff
from .memory import TRIM_EVERY, give_back
from .parts import Part, shifted
from .plan import Plan, file_size, log
from .records import mapped_records
from .results import Ahead, Block, Entry, Row, Stop, mark_unchanged
from .work import ChunkWork, add_packed, jobs_of, open_store
from .workers import MAX_AHEAD, Lost, Workers, worker_count


class Producer:
    """Reads, maps and builds payloads in a thread; hands them over a chunk at a time through a
    bounded queue.

    Rows whose payload the chunk check (:class:`~bulk_sync.payload.CheckedChunk`) finds valid are
    handled as columns: a dry run reports them as one block; a run encodes them, and the ones the
    state file already has become one block of ``unchanged``. Every other row (an error, a skip, a
    superseded row, one to send) is a record of its own. With ``group_by`` every row is a record
    (groups are merged from records); ``show`` hands the first valid rows on as payloads.

    A large dry run has its chunks mapped in worker processes (:mod:`~bulk_sync.pipeline.workers`),
    which are forked here, before the thread starts.
    """

    def __init__(
        self, plan: Plan, settings: ReadSettings, stop: Stop, kept: Kept | None = None, show: int = 0
    ) -> None:
        self._kept = kept
        self._handoff = Handoff()  # what is ready for the sender, bounded in bytes
        self._put = self._handoff.put
        self.next_rows = self._handoff.next_rows
        self._stop = stop
        self._settings = settings
        self._per_row = bool(plan.spec.group_by)
        self.workers = worker_count(plan, settings, show)  # worker processes that map the chunks
        self._workers = Workers(plan, settings, self.workers) if self.workers else None
        self._work = ChunkWork(plan, settings, stop, kept, show)
        # with workers: the chunks read and not yet handed on, in order (None: with a worker)
        self._ahead: deque[list[Entry] | None] = deque()
        self._jobs = jobs_of(plan, settings)
        self._job = 0  # the job being read
        self._second: Part | None = None  # the second part of the job being read, at its worker
        self._lost = False  # a worker ended: told once
        self._thread = threading.Thread(
            target=self._run, args=(plan, settings.limit), daemon=True, name="bulk_sync-reader"
        )
        self._thread.start()

    def close(self) -> None:
        self._handoff.close()
        if self._workers is not None:
            self._thread.join(timeout=5)  # the reader stops at its next put; then the workers end
            self._workers.close()

    def _run(self, plan: Plan, limit: int | None) -> None:
        store = None
        try:
            store = open_store(self._settings)  # (each worker opens its own)
            if self._per_row:
                self._one_by_one(plan, limit, store)
            else:
                self._by_chunk(plan, limit, store)
            self._put(None)
        except BaseException as exc:  # handed to the event loop, which raises it there
            self._put(exc)
        finally:
            if store is not None:
                store.close()

    def _one_by_one(self, plan: Plan, limit: int | None, store: StateStore | None) -> None:
        rows: list[Row] = []  # (group_by: no row supersedes another, the rows of an id are merged)
        for seq, rec in enumerate(mapped_records(plan, limit)):
            rows.append(self._work.row(seq, rec, partial(payload.build, rec, plan.spec.resource)))
            if len(rows) >= 256:
                if not self._put(mark_unchanged(rows, store)):
                    return
                rows = []
        self._put(mark_unchanged(rows, store))

    def _by_chunk(self, plan: Plan, limit: int | None, store: StateStore | None) -> None:
        seq = 0
        for index, job in enumerate(self._jobs):
            self._job = index
            self._work.enter(job)
            part = self._part(plan, index, store)  # the worker reads the file's second half itself
            # a workbook's other cells: text when asked
            split = None if part is None else Split(part.at, part.first, part.take)
            chunks = job.src.chunks(text=job.bound.columns.values(), split=split)
            self._second = part
            try:
                done = self._read(plan, index, chunks, seq, limit, store, send=part is None)
                if part is not None and done is not None:
                    if part.taken:
                        done = self._relay(plan, index, part, done, store)
                    else:  # read whole here (the middle was not a place to part)
                        part.cancel()
                        log.info(
                            "%s: read whole here (past the middle, row %d, the data ended or "
                            "a report footer may have begun)",
                            job.src.label,
                            part.first,
                        )
            finally:
                self._second = None
                if part is not None:
                    part.close()
            if done is None:
                return
            seq = done
        self._drain(store)

    def _part(self, plan: Plan, index: int, store: StateStore | None) -> Part | None:
        """The second half of job ``index``, read by the worker, when the id pass split it."""
        split = (plan.splits or {}).get(index)
        if self._workers is None or split is None or not self._drain(store):
            return None
        at, first = split
        return self._workers.part(index, at, first, file_size(self._jobs[index].src))

    def _read(
        self,
        plan: Plan,
        index: int,
        chunks: Generator[Chunk, None, None],
        seq: int,
        limit: int | None,
        store: StateStore | None,
        *,
        send: bool = True,
    ) -> int | None:
        """Map and hand on ``chunks`` of job ``index`` (``send``: with the workers when they can
        take them); the sequence number after them, or None when the run ends here (stopped,
        closed, or ``limit`` rows read)."""
        job = self._jobs[index]
        workers = self._workers if send else None
        for k, whole in enumerate(chunks, start=1):
            if k % TRIM_EVERY == 0:
                give_back()
            if self._stop:  # the run is stopping: the rest is counted as not_sent, not mapped
                chunks.close()
                if self._drain(store):
                    numbers = [*whole.row_numbers, *(n for n, _ in whole.skipped)]
                    self._account(plan, job.src, numbers, seq, limit)
                return None
            if workers is not None:
                if not self._hand_on(wait=False, store=store):  # what the workers have done
                    return None
                if not workers.full and workers.send(
                    index, seq, whole, job.bound.columns.values(), self._keeping
                ):
                    seq += len(whole) + len(whole.skipped)  # (with workers: no --limit, no retry)
                    self._ahead.append(None)
                    continue
            seq, out = self._work.chunk(job, whole, seq, limit, store)
            if workers is not None:  # the workers have their hands full (or ended): mapped here
                self._tell_lost()
                self._ahead.append(out)
                if not self._hand_on(wait=len(self._ahead) > MAX_AHEAD, store=store):
                    return None
                continue
            if self._second is not None and (ahead := self._second.progress()):
                out = [*out, Ahead(ahead)]  # how far the worker has got with the second part
            if not self._put(out) or (limit is not None and seq >= limit):
                return None  # closed, or --limit rows read: the rest of the file is not read
            self._handoff.wait_for_room()  # the next chunk is read when the sender can take it
        return seq

    def _relay(self, plan: Plan, index: int, part: Part, seq: int, store: StateStore | None) -> int | None:
        """Hand on the results of job ``index``'s second half, as its worker spooled them, after
        ``seq`` (the first half's); the sequence number after them (None: the run ends here). Where
        the worker could not read its half, or ended, the rest is read here."""
        src, shift, last = self._jobs[index].src, seq, part.first - 1
        while True:
            kind, got = part.next()
            if kind == "end":
                log.info(
                    "%s: rows %d on read by the worker process, beside the first half", src.label, part.first
                )
                return shift + int(got)
            if kind != "more":  # "alone" or "lost": the rest of the file, from the row after `last`
                if kind == "lost":
                    assert self._workers is not None
                    self._workers.part_lost()
                    self._tell_lost()
                else:
                    log.info(
                        "%s: rows %d on read here (whether they are a report footer depends on "
                        "the rows before)",
                        src.label,
                        part.first,
                    )
                rest = _after(src.chunks(text=self._jobs[index].bound.columns.values()), last)
                self._second = None
                if not self._take_back(part):
                    return None
                return self._read(plan, index, rest, seq, None, store, send=False)
            if self._stop:
                part.cancel()
                if self._take_back(part):
                    self._account(plan, src, [], seq, None, after=last)
                return None
            entries, bad, last, count = got
            if bad is None:  # more than the error file keeps: it reads the rows again
                if self._kept is not None:
                    add_packed(self._kept, {})
            elif bad and self._keeping:
                assert self._kept is not None
                add_packed(self._kept, {(str(src.path), src.sheet): dict(bad)})
            counted = min(shift + count - seq, part.announced)  # (on the bar already)
            part.announced -= counted
            seq = shift + count
            if not self._put(
                [Ahead(-counted), *shifted(entries, shift)] if counted else shifted(entries, shift)
            ):
                return None
            self._handoff.wait_for_room(empty=True)  # (they come faster than the report is written)

    def _take_back(self, part: Part) -> bool:
        """The rows ``part``'s worker said it had checked, taken off the progress bar: they are read
        here instead. False when the run closed the queue."""
        rows, part.announced = part.announced, 0
        return not rows or self._put([Ahead(-rows)])

    def _hand_on(self, *, wait: bool, store: StateStore | None) -> bool:
        """Hand on the chunks ahead, in order, as far as they are ready (``wait``: at least the
        first, waiting for its worker); False when the run closed the queue."""
        assert self._workers is not None
        while self._ahead:
            out = self._ahead[0]
            if out is None:  # with a worker
                if not wait and not self._workers.ready():
                    return True
                out = self._received(store)
            self._ahead.popleft()
            wait = False
            if not self._put(out):
                return False
        return True

    @property
    def _keeping(self) -> bool:
        """Invalid rows' cells are still kept for the error file (past KEEP_BYTES it reads them)."""
        return self._kept is not None and self._kept.complete

    def _received(self, store: StateStore | None) -> list[Entry]:
        """The oldest chunk back from a worker; the cells of its invalid rows are kept. A chunk
        whose worker ended is mapped here (and so is every chunk after it)."""
        assert self._workers is not None
        try:
            (out, bad), index, rest = self._workers.receive()
        except Lost as lost:
            self._tell_lost()
            self._work.enter(self._jobs[lost.index])
            _, out = self._work.chunk(self._jobs[lost.index], lost.chunk, lost.seq, None, store)
            self._work.enter(self._jobs[self._job])
            return out
        if bad and self._keeping:  # their cells, for the error file
            src, others = self._jobs[index].src, rest.columns
            at = {n: i for i, n in enumerate(rest.row_numbers)}
            more = rest.row_cells([at[n] for n, _ in bad], others)
            texts = []
            for (_, cells), extra in zip(bad, more, strict=True):
                row = {**cells, **{h: str(c) for h, c in zip(others, extra, strict=True)}}
                texts.append([row[h] for h in src.headers])
            self._work.keep_rows(src, [n for n, _ in bad], texts)
        return out

    def _tell_lost(self) -> None:
        if not self._lost and self._workers is not None and self._workers.lost:
            log.warning(
                "%s: its chunks and the rest of the run are mapped in the reader thread", self._workers.lost
            )
            self._lost = True

    def _drain(self, store: StateStore | None) -> bool:
        """Hand on every chunk still ahead (with a worker or mapped here); False when the run
        closed the queue."""
        while self._ahead:
            if not self._hand_on(wait=True, store=store):
                return False
        return True

    def _account(
        self, plan: Plan, src: Source, first: list[int], seq: int, limit: int | None, after: int = 0
    ) -> None:
        """Report rows ``first`` (a chunk's, rows and footer) and every row after them (after
        ``after`` if none: this file's rest, then the later files) as not_sent, reading only: row
        numbers in blocks, no cells mapped, so a stop on a big file is quick."""
        why = f"not sent: {self._stop.reason}"
        later = False
        for job_src, _ in plan.jobs:
            if job_src is src:
                later = True
                numbers: Iterator[list[int]] = itertools.chain(
                    [sorted(first)], src.row_numbers(after=max(first, default=after))
                )
            elif later:
                numbers = job_src.row_numbers()
            else:
                continue
            where = (str(job_src.path), job_src.sheet)
            only = None if plan.only_rows is None else plan.only_rows.get(where, frozenset())
            for part in numbers:
                if only is not None:
                    part = [n for n in part if n in only]
                if limit is not None:
                    part = part[: max(0, limit - seq)]
                if not part:
                    continue
                block = ResultBlock(
                    where[0], where[1], NOT_SENT, part, [None] * len(part), [why] * len(part), None, "aborted"
                )
                if not self._put([Block(seq, block)]):
                    return
                seq += len(part)


def _after(chunks: Generator[Chunk, None, None], last: int) -> Generator[Chunk, None, None]:
    """``chunks`` without their rows up to row ``last`` (handed on already)."""
    try:
        for chunk in chunks:
            keep = [i for i, n in enumerate(chunk.row_numbers) if n > last]
            skipped = [(n, why) for n, why in chunk.skipped if n > last]
            if len(keep) < len(chunk):
                chunk = chunk.take(keep)
            chunk.skipped = skipped
            if len(chunk) or skipped:
                yield chunk
    finally:
        chunks.close()
