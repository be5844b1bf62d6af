"""Review, edits: a row as a person edited it (checked, then stored with its version), the fixed
rows sent (one new file in the inbox per send, the rows marked sent in it), and where a run stands:
needs attention -> fixed and sent -> done (the fixed files' own runs synced them).
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from .check import check_rows
from .runs import Grid, Part, Run
from .safefs import create_new, inside, make_dirs
from .store import Edit, Sent, Store
from .words import said

NEEDS_ATTENTION, FIXED_AND_SENT, DONE = "needs attention", "fixed and sent", "done"


class Refused(Exception):
    """A request the page must answer with a message a person can act on (and an HTTP status)."""

    def __init__(self, message: str, status: int = 400, **more: Any) -> None:
        super().__init__(message)
        self.status, self.more = status, more


@dataclass(frozen=True)
class Change:
    """A row's edit as the page sends it."""

    index: int
    cells: list[str]
    version: int
    skip: bool


def change_of(body: Any, grid: Grid) -> Change:
    """The edit in a check's JSON body, or Refused saying what is wrong with it."""
    if not isinstance(body, dict):
        raise Refused("the page sent no edit: reload it")
    try:
        index, version = int(body["index"]), int(body.get("version", 0))
        cells = [str(c) for c in body["cells"]][: len(grid.headers)]
    except (KeyError, TypeError, ValueError):
        raise Refused("the page sent an edit this server cannot read: reload it") from None
    if not 0 <= index < len(grid.rows):
        raise Refused(f"there is no row {index + 1} to fix in this run: reload the page", 404)
    cells += [""] * (len(grid.headers) - len(cells))
    return Change(index, cells, version, bool(body.get("skip")))


def check(run: Run, part: Part, grid: Grid, change: Change, who: str) -> dict[str, Any]:
    """The row (of ``part``'s grid) checked as `validate` checks it, then stored if no other window
    changed it since."""
    if not run.mapping:
        raise Refused("this run names no mapping: the row cannot be checked (run it again with --mapping)")
    store = Store(part.fixes)
    before = store.rows(change.index, change.index + 1).get(change.index)
    old = before.cells if before else grid.rows[change.index]
    answer: dict[str, Any]
    if change.skip:
        status, answer = (before.status if before else "invalid"), {"skip": True}
    else:
        (checked,) = check_rows(grid.headers, [change.cells], run.mapping)
        status, answer = (
            checked.status,
            {**asdict(checked), "said": said(checked.message, checked.error_type)},
        )
    number = grid.problems[change.index].get("row") or str(change.index + 1)
    what = [
        f"row {number}, {h}: {a!r} -> {b!r}"
        for h, a, b in zip(grid.headers, old, change.cells, strict=True)
        if a != b
    ]
    if change.skip != (before.skip if before else False):
        what.append(f'row {number}: {"marked" if change.skip else "unmarked"} "don\'t send"')
    version, counts = store.save(change.index, change.version, change.cells, status, change.skip, who, what)
    return {**answer, "version": version, "counts": counts}


def send(
    run: Run, part: Part, grid: Grid, inbox: Path, send_id: str, shown: dict[int, int], who: str
) -> Sent:
    """The rows of ``part`` fixed and not sent, as one new file in the inbox named after the file
    (and the sheet) they came from (in the original's sub-folder, so the same route takes it),
    marked sent in it."""
    original = Path(str(run.route.get("original") or part.source))
    folder = original.parent.as_posix() if run.route else ""

    def drop(rows: list[Edit]) -> tuple[str, Path, str]:
        target = make_dirs(inbox, folder) if folder not in ("", ".") else inside(inbox, inbox)
        body = _csv(grid.headers, [e.cells for e in rows])
        stamp = time.strftime("%Y%m%d-%H%M%S")
        # unique: two sends, two files; a sheet's rows (a workbook of several): named after it too
        sheet = f"-{re.sub(r'[^A-Za-z0-9._-]+', '_', part.sheet)}" if part.sheet else ""
        name = f"{original.stem}{sheet}-fixed-{stamp}-{secrets.token_hex(3)}.csv"
        path = create_new(target, name, lambda fh: _write(fh, body))
        numbers = [grid.problems[e.index].get("row") or str(e.index + 1) for e in rows]
        listed = (
            "rows "
            + ", ".join(numbers[:50])
            + (f" and {len(numbers) - 50} more" if len(numbers) > 50 else "")
        )
        return path.relative_to(inbox).as_posix(), path, listed

    return Store(part.fixes).send(send_id, shown, who, drop)


def _csv(headers: list[str], rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    out = csv.writer(text)
    out.writerow(headers)
    out.writerows(rows)
    return text.getvalue().encode("utf-8")


def _write(fh: IO[bytes], body: bytes) -> None:
    fh.write(body)


def progress(run: Run, runs: list[Run]) -> str:
    """needs attention, fixed and sent (every row to handle, in each of its error files, sent or
    marked "don't send"), or done (nothing to fix, or every fixed file's own run synced its rows)."""
    if not run.needs_attention:
        return DONE
    stores = [s for s in map(Store, run.stores) if s.exists()]
    if not stores:
        return NEEDS_ATTENTION
    to_handle = run.to_handle
    handled = sum(c["sent"] + c["skipped"] for c in (s.counts() for s in stores))
    if to_handle == 0 or handled < to_handle:
        return NEEDS_ATTENTION
    filed = {str(r.route.get("original")): r for r in runs if r.route.get("filed") == "done"}
    sends = [f for s in stores for f in s.sends()]
    synced = all(f["file"] in filed and not filed[f["file"]].needs_attention for f in sends)
    return DONE if synced else FIXED_AND_SENT
