"""Load stage, open: opening an input: its format by content (magic bytes, never the name), then the
CSV or workbook opener; the mapping's id columns and ``stop_at`` attached to each Source.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import errno
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import SourceError
from .csv import open_csv
from .headers import loose
from .held import open_bytes, stat_of
from .model import DEFAULT_CHUNK_ROWS, Options, Source, StopAt, one_line
from .snapshot import Snapshot
from .workbook import open_workbook, open_zip, visible_sheets

_ZIP_MAGIC = b"PK\x03\x04"


_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def open_sources(
    path: str | Path,
    *,
    sheet: str | Sequence[str] | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    header_row: int | tuple[int, ...] | None = None,
    expected: Sequence[str] = (),
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    sheets: str | Sequence[str] | None = None,
    id_columns: Sequence[str] = (),
    stop_at: StopAt | None = None,
) -> list[Source]:
    """Open ``path``: detect its format by content, pick its sheets, find each header row.

    ``header_row``: a row, or the two rows of a header over two (``header_rows``).
    ``expected``: the columns the mapping reads, used to recognise the header row below title
    lines. ``sheets``: the mapping's choice of sheets (``sheet``, a flag, wins; a CSV ignores it).
    ``id_columns``: the columns of the externalId (a totals row has none); ``stop_at``: where the
    data ends. Raises SourceError (one line, naming the file) for anything that cannot be read.
    """
    sources = _open_sources(_path(path), sheet if sheet is not None else sheets, sheet is None, encoding,
                            delimiter, Options(header_row, tuple(expected), chunk_rows))  # fmt: skip
    for src in sources:
        src.id_columns = tuple(h for h in (_header_named(src.headers, c) for c in id_columns) if h)
        if stop_at is not None:
            header = _header_named(src.headers, stop_at.column)
            if header is None:
                raise SourceError(
                    src.label, f"`stop_at` names the column {stop_at.column!r}, which is not in the file"
                )
            src.stop_at = dataclasses.replace(stop_at, column=header)
    return sources


def _path(path: str | Path) -> Path:
    """``path`` as a Path; a Path as it is (one the load stage reads through an open file stays one)."""
    return path if isinstance(path, Path) else Path(path)


def _header_named(headers: Sequence[str], name: str) -> str | None:
    if name in headers:
        return name
    return next((h for h in headers if loose(h) == loose(name)), None)


def _open_sources(
    p: Path,
    sheet: str | Sequence[str] | None,
    from_mapping: bool,
    encoding: str | None,
    delimiter: str | None,
    opts: Options,
) -> list[Source]:
    try:
        st = stat_of(p)
    except OSError as exc:  # (as Path.exists() tells "not there": gone, a file on the way, a link loop)
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            raise SourceError(str(p), "file not found") from None
        raise SourceError(str(p), f"cannot be opened: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise SourceError(str(p), "is a folder, not a file")
    _refuse_special(p)
    try:
        with open_bytes(p) as fh:
            snap = Snapshot.of(fh.fileno())  # the file as the run reads it: no byte past this size
            head = fh.read(min(8, snap.size))
    except OSError as exc:
        raise SourceError(str(p), f"cannot be opened: {exc.strerror or exc}") from exc
    sources = _by_content(p, head, snap, sheet, from_mapping, encoding, delimiter, opts)
    for src in sources:
        src.snapshot = snap
    return sources


def _refuse_special(p: Path) -> None:
    """A device is refused at once (``/dev/zero`` never ends), and so is a pipe (reading it would
    wait for a writer; the CLI keeps a pipe's bytes in a temporary file first)."""
    try:
        mode = stat_of(p).st_mode
    except OSError:
        return  # said when it is opened
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise SourceError(
            str(p),
            "is a device, not a file: pass a file, or - to read standard input (bulk-sync run - < file)",
        )
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        raise SourceError(
            str(p), "is a pipe, not a file: the command line reads a pipe once; here pass a file"
        )


def _by_content(
    p: Path,
    head: bytes,
    snap: Snapshot,
    sheet: str | Sequence[str] | None,
    from_mapping: bool,
    encoding: str | None,
    delimiter: str | None,
    opts: Options,
) -> list[Source]:
    if not head:
        raise SourceError(str(p), "the file is empty (no header row)")
    if head.startswith(_ZIP_MAGIC):
        return open_zip(p, sheet, opts)
    if head.startswith(_OLE_MAGIC):
        return open_workbook(p, "xls", sheet, opts)
    markup = _web_page_or_xml(p) if p.suffix.lower() == ".xls" else None
    if markup:
        raise SourceError(str(p), f"is {markup} named .xls, not a workbook bulk_sync reads: open it in Excel "
                          "and save it as .xlsx or CSV")  # fmt: skip
    text_xls = p.suffix.lower() == ".xls" and _looks_like_text(p)
    if p.suffix.lower() in {".xlsx", ".xlsm", ".xls", ".ods"} and not text_xls:
        raise SourceError(str(p), f"is named like a workbook ({p.suffix}) but its content is not one")
    if isinstance(sheet, str) and not from_mapping and not any(ch in sheet for ch in "*?["):
        # a glob can cover CSV files too; a mapping's `sheets` is for its workbooks
        raise SourceError(str(p), f"is a CSV/text file, which has no sheets (--sheet {sheet!r} given)")
    try:
        src = open_csv(p, encoding, delimiter, opts, snap.size)
    except (csv.Error, ValueError, OSError) as exc:
        raise SourceError(str(p), f"cannot be read: {one_line(exc)}") from exc
    if text_xls:  # what older CRMs export as "Excel": text Excel opens; read as the CSV it is
        kind = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(src.delimiter or ",", "comma")
        src.warnings.insert(0, f"this .xls is text, read as {kind}-separated (it is not an Excel workbook)")
    return [src]


_MARKUP_START = re.compile(r"\s*(?:<!--.*?-->\s*)*<(!doctype html|html|head|body|table|meta|style)\b", re.S)


def _head_text(p: Path) -> str:
    """The first 4 KB of ``p`` as text, lowercased (by its BOM; else Latin-1, which keeps ASCII)."""
    with open_bytes(p) as fh:
        head = fh.read(4096)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = head.decode("utf-16", errors="ignore")
    else:
        text = head.removeprefix(codecs.BOM_UTF8).decode("latin-1")
    return text.lower()


def _web_page_or_xml(p: Path) -> str | None:
    """What a text file named .xls is when Excel reads it as markup: an HTML table (what many web
    apps export as "Excel"), a web archive, or an Excel 2003 XML spreadsheet (SpreadsheetML)."""
    text = _head_text(p)
    if _MARKUP_START.match(text):
        return 'an HTML page (a web table saved as "Excel")'
    if text.lstrip().startswith("mime-version:"):
        return "a web archive (MHTML)"
    if text.lstrip().startswith("<?xml"):
        if "urn:schemas-microsoft-com:office:spreadsheet" in text or "excel.sheet" in text:
            return "an Excel 2003 XML spreadsheet (SpreadsheetML)"
        return 'an HTML page (a web table saved as "Excel")' if "<html" in text else "an XML file"
    return None


def _looks_like_text(p: Path) -> bool:
    """A file named .xls that is text (UTF-16 with a BOM, or no NUL and few control bytes)."""
    with open_bytes(p) as fh:
        head = fh.read(4096)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    control = sum(1 for b in head if b < 32 and b not in b"\t\r\n")
    return b"\0" not in head and control <= max(8, len(head) // 100)


def sheet_names(path: str | Path) -> list[str]:
    """The names of a workbook's visible worksheets, in order, without reading their cells (for a
    page that shows one sheet at a time); a CSV or text file: none. Raises SourceError for a
    file that cannot be read."""
    p = _path(path)
    try:
        with open_bytes(p) as fh:
            head = fh.read(8)
    except OSError as exc:
        raise SourceError(str(p), f"cannot be opened: {exc.strerror or exc}") from exc
    if not head.startswith((_ZIP_MAGIC, _OLE_MAGIC)):
        return []
    return visible_sheets(p)


def open_source(path: str | Path, **kwargs: Any) -> Source:
    """:func:`open_sources` for exactly one sheet (the first visible one unless ``sheet`` says)."""
    sources = open_sources(path, **kwargs)
    if len(sources) != 1:
        raise SourceError(str(path), f"{len(sources)} sheets match; name one")
    return sources[0]
