"""Load stage, workbook: workbooks (.xlsx/.xlsm, .xls, .ods): sheet selection, header row, reading with
python-calamine (openpyxl streams sheets too big to load), merged header cells, number formats
applied.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import SourceError
from .cells import cell_text
from .formats import sheet_formats, sheet_part
from .headers import SNIFF_ROWS, clean_headers, find_header, header_warning, loose, read_header
from .held import open_bytes
from .model import Chunk, Options, Source, one_line
from .ods import ods_fixes, patched
from .sheetrows import row_chunks

# an .xlsx sheet bigger than this (uncompressed XML) is streamed with openpyxl instead of being
# loaded whole by calamine: slower, but memory stays flat
STREAM_SHEET_BYTES = 400 * 1024 * 1024


MAX_UNPACKED_BYTES = 8 * 1024**3  # a workbook that unpacks to more than this is refused (zip bomb)


MAX_PACK_RATIO = 1000  # real spreadsheet XML compresses ~5-50x; bombs compress ~1000x and more


def open_zip(p: Path, sheet: str | Sequence[str] | None, opts: Options) -> list[Source]:
    try:
        with open_bytes(p) as fh, zipfile.ZipFile(fh) as zf:
            infos = zf.infolist()
            names = {i.filename for i in infos}
            mimetype = zf.read("mimetype")[:100] if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise SourceError(
            str(p), f"is not a readable workbook (damaged or truncated zip: {one_line(exc)})"
        ) from exc
    unpacked = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos) or 1
    if unpacked > MAX_UNPACKED_BYTES or (unpacked > 100 * 1024**2 and unpacked / packed > MAX_PACK_RATIO):
        raise SourceError(
            str(p),
            f"unpacks to {unpacked / 1024**2:,.0f} MB from {packed / 1024**2:,.1f} MB; refused as a zip bomb",
        )
    if "xl/workbook.xml" in names or "xl/workbook.bin" in names:
        if "xl/workbook.bin" in names:
            raise SourceError(str(p), "is an .xlsb (binary) workbook; save it as .xlsx or CSV UTF-8")
        big = {
            i.filename
            for i in infos
            if i.filename.startswith("xl/worksheets/") and i.file_size > STREAM_SHEET_BYTES
        }
        return open_workbook(p, "xlsx", sheet, opts, stream=bool(big))
    if mimetype.startswith(b"application/vnd.oasis.opendocument.spreadsheet"):
        return open_workbook(p, "ods", sheet, opts)
    raise SourceError(str(p), "is a zip archive but not a workbook (.xlsx/.xlsm/.ods)")


def open_workbook(
    p: Path, kind: str, sheet: str | Sequence[str] | None, opts: Options, stream: bool = False
) -> list[Source]:
    from python_calamine import CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum

    try:
        with open_bytes(p) as fh:  # by content: calamine's from_path goes by the file extension
            wb = CalamineWorkbook.from_filelike(fh)
    except Exception as exc:  # calamine raises its own types, and ValueError/OSError
        raise SourceError(str(p), _workbook_problem(p, kind, exc)) from exc
    try:
        metas = [m for m in wb.sheets_metadata if m.typ == SheetTypeEnum.WorkSheet]
        visible = [m.name for m in metas if m.visible == SheetVisibleEnum.Visible]
        chosen = select_sheets([m.name for m in metas], visible, sheet, str(p))
        sources = []
        for name in chosen:
            src: Source | None
            if stream and kind == "xlsx":
                src = _open_streamed_sheet(p, name, opts)
            else:
                src = _open_sheet(p, kind, wb, name, opts, explicit=len(chosen) == 1)
            if src is not None:
                sources.append(src)
        if sheet is None and len(visible) > 1 and sources:
            sources[0].warnings += _other_sheets_warning(p, kind, wb, sources[0], visible[1:], opts)
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(str(p), _workbook_problem(p, kind, exc)) from exc
    finally:
        wb.close()
    if not sources:
        raise SourceError(str(p), "none of the chosen sheets has a header row")
    return sources


def visible_sheets(p: Path) -> list[str]:
    """The workbook's visible worksheets' names, in order (its metadata only: no sheet is read)."""
    from python_calamine import CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum

    try:
        with open_bytes(p) as fh:
            wb = CalamineWorkbook.from_filelike(fh)
        try:
            metas = wb.sheets_metadata
            return [
                m.name
                for m in metas
                if m.typ == SheetTypeEnum.WorkSheet and m.visible == SheetVisibleEnum.Visible
            ]
        finally:
            wb.close()
    except Exception as exc:  # calamine raises its own types, and ValueError/OSError
        raise SourceError(str(p), _workbook_problem(p, "xlsx", exc)) from exc


PEEK_SHEET_BYTES = 32 * 1024 * 1024  # another sheet bigger than this is not loaded to compare headers


def _other_sheets_warning(
    p: Path, kind: str, wb: Any, first: Source, others: list[str], opts: Options
) -> list[str]:
    """Say so when other visible sheets have the same header as the one read (one sheet per rep or
    per month): reading only the first would leave their rows out without a word."""
    sizes = _sheet_sizes(p) if kind == "xlsx" else {}
    same, unchecked = [], []
    want = [loose(h) for h in first.headers]
    for name in others:
        if sizes.get(name, 0) > PEEK_SHEET_BYTES:
            unchecked.append(name)
            continue
        rows = []
        for values in wb.get_sheet_by_name(name).iter_rows():
            rows.append([cell_text(v) for v in values])
            if len(rows) >= SNIFF_ROWS:
                break
        h = find_header(rows, opts.header_row, opts.expected)
        if h >= 0 and [loose(x) for x in clean_headers(rows[h])[0]] == want:
            same.append(name)
    out = []
    if same:
        out.append(
            f"only sheet {first.sheet!r} was read, but sheet(s) {', '.join(map(repr, same))} have the same "
            "header and were not: to read every visible sheet pass --sheet '*' (or set `sheets: \"*\"` in "
            "the mapping); to read just this one, name it (--sheet or `sheets:`) and this warning goes"
        )
    if unchecked:
        out.append(
            f"only sheet {first.sheet!r} was read; the workbook has other large visible sheet(s) "
            f"{', '.join(map(repr, unchecked))}: name the sheets to read with --sheet or `sheets:`"
        )
    return out


def _sheet_sizes(p: Path) -> dict[str, int]:
    """Sheet name -> unpacked size of its XML (for an .xlsx); {} when it cannot be told."""
    from defusedxml import ElementTree

    try:
        with open_bytes(p) as fh, zipfile.ZipFile(fh) as zf:
            names = set(zf.namelist())
            sizes = {i.filename: i.file_size for i in zf.infolist()}
            book = ElementTree.fromstring(zf.read("xl/workbook.xml"))
            out = {}
            for s in book.iterfind("{*}sheets/{*}sheet"):
                part = sheet_part(zf, names, s.get("name", ""), ElementTree)
                if part is not None:
                    out[s.get("name", "")] = sizes.get(part, 0)
            return out
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, SyntaxError):
        return {}


def select_sheets(
    names: list[str], visible: list[str], wanted: str | Sequence[str] | None, label: str
) -> list[str]:
    """Sheets by exact name (hidden ones too), by 1-based position, by glob (``*`` = all), or a
    list of those (each must match); hidden sheets are left out of positions and globs. ``None``:
    the first visible sheet."""
    if not names:
        raise SourceError(label, "has no worksheets")
    if wanted is None:
        if not visible:
            raise SourceError(label, f"has only hidden sheets ({', '.join(names)}); name one with --sheet")
        return [visible[0]]
    if not isinstance(wanted, str):
        chosen: list[str] = []
        for one in wanted:
            chosen += [n for n in select_sheets(names, visible, one, label) if n not in chosen]
        return chosen
    if wanted in names:
        return [wanted]
    if wanted.isdigit() and 1 <= int(wanted) <= len(visible):
        return [visible[int(wanted) - 1]]
    if any(ch in wanted for ch in "*?["):
        matched = [n for n in visible if fnmatch.fnmatchcase(n.casefold(), wanted.casefold())]
        if matched:
            return matched
    hidden = [n for n in names if n not in visible]
    listing = ", ".join(repr(n) for n in visible) + (
        f" (hidden: {', '.join(repr(n) for n in hidden)})" if hidden else ""
    )
    raise SourceError(label, f"has no sheet {wanted!r}; its sheets are: {listing}")


def _read_columns(headers: Sequence[str], opts: Options, first_col: int) -> list[int] | None:
    """The sheet columns (0-based) of the headers the mapping reads; None: every column."""
    if not opts.expected:
        return None
    wanted = {loose(c) for c in opts.expected}
    return [first_col + i for i, h in enumerate(headers) if loose(h) in wanted]


def _open_sheet(p: Path, kind: str, wb: Any, name: str, opts: Options, explicit: bool) -> Source | None:
    sheet = wb.get_sheet_by_name(name)
    first_col = sheet.start[1] if sheet.start else 0
    fixes = ods_fixes(p, name) if kind == "ods" else {}
    rows: list[list[str]] = []
    for _, values in patched(enumerate(sheet.iter_rows(), start=1), fixes, first_col, str(p)):
        rows.append([cell_text(v) for v in values])
        if len(rows) >= SNIFF_ROWS:
            break
    merged = [((r0, c0 - first_col), (r1, c1 - first_col)) for (r0, c0), (r1, c1) in _merged_ranges(sheet)]
    found = read_header(rows, opts.header_row, opts.expected, merged)
    if found is None:
        if explicit:
            raise SourceError(str(p), f"sheet {name!r} has no header row (it is empty)")
        return None
    h, span, headers, warnings = found
    src = Source(
        p,
        kind,
        name,
        headers,
        warnings,
        header_row=h + span,
        header_span=span,
        chunk_rows=opts.chunk_rows,
        formats=sheet_formats(p, name, _read_columns(headers, opts, sheet.start[1]))
        if kind == "xlsx"
        else None,
    )
    src._loaded = sheet
    src.cell_fixes = fixes
    return src


def _workbook_problem(p: Path, kind: str, exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "PasswordError" or (kind == "xls" and _is_encrypted_ole(p)):
        return (
            "is password-protected (encrypted); remove the password in Excel (File > Info > Protect "
            "Workbook) or save it as CSV UTF-8, and try again"
        )
    what = {"xlsx": ".xlsx workbook", "xls": ".xls workbook", "ods": ".ods spreadsheet"}[kind]
    return f"is not a readable {what} (damaged, truncated or not really one): {one_line(exc)}"


def _is_encrypted_ole(p: Path) -> bool:
    """An encrypted .xlsx is an OLE2 container with an ``EncryptionInfo`` stream."""
    marker = "EncryptionInfo".encode("utf-16-le")
    with open_bytes(p) as fh:
        return marker in fh.read(4 * 1024 * 1024)


def calamine_chunks(
    src: Source, columns: list[str] | None = None, text: frozenset[str] | None = None
) -> Iterator[Chunk]:
    """The sheet's rows in chunks of text; ``columns``: only these are read (a quick pass);
    ``text``: only these become text now, the others are kept as cell values (``Chunk.raw``)."""
    # the sheet as calamine parsed it at open: every pass (the id pass, the run, the error file)
    # reads the same parse. It is alive while the source is, which costs no peak memory: a pass
    # that parsed it again would hold a copy of the same size
    sheet = src._loaded
    if sheet is None:
        from python_calamine import CalamineWorkbook

        with open_bytes(src.path) as fh:
            wb = CalamineWorkbook.from_filelike(fh)
        try:
            sheet = src._loaded = wb.get_sheet_by_name(str(src.sheet))
        finally:
            wb.close()
    fills = _merged_fills(sheet, src.header_row)
    keep = None if columns is None else [src.headers.index(c) for c in columns]
    numbered: Iterator[tuple[int, Sequence[Any]]] = enumerate(sheet.iter_rows(), start=1)
    if src.cell_fixes:  # .ods cells whose tabs and line breaks calamine drops
        numbered = patched(numbered, src.cell_fixes, sheet.start[1], src.label)
    yield from row_chunks(src, numbered, fills, sheet.start[1], keep, text)


def _merged_fills(sheet: Any, header_row: int) -> dict[tuple[int, int], tuple[int, int]]:
    """Cells covered by a merged area below the header -> the area's top-left cell (0-based)."""
    fills: dict[tuple[int, int], tuple[int, int]] = {}
    for (r0, c0), (r1, c1) in _merged_ranges(sheet):
        if (r1 - r0 + 1) * (c1 - c0 + 1) > 1_000_000:
            continue  # a whole-column merge is formatting, not data
        for r in range(max(r0, header_row), r1 + 1):  # rows below the header only
            for c in range(c0, c1 + 1):
                if (r, c) != (r0, c0):
                    fills[(r, c)] = (r0, c0)
    return fills


def _merged_ranges(sheet: Any) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The sheet's merged areas, 0-based and absolute (calamine knows them for .xlsx and .xls)."""
    return list(getattr(sheet, "merged_cell_ranges", None) or [])


def _open_streamed_sheet(p: Path, name: str, opts: Options) -> Source:
    rows: list[list[str]] = []
    for values in _openpyxl_rows(p, name, max_row=SNIFF_ROWS):
        rows.append([cell_text(v) for v in values])
    h = find_header(rows, opts.header_row, opts.expected)
    if h < 0:
        raise SourceError(str(p), f"sheet {name!r} has no header row (it is empty)")
    headers, warnings = clean_headers(rows[h])
    warnings.append("this sheet is very large: it is read row by row (slower, but memory stays flat)")
    return Source(
        p,
        "xlsx",
        name,
        headers,
        header_warning(h) + warnings,
        header_row=h + 1,
        chunk_rows=opts.chunk_rows,
        stream=True,
        formats=sheet_formats(p, name, _read_columns(headers, opts, 0)),
    )


def _openpyxl_rows(p: Path, name: str, max_row: int | None = None) -> Iterator[tuple[Any, ...]]:
    import openpyxl  # with defusedxml installed, openpyxl parses through it (no entity expansion)

    with open_bytes(p) as fh:
        wb = openpyxl.load_workbook(fh, read_only=True, data_only=True)
        try:
            for values in wb[name].iter_rows(min_row=1, max_row=max_row, values_only=True):
                # openpyxl gives date cells as midnight datetimes; a person sees a date
                yield tuple(
                    v.date() if type(v) is dt.datetime and v.time() == dt.time(0) else v for v in values
                )
        finally:
            wb.close()


def openpyxl_chunks(src: Source) -> Iterator[Chunk]:
    assert src.sheet is not None
    yield from row_chunks(src, enumerate(_openpyxl_rows(src.path, src.sheet), start=1))
