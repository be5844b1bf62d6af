"""Pipeline, mirror: a run's files as the complete list of appointments for a window of start times,
so that what the CRM deleted is soft-deleted in SIRO (``POST .../soft-delete-removed``) after a
successful sync.

Guarded, every guard on by default, because a soft-delete is the one thing a run does that an
upsert cannot undo:

* before anything is sent: the window (the files' startTime span, or ``--window``) may span at most
  ``max_days``; the state must be on; and of the records synced earlier whose startTime is in the
  window (per the state), at most ``max_removed`` may be missing from the files;
* after the sync: nothing is deleted unless every row synced (no invalid, rejected, failed or
  not-sent row, and the run was not stopped).

A held mirror raises :class:`~bulk_sync.errors.Held` (exit 2), naming the guard and its flag.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .. import mapping
from ..errors import Held, UsageError
from ..report import FAILED, INVALID, NOT_SENT, REJECTED, Summary
from ..state import StateStore
from .plan import Plan

MAX_DAYS = 62.0  # a month and a bit: a nightly export of "this month and last"
MAX_REMOVED = 0.10  # of the records synced earlier in the window


@dataclass(frozen=True)
class MirrorRules:
    window: tuple[str, str] | None = None  # --window, as UTC texts with a Z
    max_days: float = MAX_DAYS
    max_removed: float = MAX_REMOVED


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

    @property
    def window_text(self) -> str:
        return f"{self.low}..{self.high}"


def parse_window(text: str) -> tuple[str, str]:
    """``FROM..TO``: dates (whole UTC days) or date-times with a zone; as UTC texts with a Z."""
    low, sep, high = text.partition("..")
    if not sep or not low.strip() or not high.strip():
        raise UsageError(f"--window {text!r}: expected FROM..TO, e.g. 2026-03-01..2026-03-31")
    a, b = _instant(low.strip(), end=False), _instant(high.strip(), end=True)
    if b < a:
        raise UsageError(f"--window {text!r}: its end is before its start")
    return _text(a), _text(b)


def _instant(text: str, *, end: bool) -> dt.datetime:
    try:
        if len(text) == 10:  # a date: the whole UTC day
            day = dt.date.fromisoformat(text)
            t = dt.time(23, 59, 59) if end else dt.time(0, 0, 0)
            return dt.datetime.combine(day, t, tzinfo=dt.UTC)
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"--window: {text!r} is not a date (2026-03-01) or a date-time with a zone") from exc
    if value.tzinfo is None:
        raise UsageError(f"--window: {text!r} has no zone; add Z or an offset (+02:00): it is not guessed")
    return value.astimezone(dt.UTC)


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


def plan_mirror(plan: Plan, store: StateStore | None, rules: MirrorRules) -> MirrorPlan:
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
    keep, low, high = file_span(plan)
    if rules.window is not None:
        low, high = rules.window
    if low is None or high is None:
        raise Held(
            "mirror held: no row has a startTime, so the files cover no window; give --window FROM..TO; "
            "nothing was sent or deleted"
        )
    days = (_parse(high) - _parse(low)).total_seconds() / 86400
    if days > rules.max_days:
        raise Held(
            f"mirror held: the window {low}..{high} spans {days:.1f} days, more than --mirror-max-days "
            f"{rules.max_days:g} (a file that is not the export you think it is?); pass --window, or a "
            "larger --mirror-max-days; nothing was sent or deleted"
        )
    listed = set(keep)
    earlier = store.in_window(low, high)
    removed = [r for r in earlier if r[0] not in listed]
    out = MirrorPlan(low, high, keep, removed, len(earlier), store.unknown_start_times())
    if earlier and len(removed) > rules.max_removed * len(earlier):
        raise Held(
            f"mirror held: {len(removed):,} of the {len(earlier):,} records synced earlier with a start in "
            f"{out.window_text} are not in the files ({len(removed) / len(earlier):.0%}, more than "
            f"--mirror-max-removed {rules.max_removed:.0%}): a half-empty export? If the CRM really "
            "deleted them, pass a larger --mirror-max-removed; nothing was sent or deleted"
        )
    return out


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
