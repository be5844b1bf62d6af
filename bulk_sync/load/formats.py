"""Load stage, formats: Excel number formats: which cells of a sheet carry a format that changes what
the person sees (``00000``, ``0.00``), read from the style table and the sheet XML.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import numfmt
from .held import open_bytes


class SheetFormats:
    """The cells of one .xlsx sheet whose number format changes how they read (``00000``,
    ``000-000-0000``, ``0.00``, ``0.0%``): per column, the rows (sorted) and each one's formatter.
    Read from the style table and one scan of the sheet's XML for the cells of those styles only."""

    def __init__(self, cols: dict[int, tuple[Any, Any]], formatters: list[numfmt.Formatter]) -> None:
        self.cols = cols  # column (0-based) -> (rows array, formatter index array)
        self.formatters = formatters

    def apply(self, texts: list[str], values: Sequence[Any], numbers: list[int], col: int) -> None:
        """Replace the text of number cells in ``col`` that carry a format, in place."""
        found = self.cols.get(col)
        if found is None:
            return
        rows, which = found
        at = np.searchsorted(rows, numbers)
        at[at >= len(rows)] = 0
        hit = rows[at] == np.asarray(numbers)
        number = np.fromiter(
            (type(v) is float or type(v) is int for v in values), dtype=bool, count=len(values)
        )
        hit &= number
        if not hit.any():
            return
        picks = np.flatnonzero(hit)
        kinds = which[at[picks]]
        cells = np.array([float(values[i]) for i in picks.tolist()], dtype=float)
        for k in np.unique(kinds).tolist():
            mine = kinds == k
            for i, shown in zip(
                picks[mine].tolist(), numfmt.many(self.formatters[k], cells[mine]), strict=True
            ):
                if shown is not None:
                    texts[i] = shown


# a cell's start tag with its reference and a wanted style (other attributes between): writers put
# the reference first (<c r="B12" s="5" t="n">); the other order is read too (<c s="5" r="B12">)
_ATTRS = rb'(?: [\w:.-]+="[^"]*")*? '


_CELL_TAGS = (
    rb'<%s r="(%s)(\d+)"' + _ATTRS + rb's="(%s)"',
    rb'<%s s="(%s)"' + _ATTRS + rb'r="(%s)(\d+)"',
)


def sheet_formats(p: Path, sheet: str, columns: Sequence[int] | None = None) -> SheetFormats | None:
    """The formatted number cells of ``sheet`` in the .xlsx ``p`` (None when its styles hold no
    format that changes how a number reads, or the parts cannot be found: the values are read as
    General then). ``columns`` (0-based): only these matter (the ones a mapping reads)."""
    from defusedxml import ElementTree

    if columns is not None and not columns:
        return None
    try:
        with open_bytes(p) as fh, zipfile.ZipFile(fh) as zf:
            names = set(zf.namelist())
            if "xl/styles.xml" not in names:
                return None
            styles = ElementTree.fromstring(zf.read("xl/styles.xml"))
            codes = dict(numfmt.BUILTIN)
            for nf in styles.iterfind("{*}numFmts/{*}numFmt"):
                codes[int(nf.get("numFmtId", "-1"))] = nf.get("formatCode", "")
            formatters: list[numfmt.Formatter] = []
            wanted: dict[int, int] = {}  # style index -> formatter index
            for k, xf in enumerate(styles.iterfind("{*}cellXfs/{*}xf")):
                fmt = numfmt.formatter(codes.get(int(xf.get("numFmtId", "0")), ""))
                if fmt is not None:
                    wanted[k] = len(formatters)
                    formatters.append(fmt)
            if not wanted:
                return None
            part = sheet_part(zf, names, sheet, ElementTree)
            if part is None:
                return None
            cols = _styled_cells(zf, part, wanted, columns)
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, SyntaxError):
        return None  # calamine reports a damaged workbook; here the values are simply not formatted
    return SheetFormats(cols, formatters) if cols else None


def sheet_part(zf: zipfile.ZipFile, names: set[str], sheet: str, et: Any) -> str | None:
    """The zip path of the worksheet named ``sheet`` (workbook.xml -> its relationship)."""
    book = et.fromstring(zf.read("xl/workbook.xml"))
    rid = next(
        (
            s.get("{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id")
            for s in book.iterfind("{*}sheets/{*}sheet")
            if s.get("name") == sheet
        ),
        None,
    )
    if rid is None or "xl/_rels/workbook.xml.rels" not in names:
        return None
    rels = et.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    target = next((r.get("Target", "") for r in rels.iterfind("{*}Relationship") if r.get("Id") == rid), "")
    path = target.lstrip("/") if target.startswith("/") else "xl/" + target
    return path if path in names else None


def _styled_cells(
    zf: zipfile.ZipFile, part: str, wanted: dict[int, int], columns: Sequence[int] | None = None
) -> dict[int, tuple[Any, Any]]:
    """Scan the sheet XML (streamed) for cells of the wanted styles: column -> (rows, formatter).
    One regex pass in C per block; the matches become numpy arrays, grouped by column at the end."""
    styles = "|".join(str(k) for k in wanted).encode()
    lookup = np.zeros(max(wanted) + 1, dtype=np.int32)
    for style, k in wanted.items():
        lookup[style] = k
    parts: list[tuple[Any, Any, Any]] = []  # per block: letters, rows, formatter index
    tag: re.Pattern[bytes] | None = None
    with zf.open(part) as fh:
        rest = b""
        while True:
            block = fh.read(1 << 23)
            buffer = rest + block
            cut = buffer.rfind(b"<") if block else len(buffer)  # every tag before the last is whole
            if tag is None:
                tag = _pick_tag(buffer, styles, columns)
            found = tag.findall(buffer, 0, max(cut, 0))
            if found:
                arr = np.array(found, dtype=bytes)
                if tag.pattern.startswith(rb"<(?:[\w.-]+:)?c s="):
                    arr = arr[:, [1, 2, 0]]
                parts.append((arr[:, 0], arr[:, 1].astype(np.int64), lookup[arr[:, 2].astype(np.int64)]))
            if not block:
                break
            rest = buffer[max(cut, 0) :]
    if not parts:
        return {}
    letters = np.concatenate([p[0] for p in parts])
    rows = np.concatenate([p[1] for p in parts])
    which = np.concatenate([p[2] for p in parts])
    out = {}
    names, inverse = np.unique(letters, return_inverse=True)
    for k, name in enumerate(names.tolist()):
        mask = inverse == k
        order = np.argsort(rows[mask], kind="stable")
        out[_column_index(name.decode())] = (rows[mask][order], which[mask][order])
    return out


def _pick_tag(sample: bytes, styles: bytes, columns: Sequence[int] | None) -> re.Pattern[bytes]:
    """The pattern for the attribute order this workbook's writer uses (reference first, unless
    the first cell with a style says otherwise), for the wanted columns' letters only."""
    first = re.search(rb'<((?:[\w.-]+:)?c) (r|s)="[^"]*"(?: [\w:.-]+="[^"]*")* (?:s|r)="', sample)
    name = re.escape(first.group(1)) if first is not None else b"c"  # c, or x:c (a literal: fast)
    letters = b"|".join(_column_letters(c).encode() for c in columns) if columns else rb"[A-Z]{1,3}"
    if first is not None and first.group(2) == b"s":
        return re.compile(_CELL_TAGS[1] % (name, styles, letters))
    return re.compile(_CELL_TAGS[0] % (name, letters, styles))


def _column_letters(index: int) -> str:
    """0 -> A, 27 -> AB."""
    out = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        out = chr(65 + rest) + out
    return out


def _column_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1
