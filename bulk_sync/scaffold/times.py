"""init-mapping, times: the date-time fields of a starter: a date column and a time column that
make one start (and end), the format read from the cells (a day/month order the file settles, or a
TODO saying why not), the zone a TODO, and `ambiguous: error` on every date-time with a zone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .match import (
    DATE_FORMATS,
    DATE_TIME_FORMATS,
    TIME_FORMATS,
    Formats,
    all_parse,
    day_order,
    guess_formats,
    is_audit,
    norm,
    yaml_str,
)

Orders = dict[str, tuple[str, str]]  # day/month order ("dm", "md") -> (a column, the cell that settles it)


_DAY_MONTH = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b")


def settled_orders(headers: Sequence[str], samples: dict[str, list[str]]) -> Orders:
    """The day/month orders the file's date columns settle by their cells ("31/10/2026": day
    first): order -> (the first column that settles it, the cell that does)."""
    out: dict[str, tuple[str, str]] = {}
    for h in headers:
        cells = samples.get(h, [])
        first = next((c.strip() for c in cells if c.strip()), "")
        if not _DAY_MONTH.match(first):
            continue  # not a date that could be either way: no need to try every format
        found = guess_formats(cells, DATE_TIME_FORMATS + DATE_FORMATS)
        order = day_order(str(found.format)) if found is not None and found.format is not None else None
        if found is not None and found.settled_by and order is not None:
            out.setdefault(order, (h, found.settled_by))
    return out


_DATE_WORDS = ("date", "datum")  # English; Dutch and German ("Begindatum", "Startdatum")


_TIME_WORDS = ("time", "tijd", "zeit", "uhrzeit")


_END_WORDS = ("end", "eind", "ende", "finish", "until", "to", "stop")


_OTHER_TIMES = ("remind", "herinner", "erinner")  # Outlook's reminder is no start


def _is_part(header: str, words: tuple[str, ...]) -> bool:
    """A date (or time) part of a date-time: its name says so, in a word or compound, and it is
    not an audit column nor a reminder."""
    n = norm(header)
    return any(w in n for w in words) and not is_audit(header) and not any(w in n for w in _OTHER_TIMES)


def _is_end(header: str) -> bool:
    """The date column of an end ("End Date", "Einddatum", "Date To")."""
    return any(
        word == w or (len(w) > 2 and word.startswith(w)) for word in norm(header).split() for w in _END_WORDS
    )


def settle(found: Formats | None, orders: Orders) -> Formats | None:
    """A format whose day/month order the column's cells leave open, settled by another date
    column of the same export whose cells do settle it (Zoho's "Created Time" by its "From":
    one export, one locale); as it was when no column settles it, or columns disagree."""
    if found is None:
        return None
    if not found.todo:
        return _why(found)
    if len(orders) != 1:
        return found
    ((order, (header, cell)),) = orders.items()
    pick = [c for c in found.choices if day_order(c) == order]
    if len(pick) != 1:
        return found
    first = "day" if order == "dm" else "month"
    return Formats(pick[0], settled_by=f"{first} first, as {cell!r} in the column {header!r} shows")


def _why(found: Formats) -> Formats:
    """A format a cell of its own column settled, with the comment that says so."""
    if found.settled_by and found.format is not None:
        first = "day" if day_order(str(found.format)) == "dm" else "month"
        return Formats(found.format, settled_by=f"{first} first, as {found.settled_by!r} shows")
    return found


def date_and_time(matched: dict[str, str], headers: Sequence[str], samples: dict[str, list[str]]) -> None:
    """A start given as a date column and a time column (Pipedrive's "Due date" + "Due time",
    Outlook's "Start Date" + "Start Time") becomes one template, and so does an end given so
    ("End Date" + "End Time"); a duration column beside a start makes the end."""
    dates = [h for h in headers if _is_part(h, _DATE_WORDS) and all_parse(samples.get(h, []), DATE_FORMATS)]
    times = [h for h in headers if _is_part(h, _TIME_WORDS) and all_parse(samples.get(h, []), TIME_FORMATS)]
    pairs = [
        (d, headers[i + 1]) for i, d in enumerate(headers[:-1]) if d in dates and headers[i + 1] in times
    ]
    ends = [(d, t) for d, t in pairs if _is_end(d)]
    starts = [(d, t) for d, t in pairs if not _is_end(d)]
    if not pairs and dates and times:  # apart: the first of each (a date column, a time column)
        starts = [(dates[0], times[0])]
    for target, found in (("startTime", starts), ("endTime", ends)):
        now = matched.get(target)
        if found and (now is None or now in dates or now in times):
            for h in found[0]:
                for t, v in list(matched.items()):
                    if v == h:
                        del matched[t]
            matched[target] = f"{{{found[0][0]}}} {{{found[0][1]}}}"
    durations = [h for h in headers if "duration" in norm(h)]
    if "startTime" in matched and "endTime" not in matched and durations:
        matched["endTime"] = "duration:" + durations[0]


def time_lines(target: str, col: str, cells: list[str], orders: Orders) -> list[str]:
    """The lines of a date-time field read from one column: its format from the cells (or a TODO
    saying why), its zone a TODO (UTC when every time carries its offset), `ambiguous: error`."""
    found = settle(guess_formats(cells, DATE_TIME_FORMATS + DATE_FORMATS), orders)
    lines: list[str] = []
    add = lines.append
    offsets = found is not None and found.offsets
    fmt = ""
    if found is None:
        fmt = "format: TODO, "
    elif found.format is not None:
        fmt = f"format: {'TODO' if found.todo else yaml_str(str(found.format))}, "
    add(f"  {target}:")
    add(f"    column: {col}")
    if found is not None and (found.todo or found.settled_by):
        add(f"    # format: {found.todo or found.settled_by}")
    if found is None:
        add("    # no date format reads these cells: write one (e.g. '%m/%d/%Y %I:%M %p')")
    zone = (
        "UTC}   # every time carries its own offset"
        if offsets
        else "TODO, ambiguous: error}   # the zone of the export's times; ambiguous: see the top"
    )
    add(f"    datetime: {{{fmt}timezone: {zone}")
    if target == "startTime":
        add("  startTimeLocalized:")
        add(f"    column: {col}")
        add(f"    datetime: {{{fmt.rstrip(', ')}}}" if fmt else "    datetime: {}")
    return lines


def template_lines(target: str, template: str, samples: dict[str, list[str]], orders: Orders) -> list[str]:
    """The lines of a date-time field made of a date column and a time column (``template``)."""
    lines: list[str] = []
    add = lines.append
    date, time_ = re.findall(r"\{([^{}]+)\}", template)
    dates = settle(guess_formats(samples.get(date, []), DATE_FORMATS), orders)
    times = guess_formats([t for t in samples.get(time_, []) if t.strip()], TIME_FORMATS)
    tfmt = str(times.format) if times and times.format else "%H:%M"

    def both(dfmt: str) -> str:
        return f"[{yaml_str(dfmt + ' ' + tfmt)}, {yaml_str(dfmt)}]"

    formats = both(str(dates.format)) if dates and dates.format and not dates.todo else "TODO"
    add(f"  {target}:")
    add(f"    template: {yaml_str(template)}   # the date and the time are in two columns")
    if dates is not None and dates.todo:
        options = " or ".join(both(c) for c in dates.choices)
        add(f"    # format: {dates.todo}: {options}")
    elif dates is not None and dates.settled_by:
        add(f"    # format: {dates.settled_by}")
    elif dates is None:
        add(
            f"    # no date format reads the column {date!r}: write one (e.g. ['%d/%m/%Y %H:%M', '%d/%m/%Y'])"
        )
    add(f"    datetime: {{format: {formats}, timezone: TODO, ambiguous: error}}")
    if target == "startTime":
        add("  startTimeLocalized:")
        add(f"    template: {yaml_str(template)}")
        add(f"    datetime: {{format: {formats}}}")
    return lines
