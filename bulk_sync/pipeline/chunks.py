"""Pipeline, chunks: the reader thread's work, a chunk at a time: map, check, compare with the state,
report the rows that need no request as blocks, hand the rest to the run (Producer).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial

from .. import mapping, payload
from ..errorfile import KEEP_BYTES, Kept
from ..errors import RowError
from ..load import Chunk, Source
from ..mapping import MappedRecord
from ..payload import Payload
from ..report import (
    NOT_SENT,
    ResultBlock,
)
from ..settings import UNLIMITED_BODY, ReadSettings
from ..state import StateStore, payload_hash, target_of
from .entries import ChunkRun
from .handoff import Handoff
from .known import known_hashes, unchanged_by_source
from .memory import TRIM_EVERY, give_back
from .plan import Plan, file_size, too_large
from .records import mapped_records
from .reps import email_header, emails_of, rep_reason, rep_reasons
from .results import CELL_BYTES, Block, Entry, Row, Skipped, Stop, mark_unchanged
from .valid import ValidRows
from .warnings import row_warning


def _positions(n: int, rest: list[int]) -> list[int]:
    """Row ``i`` of a chunk -> its row in the chunk of ``rest`` (-1 when not among them)."""
    pos = [-1] * n
    for k, i in enumerate(rest):
        pos[i] = k
    return pos


@dataclass(slots=True)
class _Job:
    """One file (or sheet) of the plan, as the chunk path reads it."""

    src: Source
    bound: mapping.BoundMapping
    only: frozenset[int] | None  # the rows to read (--only-rows); None: all
    superseded: set[int]  # its rows that a later row with the same externalId replaces
    later: dict[tuple[str, str | None, int], str]  # every superseded row -> the row sent instead
    keep_sources: bool  # keep each row's fingerprint for the state


class Producer:
    """Reads, maps and builds payloads in a thread; hands them over a chunk at a time through a
    bounded queue.

    Rows whose payload the chunk check (:class:`~bulk_sync.payload.CheckedChunk`) finds valid are
    handled as columns: a dry run reports them as one block; a run encodes them, and the ones the
    state file already has become one block of ``unchanged``. Every other row (an error, a skip, a
    superseded row, one to send) is a record of its own. With ``group_by`` every row is a record
    (groups are merged from records); ``show`` hands the first valid rows on as payloads.
    """

    def __init__(
        self, plan: Plan, settings: ReadSettings, stop: Stop, kept: Kept | None = None, show: int = 0
    ) -> None:
        self._kept = kept
        self._handoff = Handoff()  # what is ready for the sender, bounded in bytes
        self._put = self._handoff.put
        self.next_rows = self._handoff.next_rows
        self.close = self._handoff.close
        self._stop = stop
        self._settings = settings
        self._per_row = bool(plan.spec.group_by)
        self._reps = plan.reps
        self._engagements = plan.spec.resource == "engagements"  # the matching warnings are theirs
        self._valid = ValidRows(settings, plan.reps, show)  # what becomes of a chunk's valid rows
        self._rep_header = email_header(plan.jobs[0][1]) if plan.jobs else None  # for unknown-rep
        self._thread = threading.Thread(
            target=self._run, args=(plan, settings.limit), daemon=True, name="bulk_sync-reader"
        )
        self._thread.start()

    def _run(self, plan: Plan, limit: int | None) -> None:
        s = self._settings
        store = None
        try:
            self._valid.predict = s.dry_run and s.state_path is not None and not s.full
            readable = not s.dry_run or (s.state_path is not None and s.state_path.is_file())
            if s.state_path is not None and not s.full and readable:  # a dry run reads it: the effect
                store = StateStore(s.state_path, target_of(s.base_url, s.resource))
                if store.empty():  # a first run: nothing can be unchanged
                    store.close()
                    store = None
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
        later = plan.superseded or {}
        rows: list[Row] = []
        for seq, rec in enumerate(mapped_records(plan, limit)):
            rows.append(self._row(seq, rec, later, partial(payload.build, rec, plan.spec.resource)))
            if len(rows) >= 256:
                if not self._put(mark_unchanged(rows, store)):
                    return
                rows = []
        self._put(mark_unchanged(rows, store))

    def _row(
        self,
        seq: int,
        rec: MappedRecord,
        later: dict[tuple[str, str | None, int], str],
        build: Callable[[], Payload | list[RowError]],
        source: bytes | None = None,
    ) -> Row:
        if later and (rec.file, rec.sheet, rec.row_number) in later:
            rec.superseded = (
                f"{later[(rec.file, rec.sheet, rec.row_number)]} has the same externalId "
                f"{rec.external_id!r} and comes later: that row is sent, this one is not"
            )
        # once the run is stopping, rows are only accounted for (not_sent), not built
        skip = self._stop or rec.skip is not None or rec.superseded is not None or isinstance(rec, Skipped)
        built = None if skip else build()
        if isinstance(built, Payload):
            big = too_large(len(built.raw), self._settings.max_body_bytes)
            if big is not None:
                built = [big]
            else:
                values = rec.values or built.body
                unknown = (
                    self._reps is not None
                    and self._reps.required
                    and rep_reason(emails_of(values), self._reps)
                )
                if unknown:
                    built = [RowError("unknown-rep", unknown, self._rep_header)]
                else:
                    rec.warning = row_warning(values, self._reps) if self._engagements else None
        digest = payload_hash(built.raw) if isinstance(built, Payload) else b""
        return Row(seq, rec, built, digest, source)

    def _by_chunk(self, plan: Plan, limit: int | None, store: StateStore | None) -> None:
        later = plan.superseded or {}
        later_rows: dict[tuple[str, str | None], set[int]] = {}
        for file, sheet, row in later:
            later_rows.setdefault((file, sheet), set()).add(row)
        # synced records keep their source row's fingerprint, so that a rerun knows them by it
        s = self._settings  # a dry run with the state reads fingerprints too (the predicted effect)
        keep_sources = s.state_path is not None and (not s.dry_run or not s.full)
        seq = 0
        for src, bound in plan.jobs:
            where = (str(src.path), src.sheet)
            only = None if plan.only_rows is None else plan.only_rows.get(where, frozenset())
            job = _Job(src, bound, only, later_rows.get(where, set()), later, keep_sources)
            self._rep_header = email_header(bound)
            # a CSV whose whole text, escaped for JSON, fits in a request holds no record too large
            body_cap = self._settings.max_body_bytes
            self._valid.small = body_cap >= UNLIMITED_BODY or (
                src.kind == "csv" and file_size(src) * 6 + 65_536 < body_cap
            )
            chunks = src.chunks(text=bound.columns.values())  # a workbook's other cells: text when asked
            for k, whole in enumerate(chunks, start=1):
                if k % TRIM_EVERY == 0:
                    give_back()
                if self._stop:  # the run is stopping: the rest is counted as not_sent, not mapped
                    chunks.close()
                    self._account(plan, src, whole, seq, limit)
                    return
                seq, out = self._chunk(job, whole, seq, limit, store)
                if not self._put(out) or (limit is not None and seq >= limit):
                    return  # closed, or --limit rows read: the rest of the file is not read
                self._handoff.wait_for_room()  # the next chunk is read when the sender can take it

    def _chunk(
        self, job: _Job, whole: Chunk, seq: int, limit: int | None, store: StateStore | None
    ) -> tuple[int, list[Entry]]:
        """One chunk's entries, in order, and the sequence number after them."""
        sources = mapping.fingerprints(job.bound, whole) if job.keep_sources else None
        quick = unchanged_by_source(job.bound, whole, sources, store, job.superseded)
        # the rows not known unchanged by their fingerprint are mapped and checked
        rest = [i for i, q in enumerate(quick) if q is None] if quick is not None else None
        chunk = whole if rest is None else whole.take(rest)
        pos: Sequence[int] = range(len(whole)) if rest is None else _positions(len(whole), rest)
        mapped_sources = sources if sources is None or rest is None else [sources[i] for i in rest]
        mc = mapping.map_chunk(job.bound, chunk)
        cc = payload.check_chunk(mc)
        batch = ChunkRun(mc, cc, mapped_sources, known_hashes(mc, cc, store), self._valid, chunk)
        bad: list[int] = []  # rows reported invalid: their cells go to the error file
        if self._reps is not None and self._reps.required:  # valid rows without a known rep: invalid
            fine = [k for k, good in enumerate(cc.ok) if good]
            reasons = rep_reasons(mc, fine, self._reps, cc.shape, batch.rep_memo)
            batch.unknown_reps = {k: r for k, r in zip(fine, reasons, strict=True) if r is not None}
        seq = self._route(job, whole, batch, quick, pos, seq, limit, bad)
        out = batch.close()
        if batch.found and store is not None:
            store.remember_sources(batch.found)
        if bad and self._kept is not None:
            self._keep(job.src, chunk, bad)
        for number, why in whole.skipped:  # a report footer
            if (job.only is None or number in job.only) and (limit is None or seq < limit):
                footer = Skipped(whole.file, whole.sheet, number, "footer", why)
                out.append(self._row(seq, footer, job.later, list))
                seq += 1
        return seq, out

    def _route(
        self,
        job: _Job,
        whole: Chunk,
        batch: ChunkRun,
        quick: list[str | None] | None,
        pos: Sequence[int],
        seq: int,
        limit: int | None,
        bad: list[int],
    ) -> int:
        """Hand each row of ``whole`` to ``batch``: unchanged, valid (encoded by columns), or a row of
        its own (its row in the mapped chunk goes to ``bad`` when it is invalid)."""
        ok, only = batch.cc.ok, job.only
        for i, number in enumerate(whole.row_numbers):
            if only is not None and number not in only:
                continue
            if limit is not None and seq >= limit:
                break
            k = pos[i]  # the row in mc (-1: known unchanged)
            if k < 0:
                assert quick is not None
                batch.unchanged(seq, number, quick[i])
            elif ok[k] and number not in job.superseded and not self._stop and k not in batch.unknown_reps:
                batch.valid(seq, k)
            elif ok[k] and k in batch.unknown_reps and number not in job.superseded and not self._stop:
                error = RowError("unknown-rep", batch.unknown_reps[k], self._rep_header)
                batch.add(Row(seq, batch.mc.record(k), [error]))
                bad.append(k)
            else:
                source = batch.sources[k] if batch.sources is not None else None
                entry = self._row(seq, batch.mc.record(k), job.later, partial(batch.cc.result, k), source)
                if isinstance(entry.built, list):
                    bad.append(k)
                batch.add(entry)
            seq += 1
        return seq

    def _account(self, plan: Plan, src: Source, first: Chunk, seq: int, limit: int | None) -> None:
        """Report every row from ``first`` on (this file's rest, then the later files) as not_sent,
        reading only: row numbers in blocks, no cells mapped, so a stop on a big file is quick."""
        why = f"not sent: {self._stop.reason}"
        later = False
        for job_src, _ in plan.jobs:
            if job_src is src:
                later = True
                numbers: Iterator[list[int]] = itertools.chain(
                    [sorted([*first.row_numbers, *(n for n, _ in first.skipped)])],
                    src.row_numbers(
                        after=max([*first.row_numbers, *(n for n, _ in first.skipped)], default=0)
                    ),
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

    def _keep(self, src: Source, chunk: Chunk, rows: list[int]) -> None:
        """Remember the cells of rows reported invalid, for the error file (up to KEEP_BYTES; past
        that nothing more is kept, and the error file reads the rows from the file again)."""
        kept = self._kept
        assert kept is not None
        if not kept.complete:
            return
        cells = chunk.row_cells(rows, src.headers)
        texts = [[str(c) for c in row] for row in cells]
        kept.bytes += sum(sum(map(len, row)) + CELL_BYTES * len(row) for row in texts)
        if kept.bytes > KEEP_BYTES:
            kept.complete = False
            kept.rows.clear()
            return
        where = kept.rows.setdefault((str(src.path), src.sheet), {})
        for i, row in zip(rows, texts, strict=True):
            where[chunk.row_numbers[i]] = row
