"""Load stage, ods: the .ods cells whose text holds a tab or a line break inside a paragraph, which
calamine drops (``a<text:tab/>b`` reads ``ab``): read again from the sheet's XML, so a cell arrives
as the person sees it; a cell that cannot be matched to what calamine read is refused, not sent
changed.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import SourceError
from .held import open_bytes

_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_MARKS = re.compile(rb"<(?:[\w.-]+:)?(?:tab|line-break)\b")  # not <table:...>: "tab" then a letter
_CELLS = (f"{{{_TABLE}}}table-cell", f"{{{_TABLE}}}covered-table-cell")
MAX_REPEATED = 10_000  # a styled cell repeated over a whole sheet is formatting, not data

# (row, column), 0-based from A1 -> (the text calamine reads, the text the person sees)
Fixes = dict[tuple[int, int], tuple[str, str]]


def ods_fixes(p: Path, sheet: str) -> Fixes:
    """The cells of ``sheet`` whose tabs or line breaks calamine drops ({} for most files: the
    sheet XML is scanned for a tab or line break first, and parsed only when it has one)."""
    from defusedxml import ElementTree

    try:
        with open_bytes(p) as fh, zipfile.ZipFile(fh) as zf:
            if not _has_marks(zf):
                return {}
            root = ElementTree.fromstring(zf.read("content.xml"))
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, SyntaxError):
        return {}  # calamine read the file: what it read stands, and a damaged part says nothing here
    out: Fixes = {}
    for table in root.iter(f"{{{_TABLE}}}table"):
        if table.get(f"{{{_TABLE}}}name") == sheet:
            _table_fixes(table, out)
            break
    return out


def _has_marks(zf: zipfile.ZipFile) -> bool:
    with zf.open("content.xml") as fh:
        rest = b""
        while block := fh.read(1 << 22):
            if _MARKS.search(rest + block):
                return True
            rest = block[-32:]
    return False


def _table_fixes(table: Any, out: Fixes) -> None:
    r = 0
    for row in table.iter(f"{{{_TABLE}}}table-row"):
        rows = int(row.get(f"{{{_TABLE}}}number-rows-repeated", "1"))
        c = 0
        for cell in row:
            if cell.tag not in _CELLS:
                continue
            cols = int(cell.get(f"{{{_TABLE}}}number-columns-repeated", "1"))
            if rows * cols <= MAX_REPEATED and any(_is_mark(e) for e in cell.iter()):
                seen, true = _cell_text(cell, keep=False), _cell_text(cell, keep=True)
                for i in range(rows):
                    for j in range(cols):
                        out[(r + i, c + j)] = (seen, true)
            c += cols
        r += rows


def _is_mark(e: Any) -> bool:
    return e.tag in (f"{{{_TEXT}}}tab", f"{{{_TEXT}}}line-break")


def _cell_text(cell: Any, keep: bool) -> str:
    """A cell's paragraphs joined by line breaks; ``keep``: its tabs and line breaks too (else as
    calamine reads them: dropped)."""
    paras = [p for p in cell if p.tag in (f"{{{_TEXT}}}p", f"{{{_TEXT}}}h")]
    return "\n".join(_inline(p, keep) for p in paras)


def _inline(e: Any, keep: bool) -> str:
    out = [e.text or ""]
    for child in e:
        if child.tag == f"{{{_TEXT}}}tab":
            out.append("\t" if keep else "")
        elif child.tag == f"{{{_TEXT}}}line-break":
            out.append("\n" if keep else "")
        elif child.tag == f"{{{_TEXT}}}s":
            out.append(" " * int(child.get(f"{{{_TEXT}}}c", "1")))
        else:
            out.append(_inline(child, keep))
        out.append(child.tail or "")
    return "".join(out)


def patched(
    numbered: Iterator[tuple[int, Sequence[Any]]], fixes: Fixes, first_col: int, label: str
) -> Iterator[tuple[int, Sequence[Any]]]:
    """The rows with the cells calamine read without their tabs or line breaks given back; a cell
    whose value is not what calamine should have read is refused (its text is not sure)."""
    by_row: dict[int, list[tuple[int, str, str]]] = {}
    for (r, c), (seen, true) in fixes.items():
        by_row.setdefault(r, []).append((c, seen, true))
    for number, values in numbered:
        mine = by_row.get(number - 1)
        if mine:
            values = list(values)
            for c, seen, true in mine:
                at = c - first_col
                if not 0 <= at < len(values):
                    continue
                if values[at] != seen:
                    raise SourceError(
                        label,
                        f"the cell in row {number}, column {at + first_col + 1} holds tabs or line breaks "
                        "that could not be read exactly; save the file as .xlsx or CSV UTF-8",
                    )
                values[at] = true
        yield number, values
