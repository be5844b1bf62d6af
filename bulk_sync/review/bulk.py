"""Review, bulk: fixes at scale. The grid filtered by error type and by column; "apply this fix to
every row with the same value in this column" (a find-and-replace over the rows to fix, not sent,
every row checked as one edit is, in one pass of the same engine); the failed and not_sent rows
queued to be sent again as they are (checked, then sent by Send like fixed rows); and either undone
before Send (rows changed since, in another window, are left as they are).
"""

from __future__ import annotations

import secrets
from typing import Any

from .check import check_rows
from .edits import Refused
from .runs import Grid, Part, Run
from .store import Edit, Store

RESENDABLE = ("failed", "not_sent")


def matching(grid: Grid, error: str | None, column: str | None) -> list[int]:
    """The grid's rows with this error type and a problem in this column (both optional)."""
    if not error and not column:
        return list(range(len(grid.problems)))
    out = []
    for i, problem in enumerate(grid.problems):
        if error and problem.get("error") != error:
            continue
        if column and column not in {c.strip() for c in problem.get("column", "").split(";")}:
            continue
        out.append(i)
    return out


def columns_with_problems(grid: Grid) -> list[tuple[str, int]]:
    """Each column named by a problem, with how many rows it is bad in, most first."""
    seen: dict[str, int] = {}
    for problem in grid.problems:
        for c in problem.get("column", "").split(";"):
            if c.strip():
                seen[c.strip()] = seen.get(c.strip(), 0) + 1
    return sorted(seen.items(), key=lambda kv: -kv[1])


def _current(grid: Grid, edits: dict[int, Edit], i: int) -> Edit:
    if i in edits:
        return edits[i]
    return Edit(i, list(grid.rows[i]), grid.problems[i].get("status", ""), False, 0, None)


def _apply(
    run: Run, part: Part, grid: Grid, rows: list[tuple[Edit, list[str]]], who: str, what: str
) -> dict[str, Any]:
    if not run.mapping:
        raise Refused("this run names no mapping: the rows cannot be checked (run it again with --mapping)")
    checked = check_rows(grid.headers, [cells for _, cells in rows], run.mapping, payloads=False)
    batch = f"{what.split(' ', 1)[0]}-{secrets.token_hex(4)}"
    store = Store(part.fixes)
    done, left = store.save_many(
        batch, [(was, cells, c.status) for (was, cells), c in zip(rows, checked, strict=True)], who, what
    )
    valid = sum(1 for c in checked if c.status == "valid")
    return {"batch": batch, "changed": done, "left": left, "valid": valid, "invalid": len(checked) - valid,
            "counts": store.counts()}  # fmt: skip


def replace_all(
    run: Run, part: Part, grid: Grid, column: str, old: str, new: str, who: str
) -> dict[str, Any]:
    """Every row to fix (not sent) of ``part`` whose ``column`` holds ``old``: set to ``new``, each
    checked."""
    if column not in grid.headers:
        raise Refused(f"there is no column {column!r} in this run's rows: reload the page")
    at = grid.headers.index(column)
    edits = Store(part.fixes).rows()
    rows = []
    for i in range(len(grid.rows)):
        was = _current(grid, edits, i)
        if was.sent_in is None and was.cells[at] == old:
            cells = list(was.cells)
            cells[at] = new
            rows.append((was, cells))
    if not rows:
        raise Refused(f"no row left to fix has {old!r} in {column}")
    return _apply(run, part, grid, rows, who, f"replace {column}: {old!r} -> {new!r}")


def resend(run: Run, part: Part, grid: Grid, who: str) -> dict[str, Any]:
    """The failed and not_sent rows of ``part`` (not sent from here yet), checked as they are: Send
    sends them."""
    edits = Store(part.fixes).rows()
    rows = []
    for i, problem in enumerate(grid.problems):
        was = _current(grid, edits, i)
        if problem.get("status") in RESENDABLE and was.sent_in is None and was.status != "valid":
            rows.append((was, list(was.cells)))
    if not rows:
        raise Refused("no failed or not_sent row is left to send again")
    return _apply(run, part, grid, rows, who, "resend failed and not_sent rows")


def undo(part: Part, batch: str, who: str) -> dict[str, Any]:
    back, left = Store(part.fixes).undo(batch, who)
    return {"undone": back, "left": left, "counts": Store(part.fixes).counts()}
