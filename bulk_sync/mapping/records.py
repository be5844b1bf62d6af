"""Map stage, records: applying a bound mapping: a chunk -> MappedChunk (converted columns, errors per
row) and, where needed, MappedRecords (one row's payload dict).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..errors import RowError
from ..load import Chunk
from ..notes import RowWarnings, Superseded
from .binding import BoundMapping, fill_paths, skip_reasons, template_cells
from .columns import DatetimeMemo, convert_column
from .convert import end_after
from .spec import OMIT, Field_


class MappedRecord:
    """One input row after mapping: nested values, where each leaf came from, and problems.

    ``sources`` (payload path -> spreadsheet column) is worked out only when asked for: it is
    needed for error messages, not for the rows that are fine.
    """

    __slots__ = (
        "_tree",
        "errors",
        "external_id",
        "file",
        "group_cells",
        "row_number",
        "sheet",
        "skip",
        "superseded",
        "targets",
        "values",
        "warning",
    )

    def __init__(
        self,
        file: str,
        sheet: str | None,
        row_number: int,
        external_id: str | None,
        values: dict[str, Any],
        errors: list[RowError] | None = None,
        targets: dict[str, str] | None = None,
        tree: Any = None,
    ) -> None:
        self.file, self.sheet, self.row_number, self.external_id = file, sheet, row_number, external_id
        self.values = values
        self.errors = errors if errors is not None else []
        self.targets = targets if targets is not None else {}  # mapping target -> column (shared)
        self._tree = tree
        self.skip: str | None = None  # why this row is not a record (a `skip` rule), if it is not
        self.superseded: Superseded | None = None  # a later row with its externalId is sent instead
        self.group_cells: tuple[str, ...] | None = None  # the `group_by` cells, when grouping
        self.warning: RowWarnings | None = None  # what SIRO will make of it (once it is built valid)

    @property
    def sources(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self._tree is not None:
            plan, cols, i = self._tree
            plan.root.sources(cols, i, (), out)
        return out


class MappedChunk:
    """One chunk after mapping, kept as columns: every field's converted value for every row.

    Nothing is built per row here: :meth:`record` makes one row's :class:`MappedRecord` when a
    row needs it (to validate it one by one, to send it, to explain its errors); the payload stage
    checks the rest a column at a time. ``cols[k]`` is field ``k``'s column (``OMIT`` where nothing
    is sent, bad cells included); ``errors[k]`` is set when that column holds RowErrors.
    """

    __slots__ = (
        "_ids",
        "bound",
        "cols",
        "error_cols",
        "file",
        "keys",
        "like",
        "n",
        "problems",
        "raw",
        "row_numbers",
        "sheet",
        "skips",
    )

    def __init__(self, bound: BoundMapping, chunk: Chunk) -> None:
        chunk = bound.complete(chunk)
        frame = chunk.frame
        self.bound = bound
        self.file, self.sheet, self.row_numbers = chunk.file, chunk.sheet, chunk.row_numbers
        self.n = n = len(chunk)
        self.problems = chunk.problems
        self.cols: list[list[Any]] = []
        self.error_cols: list[list[Any]] = []
        self.raw: dict[str, list[str]] = {}  # header -> the column's cells as read (made once)
        self.like: dict[int, list[list[Any]]] = {}  # a row shape -> one row's values (light_record)
        self._ids: list[Any] | None = None  # the externalId column (failed_record), once asked
        for f in bound.spec.fields:
            values, maybe_errors = field_values(f, bound, chunk, self.raw)
            if maybe_errors and any(type(v) is RowError for v in values):
                self.error_cols.append(values)
                values = [OMIT if type(v) is RowError else v for v in values]
            self.cols.append(values)
        for k, f in enumerate(bound.spec.fields):  # a start plus a duration: once the start is known
            if f.spec.duration is not None:
                starts = next(
                    c
                    for g, c in zip(bound.spec.fields, self.cols, strict=True)
                    if g.target == f.spec.duration.from_
                )
                self.cols[k] = list(map(end_after, starts, self.cols[k]))
        self.skips = skip_reasons(bound, frame) if bound.spec.skip and n else None
        self.keys = (
            list(zip(*(frame[bound.columns[c]].tolist() for c in bound.spec.group_by), strict=True))
            if bound.spec.group_by
            else None
        )

    def column(self, target: str) -> list[Any] | None:
        """The converted column of the field that targets ``target`` (None if none does)."""
        for k, f in enumerate(self.bound.spec.fields):
            if f.target == target:
                return self.cols[k]
        return None

    def record(self, i: int, values: dict[str, Any] | None = None) -> MappedRecord:
        """Row ``i`` as a MappedRecord (its nested values built now unless given)."""
        plan = self.bound.plan
        if values is None:
            built = plan.root.build(self.cols, i)
            values = {} if built is OMIT else built
            if self.bound.spec.fills:
                fill_paths(values, self.bound.spec.fills)
        return self._record(i, values, self.cell_errors(i))

    def cell_errors(self, i: int) -> list[RowError]:
        """What is wrong with row ``i``'s cells (as read, and as converted): a row with any of these
        is invalid whatever its other values, so they are its errors."""
        errors = [c[i] for c in self.error_cols if type(c[i]) is RowError]
        number = self.row_numbers[i]
        if self.problems and number in self.problems:
            read = self.problems[number]
            if any(e.slug == "bad-encoding" for e in read):  # the loader named the bytes already
                errors = [e for e in errors if e.slug != "bad-encoding"]
            errors[:0] = read
        return errors

    def failed_record(self, i: int) -> MappedRecord | None:
        """Row ``i`` as a MappedRecord when a cell of it is wrong (None otherwise), without building
        its nested values: its errors are its cells', and only its externalId is needed (a file
        whose every row is invalid spent most of its time building values nobody read)."""
        errors = self.cell_errors(i)
        if not errors:
            return None
        if self._ids is None:
            self._ids = self.column("externalId") or []
        ext = self._ids[i] if self._ids else None
        return self._record(i, {"externalId": ext} if isinstance(ext, str) else {}, errors)

    def _record(self, i: int, values: dict[str, Any], errors: list[RowError]) -> MappedRecord:
        plan = self.bound.plan
        number = self.row_numbers[i]
        ext = values.get("externalId")
        rec = MappedRecord(
            self.file,
            self.sheet,
            number,
            ext if isinstance(ext, str) else None,
            values,
            errors,
            plan.targets,
            (plan, self.cols, i),
        )
        if self.skips is not None and self.skips[i] is not None:
            rec.skip = self.skips[i]
        if self.keys is not None:
            rec.group_cells = self.keys[i]
        return rec

    def light_record(self, i: int, external_id: str, shape: int | None = None) -> MappedRecord:
        """Row ``i`` of a valid payload, to be sent: where it is and its id, no nested values.

        Its ``sources`` are worked out from the chunk's columns when asked (SIRO refused a value).
        With ``shape`` (the row's shape in the chunk check: which fields it fills, and how) and a
        mapping that splits no cell into list entries, they are worked out from one row of that
        shape instead, kept once a shape: a row waiting to be sent then holds a few values, not
        the whole chunk's columns."""
        plan = self.bound.plan
        if shape is None or plan.splits:
            tree = (plan, self.cols, i)
        else:
            like = self.like.get(shape)
            if like is None:
                like = self.like[shape] = [[col[i]] for col in self.cols]
            tree = (plan, like, 0)
        return MappedRecord(
            self.file, self.sheet, self.row_numbers[i], external_id, {}, [], plan.targets, tree
        )

    def records(self) -> list[MappedRecord]:
        """Every row as a MappedRecord (the nested values of all rows built in one generated loop)."""
        rows = self.bound.plan.build_all(self.cols, self.n)
        if self.bound.spec.fills:
            for values in rows:
                fill_paths(values, self.bound.spec.fills)
        return [self.record(i, values) for i, values in enumerate(rows)]


def map_chunk(bound: BoundMapping, chunk: Chunk) -> MappedChunk:
    """Map every row of ``chunk``, a column at a time. Bad cells become RowErrors; never raises."""
    return MappedChunk(bound, chunk)


def apply(bound: BoundMapping, chunk: Chunk) -> list[MappedRecord]:
    """Map every row of ``chunk`` into records (see :class:`MappedChunk` for the columnar form)."""
    return MappedChunk(bound, chunk).records()


def share_memos(bound: BoundMapping, share: int) -> None:
    """Give the date-time memos of this process 1/``share`` of their bytes (a dry run's reader, whose
    worker process maps most chunks and holds the memos); before the first chunk is mapped."""
    bound.memos.share = max(1, share)


def field_values(
    f: Field_, bound: BoundMapping, chunk: Chunk, raw: dict[str, list[str]] | None = None
) -> tuple[list[Any], bool]:
    """One field's converted value for every row (from its column, its template, or its constant),
    and whether any of them may be a RowError. ``raw``: the columns taken out of the frame so far."""
    frame = chunk.frame
    typed = None
    if f.column is not None:
        header = bound.columns[f.column]
        if raw is None:
            cells = frame[header].tolist()
        else:
            cells = raw.get(header) or raw.setdefault(header, frame[header].tolist())
        typed = chunk.typed.get(header) if f.kind.kind == "number" else None
    elif f.spec.template is not None:
        header = ", ".join(bound.columns[c] for c in f.spec.template_columns)
        cells = template_cells(f.spec.template, bound.columns, frame)
    else:
        return [f.spec.value] * len(frame), False
    dts = f.spec.datetime
    zones = frame[bound.columns[dts.timezone_column]].tolist() if dts and dts.timezone_column else None
    memos = bound.memos.datetimes
    seen = memos.get(f.target)
    if seen is None:
        seen = memos[f.target] = DatetimeMemo(DatetimeMemo.MAX_BYTES // bound.memos.share)
    return convert_column(f, cells, header, zones, seen, typed)


def field_cells(f: Field_, bound: BoundMapping, frame: pd.DataFrame) -> list[str]:
    if f.column is not None:
        cells: list[str] = frame[bound.columns[f.column]].tolist()
        return cells
    assert f.spec.template is not None
    return template_cells(f.spec.template, bound.columns, frame)
