"""The re-importable error file: every row that did not sync, with its original cells, in the
input's format, so a person fixes the cells and drops the file back in.

* CSV input -> a CSV (UTF-8 with BOM, the input's delimiter); workbook input -> an .xlsx with one
  sheet per input sheet (same names).
* The columns are the input's (cleaned) headers, then ``bulk_sync_row``, ``bulk_sync_status``,
  ``bulk_sync_error``, ``bulk_sync_column``, ``bulk_sync_message``. The same mapping reads it back:
  it ignores columns it does not name. When the input's header was below title lines, as many
  lines precede it here, so a mapping's ``header_row`` still holds.
* The rows are re-read from the input after the run, unless the run kept their cells (up to
  KEEP_BYTES); the results of the rows to fix stay in memory up to Failures.MEMORY_ROWS, then go to
  a temporary SQLite file, so memory does not grow with the rows that failed.
* Nothing in it runs as a formula when it is opened in a spreadsheet: in a CSV error file a cell
  that starts like one (``=``, ``+``, ``-``, ``@``, tab, CR) gets a leading apostrophe (and one that
  starts with an apostrophe gets one more); reading a bulk_sync error file back takes one off, so
  the payload is exactly what was typed. In the .xlsx every cell is text (Excel's quote prefix).
* It holds the rows a person must fix (``invalid``, ``rejected``); rows that only need sending again
  (``not_sent``, ``failed``) are counted in the summary with the command that sends them.
* A CSV error file keeps the input's delimiter, and a tab-delimited input gets a ``.tsv`` (or the
  input's own ``.txt``/``.tsv``) name.
"""

from __future__ import annotations

import csv
import marshal
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .load import ERROR_FILE_MARKS, FORMULA_STARTS, Source, escape_cell
from .notes import as_text
from .report import COLUMNS, VALUES, RowResult, neutralise

ERROR_COLUMNS = [
    *ERROR_FILE_MARKS,
    "bulk_sync_error",
    "bulk_sync_column",
    "bulk_sync_message",
]
PREAMBLE = "bulk_sync error file: fix the cells, then drop this file again (the extra columns are ignored)"

KEEP_BYTES = 8 * 1024 * 1024  # the cells a run remembers for the error file; past that they are re-read
BLOB_BYTES = 33 + 100  # a kept row's bytes object, beside its cells, and its slot in the dicts
_FIELDS = ", ".join(f.name for f in fields(RowResult))  # a RowResult's, as SQL columns (Failures)
_MESSAGE, _WARNING = COLUMNS.index("message"), COLUMNS.index("warning")
_MAY_ESCAPE = re.compile("\x1f[" + re.escape(FORMULA_STARTS + "'") + "]")  # a cell escape_cell may change
_ESCAPE_FIRST = frozenset(FORMULA_STARTS + "'")


class FailedRows:
    """The rows of one input file (or sheet) that did not sync, by row number: a dict while they
    are few, else read from the run's :class:`Failures` database."""

    def __init__(
        self, rows: dict[int, RowResult] | None, db: sqlite3.Connection | None, key: tuple[str, str]
    ):
        self._rows, self._db, self._key = rows, db, key
        if rows is not None:
            self._count = len(rows)
        else:
            assert db is not None
            self._count = int(
                db.execute("SELECT COUNT(*) FROM f WHERE key_file=? AND key_sheet=?", key).fetchone()[0]
            )

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[RowResult]:
        """The results in row order."""
        if self._rows is not None:
            yield from (self._rows[n] for n in sorted(self._rows))
            return
        assert self._db is not None
        query = f"SELECT {_FIELDS} FROM f WHERE key_file=? AND key_sheet=? ORDER BY row_number"
        for values in self._db.execute(query, self._key):
            yield RowResult(*values)

    def numbers(self) -> Iterator[int]:
        """The row numbers, in no particular order."""
        if self._rows is not None:
            return iter(self._rows)
        assert self._db is not None
        query = "SELECT row_number FROM f WHERE key_file=? AND key_sheet=?"
        return (n for (n,) in self._db.execute(query, self._key))

    def between(self, first: int, last: int) -> dict[int, RowResult]:
        """The results of rows ``first`` to ``last`` (both included)."""
        if self._rows is not None:
            if last - first < len(self._rows):
                return {n: r for n in range(first, last + 1) if (r := self._rows.get(n)) is not None}
            return {n: r for n, r in self._rows.items() if first <= n <= last}
        assert self._db is not None
        query = f"SELECT {_FIELDS} FROM f WHERE key_file=? AND key_sheet=? AND row_number BETWEEN ? AND ?"
        return {v[2]: RowResult(*v) for v in self._db.execute(query, (*self._key, first, last))}


def _stored(result: RowResult) -> tuple[Any, ...]:
    """A result's values as the database keeps them: its message as text, no warning (the error
    file has no column for it)."""
    values = VALUES(result)
    if result.warning is None and (result.message is None or type(result.message) is str):
        return values  # (a row to fix: its message is its problem's text)
    out = list(values)
    out[_MESSAGE], out[_WARNING] = as_text(result.message) or None, None
    return tuple(out)


class Failures:
    """The rows a person must fix, for the error file, by input file and row number: in memory up to
    MEMORY_ROWS of them, then in a temporary SQLite file (deleted by :meth:`close`), so that a file
    whose every row is invalid takes no more memory than one whose every row is fine. A row added
    again replaces its earlier result."""

    MEMORY_ROWS = 20_000  # about 8 MB of results
    INSERT_ROWS = 64  # results written by one INSERT (14 values each: under SQLite's 999 variables)

    def __init__(self) -> None:
        self._mem: dict[tuple[str, str], dict[int, RowResult]] = {}
        self._count = 0
        self._db: sqlite3.Connection | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None  # deleted at exit, if not before
        self._pending: list[tuple[Any, ...]] = []

    def add(self, result: RowResult) -> None:
        if self._db is None:
            rows = self._mem.setdefault((result.source_file, result.sheet or ""), {})
            self._count += result.row_number not in rows
            rows[result.row_number] = result
            if self._count > self.MEMORY_ROWS:
                self._spill()
            return
        self._pending.append(_stored(result))
        if len(self._pending) >= 5000:
            self._flush()

    def __bool__(self) -> bool:
        return self._count > 0 or bool(self._pending)

    def get(self, key: tuple[str, str | None]) -> FailedRows | None:
        """The failed rows of ``key`` (file, sheet), or None when it has none."""
        file, sheet = key[0], key[1] or ""
        if self._db is None:
            rows = self._mem.get((file, sheet))
            return FailedRows(rows, None, (file, sheet)) if rows else None
        self._flush()
        got = FailedRows(None, self._db, (file, sheet))
        return got if len(got) else None

    def _spill(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="bulk_sync-failures-")  # as the id pass's parts
        self._db = sqlite3.connect(os.path.join(self._dir.name, "failures.sqlite3"), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(
            f"CREATE TABLE f (key_file, key_sheet, {_FIELDS}, PRIMARY KEY (key_file, key_sheet, row_number))"
        )
        for rows in self._mem.values():
            self._pending.extend(map(_stored, rows.values()))
        self._mem.clear()
        self._flush()

    def _flush(self) -> None:
        """Write the pending results, INSERT_ROWS to a statement: sqlite3 lets go of the GIL for
        each statement it steps, and beside the busy reader thread each step waited for it again
        (a statement a row took 8 s for 300,000 invalid rows, against 1.2 s alone)."""
        if self._db is None or not self._pending:
            return
        values = [(v[0], v[1] or "", *v) for v in self._pending]
        row = "(" + ", ".join("?" * len(values[0])) + ")"
        full = len(values) - len(values) % self.INSERT_ROWS
        if full:
            many = f"INSERT OR REPLACE INTO f VALUES {', '.join([row] * self.INSERT_ROWS)}"
            self._db.executemany(
                many,
                (
                    [x for v in values[k : k + self.INSERT_ROWS] for x in v]
                    for k in range(0, full, self.INSERT_ROWS)
                ),
            )
        if full < len(values):
            self._db.executemany(f"INSERT OR REPLACE INTO f VALUES {row}", values[full:])
        self._db.commit()
        self._pending.clear()

    def close(self) -> None:
        """Delete the temporary file (the results are gone afterwards)."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


def pack(cells: list[str]) -> bytes:
    """A row's cells as one object (marshal's: each text its length and its UTF-8, a few bytes
    more than its characters), where a list of texts takes 50 to 60 bytes a cell beside them."""
    return marshal.dumps(cells)


def unpack(blob: bytes) -> list[str]:
    """The cells :func:`pack` packed, exactly (a damaged file's undecodable bytes included)."""
    cells: list[str] = marshal.loads(blob)
    return cells


@dataclass
class Kept:
    """The cells of rows a run reported invalid, remembered as it read them (so that the error file
    need not read the whole file again), each row's :func:`pack`. Rows that failed later (at SIRO)
    are not here."""

    rows: dict[tuple[str, str | None], dict[int, bytes]] = field(default_factory=dict)
    bytes: int = 0  # about what the remembered cells take
    complete: bool = True  # False once KEEP_BYTES was reached (then nothing is remembered any more)


def write_error_files(
    sources: Sequence[Source], failures: Failures, report_path: Path, kept: Kept | None = None
) -> list[Path]:
    """Write one error file per input file that has rows which did not sync; return their paths."""
    by_file: dict[Path, list[Source]] = {}
    for src in sources:
        if failures.get((str(src.path), src.sheet)) is not None:
            by_file.setdefault(src.path, []).append(src)
    written = []
    for path, srcs in by_file.items():
        stem = report_path.stem + ("-errors" if len(by_file) == 1 else f"-errors-{path.stem}")
        if srcs[0].kind == "csv":
            out = report_path.with_name(stem + _text_suffix(srcs[0]))
            wanted = failures.get((str(path), None))
            assert wanted is not None
            _write_csv(out, srcs[0], wanted, kept)
        else:
            out = report_path.with_name(stem + ".xlsx")
            _write_xlsx(out, srcs, failures, kept)
        written.append(out)
    return written


def _text_suffix(src: Source) -> str:
    if src.delimiter != "\t":
        return ".csv"
    return src.path.suffix.lower() if src.path.suffix.lower() in (".tsv", ".txt") else ".tsv"


def _error_cells(r: RowResult, guard: Callable[[str], str] = neutralise) -> list[str]:
    return [str(r.row_number), r.status, r.error_type or "", guard(r.column or ""), guard(as_text(r.message))]


def _rows(src: Source, wanted: FailedRows, kept: Kept | None) -> Iterator[tuple[list[str], RowResult]]:
    """The wanted rows' cells: remembered by the run when it has them all, else re-read from the
    file (only those rows are turned into lists)."""
    have = kept.rows.get((str(src.path), src.sheet), {}) if kept is not None and kept.complete else {}
    if all(n in have for n in wanted.numbers()):
        for result in wanted:
            yield unpack(have[result.row_number]), result
        return
    found = 0
    for chunk in src.chunks():
        numbers = chunk.row_numbers
        if not numbers:
            continue
        these = wanted.between(min(numbers[0], numbers[-1]), max(numbers[0], numbers[-1]))
        hits = [(i, these[n]) for i, n in enumerate(numbers) if n in these]
        if not hits:
            continue
        cells = chunk.row_cells([i for i, _ in hits], src.headers)
        for row, (_, result) in zip(cells, hits, strict=True):
            yield [str(c) for c in row], result
        found += len(hits)
        if found == len(wanted):
            return


def _write_csv(out: Path, src: Source, wanted: FailedRows, kept: Kept | None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh, delimiter=src.delimiter)
        for i in range(src.header_row - 1):
            w.writerow([PREAMBLE if i == 0 else ""])
        w.writerow(src.headers + ERROR_COLUMNS)
        for cells, result in _rows(src, wanted, kept):
            if _MAY_ESCAPE.search("\x1f" + "\x1f".join(cells)):  # (most rows: no cell to look at)
                cells = [escape_cell(c) if c[:1] in _ESCAPE_FIRST else c for c in cells]
            w.writerow(cells + _error_cells(result))


def _write_xlsx(out: Path, srcs: Sequence[Source], failures: Failures, kept: Kept | None) -> None:
    import xlsxwriter

    out.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(out), {"constant_memory": True, "strings_to_formulas": False})
    try:
        bold = wb.add_format({"bold": True})
        quoted = wb.add_format({"quote_prefix": True})
        for src in srcs:
            wanted = failures.get((str(src.path), src.sheet))
            if wanted is None:
                continue
            ws = wb.add_worksheet(str(src.sheet)[:31])
            top = src.header_row - 1
            if top:
                ws.write_string(0, 0, PREAMBLE)
            for c, name in enumerate(src.headers + ERROR_COLUMNS):
                ws.write_string(top, c, name, bold)
            ws.freeze_panes(top + 1, 0)
            for r, (cells, result) in enumerate(_rows(src, wanted, kept), start=top + 1):
                for c, text in enumerate(cells + _error_cells(result, str)):
                    if text:
                        ws.write_string(r, c, text, quoted if text[0] in "=+-@\t\r" else None)
    finally:
        wb.close()
