"""Pipeline, work: what becomes of one chunk (map, check, compare with the state, route each row to a
block or an entry of its own), as the reader thread does it or a dry run's worker process does it
(ChunkWork); the jobs (a file or sheet each) of a plan as the chunk path reads them (jobs_of).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from .. import mapping, payload
from ..errorfile import BLOB_BYTES, KEEP_BYTES, Kept, pack
from ..errors import RowError
from ..load import Chunk, Source
from ..mapping import MappedRecord
from ..notes import Place, Superseded, UnknownReps
from ..payload import Payload
from ..settings import UNLIMITED_BODY, ReadSettings
from ..state import StateStore, payload_hash, target_for
from .entries import ChunkRun
from .known import known_hashes, unchanged_by_source
from .plan import Plan, file_size, too_large
from .reps import email_header, emails_of, rep_reason, rep_reasons
from .results import Entry, Row, Skipped, Stop
from .valid import ValidRows
from .warnings import row_warning


def _positions(n: int, rest: list[int]) -> list[int]:
    """Row ``i`` of a chunk -> its row in the chunk of ``rest`` (-1 when not among them)."""
    pos = [-1] * n
    for k, i in enumerate(rest):
        pos[i] = k
    return pos


@dataclass(slots=True)
class Job:
    """One file (or sheet) of the plan, as the chunk path reads it."""

    src: Source
    bound: mapping.BoundMapping
    only: frozenset[int] | None  # the rows to read (--only-rows); None: all
    later: dict[int, Place]  # its rows a later row with the same externalId replaces -> that row
    keep_sources: bool  # keep each row's fingerprint for the state


def jobs_of(plan: Plan, settings: ReadSettings) -> list[Job]:
    later: dict[tuple[str, str | None], dict[int, Place]] = {}
    for (file, sheet, row), winner in (plan.superseded or {}).items():
        later.setdefault((file, sheet), {})[row] = winner
    # synced records keep their source row's fingerprint, so that a rerun knows them by it; a dry
    # run with the state reads fingerprints too (the predicted effect)
    keep_sources = settings.state_path is not None and (not settings.dry_run or not settings.full)
    jobs = []
    for src, bound in plan.jobs:
        where = (str(src.path), src.sheet)
        only = None if plan.only_rows is None else plan.only_rows.get(where, frozenset())
        jobs.append(Job(src, bound, only, later.get(where, {}), keep_sources))
    return jobs


def open_store(settings: ReadSettings) -> StateStore | None:
    """The state file the chunks are compared with (None: none, or nothing in it yet). A dry run
    reads it when it exists (the predicted effect); each thread or process opens its own."""
    s = settings
    readable = not s.dry_run or (s.state_path is not None and s.state_path.is_file())
    if s.state_path is None or s.full or not readable:
        return None
    store = StateStore(s.state_path, target_for(s))
    if store.empty():  # a first run: nothing can be unchanged
        store.close()
        return None
    return store


class ChunkWork:
    """Turns a chunk into its entries, in order (see :class:`~bulk_sync.pipeline.chunks.Producer`).

    ``kept``: where the cells of rows reported invalid go (the error file's); ``show``: how many
    valid rows are handed on as payloads of their own.
    """

    def __init__(
        self, plan: Plan, settings: ReadSettings, stop: Stop, kept: Kept | None = None, show: int = 0
    ) -> None:
        self.kept = kept
        # a worker: the rows reported invalid, each its row number and the cells the worker has
        self.bad: list[tuple[int, dict[str, str]]] | None = None
        self._stop = stop
        self._settings = settings
        self._reps = plan.reps
        self._engagements = plan.spec.resource == "engagements"  # the matching warnings are theirs
        # what becomes of a chunk's valid rows; a dry run with the state predicts each one's effect
        predict = settings.dry_run and settings.state_path is not None and not settings.full
        self.valid = ValidRows(settings, plan.reps, show, predict)
        self._rep_header = email_header(plan.jobs[0][1]) if plan.jobs else None  # for unknown-rep

    def enter(self, job: Job) -> None:
        """The chunks that follow are ``job``'s."""
        self._rep_header = email_header(job.bound)
        # a CSV whose whole text, escaped for JSON, fits in a request holds no record too large
        body_cap = self._settings.max_body_bytes
        self.valid.small = body_cap >= UNLIMITED_BODY or (
            job.src.kind == "csv" and file_size(job.src) * 6 + 65_536 < body_cap
        )

    def row(
        self,
        seq: int,
        rec: MappedRecord,
        build: Callable[[], Payload | list[RowError]],
        source: bytes | None = None,
        later: Place | None = None,
    ) -> Row:
        """A row with a result of its own, built unless it will not be sent. ``later``: the row
        that supersedes it (a later row with the same externalId), if one does."""
        if later is not None:
            rec.superseded = Superseded.by((rec.file, rec.sheet, rec.row_number), later, rec.external_id)
        # once the run is stopping, rows are only accounted for (not_sent), not built
        skip = self._stop or rec.skip is not None or rec.superseded is not None or isinstance(rec, Skipped)
        built = None if skip else build()
        if isinstance(built, Payload):
            big = too_large(len(built.raw), self._settings.max_body_bytes)
            if big is not None:
                built = [big]
            else:
                values = rec.values or built.body
                reason = rep_reason(emails_of(values), self._reps) if self._reps is not None else None
                unknown = self._unknown_rep(reason)
                if unknown is not None:
                    built = [unknown]
                else:
                    rec.warning = row_warning(values, reason) if self._engagements else None
        digest = payload_hash(built.raw) if isinstance(built, Payload) else b""
        return Row(seq, rec, built, digest, source)

    def _unknown_rep(self, reason: UnknownReps | None) -> RowError | None:
        """With --require-known-reps, a valid row none of whose reps is an active SIRO user is
        invalid (``unknown-rep``); without, the reason joins its matching warning."""
        if reason is None or self._reps is None or not self._reps.required:
            return None
        return RowError("unknown-rep", str(reason), self._rep_header)

    def chunk(
        self, job: Job, whole: Chunk, seq: int, limit: int | None, store: StateStore | None
    ) -> tuple[int, list[Entry]]:
        """One chunk's entries, in order, and the sequence number after them."""
        sources = mapping.fingerprints(job.bound, whole) if job.keep_sources else None
        quick = unchanged_by_source(job.bound, whole, sources, store, job.later)
        # the rows not known unchanged by their fingerprint are mapped and checked
        rest = [i for i, q in enumerate(quick) if q is None] if quick is not None else None
        chunk = whole if rest is None else whole.take(rest)
        pos: Sequence[int] = range(len(whole)) if rest is None else _positions(len(whole), rest)
        mapped_sources = sources if sources is None or rest is None else [sources[i] for i in rest]
        mc = mapping.map_chunk(job.bound, chunk)
        cc = payload.check_chunk(mc)
        batch = ChunkRun(mc, cc, mapped_sources, known_hashes(mc, cc, store), self.valid, chunk)
        bad: list[int] = []  # rows reported invalid: their cells go to the error file
        if self._reps is not None and self._reps.required:  # valid rows without a known rep: invalid
            fine = [k for k, good in enumerate(cc.ok) if good]
            reasons = rep_reasons(mc, fine, self._reps, cc.shape, batch.rep_memo)
            errors = zip(fine, map(self._unknown_rep, reasons), strict=True)
            batch.unknown_reps = {k: error for k, error in errors if error is not None}
        seq = self._route(job, whole, batch, quick, pos, seq, limit, bad)
        out = batch.close()
        if batch.found and store is not None:
            store.remember_sources(batch.found)
        if bad and self.kept is not None:
            self.keep(job.src, chunk, bad)
        if bad and self.bad is not None:  # a worker: the cells it has, for the reader to keep
            cols = chunk.columns
            for k, cells in zip(bad, chunk.row_cells(bad, cols), strict=True):
                self.bad.append((chunk.row_numbers[k], {h: str(c) for h, c in zip(cols, cells, strict=True)}))
        for number, why in whole.skipped:  # a report footer
            if (job.only is None or number in job.only) and (limit is None or seq < limit):
                footer = Skipped(whole.file, whole.sheet, number, "footer", why)
                out.append(self.row(seq, footer, list))
                seq += 1
        return seq, out

    def _route(
        self,
        job: Job,
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
            elif ok[k] and number not in job.later and not self._stop and k not in batch.unknown_reps:
                batch.valid(seq, k)
            elif ok[k] and number not in job.later and not self._stop:  # valid, without a known rep
                batch.add(Row(seq, batch.mc.record(k), [batch.unknown_reps[k]]))
                bad.append(k)
            else:
                source = batch.sources[k] if batch.sources is not None else None
                rec = batch.mc.failed_record(k)  # a bad cell: its errors are known, no values built
                build = partial(list, rec.errors) if rec is not None else partial(batch.cc.result, k)
                entry = self.row(seq, rec or batch.mc.record(k), build, source, job.later.get(number))
                if isinstance(entry.built, list):
                    bad.append(k)
                batch.add(entry)
            seq += 1
        return seq

    def keep(self, src: Source, chunk: Chunk, rows: list[int]) -> None:
        """Remember the cells of rows reported invalid, for the error file (up to KEEP_BYTES; past
        that nothing more is kept, and the error file reads the rows from the file again)."""
        kept = self.kept
        assert kept is not None
        if not kept.complete:
            return
        cells = chunk.row_cells(rows, src.headers)
        texts = [[str(c) for c in row] for row in cells]
        self.keep_rows(src, [chunk.row_numbers[i] for i in rows], texts)

    def keep_rows(self, src: Source, numbers: list[int], texts: list[list[str]]) -> None:
        """Remember rows ``numbers`` of ``src``, their cells ``texts`` (in the order of its headers)."""
        if self.kept is not None:
            add(self.kept, {(str(src.path), src.sheet): dict(zip(numbers, texts, strict=True))})


def add(kept: Kept, rows: dict[tuple[str, str | None], dict[int, list[str]]]) -> None:
    """Remember ``rows`` (file and sheet -> row number -> its cells) in ``kept``, up to KEEP_BYTES,
    each row's cells as one bytes object (:func:`~bulk_sync.errorfile.pack`)."""
    if kept.complete:
        add_packed(
            kept, {where: {n: pack(cells) for n, cells in part.items()} for where, part in rows.items()}
        )


def add_packed(kept: Kept, packed: dict[tuple[str, str | None], dict[int, bytes]]) -> None:
    """Remember rows as :func:`add` does, their cells packed already; ``{}``: rows that are too many
    to keep (nothing more is kept: the error file reads the file again)."""
    if not kept.complete:
        return
    kept.bytes += sum(len(blob) + BLOB_BYTES for part in packed.values() for blob in part.values())
    if kept.bytes > KEEP_BYTES or not packed:
        kept.complete = False
        kept.rows.clear()
        return
    for where, part in packed.items():
        kept.rows.setdefault(where, {}).update(part)
