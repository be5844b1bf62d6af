"""Pipeline, drift: is tonight's export shaped like the last good one of the same job? A scheduled run
whose file drifted is held (nothing sent) with a message naming the drift, until a person accepts it
(``--accept-drift``), which makes it the new normal.

A job is a profile, a watch route, or ``--job NAME``. Its normal, kept in the state file after each
good run: the headers, the row count, the distinct cells of each column a mapped enum (or a ``map``)
reads, and the day/month order the date columns showed. Drift:

* a header the mapping reads that the last good file had is gone (renamed, or dropped: an
  ``optional`` column would otherwise read as empty without a word);
* fewer than half the rows of the last good file (a half-empty export);
* a date column that showed month-first dates now shows only day-first ones, or the other way;
* a value the enum column never had, on more than 5 % of the rows.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import Held
from .plan import Plan

NEW_VALUES_SHARE = 0.05
MIN_ROWS_SHARE = 0.5
MAX_DISTINCT = 500  # a column with more distinct cells is no enum: not compared
_DATE = re.compile(r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-]\d{2,4}")


@dataclass
class Shape:
    """A job's files, as the drift check compares them."""

    headers: list[str] = field(default_factory=list)
    rows: int = 0
    enums: dict[str, list[str]] = field(default_factory=dict)  # column -> its distinct cells
    dates: dict[str, str] = field(default_factory=dict)  # column -> month-first / day-first / ""
    at: float = 0.0  # when the run ended (seconds since the epoch)

    def data(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Shape:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def shape_of(plan: Plan) -> tuple[Shape, dict[str, Counter[str]]]:
    """The files' shape, and the cells of each enum column counted (read once, those columns only)."""
    shape = Shape(at=time.time())
    counts: dict[str, Counter[str]] = {}
    orders: dict[str, set[str]] = {}
    for src, bound in plan.jobs:
        shape.headers += [h for h in src.headers if h not in shape.headers]
        enums = [bound.columns[f.column] for f in bound.spec.fields if f.column and _enum(f)]
        dates = [bound.columns[f.column] for f in bound.spec.fields if f.column and f.spec.datetime]
        wanted = [c for c in dict.fromkeys(enums + dates) if c in src.headers]
        for chunk in src.chunks(columns=wanted or src.headers[:1]):
            shape.rows += len(chunk)
            for column in enums:
                if column in src.headers:
                    counts.setdefault(column, Counter()).update(c.strip() for c in chunk.cells(column))
            for column in dates:
                if column in src.headers:
                    orders.setdefault(column, set()).update(_orders(chunk.cells(column)))
    shape.enums = {c: sorted(n) for c, n in counts.items() if len(n) <= MAX_DISTINCT}
    shape.dates = {c: _order(found) for c, found in orders.items()}
    return shape, counts


def _enum(f: Any) -> bool:
    return bool(f.kind.kind == "enum" or f.spec.map is not None)


def _orders(cells: list[str]) -> set[str]:
    found: set[str] = set()
    for cell in dict.fromkeys(cells):
        m = _DATE.match(cell)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if a > 12 >= b:
                found.add("day-first")
            elif b > 12 >= a:
                found.add("month-first")
    return found


def _order(found: set[str]) -> str:
    return next(iter(found)) if len(found) == 1 else ""


def drifts(last: Shape, now: Shape, counts: dict[str, Counter[str]], read: set[str]) -> list[str]:
    """How ``now`` drifted from ``last`` (the job's last good run), one line each; [] when it did not."""
    out = []
    gone = [h for h in last.headers if h in read and h not in now.headers]
    added = [h for h in now.headers if h not in last.headers]
    for h in gone:
        out.append(
            f"the column {h!r} is gone" + (f" (new columns: {', '.join(map(repr, added))})" if added else "")
        )
    if last.rows and now.rows < MIN_ROWS_SHARE * last.rows:
        out.append(f"{now.rows:,} rows, fewer than half of the last good run's {last.rows:,}")
    for column, order in now.dates.items():
        before = last.dates.get(column, "")
        if order and before and order != before:
            out.append(f"the dates in {column!r} are now {order} (they were {before})")
    for column, values in last.enums.items():
        seen = counts.get(column)
        if not seen or not now.rows:
            continue
        known = set(values)
        new = {v: n for v, n in seen.items() if v not in known}
        share = sum(new.values()) / now.rows
        if share > NEW_VALUES_SHARE:
            shown = ", ".join(f"{v!r} ({n:,})" for v, n in Counter(new).most_common(3))
            out.append(
                f"{column!r} has values the last good run did not, on {share:.0%} of the rows: {shown}"
            )
    return out


def hold(job: str, last: Shape, found: list[str]) -> Held:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(last.at)) if last.at else "an earlier run"
    return Held(
        f"drift held: the file is not shaped like the last good run of the job {job!r} ({when}): "
        + "; ".join(found)
        + ". Nothing was sent. If this is the new normal, "
        + _accept_advice(job)
    )


def _accept_advice(job: str) -> str:
    """How to accept a drift, in the way the job was started: a watch folder's drop, a profile's
    scheduled run, or a run named by --job."""
    if job.startswith("watch:"):
        return (
            "drop the file again with `accept-drift` at the end of its name (e.g. `export accept-drift.csv`)"
        )
    if job.startswith("profile:"):
        return (
            f"run the profile's command once more with --accept-drift (`bulk-sync run FILE --profile "
            f"{job.removeprefix('profile:')} --accept-drift`); the next scheduled runs compare with it"
        )
    return "run the same command once more with --accept-drift"


def read_columns(plan: Plan) -> set[str]:
    """The headers the mapping reads, in every file."""
    return {h for _, bound in plan.jobs for h in (*bound.columns.values(), *bound.absent)}
