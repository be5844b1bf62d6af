"""Load stage, sheetrows: a workbook's rows (cell values, from calamine or openpyxl) -> chunks of
text, a column at a time; blank rows dropped, merged areas filled, number formats shown.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import RowError
from .cells import TEXT, cell_text, datetime_text, flag_nul, other_text
from .model import Chunk, Source


def row_chunks(
    src: Source,
    numbered: Iterator[tuple[int, Sequence[Any]]],
    fills: dict[tuple[int, int], tuple[int, int]] | None = None,
    first_col: int = 0,
    keep: list[int] | None = None,
    text: frozenset[str] | None = None,
) -> Iterator[Chunk]:
    """Workbook rows (cell values) -> chunks of text. Blank rows are dropped as they come; cells
    become text a column at a time (a column's cells mostly share a type: ~2x faster than by row).
    ``keep``: only these columns (their positions among the headers); a row is blank when they are."""
    width = len(src.headers)
    pick = None if keep is None else _picker(keep)
    numbers: list[int] = []
    rows: list[Sequence[Any]] = []
    kept: dict[tuple[int, int], str] = {}
    anchors = set(fills.values()) if fills else set()
    for number, values in numbered:
        if anchors:
            _keep_anchors(kept, anchors, number, values, first_col)
        if number <= src.header_row:
            continue
        if len(values) != width:
            values = [*values[:width], *[""] * (width - len(values))]
        if fills:
            values = list(values)
            r = number - 1
            for c in range(width):
                anchor = fills.get((r, c + first_col))
                if anchor is not None:
                    values[c] = kept.get(anchor, "")
        if pick is not None:
            values = pick(values)
        lead = values[0] if values else ""
        maybe_blank = type(lead) is str and not lead.strip()  # most rows have a first cell: not blank
        if maybe_blank and all(type(v) is str for v in values) and not "".join(values).strip():
            continue  # a blank row
        numbers.append(number)
        rows.append(values)
        if len(rows) >= src.chunk_rows:
            yield text_chunk(src, rows, numbers, first_col, keep, text)
            numbers, rows = [], []
    if rows:
        yield text_chunk(src, rows, numbers, first_col, keep, text)


def _picker(keep: list[int]) -> Callable[[Sequence[Any]], Sequence[Any]]:
    if len(keep) == 1:
        one = keep[0]
        return lambda values: (values[one],)
    return operator.itemgetter(*keep)


def text_chunk(
    src: Source,
    rows: list[Sequence[Any]],
    numbers: list[int],
    first_col: int = 0,
    keep: list[int] | None = None,
    wanted: frozenset[str] | None = None,
) -> Chunk:
    """``wanted``: the columns to make text; the others (unless a number format shows their cells)
    stay cell values, ``Chunk.raw``, made text only for the rows whose cells are asked for."""
    text, other = TEXT.get, other_text
    columns: dict[str, list[Any]] = {}
    typed: dict[str, list[bool]] = {}
    raw: list[str] = []
    at = range(len(src.headers)) if keep is None else keep  # each column's place in the sheet
    headers = src.headers if keep is None else [src.headers[i] for i in keep]
    formatted = src.formats.cols if src.formats is not None else {}
    for c, header, cells in zip(at, headers, zip(*rows, strict=True), strict=True):
        if wanted is not None and header not in wanted and c + first_col not in formatted:
            columns[header] = list(cells)
            raw.append(header)
            continue
        kinds = set(map(type, cells))
        if kinds == {str}:
            columns[header] = list(cells)
        elif kinds == {float}:  # a numbers column: whole numbers to text in one numpy pass
            columns[header] = _float_column(cells)
        elif kinds == {dt.datetime}:
            columns[header] = _datetime_column(cells)
        elif kinds == {dt.date}:
            columns[header] = list(map(dt.date.isoformat, cells))
        elif kinds == {int}:
            columns[header] = list(map(str, cells))
        else:
            columns[header] = [v if type(v) is str else text(type(v), other)(v) for v in cells]
        if float in kinds or int in kinds:  # number cells: their text has a decimal point, no grouping
            typed[header] = (
                [True] * len(cells)
                if kinds <= {float, int}
                else [type(v) is float or type(v) is int for v in cells]
            )
            if src.formats is not None:
                src.formats.apply(columns[header], cells, numbers, c + first_col)
    problems: dict[int, list[RowError]] = {}
    flag_nul(columns.items(), numbers, problems)
    if not raw:
        frame = pd.DataFrame(columns, dtype=str)
        return Chunk(str(src.path), src.sheet, numbers, frame, problems, typed=typed)
    frame = pd.DataFrame(columns, dtype=object)  # cell values stay what they are
    return Chunk(str(src.path), src.sheet, numbers, frame, problems, typed=typed, raw=frozenset(raw))


def _datetime_column(cells: Sequence[dt.datetime]) -> list[str]:
    """str() is isoformat(" ") in C, 19 characters; a time with a fraction goes the careful way."""
    out = list(map(str, cells))
    if max(map(len, out)) > 19:
        out = [t if len(t) == 19 else datetime_text(v) for t, v in zip(out, cells, strict=True)]
    return out


def _float_column(cells: Sequence[float]) -> list[str]:
    arr = np.fromiter(cells, dtype=float, count=len(cells))
    whole = (np.trunc(arr) == arr) & (np.abs(arr) < 1e15)
    if bool(whole.all()):
        out: list[str] = arr.astype(np.int64).astype(str).tolist()
        return out
    ints = iter(arr[whole].astype(np.int64).astype(str).tolist())
    return [next(ints) if w else f"{v:.15g}" for v, w in zip(cells, whole.tolist(), strict=True)]


def _keep_anchors(
    kept: dict[tuple[int, int], str],
    anchors: set[tuple[int, int]],
    number: int,
    values: Sequence[Any],
    first: int,
) -> None:
    r = number - 1
    for c, v in enumerate(values):
        if (r, c + first) in anchors:
            kept[(r, c + first)] = cell_text(v)
