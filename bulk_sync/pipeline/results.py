"""Pipeline, results: one RowResult per input row, emitted in input order however the answers come back
(Ordered), with the run's stop flag and the results of rows that are not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import BulkSyncError, RowError
from ..group import GroupRecord
from ..mapping import MappedRecord
from ..notes import UNCHANGED_NOTE, RowNote, RowWarnings, as_text
from ..payload import Payload
from ..report import (
    INVALID,
    NOT_SENT,
    SKIPPED,
    SUPERSEDED,
    UNCHANGED,
    ResultBlock,
    RowResult,
    Summary,
)
from ..state import StateStore

if TYPE_CHECKING:  # the HTTP stages are imported when a run sends (a dry run starts faster)
    from ..upload import Outcome


Emit = Callable[[RowResult | ResultBlock], None]


# bytes of results held for an earlier row (one in a partial batch, or in flight) before the reader
# waits; at half of it the partial batch is let go. By bytes kept, not by count or time: a busy
# machine holds results longer, not more of them, and a sparse rerun's batches stay full
BACKPRESSURE = 16 * 1024 * 1024
ROW_BYTES, BLOCK_ROW_BYTES = 200, 120  # a RowResult's size, beyond its texts; a block's, a row
NOTE_BYTES = 200  # a note or a row's warnings (objects, often shared between rows)


def held_bytes(r: RowResult | list[RowResult] | ResultBlock) -> int:
    """About the memory a result held in :class:`Ordered` keeps."""
    if isinstance(r, ResultBlock):
        return ROW_BYTES + BLOCK_ROW_BYTES * len(r)
    rows = r if isinstance(r, list) else (r,)
    return sum(ROW_BYTES + _bytes(one.message) + _bytes(one.warning) for one in rows)


def _bytes(value: str | RowNote | RowWarnings | None) -> int:
    return len(value) if type(value) is str else 0 if value is None else NOTE_BYTES


class Ordered:
    """Re-orders results into input order before they reach the callback; counts them.

    When the callback fails to write a result (``OSError``: a full disk), the results stop reaching
    it, the summary says where the report stops and why, and ``on_broken`` is told (once).
    """

    def __init__(self, emit: Emit, summary: Summary, on_broken: Callable[[OSError], None] = lambda e: None):
        self._emit = emit
        self._summary = summary
        self._next = 0
        self._pending: dict[int, RowResult | list[RowResult] | ResultBlock] = {}
        self.held = 0  # bytes that _pending keeps, about (held_bytes)
        self._drained = asyncio.Event()
        self._on_broken = on_broken
        self.last: tuple[str, str | None, int] | None = None  # the last row handed to the callback

    def put(self, seq: int, result: RowResult | list[RowResult] | ResultBlock) -> None:
        """The result of sequence number ``seq`` (a block covers ``len(block)`` numbers from it)."""
        if seq != self._next:  # held for an earlier row
            self._pending[seq] = result
            self.held += held_bytes(result)
            return
        self._next += self._send(result)
        while self._next in self._pending:
            r = self._pending.pop(self._next)
            self.held -= held_bytes(r)
            self._next += self._send(r)
        if self.held < BACKPRESSURE // 4:
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
        self.held = 0

    def put_last(self, result: RowResult) -> None:
        """A closing line after everything else (a hard stop says where the report ends); it
        names a row that was not read, so it is not counted as one."""
        if self._summary.report_incomplete is None:
            self._summary.report_incomplete = as_text(result.message) or None
        with contextlib.suppress(OSError):
            self._emit(result)

    @property
    def waiting(self) -> bool:
        """Results are held back by an earlier row (one in a partial batch, or in flight) to the
        point that the reader will be made to wait: the rows ahead of them must go now."""
        return self.held > BACKPRESSURE // 2

    async def backpressure(self, limit: int = BACKPRESSURE) -> None:
        """Keep the reader from racing ahead of a slow in-flight row (bounds memory)."""
        while self.held > limit:
            self._drained.clear()
            await self._drained.wait()


def result_of(rec: MappedRecord, status: str, **kw: object) -> RowResult | list[RowResult]:
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


def from_outcome(rec: MappedRecord, out: Outcome) -> RowResult | list[RowResult]:
    column = None
    if out.issues:  # a 422 names payload paths: find the spreadsheet columns behind them
        cols = [rec.sources[p] for p, _ in out.issues if p in rec.sources]
        column = "; ".join(dict.fromkeys(cols)) or None
    return result_of(
        rec,
        out.status,
        error_type=out.error_type,
        column=column,
        message=out.message,
        http_status=out.http_status,
        attempts=out.attempts,
        siro_id=out.siro_id,
    )


class Stop:
    """Why and how hard the run is stopping."""

    def __init__(self) -> None:
        self.reason: BulkSyncError | None = None
        self.hard = False

    def __bool__(self) -> bool:
        return self.reason is not None


def not_sent_result(rec: MappedRecord, stop: Stop) -> RowResult | list[RowResult]:
    return result_of(rec, NOT_SENT, error_type="aborted", message=f"not sent: {stop.reason}")


def in_flight_lost(rec: MappedRecord) -> RowResult | list[RowResult]:
    return result_of(
        rec,
        NOT_SENT,
        error_type="interrupted",
        message=(
            "the run was stopped while this record was in flight; SIRO may or may not have it: "
            "run again to be sure (re-sending is safe)"
        ),
    )


@dataclass(slots=True)
class Row:
    """A row with a result of its own (not part of a block)."""

    seq: int  # its place in the run's order
    rec: MappedRecord
    built: Payload | list[RowError] | None  # its payload, or its errors; None when not built
    digest: bytes = b""  # the payload's hash
    source: bytes | None = None  # the source row's fingerprint (None: not kept)
    unchanged: bool = False  # the payload is what SIRO acknowledged last time
    note: RowNote | None = None  # a dry run with a state file: what a run would do with it

    @property
    def predicted_unchanged(self) -> bool:
        """A dry run with a state file: a run would find it unchanged (not sent)."""
        return self.note is UNCHANGED_NOTE


def mark_unchanged(rows: list[Row], store: StateStore | None) -> list[Entry]:
    """Flag the rows whose payload is exactly what SIRO acknowledged last time (one query a slice)."""
    if store is None:
        return list(rows)
    known = store.hashes([r.built.external_id for r in rows if isinstance(r.built, Payload)])
    if not known:
        return list(rows)
    for r in rows:
        if isinstance(r.built, Payload) and known.get(r.built.external_id, (b"",))[0] == r.digest:
            r.unchanged = True
    return list(rows)


@dataclass(slots=True)
class Block:
    """Final results for a run of consecutive rows (valid in a dry run, unchanged since last sync)."""

    seq: int
    block: ResultBlock


@dataclass(slots=True)
class Done:
    """The final result of one row, settled where the row was mapped (a dry run's worker process)."""

    seq: int
    result: RowResult | list[RowResult]

    def __reduce__(self) -> tuple[type[Done], tuple[Any, ...]]:
        return (Done, (self.seq, self.result))  # (as RowResult: a worker sends thousands a chunk)


@dataclass(frozen=True, slots=True)
class Ahead:
    """Progress only: ``rows`` a dry run's worker has checked ahead of their results, which reach
    the report later, in input order (negative: those results are here now, counted as results)."""

    rows: int


Entry = Row | Block | Done | Ahead


def settled(row: Row, stop: Stop) -> RowResult | list[RowResult] | None:
    """The row's final result, when it needs no request and no payload handed on: skipped,
    superseded, invalid, not sent (stopping), or unchanged. None: a payload to send (or, in a dry
    run, a valid row)."""
    rec, built = row.rec, row.built
    if isinstance(rec, Skipped):
        return result_of(rec, SKIPPED, error_type=rec.rule, message=rec.reason)
    if rec.superseded is not None:  # a later row has this id
        return result_of(rec, SUPERSEDED, message=rec.superseded)
    if rec.skip is not None:
        return result_of(rec, SKIPPED, error_type="filter", message=rec.skip)
    if isinstance(built, list):  # found invalid: it stays invalid, stop or not
        return invalid_result(rec, built)
    if stop or built is None:
        return not_sent_result(rec, stop)
    if row.unchanged:
        return result_of(rec, UNCHANGED, message=UNCHANGED_NOTE)
    return None


class Skipped(MappedRecord):
    """A row that is not a record (a report footer): reported ``skipped`` with the rule's name."""

    __slots__ = ("reason", "rule")

    def __init__(self, file: str, sheet: str | None, row_number: int, rule: str, reason: str) -> None:
        super().__init__(file, sheet, row_number, None, {})
        self.rule, self.reason = rule, reason


def invalid_result(rec: MappedRecord, errors: list[RowError]) -> RowResult | list[RowResult]:
    columns = "; ".join(dict.fromkeys(e.column for e in errors if e.column)) or None
    return result_of(
        rec, INVALID, error_type=errors[0].slug, column=columns, message="; ".join(e.message for e in errors)
    )
