"""Map stage, columns: a chunk a column at a time (the fast engine): each distinct cell converted once,
date-times parsed by pandas with a memo bounded by bytes; the same values as convert.py, cell by
cell.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..errors import RowError
from . import clock
from .convert import convert_cell
from .numbers import CellError, parse_number
from .spec import OMIT, Field_, zone_named


def convert_column(
    f: Field_,
    cells: list[str],
    header: str,
    zones: list[str] | None = None,
    seen: DatetimeMemo | None = None,
    typed: list[bool] | None = None,
) -> tuple[list[Any], bool]:
    """Convert one column: vectorised for datetimes, memoised per distinct value for the rest.
    Also says whether any value may be a RowError (False is a promise; True is a maybe).
    ``typed``: which cells were numbers in a workbook (read with a decimal point, always)."""
    spec = f.spec
    plain_text = spec.plain and f.kind.kind != "people"
    if spec.datetime is not None and spec.map is None and plain_text and zones is None:
        return _datetime_column(f, cells, header, seen if seen is not None else DatetimeMemo())
    text = spec.map is None and f.kind.kind == "string" and plain_text and spec.datetime is None
    if text and not f.kind.email and "\ufffd" not in "".join(cells):
        return _text_column(f, cells, header)
    if f.kind.kind == "number" and spec.map is None and plain_text and zones is None:
        return _number_column(f, cells, header, typed)
    # the rest: each distinct cell (with its zone) converted once
    if zones is not None:
        keys: list[Any] = list(zip(cells, zones, strict=True))
        done = {k: convert_cell(f, k[0], header, k[1]) for k in dict.fromkeys(keys)}
    else:
        keys = cells
        done = {c: convert_cell(f, c, header) for c in dict.fromkeys(cells)}
    return list(map(done.__getitem__, keys)), any(type(v) is RowError for v in done.values())


def _text_column(f: Field_, cells: list[str], header: str) -> tuple[list[Any], bool]:
    """A plain text field: each cell as it is, stripped."""
    spec = f.spec
    if spec.default is None and not spec.required and spec.blank == "omit":
        return [t if (t := c.strip()) else OMIT for c in cells], False
    # text as it is; an empty cell takes the scalar way (required, default, blank policy)
    return [t if (t := c.strip()) else convert_cell(f, c, header) for c in cells], spec.required


def _number_column(
    f: Field_, cells: list[str], header: str, typed: list[bool] | None
) -> tuple[list[Any], bool]:
    """A plain number field: each distinct cell parsed once (a workbook's numbers with a point)."""
    spec = f.spec
    if typed is not None and spec.decimal != "." and any(typed):
        point = dataclasses.replace(f, spec=spec.model_copy(update={"decimal": "."}))
        pairs = list(zip(cells, typed, strict=True))
        done2 = {k: _number_cell(point if k[1] else f, k[0], header) for k in dict.fromkeys(pairs)}
        return list(map(done2.__getitem__, pairs)), any(type(v) is RowError for v in done2.values())
    done = {c: _number_cell(f, c, header) for c in dict.fromkeys(cells)}
    return list(map(done.__getitem__, cells)), any(type(v) is RowError for v in done.values())


def _number_cell(f: Field_, cell: str, header: str) -> Any:
    """:func:`convert_cell` for a plain number field, without its general steps for a filled cell."""
    text = cell.strip()
    if text:
        try:
            return parse_number(text, f.spec.decimal, f.kind.bounds)
        except CellError:
            pass
    return convert_cell(f, cell, header)  # blank (default, required, blank policy), or the error


class DatetimeMemo:
    """The date-time texts of one field converted so far (across chunks, bounded by bytes), and
    which of them were errors.

    A memo earns its room: it starts small (``FLOOR_BYTES``) and may grow towards ``max_bytes`` by
    ``EARN_BYTES`` for each cell it answered from an earlier chunk. Exports repeat times a lot
    (meetings start on the hour) and such a memo soon has all its room; a column whose texts never
    repeat (a time stamp to the minute) gets no answers, and its memo stays at the floor instead of
    holding megabytes nobody asks for."""

    # what the remembered texts and values may take at most (~32,000 texts: a three-year migration's
    # quarter hours); past it the older half is forgotten
    MAX_BYTES = 8 * 1024 * 1024
    FLOOR_BYTES = 512 * 1024  # the room of a memo nothing was asked of yet (~2,000 texts)
    EARN_BYTES = 2 * 1024  # more room for each cell answered: a memo answering 1 cell in 8 grows
    ENTRY_BYTES = 240  # a dict slot, the value (a 20-character text) and the key's own overhead

    __slots__ = ("bad", "bytes", "hits", "max_bytes", "parts", "values")

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = self.MAX_BYTES if max_bytes is None else max_bytes
        self.values: dict[str, Any] = {}
        self.bad: set[str] = set()
        self.bytes = 0
        self.hits = 0  # cells answered from an earlier chunk's texts
        self.parts: Any = _UNSET  # the field's two-part reader (clock.py), once asked for

    @property
    def room(self) -> int:
        """The bytes the memo may take now: the floor, and what its answers earned, up to the most."""
        return min(self.max_bytes, self.FLOOR_BYTES + self.EARN_BYTES * self.hits)

    def remember(self, new: dict[str, Any], bad: set[str]) -> None:
        """Add ``new``; past its room the older half is forgotten first (insertion order). When
        ``new`` alone is more than the room, only its last texts are remembered."""
        values, room = self.values, self.room
        size = sum(map(len, new)) + self.ENTRY_BYTES * len(new)
        if size > room:
            values.clear()
            self.bad.clear()
            self.bytes = 0
            texts, size = list(new), 0
            first = len(texts)
            while first and size + len(texts[first - 1]) + self.ENTRY_BYTES <= room:
                first -= 1
                size += len(texts[first]) + self.ENTRY_BYTES
            new = {c: new[c] for c in texts[first:]}
            bad = {c for c in bad if c in new}
        while values and self.bytes + size > room:
            old = list(itertools.islice(values, max(1, len(values) // 2)))
            for c in old:
                del values[c]
            self.bad.difference_update(old)
            self.bytes -= sum(map(len, old)) + self.ENTRY_BYTES * len(old)
        values.update(new)
        self.bad |= bad
        self.bytes += size


_UNSET = object()


def _datetime_column(f: Field_, cells: list[str], header: str, seen: DatetimeMemo) -> tuple[list[Any], bool]:
    """Convert a column of date-times; texts seen before (in this chunk, or an earlier one) are not
    parsed again: exports repeat times a lot (meetings start on the hour). Also says whether any
    value is a RowError."""
    values = seen.values
    out = list(map(values.get, cells))  # one look-up a cell; None: not seen yet (or a null value)
    if None not in out:
        seen.hits += len(out)
        return out, bool(seen.bad) and not seen.bad.isdisjoint(cells)
    missing = [i for i, v in enumerate(out) if v is None]
    seen.hits += len(out) - len(missing)
    todo = [c for c in dict.fromkeys([cells[i] for i in missing]) if c not in values]
    new = dict(zip(todo, _parse_new(f, todo, header, seen), strict=True)) if todo else {}
    for i in missing:
        c = cells[i]
        out[i] = new[c] if c in new else values[c]
    bad = {c for c, v in new.items() if type(v) is RowError}
    seen.remember(new, bad)
    return out, bool(bad) or (bool(seen.bad) and not seen.bad.isdisjoint(cells))


def _parse_new(f: Field_, todo: list[str], header: str, seen: DatetimeMemo) -> list[Any]:
    """Texts not seen before: by their day and time parts where that is certain (clock.py), the
    rest with pandas, or the scalar way for a handful (pandas costs a few ms a call whatever the
    size)."""
    if seen.parts is _UNSET:
        seen.parts = clock.parts_for(f)
    got = clock.read_parts(seen.parts, todo) if seen.parts is not None else [None] * len(todo)
    rest = [c for c, v in zip(todo, got, strict=True) if v is None]
    if not rest:
        return got
    done = iter(
        parse_datetimes(f, rest, header) if len(rest) > 64 else [convert_cell(f, c, header) for c in rest]
    )
    return [next(done) if v is None else v for v in got]


def parse_datetimes(f: Field_, cells: list[str], header: str) -> list[Any]:
    """Parse a column of local date-times with pandas; any cell it cannot do goes the scalar way.

    The scalar :func:`_datetime` is the reference: it handles offsets, ISO variants and gives the
    error messages; a test checks that both ways agree.
    """
    spec = f.spec
    dts = spec.datetime
    assert dts is not None
    s = pd.Series(cells, dtype=object).str.strip()
    blank = (s == "").to_numpy()
    parsed = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    for fmt in dts.formats:
        todo = parsed.isna().to_numpy() & ~blank
        if not todo.any():
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed[todo] = pd.to_datetime(s[todo], format=fmt, errors="coerce").to_numpy()
    tz = zone_named(dts.timezone) if dts.timezone else None
    wall = parsed
    if tz is not None:
        try:
            policy = dts.ambiguous
            amb: Any = (
                np.ones(len(parsed), dtype=bool) if policy == "earlier"
                else np.zeros(len(parsed), dtype=bool) if policy == "later" else "NaT"
            )  # fmt: skip
            local = parsed.dt.tz_localize(tz, ambiguous=amb, nonexistent="NaT")
        except Exception:
            local = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
        ok = local.notna().to_numpy()
        if f.kind.local_time:
            text = np.datetime_as_string(wall.to_numpy(), unit="s")
        else:
            utc = local.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
            text = np.char.add(np.datetime_as_string(utc, unit="s"), "Z")
    else:
        ok = wall.notna().to_numpy()
        text = np.datetime_as_string(wall.to_numpy(), unit="s")
    out: list[Any] = []
    for i, c in enumerate(cells):
        if ok[i]:
            out.append(str(text[i]))
        else:  # blank, unparsed, or nonexistent local time: the scalar path knows what to say
            out.append(convert_cell(f, c, header))
    return out
