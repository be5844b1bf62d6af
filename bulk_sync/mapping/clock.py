"""Map stage, clock: date-time texts read by their two parts, a day and a time of day.

An export repeats few days and few times of day, but a migration holds tens of thousands of distinct
date-times, more than a memo of whole texts can keep. Each day text and each time text is parsed
once (with ``datetime.strptime``, the scalar reference's own parser), and the instant is their sum
less the zone's offset on that day. Only what is certain goes this way: one format made of a date
part and a time part, and a day on which the zone's offset does not change. Everything else (the
two days a year the clocks change, a text that does not split, a year outside 1001-9998) goes the
reference way, :func:`convert.convert_cell` or pandas, which gives the values and the errors.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from .spec import Field_, zone_named

_DAY_DIRECTIVES = set("dmYybB")
_TIME_DIRECTIVES = set("HIMSp")
_SEPARATORS = (" ", "T")
_EPOCH = dt.datetime(1970, 1, 1)


class _Memo:
    """Part texts -> what they were read as (None: not this way); past MAX_BYTES it starts over.
    A value is one object (seconds, or a text), not a pair: a migration's memo holds thousands of
    days, each for the length of the run."""

    MAX_BYTES = 1024 * 1024
    ENTRY_BYTES = 200

    __slots__ = ("bytes", "values")

    def __init__(self) -> None:
        self.values: dict[str, int | str | None] = {}
        self.bytes = 0

    def put(self, text: str, value: int | str | None) -> int | str | None:
        if self.bytes > self.MAX_BYTES:
            self.values.clear()
            self.bytes = 0
        self.bytes += len(text) + self.ENTRY_BYTES
        self.values[text] = value
        return value


class _Parts:
    """One format's two parts and what each part text was read as (bounded by bytes). A wall-clock
    field (``local``, or no zone) is written as its texts, any other as UTC from its seconds."""

    __slots__ = ("day_fmt", "days", "local", "sep", "time_fmt", "times", "tz", "wall")

    def __init__(self, day_fmt: str, sep: str, time_fmt: str, tz: dt.tzinfo | None, local: bool) -> None:
        self.day_fmt, self.sep, self.time_fmt, self.tz, self.local = day_fmt, sep, time_fmt, tz, local
        self.wall = local or tz is None
        # day text -> its date text (wall), or its midnight's seconds from 1970 less its offset
        self.days = _Memo()
        self.times = _Memo()  # time text -> its time text (wall), or its seconds into the day


def split_format(fmt: str) -> tuple[str, str, str] | None:
    """``"%m/%d/%Y %I:%M %p"`` -> ``("%m/%d/%Y", " ", "%I:%M %p")``: a date part naming a year, one
    separator, a time part; None for any other format. Directives in either part are separated by
    literals, so a text splits one way only."""
    for sep in _SEPARATORS:
        day, found, time = fmt.partition(sep)
        if not found:
            continue
        day_d = re.findall(r"%(.)", day)
        time_d = re.findall(r"%(.)", time)
        if (
            day_d
            and time_d
            and set(day_d) <= _DAY_DIRECTIVES
            and set(time_d) <= _TIME_DIRECTIVES
            and ("Y" in day_d or "y" in day_d)
            and not re.search(r"%.%", day)
            and not re.search(r"%.%", time)
            and "%%" not in fmt
        ):
            return day, sep, time
        return None
    return None


def parts_for(f: Field_) -> _Parts | None:
    """The two-part reader of a date-time field, or None when its texts cannot be read this way."""
    dts = f.spec.datetime
    if dts is None or len(dts.formats) != 1 or dts.timezone_column:
        return None
    split = split_format(dts.formats[0])
    if split is None:
        return None
    tz = zone_named(dts.timezone) if dts.timezone else None
    if dts.timezone and tz is None:
        return None
    return _Parts(split[0], split[1], split[2], tz, f.kind.local_time)


def read_parts(parts: _Parts, texts: list[str]) -> list[Any]:
    """Each text's value as the reference gives it, or None where this way is not certain."""
    days_get, times_get = parts.days.values.get, parts.times.values.get
    sep, wall = parts.sep, parts.wall
    utc_get = _UTC.get
    out: list[Any] = []
    add = out.append
    for text in texts:
        d, found, t = text.strip().partition(sep)
        day = days_get(d, _NEW)
        if day is _NEW:
            day = parts.days.put(d, _day(parts, d))
        tod = times_get(t, _NEW)
        if tod is _NEW:
            tod = parts.times.put(t, _time(parts, t))
        if day is None or tod is None or not found:
            add(None)
        elif wall:
            add(f"{day}T{tod}")
        else:
            at = day + tod
            add(utc_get(at) or _utc_text(at))
    return out


_NEW: Any = object()

# UTC texts by their second (shared by every field); starts over past _UTC_TEXTS (about 2 MB)
_UTC_TEXTS = 16_384
_UTC: dict[int, str] = {}

# UTC day and time-of-day texts, shared by every field; each starts over past _TEXTS entries
# (about 0.5 MB): a day is 16 years of days, a time of day every minute of two days' worth of hours
_TEXTS = 6000
_UTC_DAYS: dict[int, str] = {}
_UTC_TIMES: dict[int, str] = {}


def _utc_text(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    day = _UTC_DAYS.get(days)
    if day is None:
        if len(_UTC_DAYS) >= _TEXTS:
            _UTC_DAYS.clear()
        day = _UTC_DAYS[days] = (_EPOCH + dt.timedelta(days=days)).strftime("%Y-%m-%d")
    time = _UTC_TIMES.get(rest)
    if time is None:
        if len(_UTC_TIMES) >= _TEXTS:
            _UTC_TIMES.clear()
        time = _UTC_TIMES[rest] = f"{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"
    if len(_UTC) >= _UTC_TEXTS:
        _UTC.clear()
    text = _UTC[seconds] = f"{day}T{time}Z"
    return text


def _time(parts: _Parts, text: str) -> int | str | None:
    """The time text (a wall-clock field) or the seconds into the day; None when not the format's
    time part."""
    try:
        t = dt.datetime.strptime(text, parts.time_fmt)
    except ValueError:
        return None
    if parts.wall:
        return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    return t.hour * 3600 + t.minute * 60 + t.second


def _day(parts: _Parts, text: str) -> int | str | None:
    """The date text (a wall-clock field) or the day's UTC midnight less the zone's offset (seconds
    from 1970); None for a day the reference must read (not this format, a year before 1000, the
    clocks change)."""
    try:
        day = dt.datetime.strptime(text, parts.day_fmt)
    except ValueError:
        return None
    if not 1000 < day.year < 9999:  # strftime's %Y is not padded below 1000; no year 10000 in UTC
        return None
    offset = 0
    if parts.tz is not None:
        one = _offset_on(day, parts.tz)
        if one is None:
            return None
        offset = one
    if parts.wall:
        return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
    return int((day - _EPOCH).total_seconds()) - offset


# a zone's steady offset on each day of a year (_NEW: not asked yet), shared by the fields of one
# zone: a list of 366 slots per (zone, year), not an entry per day; starts over past _YEARS tables
_YEARS = 64
_OFFSETS: dict[tuple[dt.tzinfo, int], list[Any]] = {}


def _offset_on(day: dt.datetime, tz: dt.tzinfo) -> int | None:
    """:func:`steady_offset`, each (zone, day) worked out once."""
    table = _OFFSETS.get((tz, day.year))
    if table is None:
        if len(_OFFSETS) >= _YEARS:
            _OFFSETS.clear()
        table = _OFFSETS[tz, day.year] = [_NEW] * 366
    k = day.timetuple().tm_yday - 1
    got = table[k]
    if got is _NEW:
        got = table[k] = steady_offset(day, tz)
    return got  # type: ignore[no-any-return]


def steady_offset(day: dt.datetime, tz: dt.tzinfo) -> int | None:
    """The zone's UTC offset in seconds through the whole local day, or None if it changes that
    day (or a wall-clock time of it is missing or happens twice). Checked every half hour, both
    folds: clocks change by at least a quarter hour and at most twice a year."""
    seen: set[dt.timedelta | None] = set()
    for half in range(48):
        wall = day + dt.timedelta(minutes=30 * half)
        for fold in (0, 1):
            seen.add(wall.replace(tzinfo=tz, fold=fold).utcoffset())
    seen.add((day + dt.timedelta(hours=23, minutes=59, seconds=59)).replace(tzinfo=tz, fold=1).utcoffset())
    if len(seen) != 1:
        return None
    only = seen.pop()
    return None if only is None else int(only.total_seconds())
