"""Pipeline: wires load -> map -> build payload -> upload for one run.

Two phases, so that nothing is sent when the run cannot start:

* :func:`prepare` reads the mapping, opens every file, reads their headers and binds the mapping
  to them; any problem raises a :class:`~bulk_sync.errors.ConfigError` before a byte is sent.
* :func:`execute` streams the rows through the stages and emits exactly one
  :class:`~bulk_sync.report.RowResult` per input row, **in input order**, through a callback.

Concurrency: one reader (this coroutine) feeds a bounded queue; ``concurrency`` workers take
records from it. Two records with the same externalId are never in flight together.
Stopping: a FatalError (token refused) or a signal stops dispatching; in-flight requests finish
(a second signal cancels them); every row not sent is still reported, as ``not_sent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import datetime as dt
import gc
import itertools
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import mapping, payload
from .errorfile import KEEP_BYTES, Kept
from .errors import BulkSyncError, FatalError, Interrupted, OutputError, RowError, SourceError, StartError
from .group import GroupRecord, group_records
from .load import Chunk, Source, open_sources
from .mapping import BoundMapping, MappedRecord, MappingSpec
from .payload import Payload
from .report import (
    GOOD,
    INVALID,
    NOT_SENT,
    SKIPPED,
    SUPERSEDED,
    UNCHANGED,
    VALID,
    WARNING_SEPARATOR,
    ResultBlock,
    RowResult,
    Summary,
    read_report,
)
from .settings import UNLIMITED_BODY, RunSettings
from .state import StateLock, StateStore, payload_hash, target_of

if TYPE_CHECKING:  # the HTTP stages are imported when a run sends (a dry run starts faster)
    from .dispatch import Dispatcher, Item
    from .upload import Outcome, Transport

Emit = Callable[[RowResult | ResultBlock], None]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """Everything checked before sending: the mapping and each file bound to it."""

    spec: MappingSpec
    jobs: tuple[tuple[Source, BoundMapping], ...]
    only_rows: dict[tuple[str, str | None], frozenset[int]] | None = None  # `retry`: these rows only
    superseded: dict[tuple[str, str | None, int], str] | None = None  # see scan_columns

    @property
    def warnings(self) -> list[str]:
        return [f"{src.label}: {w}" for src, bound in self.jobs for w in (*src.warnings, *bound.warnings)]


def prepare(
    files: list[str | Path],
    mapping_path: str | Path,
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Plan:
    """Load the mapping and open every file (every chosen sheet of a workbook). Raises
    ConfigError (nothing sent) on any problem."""
    spec = mapping.load_mapping(mapping_path, payload.target_catalog())
    jobs = []
    for f in files:
        for src in _open(spec, f, sheet, encoding, delimiter):
            jobs.append((src, mapping.bind(spec, src.headers, src.label)))
    return Plan(spec, tuple(jobs))


def check_mapping(mapping_path: str | Path) -> None:
    """Load a mapping file as a run would (raises MappingError listing its problems), reading no data."""
    mapping.load_mapping(mapping_path, payload.target_catalog())


def _open(
    spec: MappingSpec, file: str | Path, sheet: str | None, encoding: str | None, delimiter: str | None
) -> list[Source]:
    return open_sources(
        file,
        sheet=sheet,
        encoding=encoding,
        delimiter=delimiter,
        header_row=spec.header_row,
        expected=spec.columns,
        sheets=spec.sheets,
        id_columns=spec.id_columns,
        stop_at=spec.stop_at,
    )


@contextlib.contextmanager
def state_lock(settings: RunSettings, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the state file's lock for a run (ConfigError if another run holds it)."""
    if settings.state_path is None or settings.dry_run:
        yield
        return
    lock = StateLock(settings.state_path)
    lock.acquire(wait_seconds)
    try:
        store = StateStore(settings.state_path, target_of(settings.base_url))
        try:
            store.check()  # a damaged file is refused here, before anything is sent
        finally:
            store.close()
        yield
    finally:
        lock.release()


def prepare_retry(
    report_path: str | Path,
    mapping_path: str | Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Plan | None:
    """A plan that re-reads, from their original files, exactly the rows an earlier report did not
    sync (invalid ones included: the file may have been fixed since). None when there are none."""
    try:
        rows = read_report(report_path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(str(report_path), f"cannot read the report: {exc}") from exc
    if rows and not {"source_file", "sheet", "row_number", "status"} <= set(rows[0]):
        raise SourceError(
            str(report_path), "is not a bulk-sync report (no source_file/row_number/status columns)"
        )
    wanted: dict[tuple[str, str | None], set[int]] = {}
    for r in rows:
        if r["status"] not in GOOD:
            wanted.setdefault((r["source_file"], r["sheet"] or None), set()).add(int(r["row_number"]))
    if not wanted:
        return None
    spec = mapping.load_mapping(mapping_path, payload.target_catalog())
    jobs = []
    only: dict[tuple[str, str | None], frozenset[int]] = {}
    for (file, sheet), numbers in wanted.items():
        for src in _open(spec, file, sheet, encoding, delimiter):
            jobs.append((src, mapping.bind(spec, src.headers, src.label)))
            only[(str(src.path), src.sheet)] = frozenset(numbers)
    return Plan(spec, tuple(jobs), only)


def run(plan: Plan, settings: RunSettings, emit: Emit, **kwargs: Any) -> Summary:
    """Synchronous entry point: execute the plan on a fresh event loop (uvloop where installed)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.001)  # the reader thread must not keep the event loop waiting for the GIL
    gc.freeze()  # what is loaded by now (modules, the mapping) lives on: keep the cyclic GC's passes short
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(execute(plan, settings, emit, **kwargs))
    finally:
        sys.setswitchinterval(old)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # Windows, or not installed: the standard loop works, a little slower
        return None
    return uvloop.new_event_loop


CELL_BYTES = 56  # a str object's own size, beside its characters
BACKPRESSURE = 10_000  # results (or blocks of them) held for an earlier row before the reader waits


class _Ordered:
    """Re-orders results into input order before they reach the callback; counts them.

    When the callback fails to write a result (``OSError``: a full disk), the results stop reaching
    it, the summary says where the report stops and why, and ``on_broken`` is told (once).
    """

    def __init__(self, emit: Emit, summary: Summary, on_broken: Callable[[OSError], None] = lambda e: None):
        self._emit = emit
        self._summary = summary
        self._next = 0
        self._pending: dict[int, RowResult | list[RowResult] | ResultBlock] = {}
        self._drained = asyncio.Event()
        self._on_broken = on_broken
        self.last: tuple[str, str | None, int] | None = None  # the last row handed to the callback

    def put(self, seq: int, result: RowResult | list[RowResult] | ResultBlock) -> None:
        """The result of sequence number ``seq`` (a block covers ``len(block)`` numbers from it)."""
        self._pending[seq] = result
        while self._next in self._pending:
            self._next += self._send(self._pending.pop(self._next))
        if len(self._pending) < 1000:
            self._drained.set()

    def _send(self, r: RowResult | list[RowResult] | ResultBlock) -> int:
        if isinstance(r, ResultBlock):
            self._summary.add_block(r)
            self._out(r, (r.source_file, r.sheet, r.row_numbers[-1]) if len(r) else None)
            return len(r)
        for one in r if isinstance(r, list) else (r,):
            self._summary.add(one)
            self._out(one, (one.source_file, one.sheet, one.row_number))
        return 1

    def _out(self, r: RowResult | ResultBlock, where: tuple[str, str | None, int] | None) -> None:
        if self._summary.report_incomplete is not None:
            return  # the report is broken: counted, not written
        try:
            self._emit(r)
        except OSError as exc:
            at = f"row {self.last[2]} of {self.last[0]}" if self.last else "its first row"
            self._summary.report_incomplete = (
                f"the report stops after {at}: it could not be written ({exc.strerror or exc})"
            )
            self._on_broken(exc)
            return
        if where is not None:
            self.last = where

    def flush_all(self) -> None:
        """Emit whatever is left, in order, even across gaps (after a hard stop)."""
        for seq in sorted(self._pending):
            self._send(self._pending.pop(seq))

    def put_last(self, result: RowResult) -> None:
        """A closing line after everything else (a hard stop says where the report ends); it
        names a row that was not read, so it is not counted as one."""
        if self._summary.report_incomplete is None:
            self._summary.report_incomplete = result.message
        with contextlib.suppress(OSError):
            self._emit(result)

    @property
    def waiting(self) -> bool:
        """Results are held back by an earlier row (one in a partial batch, or in flight) to the
        point that the reader will be made to wait: the rows ahead of them must go now."""
        return len(self._pending) > BACKPRESSURE // 2

    async def backpressure(self, limit: int = BACKPRESSURE) -> None:
        """Keep the reader from racing ahead of a slow in-flight row (bounds memory)."""
        while len(self._pending) > limit:
            self._drained.clear()
            await self._drained.wait()


def _result(rec: MappedRecord, status: str, **kw: object) -> RowResult | list[RowResult]:
    """The row's result; for a group (group_by), one result per input row of the group. A row that
    was built carries its warning (what SIRO will make of it) whatever its status."""
    if rec.warning is not None:
        kw.setdefault("warning", rec.warning)
    if isinstance(rec, GroupRecord):
        return [
            RowResult(file, sheet, row, rec.external_id, status, **kw)  # type: ignore[arg-type]
            for file, sheet, row in rec.members
        ]
    return RowResult(rec.file, rec.sheet, rec.row_number, rec.external_id, status, **kw)  # type: ignore[arg-type]


def _from_outcome(rec: MappedRecord, out: Outcome) -> RowResult | list[RowResult]:
    column = None
    if out.issues:  # a 422 names payload paths: find the spreadsheet columns behind them
        cols = [rec.sources[p] for p, _ in out.issues if p in rec.sources]
        column = "; ".join(dict.fromkeys(cols)) or None
    return _result(
        rec,
        out.status,
        error_type=out.error_type,
        column=column,
        message=out.message,
        http_status=out.http_status,
        attempts=out.attempts,
        siro_id=out.siro_id,
    )


class _Stop:
    """Why and how hard the run is stopping."""

    def __init__(self) -> None:
        self.reason: BulkSyncError | None = None
        self.hard = False

    def __bool__(self) -> bool:
        return self.reason is not None


def _not_sent(rec: MappedRecord, stop: _Stop) -> RowResult | list[RowResult]:
    return _result(rec, NOT_SENT, error_type="aborted", message=f"not sent: {stop.reason}")


def _in_flight_lost(rec: MappedRecord) -> RowResult | list[RowResult]:
    return _result(
        rec,
        NOT_SENT,
        error_type="interrupted",
        message=(
            "the run was stopped while this record was in flight; SIRO may or may not have it: "
            "run again to be sure (re-sending is safe)"
        ),
    )


async def execute(
    plan: Plan,
    settings: RunSettings,
    emit: Emit,
    *,
    transport: Transport | None = None,
    preflight: bool = True,
    handle_signals: bool = True,
    grace_seconds: float = 30.0,
    on_payload: Callable[[Payload], None] | None = None,
    kept: Kept | None = None,
    events: Callable[[str], None] = lambda message: None,
) -> Summary:
    """Stream every row through the stages; emit one RowResult per row, in input order.
    ``kept``: where to remember the cells of invalid rows (for the error file); ``events``: notices
    a person should see at once (the run is stopping, and how to stop it harder)."""
    summary = Summary(files=[src.label for src, _ in plan.jobs])
    stop = _Stop()
    if settings.dry_run:
        ordered = _Ordered(emit, summary)
        await _read_all(plan, settings, ordered, stop, None, on_payload, kept)
        summary.finished = time.monotonic()
        return summary
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[Any]] = []
    checking: list[asyncio.Task[None]] = []  # the pre-flight, while it runs

    def halt(reason: BulkSyncError) -> None:
        if not stop:
            log.error("stopping the run: %s", reason)
            stop.reason = reason
            up.stopping = True
            for task in checking:  # a pre-flight waiting on the network is not waited for
                task.cancel()
            loop.call_later(grace_seconds, hard_stop)

    def hard_stop() -> None:
        stop.hard = True
        for t in tasks:
            t.cancel()

    def on_signal(signame: str) -> None:
        if stop:
            events(f"{signame} again: stopping now; requests in flight are reported not_sent")
            hard_stop()
            return
        halt(Interrupted(f"stopped by {signame}; rows not yet sent are marked not_sent"))
        in_flight = dispatcher.in_flight if dispatcher is not None else 0
        events(
            f"stopping ({signame}): {in_flight} request(s) in flight are finishing (up to "
            f"{grace_seconds:.0f} s), the rest of the file is counted as not_sent; "
            "press Ctrl-C again (or send SIGTERM) to stop now"
        )

    def broken(exc: OSError) -> None:
        halt(OutputError(f"{summary.report_incomplete}; rows SIRO acknowledged are in the state file"))

    ordered = _Ordered(emit, summary, broken)
    store = StateStore(settings.state_path, target_of(settings.base_url)) if settings.state_path else None
    acked: list[tuple[str, bytes, str | None, bytes | None]] = []

    def done(item: Item, outcome: Outcome) -> None:
        seq, rec, digest, source = item.tag
        if outcome.status == "synced" and store is not None:
            acked.append((item.payload.external_id, digest, outcome.siro_id, source))
        ordered.put(seq, _from_outcome(rec, outcome))

    flush_scheduled = False

    def flush() -> None:
        nonlocal flush_scheduled
        flush_scheduled = False
        if acked and store is not None:
            try:
                store.record(acked)
            except BulkSyncError as exc:  # the state file cannot be written (full disk, damage)
                halt(OutputError(str(exc)))
            acked.clear()

    def delivered() -> None:
        """After a request: its acknowledgements go to the state file in one transaction, at the end
        of this turn of the event loop, together with those of every other request answered in it."""
        nonlocal flush_scheduled
        if acked and not flush_scheduled:
            flush_scheduled = True
            loop.call_soon(flush)

    dispatcher: Dispatcher | None = None
    with _signals(on_signal, enabled=handle_signals):
        from .dispatch import Dispatcher
        from .upload import Uploader

        async with Uploader(settings, transport=transport) as up:
            if preflight:
                check = loop.create_task(up.check_identity())
                checking.append(check)
                try:
                    await check
                except StartError as exc:  # SIRO unreachable, or the token refused: nothing sent
                    halt(exc)
                except asyncio.CancelledError:
                    if not stop:
                        raise
                checking.clear()
            dispatcher = Dispatcher(
                up,
                settings,
                on_done=done,
                on_delivered=delivered,
                on_abandoned=lambda item: ordered.put(item.tag[0], _not_sent(item.tag[1], stop)),
                on_lost=lambda item: ordered.put(item.tag[0], _in_flight_lost(item.tag[1])),
                on_fatal=halt,
                stopping=lambda: bool(stop),
            )
            tasks.extend(dispatcher.workers)
            reader = loop.create_task(_read_all(plan, settings, ordered, stop, dispatcher, kept=kept))
            tasks.append(reader)
            try:
                await reader
            except asyncio.CancelledError:
                pass
            except SourceError as exc:  # the file broke part-way (rows before it were sent): stop, report
                halt(
                    FatalError(
                        f"reading stopped part-way: {exc}; the rows after that point are not in the report"
                    )
                )
            except BulkSyncError as exc:  # the state file failed while reading (damaged mid-run)
                halt(OutputError(str(exc)))
            dispatcher.close()
            await dispatcher.join()
            for item in dispatcher.leftovers():  # left behind by a hard stop
                ordered.put(item.tag[0], _not_sent(item.tag[1], stop))
            flush()
            if store is not None:
                store.close()
            ordered.flush_all()
            if stop.hard:
                ordered.put_last(_stopped_hard(ordered.last))
            summary.requests = up.requests_sent
            summary.throttled = up.pacer.throttled
    if stop.reason is not None:
        summary.aborted = str(stop.reason)
        summary.aborted_code = stop.reason.exit_code
    summary.finished = time.monotonic()
    return summary


def _stopped_hard(last: tuple[str, str | None, int] | None) -> RowResult:
    """The report's last line after a second signal: where it stops (the rows after were not read)."""
    file, sheet, row = last if last is not None else ("", None, 0)
    return RowResult(
        file,
        sheet,
        row + 1,
        None,
        NOT_SENT,
        error_type="interrupted",
        message=(
            f"the run was stopped hard here: the report stops after row {row}; this row and every "
            "row after it (and any later file) were not read: run the same command again to send them"
        ),
    )


async def _read_all(
    plan: Plan,
    settings: RunSettings,
    ordered: _Ordered,
    stop: _Stop,
    dispatcher: Dispatcher | None,
    on_payload: Callable[[Payload], None] | None = None,
    kept: Kept | None = None,
) -> None:
    """Feed every row to the dispatcher (or, in a dry run, straight to the results).

    Reading, mapping and validating run in a thread (:class:`_Producer`) so that the event loop
    stays free to answer responses while a chunk is parsed: a loop blocked for the few hundred
    milliseconds a chunk takes would stall every connection at once.
    """
    if dispatcher is not None:  # a dry run never imports the HTTP stages
        from .dispatch import Item

    producer = _Producer(plan, settings, stop, per_row=on_payload is not None, kept=kept)
    try:
        while (rows := await producer.next_rows()) is not None:
            for row in rows:
                if stop.hard:
                    return  # a second signal: write what we have, now
                if isinstance(row, _Block):
                    ordered.put(row.seq, row.block)
                    continue
                seq, rec, built, digest, source, unchanged = row
                if isinstance(rec, _Skipped):
                    ordered.put(seq, _result(rec, SKIPPED, error_type=rec.rule, message=rec.reason))
                elif rec.skip is not None and rec.skip.startswith("\x00"):  # a later row has this id
                    ordered.put(seq, _result(rec, SUPERSEDED, message=rec.skip[1:]))
                elif rec.skip is not None:
                    ordered.put(seq, _result(rec, SKIPPED, error_type="filter", message=rec.skip))
                elif isinstance(built, list):  # found invalid: it stays invalid, stop or not
                    ordered.put(seq, _invalid(rec, built))
                elif stop or built is None:
                    ordered.put(seq, _not_sent(rec, stop))
                elif unchanged:
                    ordered.put(seq, _result(rec, UNCHANGED, message=_UNCHANGED_NOTE))
                elif dispatcher is None:
                    if on_payload is not None:
                        on_payload(built)
                    ordered.put(seq, _result(rec, VALID))
                else:
                    try:
                        await dispatcher.submit(Item(built, (seq, rec, digest, source)))
                    except asyncio.CancelledError:
                        ordered.put(seq, _not_sent(rec, stop))
                        raise
            if dispatcher is not None and ordered.waiting:
                dispatcher.flush()  # results wait behind a partial batch: let it go
            await ordered.backpressure()
    finally:
        producer.close()


# (sequence, record, payload or its errors or None when not built, payload hash, source row's
# fingerprint (None: not kept), unchanged since last sync)
_Row = tuple[int, MappedRecord, "Payload | list[RowError] | None", bytes, bytes | None, bool]


def _mark_unchanged(rows: list[_Row], store: StateStore | None) -> list[_Entry]:
    """Flag the rows whose payload is exactly what SIRO acknowledged last time (one query a slice)."""
    if store is None:
        return list(rows)
    known = store.hashes([r[2].external_id for r in rows if isinstance(r[2], Payload)])
    if not known:
        return list(rows)
    return [
        (
            seq, rec, built, digest, source,
            isinstance(built, Payload) and known.get(built.external_id, (b"",))[0] == digest,
        )
        for seq, rec, built, digest, source, _ in rows
    ]  # fmt: skip


@dataclass(slots=True)
class _Block:
    """Final results for a run of consecutive rows (valid in a dry run, unchanged since last sync)."""

    seq: int
    block: ResultBlock


_Entry = _Row | _Block


class _ChunkRun:
    """The entries of one chunk, in order: runs of valid rows (encoded together), runs of
    unchanged rows (one block each), and rows of their own."""

    def __init__(
        self,
        mc: mapping.MappedChunk,
        cc: payload.CheckedChunk,
        sources: list[bytes] | None,
        known: dict[str, tuple[bytes, bytes | None]],
        encode: Callable[[_ChunkRun, list[int], int], None],
        frame: Any = None,
    ) -> None:
        self.mc, self.cc, self.sources, self.known = mc, cc, sources, known
        self.warnings: dict[tuple[int, Any], str | None] = {}  # shapes are per chunk
        self.may_be_large: bool | None = None  # could a row of this chunk be too large to send
        self.frame = frame  # the chunk's cells, as read
        self.found: list[tuple[str, bytes, bytes]] = []  # unchanged by payload hash, new fingerprint
        self.out: list[_Entry] = []
        self._encode = encode
        self._valid: list[int] = []  # rows of mc with consecutive sequence numbers from _valid_first
        self._valid_first = 0
        self._same: tuple[list[int], list[str | None]] = ([], [])  # row numbers, ids from _same_first
        self._same_first = 0

    def valid(self, seq: int, k: int) -> None:
        self._close_same()
        if not self._valid:
            self._valid_first = seq
        self._valid.append(k)

    def unchanged(self, seq: int, number: int, external_id: str | None) -> None:
        self._close_valid()
        if not self._same[0]:
            self._same_first = seq
        self._same[0].append(number)
        self._same[1].append(external_id)

    def add(self, entry: _Entry) -> None:
        self._close_valid()
        self._close_same()
        self.out.append(entry)

    def close(self) -> list[_Entry]:
        self._close_valid()
        self._close_same()
        return self.out

    def _close_valid(self) -> None:
        if self._valid:
            rows, self._valid = self._valid, []
            self._encode(self, rows, self._valid_first)  # back through unchanged() and add()

    def _close_same(self) -> None:
        if self._same[0]:
            numbers, ids = self._same
            notes: list[str | None] = [_UNCHANGED_NOTE] * len(numbers)
            block = ResultBlock(self.mc.file, self.mc.sheet, UNCHANGED, numbers, ids, notes)
            self.out.append(_Block(self._same_first, block))
            self._same = ([], [])


def _positions(n: int, rest: list[int]) -> list[int]:
    """Row ``i`` of a chunk -> its row in the chunk of ``rest`` (-1 when not among them)."""
    pos = [-1] * n
    for k, i in enumerate(rest):
        pos[i] = k
    return pos


class _Producer:
    """Reads, maps and builds payloads in a thread; hands them over a chunk at a time through a
    bounded queue.

    Rows whose payload the chunk check (:class:`~bulk_sync.payload.CheckedChunk`) finds valid are
    handled as columns: a dry run reports them as one block; a run encodes them, and the ones the
    state file already has become one block of ``unchanged``. Every other row (an error, a skip, a
    superseded row, one to send) is a record of its own. With ``group_by`` (or ``--show``) every
    row is a record.
    """

    def __init__(
        self, plan: Plan, settings: RunSettings, stop: _Stop, per_row: bool = False, kept: Kept | None = None
    ) -> None:
        self._kept = kept
        self._small = False  # the file at hand is too small to hold a record too large to send
        self._queue: queue.Queue[list[_Entry] | BaseException | None] = queue.Queue(maxsize=16)
        self._closed = threading.Event()
        self._stop = stop
        self._settings = settings
        self._per_row = per_row or bool(plan.spec.group_by)
        self._thread = threading.Thread(
            target=self._run, args=(plan, settings.limit), daemon=True, name="bulk_sync-reader"
        )
        self._thread.start()

    def _run(self, plan: Plan, limit: int | None) -> None:
        s = self._settings
        store = None
        try:
            if s.state_path is not None and not s.full and not s.dry_run:
                store = StateStore(s.state_path, target_of(s.base_url))
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
        rows: list[_Row] = []
        for seq, rec in enumerate(_records(plan, limit)):
            rows.append(self._row(seq, rec, later, partial(payload.build, rec)))
            if len(rows) >= 256:
                if not self._put(_mark_unchanged(rows, store)):
                    return
                rows = []
        self._put(_mark_unchanged(rows, store))

    def _row(
        self,
        seq: int,
        rec: MappedRecord,
        later: dict[tuple[str, str | None, int], str],
        build: Callable[[], Payload | list[RowError]],
        source: bytes | None = None,
    ) -> _Row:
        if later and (rec.file, rec.sheet, rec.row_number) in later:
            rec.skip = (
                f"\x00{later[(rec.file, rec.sheet, rec.row_number)]} has the same externalId "
                f"{rec.external_id!r} and comes later: that row is sent, this one is not"
            )
        # once the run is stopping, rows are only accounted for (not_sent), not built
        built = None if self._stop or rec.skip is not None or isinstance(rec, _Skipped) else build()
        if isinstance(built, Payload):
            big = too_large(len(built.raw), self._settings.max_body_bytes)
            if big is not None:
                built = [big]
            else:
                rec.warning = row_warning(rec.values or built.body)
        digest = payload_hash(built.raw) if isinstance(built, Payload) else b""
        return (seq, rec, built, digest, source, False)

    def _by_chunk(self, plan: Plan, limit: int | None, store: StateStore | None) -> None:
        later = plan.superseded or {}
        later_rows: dict[tuple[str, str | None], set[int]] = {}
        for file, sheet, row in later:
            later_rows.setdefault((file, sheet), set()).add(row)
        # synced records keep their source row's fingerprint, so that a rerun knows them by it
        keep_sources = self._settings.state_path is not None and not self._settings.dry_run
        seq = 0
        for src, bound in plan.jobs:
            where = (str(src.path), src.sheet)
            only = None if plan.only_rows is None else plan.only_rows.get(where, frozenset())
            superseded = later_rows.get(where, set())
            # a CSV whose whole text, escaped for JSON, fits in a request holds no record too large
            body_cap = self._settings.max_body_bytes
            self._small = body_cap >= UNLIMITED_BODY or (
                src.kind == "csv" and _file_size(src) * 6 + 65_536 < body_cap
            )
            chunks = src.chunks()
            for whole in chunks:
                if self._stop:  # the run is stopping: the rest is counted as not_sent, not mapped
                    chunks.close()
                    self._account(plan, src, whole, seq, limit)
                    return
                sources = mapping.fingerprints(bound, whole) if keep_sources else None
                quick = self._unchanged(bound, whole, sources, store, superseded)
                # the rows not known unchanged by their fingerprint are mapped and checked
                rest = [i for i, q in enumerate(quick) if q is None] if quick is not None else None
                chunk = whole if rest is None else whole.take(rest)
                pos: Sequence[int] = range(len(whole)) if rest is None else _positions(len(whole), rest)
                mapped_sources = sources if sources is None or rest is None else [sources[i] for i in rest]
                mc = mapping.map_chunk(bound, chunk)
                cc = payload.check_chunk(mc)
                known = self._known(mc, cc, store)
                batch = _ChunkRun(mc, cc, mapped_sources, known, self._fast, chunk.frame)
                bad: list[int] = []  # rows reported invalid: their cells go to the error file
                ok = cc.ok
                for i, number in enumerate(whole.row_numbers):
                    if only is not None and number not in only:
                        continue
                    if limit is not None and seq >= limit:
                        break
                    k = pos[i]  # the row in mc (-1: known unchanged)
                    if k < 0:
                        assert quick is not None
                        batch.unchanged(seq, number, quick[i])
                    elif ok[k] and number not in superseded and not self._stop:
                        batch.valid(seq, k)
                    else:
                        source = mapped_sources[k] if mapped_sources is not None else None
                        entry = self._row(seq, mc.record(k), later, partial(cc.result, k), source)
                        if isinstance(entry[2], list):
                            bad.append(k)
                        batch.add(entry)
                    seq += 1
                out = batch.close()
                if batch.found and store is not None:
                    store.remember_sources(batch.found)
                if bad and self._kept is not None:
                    self._keep(src, chunk, bad)
                for number, why in whole.skipped:  # a report footer
                    if (only is None or number in only) and (limit is None or seq < limit):
                        out.append(
                            self._row(
                                seq, _Skipped(whole.file, whole.sheet, number, "footer", why), later, list
                            )
                        )
                        seq += 1
                if not self._put(out) or (limit is not None and seq >= limit):
                    return  # closed, or --limit rows read: the rest of the file is not read

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
                if not self._put([_Block(seq, block)]):
                    return
                seq += len(part)

    @staticmethod
    def _unchanged(
        bound: mapping.BoundMapping,
        chunk: Chunk,
        sources: list[bytes] | None,
        store: StateStore | None,
        superseded: set[int],
    ) -> list[str | None] | None:
        """The externalId of each row whose source fingerprint is the one kept with its last
        synced payload (None for the others); None when there is none.

        Such a row maps to exactly the payload SIRO acknowledged, so it is unchanged without being
        mapped. Rows a later row supersedes, and rows read with a problem, are left to the full way.
        """
        if store is None or sources is None:
            return None
        ids = mapping.external_ids(bound, chunk)
        problems = chunk.problems
        asked: list[int] = []
        pairs: list[tuple[str, bytes]] = []
        for i, (ext, number) in enumerate(zip(ids, chunk.row_numbers, strict=True)):
            if ext is not None and number not in superseded and number not in problems:
                asked.append(i)
                pairs.append((ext, sources[i]))
        same = store.same_sources(pairs)
        if not any(same):
            return None
        quick: list[str | None] = [None] * len(ids)
        for i, hit in zip(asked, same, strict=True):
            if hit:
                quick[i] = ids[i]
        return quick

    @staticmethod
    def _known(
        mc: mapping.MappedChunk, cc: payload.CheckedChunk, store: StateStore | None
    ) -> dict[str, tuple[bytes, bytes | None]]:
        """What the state file holds for the chunk's valid rows (one query a chunk)."""
        if store is None:
            return {}
        ids = mc.column("externalId")
        assert ids is not None
        return store.hashes([ids[i] for i, ok in enumerate(cc.ok) if ok])

    def _keep(self, src: Source, chunk: Chunk, rows: list[int]) -> None:
        """Remember the cells of rows reported invalid, for the error file (up to KEEP_BYTES; past
        that nothing more is kept, and the error file reads the rows from the file again)."""
        kept = self._kept
        assert kept is not None
        if not kept.complete:
            return
        cells = chunk.frame.iloc[rows][src.headers].to_numpy(dtype=object).tolist()
        texts = [[str(c) for c in row] for row in cells]
        kept.bytes += sum(sum(map(len, row)) + CELL_BYTES * len(row) for row in texts)
        if kept.bytes > KEEP_BYTES:
            kept.complete = False
            kept.rows.clear()
            return
        where = kept.rows.setdefault((str(src.path), src.sheet), {})
        for i, row in zip(rows, texts, strict=True):
            where[chunk.row_numbers[i]] = row

    def _fast(self, run: _ChunkRun, rows: list[int], first: int) -> None:
        """Valid rows ``rows`` of a chunk, sequence numbers ``first``, ``first + 1``, ..., handed to
        ``run``: one block in a dry run; else encoded, and each one unchanged or to send. A record
        whose JSON is larger than a request may be is invalid (``too-large``), never sent."""
        mc, cc, known, sources = run.mc, run.cc, run.known, run.sources
        ids_col = mc.column("externalId")
        assert ids_col is not None
        limit = self._settings.max_body_bytes
        warned = _warnings(mc, cc, rows, run.warnings)
        if self._settings.dry_run:
            if run.may_be_large is None:  # once a chunk: a bound from its longest texts
                run.may_be_large = self._small is False and _may_be_large(mc.bound, mc.raw, run.frame, limit)
            sizes = dict(zip(rows, map(len, cc.bodies(rows)), strict=True)) if run.may_be_large else {}
            start = 0
            for k, i in enumerate([*rows, -1]):
                big = too_large(sizes.get(i, 0), limit) if i >= 0 else None
                if i >= 0 and big is None:
                    continue
                if k > start:  # the valid rows before this one, as a block
                    part = rows[start:k]
                    notes = warned[start:k] if any(warned[start:k]) else None
                    numbers, ids = [mc.row_numbers[j] for j in part], [ids_col[j] for j in part]
                    block = ResultBlock(mc.file, mc.sheet, VALID, numbers, ids, None, notes)
                    run.add(_Block(first + start, block))
                if big is not None:
                    run.add((first + k, mc.light_record(i, ids_col[i]), [big], b"", None, False))
                start = k + 1
            return
        bodies = cc.bodies(rows)
        digests = list(map(payload_hash, bodies))
        for k, i in enumerate(rows):
            ext, number = ids_col[i], mc.row_numbers[i]
            big = too_large(len(bodies[k]), limit)
            if big is not None:
                run.add((first + k, mc.light_record(i, ext), [big], b"", None, False))
                continue
            held = known.get(ext) if known else None
            if held is not None and held[0] == digests[k]:
                run.unchanged(first + k, number, ext)
                if sources is not None and held[1] != sources[i]:
                    run.found.append((ext, digests[k], sources[i]))
                continue
            source = sources[i] if sources is not None else None
            rec = mc.light_record(i, ext)
            rec.warning = warned[k]
            run.add((first + k, rec, Payload(ext, None, bodies[k]), digests[k], source, False))

    def _put(self, item: list[_Entry] | BaseException | None) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self) -> list[_Entry] | BaseException | bool | None:
        try:
            return self._queue.get(timeout=0.1)
        except queue.Empty:
            return False  # nothing yet; ask again (keeps the executor thread from blocking forever)

    async def next_rows(self) -> list[_Entry] | None:
        loop = asyncio.get_running_loop()
        while True:
            item: object
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                item = await loop.run_in_executor(None, self._get)
            if item is False:
                continue
            if isinstance(item, BaseException):
                raise item
            return item  # type: ignore[return-value]  # a slice of rows, or None at the end

    def close(self) -> None:
        self._closed.set()


class _Skipped(MappedRecord):
    """A row that is not a record (a report footer): reported ``skipped`` with the rule's name."""

    __slots__ = ("reason", "rule")

    def __init__(self, file: str, sheet: str | None, row_number: int, rule: str, reason: str) -> None:
        super().__init__(file, sheet, row_number, None, {})
        self.rule, self.reason = rule, reason


def scan_columns(plan: Plan, *, limit: int | None = None) -> Plan:
    """Part of preparing: one pass over the columns that must be known before anything is sent.

    * the ids: rows whose externalId appears again later in the run (the last row of an id wins;
      not with `group_by`, where the rows of an id are merged, nor with ``limit``);
    * the number columns whose decimal mark the mapping leaves open: each is settled from its cells
      (:class:`~bulk_sync.mapping.NumberEvidence`; with ``limit``, from the rows that are read).

    Raises SourceError (nothing sent) when a file breaks in this pass.
    """
    supersede = not plan.spec.group_by and limit is None
    evidence = [mapping.NumberEvidence(bound) for _, bound in plan.jobs]
    if not supersede and not any(e.fields for e in evidence):
        return plan
    superseded = _column_pass(plan, evidence, supersede, limit)
    jobs = tuple((src, e.settled()) for (src, _), e in zip(plan.jobs, evidence, strict=True))
    return dataclasses.replace(plan, jobs=jobs, superseded=superseded if supersede else plan.superseded)


def _column_pass(
    plan: Plan, evidence: list[mapping.NumberEvidence], supersede: bool, limit: int | None
) -> dict[tuple[str, str | None, int], str]:
    """Read the id and number columns of every file once; feed the number evidence; return the rows
    whose externalId appears again later in the run (-> where the later row is), when asked.

    Ids are kept as 128-bit digests in numpy arrays (32 bytes a row with where it is, not a dict of
    strings), sorted once at the end: the last row of an id wins.

    Reading only some columns cannot tell where a sheet's data ends (a report footer, a totals row
    and what is below it, the mapping's ``stop_at``). So when a file has repeated ids, it is read
    once more in full and the rows that are not records are left out: they never supersede one.
    """
    parts: list[Any] = []  # per chunk: (n, 4) int arrays of digest hi, digest lo, row, job
    sources: list[tuple[str, str | None]] = []
    seen = 0
    for j, (src, bound) in enumerate(plan.jobs):
        only = None if plan.only_rows is None else plan.only_rows.get((str(src.path), src.sheet), frozenset())
        sources.append((str(src.path), src.sheet))
        numbers_of = evidence[j]
        if not supersede and not numbers_of.settling:
            continue
        columns = (mapping.id_columns(bound) if supersede else []) + numbers_of.columns
        for chunk in src.chunks(columns=list(dict.fromkeys(columns))):
            if limit is not None:
                if seen >= limit:
                    break
                if seen + len(chunk) > limit:
                    chunk = chunk.take(list(range(limit - seen)))
                seen += len(chunk)
            if numbers_of.settling:
                numbers_of.add(chunk)
            elif not supersede:
                break  # every number column is settled, and no id needs reading
            if not supersede:
                continue
            ids, numbers = mapping.external_ids(bound, chunk), chunk.row_numbers
            if only is not None or None in ids:
                kept = [
                    k
                    for k, (n, e) in enumerate(zip(numbers, ids, strict=True))
                    if e is not None and (only is None or n in only)
                ]
                ids, numbers = [ids[k] for k in kept], [numbers[k] for k in kept]
            if ids:
                part = np.empty((len(ids), 4), dtype=np.uint64)
                part[:, :2] = mapping.id_digests(ids)
                part[:, 2] = numbers
                part[:, 3] = j
                parts.append(part)
    if not parts:
        return {}
    table = np.concatenate(parts)
    del parts
    out = _later_rows(table, sources)
    involved = {sources.index(w[:2]) for w in out.values()}  # files whose ids repeat: read in full
    footers = {j: {n for chunk in plan.jobs[j][0].chunks() for n, _ in chunk.skipped} for j in involved}
    footers = {j: rows for j, rows in footers.items() if rows}
    if not footers:
        return {place: _where(place, winner) for place, winner in out.items()}
    drop = np.zeros(len(table), dtype=bool)
    for j, rows in footers.items():
        drop |= (table[:, 3] == j) & np.isin(table[:, 2], np.fromiter(rows, dtype=np.uint64))
    out = _later_rows(table[~drop], sources)
    return {place: _where(place, winner) for place, winner in out.items()}


def _later_rows(
    table: Any, sources: list[tuple[str, str | None]]
) -> dict[tuple[str, str | None, int], tuple[str, str | None, int]]:
    """Each row whose id comes again later -> the last row with that id (the one that is sent)."""
    keys, rows, jobs = table[:, :2], table[:, 2], table[:, 3]

    def places(i: int) -> tuple[str, str | None, int]:
        return (*sources[int(jobs[i])], int(rows[i]))

    if len(rows) < 2:
        return {}
    order = np.lexsort((np.arange(len(keys)), keys[:, 1], keys[:, 0]))
    ranked = keys[order]
    same_as_next = (ranked[:-1] == ranked[1:]).all(axis=1)
    if not same_as_next.any():
        return {}
    out: dict[tuple[str, str | None, int], tuple[str, str | None, int]] = {}
    winner = int(order[-1])
    for pos in range(len(order) - 2, -1, -1):  # walk back: each run of one id ends with its winner
        if same_as_next[pos]:
            out[places(int(order[pos]))] = places(winner)
        else:
            winner = int(order[pos])
    return out


def _where(row: tuple[str, str | None, int], winner: tuple[str, str | None, int]) -> str:
    return (
        f"row {winner[2]}"
        + (f" of {winner[0]}" if winner[0] != row[0] else "")
        + (f" [{winner[1]}]" if winner[1] and winner[1] != row[1] else "")
    )


def _records(plan: Plan, limit: int | None) -> Iterator[MappedRecord]:
    rows = _rows(plan, limit)
    if plan.spec.group_by:
        return group_records(rows, list(plan.spec.group_by), plan.spec.conflicts)
    return rows


def _rows(plan: Plan, limit: int | None) -> Iterator[MappedRecord]:
    n = 0
    for src, bound in plan.jobs:
        only = None if plan.only_rows is None else plan.only_rows.get((str(src.path), src.sheet), frozenset())
        for chunk in src.chunks():
            recs: list[MappedRecord] = mapping.apply(bound, chunk) if len(chunk) else []
            recs += [_Skipped(chunk.file, chunk.sheet, num, "footer", why) for num, why in chunk.skipped]
            for rec in recs:
                if only is not None and rec.row_number not in only:
                    continue
                if limit is not None and n >= limit:
                    return
                n += 1
                yield rec


_UNCHANGED_NOTE = "same payload as the last sync; not sent"


def _warnings(
    mc: mapping.MappedChunk,
    cc: payload.CheckedChunk,
    rows: list[int],
    memo: dict[tuple[int, Any], str | None],
) -> list[str | None]:
    """The warning of each valid row. Matching depends only on the row's shape and activityType, so
    it is worked out once per pair; endTime before startTime is compared row by row (as text when
    both are UTC date-times written by `datetime:`, whose text order is their time order)."""
    kinds = mc.column("engagementType.activityType")
    shape = cc.shape
    contiguous = rows[-1] - rows[0] + 1 == len(rows)
    take = (lambda col: col[rows[0] : rows[-1] + 1]) if contiguous else (lambda col: [col[i] for i in rows])
    keys = list(zip(take(shape), take(kinds) if kinds is not None else [None] * len(rows), strict=True))
    for key in set(keys):
        if key not in memo:
            memo[key] = matching_warning(mc.record(rows[keys.index(key)]).values)
    out = [memo[k] for k in keys]
    starts, ends = mc.column("startTime"), mc.column("endTime")
    if starts is None or ends is None:
        return out
    as_text = all(
        f.spec.datetime is not None and f.spec.default is None and not f.kind.local_time
        for f in mc.bound.spec.fields
        if f.target in ("startTime", "endTime")
    )
    pairs = zip(take(starts), take(ends), strict=True)
    maybe = (
        [k for k, (a, b) in enumerate(pairs) if type(a) is str and type(b) is str and b < a]
        if as_text
        else [k for k, (a, b) in enumerate(pairs) if type(a) is str and type(b) is str]
    )
    for k in maybe:
        order = end_before_start(starts[rows[k]], ends[rows[k]])
        if order is not None:
            known = out[k]
            out[k] = order if known is None else order + WARNING_SEPARATOR + known
    return out


MATCHABLE_TYPES = frozenset({"MEETING", "EVENT", "APPOINTMENT"})


def matching_warning(values: dict[str, Any]) -> str | None:
    """For a valid row: what SIRO needs to match recordings to it, if missing (a warning, not an
    error: the API accepts the record)."""
    missing = []
    if not values.get("startTime") or not values.get("endTime"):
        missing.append("no startTime/endTime")
    if not values.get("engagementUsers"):
        missing.append("no engagement user")
    kind = (values.get("engagementType") or {}).get("activityType")
    if kind not in MATCHABLE_TYPES:
        missing.append(f"activityType is {kind or 'not set'}, not MEETING/EVENT/APPOINTMENT")
    if not missing:
        return None
    return "matching-warning: SIRO cannot match recordings to it: " + "; ".join(missing)


def end_before_start(start: Any, end: Any) -> str | None:
    """``end-before-start`` when both are instants and the end comes first (the row stays valid:
    SIRO accepts it, but it is probably a typo)."""
    if type(start) is not str or type(end) is not str:
        return None
    try:
        a, b = dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)
        if b >= a:
            return None
    except (ValueError, TypeError):  # not instants, or one has a zone and the other none
        return None
    return f"end-before-start: endTime {end} is before startTime {start}"


def row_warning(values: dict[str, Any]) -> str | None:
    """Every warning of a valid row, joined."""
    found = [
        w
        for w in (end_before_start(values.get("startTime"), values.get("endTime")), matching_warning(values))
        if w is not None
    ]
    return WARNING_SEPARATOR.join(found) if found else None


def too_large(size: int, limit: int) -> RowError | None:
    """A record whose JSON alone is larger than a request body may be: never sendable."""
    if size + 2 <= limit:  # a batch of one adds its brackets
        return None
    return RowError(
        "too-large",
        f"the record is {size:,} bytes as JSON, more than the {limit:,} a request may carry "
        "(--max-body-bytes); shorten its longest cells",
    )


def _file_size(src: Source) -> int:
    try:
        return src.path.stat().st_size
    except OSError:
        return 1 << 40


def _may_be_large(bound: mapping.BoundMapping, raw: dict[str, list[str]], frame: Any, limit: int) -> bool:
    """Could a row of the chunk be larger than ``limit`` as JSON? A bound from the longest cell of
    each column a text field reads (JSON escaping at most multiplies a text by 6), a generous fixed
    size for the others (numbers, date-times, enum values), and the keys; so that a dry run encodes
    bodies only for a chunk that might hold a huge record."""
    total = 2
    longest: dict[str, int] = {}
    for f in bound.spec.fields:
        spec = f.spec
        total += 64 + len(f.target)  # its key, quotes and punctuation
        if f.kind.kind != "string" or spec.datetime is not None:
            total += 64  # a number, boolean, enum value or date-time
            continue
        extra = [spec.value, spec.default, *(spec.map.values() if spec.map else ())]
        total += 6 * max((len(str(v)) for v in extra if v is not None), default=0) + len(spec.template or "")
        for c in [spec.column] if spec.column else spec.template_columns:
            header = bound.columns[c]
            if header not in longest:
                cells = raw.get(header)
                longest[header] = max(map(len, frame[header].tolist() if cells is None else cells), default=0)
            total += 6 * longest[header]
        if total > limit:
            return True
    return False


def _invalid(rec: MappedRecord, errors: list[RowError]) -> RowResult | list[RowResult]:
    columns = "; ".join(dict.fromkeys(e.column for e in errors if e.column)) or None
    return _result(
        rec, INVALID, error_type=errors[0].slug, column=columns, message="; ".join(e.message for e in errors)
    )


@contextlib.contextmanager
def _signals(handler: Callable[[str], None], *, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handler, sig.name)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
