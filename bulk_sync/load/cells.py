"""Load stage, cells: one workbook cell -> the text the person sees (numbers without float noise, dates
and times in ISO form, durations as [h]:mm:ss); a NUL character in a cell, flagged on its row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from ..errors import RowError


def cell_text(value: Any) -> str:
    """A cell value as the text a person sees: no ``.0`` on integers, no float noise, ISO dates."""
    text: str = TEXT.get(type(value), other_text)(value)
    return text


def _float_text(value: float) -> str:
    if value.is_integer() and -1e15 < value < 1e15:
        return str(int(value))
    return f"{value:.15g}"  # Excel shows 15 significant digits: 0.1+0.2 is 0.3


def datetime_text(value: dt.datetime) -> str:
    if value.microsecond:
        value = _round_ms(value)
        if value.microsecond:
            return value.isoformat(" ", "milliseconds")
    return value.isoformat(" ", "seconds")


def _time_text(value: dt.time) -> str:
    return value.isoformat("milliseconds" if value.microsecond else "seconds")


def _duration_text(value: dt.timedelta) -> str:  # a duration cell: [h]:mm:ss
    total = round(value.total_seconds())
    sign, total = ("-", -total) if total < 0 else ("", total)
    return f"{sign}{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def other_text(value: Any) -> str:
    for kind, convert in TEXT.items():  # subclasses (pandas Timestamp, numpy floats, ...)
        if kind is not type(None) and isinstance(value, kind):
            text: str = convert(value)
            return text
    return str(value)


TEXT: dict[type, Any] = {
    str: str,
    float: _float_text,
    int: str,
    bool: lambda v: "TRUE" if v else "FALSE",
    type(None): lambda v: "",
    dt.datetime: datetime_text,
    dt.date: dt.date.isoformat,
    dt.time: _time_text,
    dt.timedelta: _duration_text,
}


def _round_ms(value: dt.datetime) -> dt.datetime:
    """Excel stores times as fractions of a day: 10:30 may come back as 10:29:59.999999."""
    us = value.microsecond
    if us % 1000 == 0:
        return value
    return value.replace(microsecond=0) + dt.timedelta(milliseconds=round(us / 1000))


NUL = "\x00"


def flag_nul(
    columns: Iterable[tuple[str, list[Any]]], numbers: list[int], problems: dict[int, list[RowError]]
) -> None:
    """A cell holding a NUL character (byte 0: never text a person typed; a CSV or a workbook cell
    may hold one): its row gets a ``bad-encoding`` problem naming the column, wherever the row is."""
    for name, cells in columns:
        texts = cells if all(type(c) is str for c in cells) else [c for c in cells if type(c) is str]
        if NUL not in "".join(texts):
            continue
        for i, cell in enumerate(cells):
            if type(cell) is str and NUL in cell:
                shown = cell.replace(NUL, "\u2400")[:60]  # ␀, where the NUL is
                problems.setdefault(numbers[i], []).append(
                    RowError(
                        "bad-encoding",
                        f"column {name!r} holds a NUL byte (character 0, shown as ␀: {shown!r}), which "
                        "is not text: remove it (type the cell again, or export the file again)",
                        name,
                    )
                )
