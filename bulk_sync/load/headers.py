"""Load stage, headers: the header row: found below title lines by the columns the mapping expects;
names cleaned (trimmed, blank ones named, duplicates made unique).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SNIFF_ROWS = 50  # rows looked at to find the delimiter and the header row


def find_header(rows: Sequence[Sequence[str]], header_row: int | None, expected: Sequence[str]) -> int:
    """Index (0-based) of the header among the first rows of a sheet.

    ``header_row`` (1-based) wins. Otherwise the row holding the most of the ``expected`` column
    names (first one on a tie); when no row holds any, the first row that fills at least two cells
    and at least 60% as many cells as the widest row (title lines fill one). -1: no header at all.
    """
    if header_row is not None:
        return header_row - 1 if header_row <= len(rows) else -1
    filled = [sum(1 for c in r if str(c).strip()) for r in rows]
    if not any(filled):
        return -1
    if expected:
        want = {loose(c) for c in expected}
        hits = [len(want & {loose(str(c)) for c in r}) for r in rows]
        if max(hits) > 0:
            return hits.index(max(hits))
    widest = max(filled)
    if widest <= 1:
        return next(i for i, n in enumerate(filled) if n)
    need = max(2, -(-widest * 6 // 10))
    return next(i for i, n in enumerate(filled) if n >= need)


def loose(name: str) -> str:
    return " ".join(name.split()).casefold()


def header_warning(index: int) -> list[str]:
    if index <= 0:
        return []
    return [
        f"the header is on row {index + 1}; the {index} row(s) above it are not data "
        "(set header_row in the mapping to choose another row)"
    ]


def clean_headers(raw: Sequence[str]) -> tuple[list[str], list[str]]:
    """Trim header names; name blank ones ``column_N``; make duplicates unique (``Name (2)``)."""
    raw = list(raw)
    while raw and not str(raw[-1]).strip():
        raw = raw[:-1]  # trailing empty header cells are not columns
    headers: list[str] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for i, h in enumerate(raw, start=1):
        name = re.sub(r"\s+", " ", str(h)).strip()
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
