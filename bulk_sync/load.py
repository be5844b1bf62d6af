"""Load stage: spreadsheet files -> chunks of text rows that remember where they came from.

The only home of pandas and openpyxl. Every cell is delivered as text, exactly as the person
sees it (``02134`` stays ``02134``; an id never becomes ``1.0e+05``), and every row carries the
file, the sheet and the row number shown by Excel (header = row 1) or the CSV record number.
Files are streamed in chunks; memory does not grow with the file size.

Blank rows are skipped (they are not records); their numbers are simply absent.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import SourceError

DEFAULT_CHUNK_ROWS = 5_000

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One input row: where it is (as the user sees it) and its cells by header."""

    file: str
    sheet: str | None
    row_number: int
    cells: dict[str, str]


@dataclass(slots=True)
class Chunk:
    """Consecutive rows of one sheet; ``frame`` has one str column per header."""

    file: str
    sheet: str | None
    row_numbers: list[int]
    frame: pd.DataFrame

    def __len__(self) -> int:
        return len(self.row_numbers)

    def rows(self) -> Iterator[SourceRow]:
        headers = list(self.frame.columns)
        for number, values in zip(
            self.row_numbers, self.frame.itertuples(index=False, name=None), strict=True
        ):
            yield SourceRow(self.file, self.sheet, number, dict(zip(headers, values, strict=True)))


@dataclass
class Source:
    """An opened input file: its headers are known, its rows are read lazily by :meth:`chunks`."""

    path: Path
    kind: str  # "csv" | "xlsx"
    sheet: str | None
    headers: list[str]
    warnings: list[str] = field(default_factory=list)
    encoding: str = "utf-8-sig"
    chunk_rows: int = DEFAULT_CHUNK_ROWS

    @property
    def label(self) -> str:
        return str(self.path) if self.sheet is None else f"{self.path} [sheet {self.sheet!r}]"

    def chunks(self) -> Iterator[Chunk]:
        try:
            if self.kind == "csv":
                yield from _csv_chunks(self)
            else:
                yield from _xlsx_chunks(self)
        except SourceError:
            raise
        except UnicodeDecodeError as exc:
            raise SourceError(str(self.path), _decode_hint(exc, self.encoding)) from exc
        except (pd.errors.ParserError, csv.Error, ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
            raise SourceError(str(self.path), f"cannot be read: {_one_line(exc)}") from exc


def open_source(
    path: str | Path,
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Source:
    """Open ``path``, detect its format by content, read its header row. Raises SourceError."""
    p = Path(path)
    if not p.exists():
        raise SourceError(str(p), "file not found")
    if p.is_dir():
        raise SourceError(str(p), "is a folder, not a file")
    try:
        with p.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise SourceError(str(p), f"cannot be opened: {exc.strerror or exc}") from exc
    if not head:
        raise SourceError(str(p), "the file is empty (no header row)")
    if head.startswith(_OLE_MAGIC):
        raise SourceError(
            str(p),
            "is a password-protected workbook or a legacy .xls file; save it as .xlsx (without a "
            "password) or CSV UTF-8 and try again",
        )
    if head.startswith(_ZIP_MAGIC):
        return _open_xlsx(p, sheet, chunk_rows)
    if sheet is not None:
        raise SourceError(str(p), f"is a CSV/text file, which has no sheets (--sheet {sheet!r} given)")
    if p.suffix.lower() in {".xlsx", ".xlsm"}:
        raise SourceError(str(p), "is named like an Excel workbook but is not one (no .xlsx content)")
    return _open_csv(p, encoding or "utf-8-sig", chunk_rows)


# --------------------------------------------------------------------------- CSV


def _open_csv(p: Path, encoding: str, chunk_rows: int) -> Source:
    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise SourceError(str(p), f"unknown encoding {encoding!r}") from exc
    _check_decodable(p, encoding)
    try:
        with p.open("r", encoding=encoding, newline="") as fh:
            header = next(csv.reader(fh), None)
    except csv.Error as exc:
        raise SourceError(str(p), f"cannot read the header row: {exc}") from exc
    if header is None or not any(h.strip() for h in header):
        raise SourceError(str(p), "the file has no header row")
    if "\x00" in "".join(header):
        raise SourceError(str(p), "is not a text file (binary content); expected CSV or .xlsx")
    headers, warnings = clean_headers(header)
    return Source(p, "csv", None, headers, warnings, encoding, chunk_rows)


def _check_decodable(p: Path, encoding: str) -> None:
    """Decode the whole file once (fast, in C) so a bad byte stops the run before anything is sent."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    try:
        with p.open("rb") as fh:
            while block := fh.read(1 << 20):
                decoder.decode(block)
                offset += len(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise SourceError(str(p), _decode_hint(exc, encoding, offset)) from exc


def _csv_chunks(src: Source) -> Iterator[Chunk]:
    reader = pd.read_csv(
        src.path,
        dtype=str,
        header=0,
        names=src.headers,
        keep_default_na=False,
        na_filter=False,
        skip_blank_lines=False,
        encoding=src.encoding,
        chunksize=src.chunk_rows,
        engine="c",
        on_bad_lines="error",
    )
    with reader:
        for frame in reader:
            # record i (0-based, after the header) is row i + 2 in Excel
            yield _chunk(src, frame, [int(i) + 2 for i in frame.index])


# --------------------------------------------------------------------------- XLSX


def _open_xlsx(p: Path, sheet: str | None, chunk_rows: int) -> Source:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken archives
        raise SourceError(str(p), f"is not a readable .xlsx workbook: {_one_line(exc)}") from exc
    try:
        if sheet is None:
            ws = wb.worksheets[0]
        elif sheet in wb.sheetnames:
            ws = wb[sheet]
        else:
            raise SourceError(str(p), f"has no sheet {sheet!r}; its sheets are: {', '.join(wb.sheetnames)}")
        name = ws.title
        first = next(ws.iter_rows(min_row=1, max_row=1, values_only=True), None)
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(str(p), f"is not a readable .xlsx workbook: {_one_line(exc)}") from exc
    finally:
        wb.close()
    if first is None or not any(cell_text(v).strip() for v in first):
        raise SourceError(str(p), f"sheet {name!r} has no header row")
    headers, warnings = clean_headers([cell_text(v) for v in first])
    return Source(p, "xlsx", name, headers, warnings, chunk_rows=chunk_rows)


def _xlsx_chunks(src: Source) -> Iterator[Chunk]:
    import openpyxl

    wb = openpyxl.load_workbook(src.path, read_only=True, data_only=True)
    try:
        ws = wb[src.sheet]
        width = len(src.headers)
        numbers: list[int] = []
        rows: list[list[str]] = []
        for number, values in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2):
            texts = [cell_text(v) for v in values[:width]]
            texts.extend([""] * (width - len(texts)))
            numbers.append(number)
            rows.append(texts)
            if len(rows) >= src.chunk_rows:
                yield _chunk(src, pd.DataFrame(rows, columns=src.headers, dtype=str), numbers)
                numbers, rows = [], []
        if rows:
            yield _chunk(src, pd.DataFrame(rows, columns=src.headers, dtype=str), numbers)
    finally:
        wb.close()


def cell_text(value: Any) -> str:
    """An Excel cell value as the text a person sees: no ``.0`` on integers, ISO dates."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):  # openpyxl gives date cells as midnight datetimes
            return value.date().isoformat()
        return (
            value.isoformat(sep=" ", timespec="seconds")
            if value.microsecond == 0
            else value.isoformat(sep=" ")
        )
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------- shared


def _chunk(src: Source, frame: pd.DataFrame, numbers: list[int]) -> Chunk:
    """Drop blank rows (every cell empty or whitespace); keep the numbers of the others."""
    frame = frame.reset_index(drop=True)
    if len(frame.columns) and len(frame):
        blank = [not "".join(r).strip() for r in frame.to_numpy(dtype=object).tolist()]
        if any(blank):
            keep = [not b for b in blank]
            numbers = [n for n, k in zip(numbers, keep, strict=True) if k]
            frame = frame[keep].reset_index(drop=True)
    return Chunk(str(src.path), src.sheet, numbers, frame)


def clean_headers(raw: list[str]) -> tuple[list[str], list[str]]:
    """Trim header names; name blank ones ``column_N``; make duplicates unique (``Name (2)``)."""
    while raw and not str(raw[-1]).strip():
        raw = raw[:-1]  # trailing empty header cells are not columns
    headers: list[str] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for i, h in enumerate(raw, start=1):
        name = str(h).strip()
        if not name:
            name = f"column_{i}"
            warnings.append(f"header of column {i} is blank; it is called {name!r}")
        if name in seen:
            n = 2
            while f"{name} ({n})" in seen:
                n += 1
            warnings.append(f"header {name!r} appears more than once; column {i} is called '{name} ({n})'")
            name = f"{name} ({n})"
        seen.add(name)
        headers.append(name)
    return headers, warnings


def _decode_hint(exc: UnicodeDecodeError, encoding: str, offset: int = 0) -> str:
    return (
        f"is not valid {encoding.replace('-sig', '')} text (byte 0x{exc.object[exc.start]:02x} at offset "
        f"{offset + exc.start}); save it as 'CSV UTF-8' or pass --encoding (e.g. --encoding cp1252)"
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
