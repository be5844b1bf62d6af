"""The re-importable error file: every row that did not sync, with its original cells, in the
input's format, so a person fixes the cells and drops the file back in.

* CSV input -> a CSV (UTF-8 with BOM, the input's delimiter); workbook input -> an .xlsx with one
  sheet per input sheet (same names).
* The columns are the input's (cleaned) headers, then ``bulk_sync_row``, ``bulk_sync_status``,
  ``bulk_sync_error``, ``bulk_sync_column``, ``bulk_sync_message``. The same mapping reads it back:
  it ignores columns it does not name. When the input's header was below title lines, as many
  lines precede it here, so a mapping's ``header_row`` still holds.
* The rows are re-read from the input after the run (the run keeps only row numbers in memory).
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .load import ERROR_FILE_MARKS, Source, escape_cell
from .report import RowResult, neutralise

ERROR_COLUMNS = [
    *ERROR_FILE_MARKS,
    "bulk_sync_error",
    "bulk_sync_column",
    "bulk_sync_message",
]
PREAMBLE = "bulk_sync error file: fix the cells, then drop this file again (the extra columns are ignored)"

Failures = dict[tuple[str, str | None], dict[int, RowResult]]
KEEP_BYTES = 32 * 1024 * 1024  # the cells a run remembers for the error file; past that they are re-read


@dataclass
class Kept:
    """The cells of rows a run reported invalid, remembered as it read them (so that the error file
    need not read the whole file again). Rows that failed later (at SIRO) are not here."""

    rows: dict[tuple[str, str | None], dict[int, list[str]]] = field(default_factory=dict)
    bytes: int = 0  # about what the remembered cells take
    complete: bool = True  # False once KEEP_BYTES was reached (then nothing is remembered any more)


def write_error_files(
    sources: Sequence[Source], failures: Failures, report_path: Path, kept: Kept | None = None
) -> list[Path]:
    """Write one error file per input file that has rows which did not sync; return their paths."""
    by_file: dict[Path, list[Source]] = {}
    for src in sources:
        if failures.get((str(src.path), src.sheet)):
            by_file.setdefault(src.path, []).append(src)
    written = []
    for path, srcs in by_file.items():
        stem = report_path.stem + ("-errors" if len(by_file) == 1 else f"-errors-{path.stem}")
        if srcs[0].kind == "csv":
            out = report_path.with_name(stem + _text_suffix(srcs[0]))
            _write_csv(out, srcs[0], failures[(str(path), None)], kept)
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
    return [str(r.row_number), r.status, r.error_type or "", guard(r.column or ""), guard(r.message or "")]


def _rows(
    src: Source, wanted: dict[int, RowResult], kept: Kept | None
) -> Iterator[tuple[list[str], RowResult]]:
    """The wanted rows' cells: remembered by the run when it has them all, else re-read from the
    file (only those rows are turned into lists)."""
    have = kept.rows.get((str(src.path), src.sheet), {}) if kept is not None and kept.complete else {}
    if all(n in have for n in wanted):
        for n in sorted(wanted):
            yield have[n], wanted[n]
        return
    found = 0
    for chunk in src.chunks():
        hits = [(i, wanted[n]) for i, n in enumerate(chunk.row_numbers) if n in wanted]
        if not hits:
            continue
        cells = chunk.row_cells([i for i, _ in hits], src.headers)
        for row, (_, result) in zip(cells, hits, strict=True):
            yield [str(c) for c in row], result
        found += len(hits)
        if found == len(wanted):
            return


def _write_csv(out: Path, src: Source, wanted: dict[int, RowResult], kept: Kept | None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh, delimiter=src.delimiter)
        for i in range(src.header_row - 1):
            w.writerow([PREAMBLE if i == 0 else ""])
        w.writerow(src.headers + ERROR_COLUMNS)
        for cells, result in _rows(src, wanted, kept):
            w.writerow([escape_cell(c) for c in cells] + _error_cells(result))


def _write_xlsx(out: Path, srcs: Sequence[Source], failures: Failures, kept: Kept | None) -> None:
    import xlsxwriter

    out.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(out), {"constant_memory": True, "strings_to_formulas": False})
    try:
        bold = wb.add_format({"bold": True})
        quoted = wb.add_format({"quote_prefix": True})
        for src in srcs:
            wanted = failures.get((str(src.path), src.sheet))
            if not wanted:
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
