"""Load stage, headers: the header row: found below title lines by the columns the mapping expects;
names cleaned (trimmed, blank ones named, duplicates made unique).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SNIFF_ROWS = 50  # rows looked at to find the delimiter and the header row


HeaderRow = int | tuple[int, ...]  # a row, or the rows of a header over two (`header_rows: [7, 8]`)


def find_header(rows: Sequence[Sequence[str]], header_row: HeaderRow | None, expected: Sequence[str]) -> int:
    """Index (0-based) of the header (its first row, for a header over two) among the first rows.

    ``header_row`` (1-based) wins. Otherwise the row holding the most of the ``expected`` column
    names (first one on a tie); when no row holds any, the first row that fills at least two cells
    and at least 60% as many cells as the widest row (title lines fill one). -1: no header at all.
    """
    if isinstance(header_row, tuple):
        header_row = header_row[0]
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


# a merged area of a sheet: ((first row, first column), (last row, last column)), 0-based, columns
# counted from the sheet's first column
Merged = tuple[tuple[int, int], tuple[int, int]]


def fill_merged(rows: list[list[str]], merged: Sequence[Merged]) -> None:
    """Every cell a merged area covers, among ``rows`` (the first rows of a sheet, as text), takes
    the area's top-left text, in place: the header is filled like any merged cell."""
    for (r0, c0), (r1, c1) in merged:
        if r0 >= len(rows) or (r1 - r0 + 1) * (c1 - c0 + 1) > 100_000:
            continue  # below the rows looked at, or a whole-column merge (formatting, not data)
        text = rows[r0][c0] if c0 < len(rows[r0]) else ""
        for r in range(r0, min(r1, len(rows) - 1) + 1):
            row = rows[r]
            row += [""] * (c1 + 1 - len(row))
            for c in range(c0, c1 + 1):
                row[c] = text


def two_row_header(rows: Sequence[Sequence[str]], h: int, merged: Sequence[Merged]) -> bool:
    """Whether the header found at row ``h`` goes on over the next row, told by its merged cells:
    a name merged down over both rows, or a name merged across columns (`Start` over `Date | Time`)
    with a name under each of its columns and nothing under the names that are not merged."""
    if h + 1 >= len(rows):
        return False
    if any(r0 == h and r1 == h + 1 for (r0, _), (r1, _) in merged):
        return True
    across = [(c0, c1) for (r0, c0), (r1, c1) in merged if r0 == r1 == h and c1 > c0]
    if not across:
        return False
    top, below = [str(t) for t in rows[h]], [str(b) for b in rows[h + 1]]
    below += [""] * (len(top) - len(below))
    inside = {c for c0, c1 in across for c in range(c0, c1 + 1)}
    named_under = all(below[c].strip() and not _numberish(below[c]) for c in inside if c < len(below))
    alone_bare = all(not below[c].strip() for c, t in enumerate(top) if t.strip() and c not in inside)
    return named_under and alone_bare


def _numberish(text: str) -> bool:
    return bool(re.fullmatch(r"[\d\s.,:/+-]+", text.strip()))


def combine_rows(top: Sequence[str], bottom: Sequence[str]) -> list[str]:
    """One name per column from a header over two rows: `Start` over `Date` is `Start Date`; a name
    merged down (the same in both rows) or with nothing under it is itself; a blank top cell beside
    a named group (`Start,,End,` over `Date,Time,Date,Time` in a CSV) takes the group's name."""
    width = max(len(top), len(bottom))
    top = [*map(str, top), *[""] * (width - len(top))]
    bottom = [*map(str, bottom), *[""] * (width - len(bottom))]
    out, group = [], ""
    for t, b in zip(top, bottom, strict=True):
        t, b = t.strip(), b.strip()
        if t:
            group = t if b and b != t else ""
        elif b and group:
            t = group
        out.append(t if not b or t == b else (f"{t} {b}" if t else b))
    return out


def spans_warning(h: int, headers: Sequence[str], explicit: bool) -> list[str]:
    """What a person should know about a header over two rows: which rows, and its names."""
    how = "as the mapping says (header_rows)" if explicit else "its cells are merged"
    shown = ", ".join(repr(x) for x in headers[:8]) + (", ..." if len(headers) > 8 else "")
    return [
        f"the header spans rows {h + 1} and {h + 2} ({how}); its columns are read as {shown}"
        + ("" if explicit else f" (set `header_rows: [{h + 1}, {h + 2}]` in the mapping to say so)")
    ]


def read_header(
    rows: list[list[str]],
    header_row: HeaderRow | None,
    expected: Sequence[str],
    merged: Sequence[Merged] = (),
) -> tuple[int, int, list[str], list[str]] | None:
    """The header among the first ``rows`` (merged cells filled): (index of its first row, how
    many rows it spans, 1 or 2, the column names, warnings); None when the rows are empty.
    ``header_row`` as a pair of rows (`header_rows: [7, 8]`) says it spans two; otherwise its
    merged cells tell (see two_row_header)."""
    fill_merged(rows, merged)
    h = find_header(rows, header_row, expected)
    if h < 0:
        return None
    explicit = isinstance(header_row, tuple)
    two = h + 1 < len(rows) and (explicit or two_row_header(rows, h, merged))
    headers, warnings = clean_headers(combine_rows(rows[h], rows[h + 1]) if two else rows[h])
    if two:
        warnings = spans_warning(h, headers, explicit) + warnings
    return h, 2 if two else 1, headers, header_warning(h) + warnings
