"""Pipeline, mirror: a run's files as the complete list of appointments for a window of start times,
so that what the CRM deleted is soft-deleted in SIRO (``POST .../soft-delete-removed``) after a
successful sync.

Guarded, every guard on by default, because a soft-delete is the one thing a run does that an
upsert cannot undo:

* before anything is sent: a window someone declared (``--window FROM..TO``, or a profile's
  ``mirror_window``, which may be relative to the start of the run: ``-7d..+30d`` in the job's time
  zone), never one inferred from the rows (a file cut short spans a shorter window); it may span at
  most ``max_days``; the state must be on; a file that looks cut short (every record it would remove
  starts at or after its last row: the tail of the window is missing) is held as truncated unless
  accepted; and of the records synced earlier whose startTime is in the window (per the state), at
  most ``max_removed`` may be missing from the files;
* after the sync: nothing is deleted unless every row synced (no invalid, rejected, failed or
  not-sent row, and the run was not stopped).

A held mirror raises :class:`~bulk_sync.errors.Held` (exit 2), naming the guard and its flag.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import mapping
from ..errors import Held, UsageError
from ..report import FAILED, INVALID, NOT_SENT, REJECTED, Summary
from ..state import StateStore
from .plan import Plan

MAX_DAYS = 62.0  # a month and a bit: a nightly export of "this month and last"
MAX_REMOVED = 0.10  # of the records synced earlier in the window


@dataclass(frozen=True)
class MirrorRules:
    window: str | None = None  # as declared: --window or the profile's mirror_window (checked)
    max_days: float = MAX_DAYS
    max_removed: float = MAX_REMOVED
    accept_truncation: bool = False  # --accept-truncation: a file that looks cut short is sent
    watched: bool = False  # the run is a watch folder's: a hold's advice names the file's new name


@dataclass
class MirrorPlan:
    """What the mirror will do: the window, the externalIds the files list, and (per the state) the
    records synced earlier in the window that they do not list."""

    low: str
    high: str
    keep: list[str]
    removed: list[tuple[str, str, str | None]] = field(default_factory=list)  # key, startTime, SIRO id
    earlier: int = 0  # records synced earlier in the window (per the state)
    unplaced: int = 0  # records in the state whose start time it does not know (an older bulk_sync)
    declared: str = ""  # the window as declared, and how it was resolved (printed)

    @property
    def window_text(self) -> str:
        return f"{self.low}..{self.high}"


_RELATIVE = re.compile(r"^([+-]?\d{1,4})([dh])$")


def parse_window(text: str, zone: dt.tzinfo = dt.UTC, now: dt.datetime | None = None) -> tuple[str, str]:
    """``FROM..TO`` as UTC texts with a Z: dates (whole days in ``zone``: UTC for ``--window``),
    date-times with a zone, or times relative to ``now`` (``-7d..+30d``: from the start of the day
    seven days ago to the end of the day in thirty, in ``zone``; ``-12h..+0h``: hours)."""
    low, sep, high = text.partition("..")
    if not sep or not low.strip() or not high.strip():
        raise UsageError(
            f"window {text!r}: expected FROM..TO, e.g. 2026-03-01..2026-03-31, or -7d..+30d (relative)"
        )
    now = now or dt.datetime.now(dt.UTC)
    a, b = _instant(low.strip(), zone, now, end=False), _instant(high.strip(), zone, now, end=True)
    if b < a:
        raise UsageError(f"window {text!r}: its end is before its start")
    return _text(a), _text(b)


def is_relative(text: str) -> bool:
    return any(_RELATIVE.match(part.strip()) for part in text.split(".."))


def _instant(text: str, zone: dt.tzinfo, now: dt.datetime, *, end: bool) -> dt.datetime:
    rel = _RELATIVE.match(text)
    if rel:
        n, unit = int(rel[1]), rel[2]
        if unit == "h":
            return now + dt.timedelta(hours=n)
        day = now.astimezone(zone).date() + dt.timedelta(days=n)
        return _day_edge(day, zone, end)
    try:
        if len(text) == 10:  # a date: the whole day
            return _day_edge(dt.date.fromisoformat(text), zone, end)
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(
            f"window: {text!r} is not a date (2026-03-01), a date-time with a zone, or relative (-7d, +30d)"
        ) from exc
    if value.tzinfo is None:
        raise UsageError(f"window: {text!r} has no zone; add Z or an offset (+02:00): it is not guessed")
    return value.astimezone(dt.UTC)


def _day_edge(day: dt.date, zone: dt.tzinfo, end: bool) -> dt.datetime:
    """The first (or last) second of a day in the zone, as an aware time."""
    if end:
        nxt = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
        return (nxt.astimezone(dt.UTC) - dt.timedelta(seconds=1)).astimezone(dt.UTC)
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)


def _text(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_span(plan: Plan) -> tuple[list[str], str | None, str | None]:
    """Every externalId the plan's files list, and the earliest and latest startTime among their
    rows (None when no row has one). Reads the id and startTime columns once."""
    ids: list[str] = []
    low: dt.datetime | None = None
    high: dt.datetime | None = None
    for src, bound in plan.jobs:
        start = next((f for f in bound.spec.fields if f.target == "startTime"), None)
        columns = mapping.id_columns(bound) + (_columns(start, bound) if start is not None else [])
        for chunk in src.chunks(columns=list(dict.fromkeys(columns))):
            ids += [e for e in mapping.external_ids(bound, chunk) if e is not None]
            if start is None:
                continue
            values, _ = mapping.field_values(start, bound, chunk)
            times = [dt.datetime.fromisoformat(v.replace("Z", "+00:00")) for v in values if type(v) is str]
            aware = [t for t in times if t.tzinfo is not None]
            if aware:
                low = min(aware) if low is None else min(low, *aware)
                high = max(aware) if high is None else max(high, *aware)
    return ids, None if low is None else _text(low), None if high is None else _text(high)


def _columns(f: mapping.Field_, bound: mapping.BoundMapping) -> list[str]:
    cols = [f.column] if f.column else list(f.spec.template_columns)
    if f.spec.datetime is not None and f.spec.datetime.timezone_column:
        cols.append(f.spec.datetime.timezone_column)
    return [bound.columns[c] for c in cols if c in bound.columns]


def job_zone(plan: Plan) -> tuple[dt.tzinfo, str]:
    """The job's time zone (its startTime's ``timezone``; UTC when it names none): a relative window's
    days are its days."""
    start = next((f for f in plan.spec.fields if f.target == "startTime"), None)
    name = start.spec.datetime.timezone if start is not None and start.spec.datetime is not None else None
    if not name:
        return dt.UTC, "UTC"
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):  # the mapping's check has refused it already
        return dt.UTC, "UTC"


def plan_mirror(
    plan: Plan, store: StateStore | None, rules: MirrorRules, now: dt.datetime | None = None
) -> MirrorPlan:
    """The mirror's plan, after the guards that can be checked before anything is sent."""
    if plan.only_rows is not None:
        raise UsageError("--mirror needs whole files: `retry` sends only some rows")
    if plan.spec.resource != "engagements":
        raise UsageError("--mirror is for engagements: SIRO's soft-delete-removed takes engagements only")
    if store is None:
        raise Held(
            "mirror held: it needs the state file, to know what it would remove (drop --no-state, "
            "or pass --state PATH); nothing was sent or deleted"
        )
    keep, first, last = file_span(plan)
    if rules.window is None:
        raise UsageError(_no_window(first, last))
    zone, zone_name = job_zone(plan)
    low, high = parse_window(rules.window, zone if is_relative(rules.window) else dt.UTC, now)
    declared = (
        f"{rules.window} ({zone_name}, resolved at the start of this run)"
        if is_relative(rules.window)
        else rules.window
    )
    days = (_parse(high) - _parse(low)).total_seconds() / 86400
    if days > rules.max_days:
        raise Held(
            f"mirror held: the window {low}..{high} spans {days:.1f} days, more than --mirror-max-days "
            f"{rules.max_days:g} (a window that is not the export's?); declare a narrower --window, or "
            "pass a larger --mirror-max-days; nothing was sent or deleted"
        )
    listed = set(keep)
    earlier = store.in_window(low, high)
    removed = [r for r in earlier if r[0] not in listed]
    out = MirrorPlan(low, high, keep, removed, len(earlier), store.unknown_start_times(), declared)
    if removed and last is not None and not rules.accept_truncation and all(r[1] >= last for r in removed):
        raise Held(_truncated(out, last, rules.watched))
    if earlier and len(removed) > rules.max_removed * len(earlier):
        raise Held(
            f"mirror held: {len(removed):,} of the {len(earlier):,} records synced earlier with a start in "
            f"{out.window_text} are not in the files ({len(removed) / len(earlier):.0%}, more than "
            f"--mirror-max-removed {rules.max_removed:.0%}): a half-empty export? If the CRM really "
            "deleted them, pass a larger --mirror-max-removed; nothing was sent or deleted"
        )
    return out


def _no_window(first: str | None, last: str | None) -> str:
    """--mirror without a declared window: refused, with the span the files cover as a suggestion."""
    where = (
        f"the files cover start times {first}..{last}: to delete only inside those days, pass "
        f"--window {first[:10]}..{last[:10]} (whole UTC days)"
        if first and last
        else "no row of the files has a startTime; pass --window FROM..TO"
    )
    return (
        "--mirror deletes only inside a window someone declared, never one read from the rows (a file "
        f'cut short covers less): {where}, or set mirror_window = "-7d..+30d" (relative to the run, '
        "in the job's time zone) in the profile; nothing was sent or deleted"
    )


def _truncated(out: MirrorPlan, last: str, watched: bool) -> str:
    n = len(out.removed)
    key, first, _ = min(out.removed, key=lambda r: (r[1], r[0]))
    records = "record" if n == 1 else "records"
    again = (
        "drop the file again with `accept-truncation` at the end of its name"
        if watched
        else "run again with --accept-truncation"
    )
    return (
        f"mirror held: the file looks cut short: it stops at {last} (its last row's start), and SIRO "
        f"holds {n:,} {records} at or after it in the window {out.window_text} that the file does not "
        f"list (per the state), the first at {first} ({key}): the shape of an export that stopped "
        f"early. If the CRM really deleted {'it' if n == 1 else 'them'}, {again}; nothing was sent or "
        "deleted"
    )


def after_run_guard(summary: Summary) -> None:
    """Nothing is deleted unless every row synced."""
    bad = {s: summary.counts.get(s, 0) for s in (INVALID, REJECTED, FAILED, NOT_SENT)}
    bad = {s: n for s, n in bad.items() if n}
    if summary.aborted or bad:
        what = ", ".join(f"{n:,} {s}" for s, n in bad.items()) or f"the run stopped ({summary.aborted})"
        raise Held(
            f"mirror held: not every row synced ({what}); nothing was deleted. Fix the rows (see the "
            "error file) and run again: the mirror runs once the whole file syncs"
        )


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
