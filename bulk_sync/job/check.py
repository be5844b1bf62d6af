"""Job, check: rows as a person edited them, checked by exactly what `validate` runs (the same
mapping, the plan, the id pass, the chunk engine, the rep check, the report's rows), in this
process: the review page's check, and its preview's.
"""

from __future__ import annotations

import csv
import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from ..errors import BulkSyncError
from ..notes import as_text
from ..pipeline import RepCheck, prepare, run, scan_columns
from ..report import ResultBlock, RowResult
from ..settings import RunSettings
from .events import QUIET
from .reps import rep_check
from .sync import CheckedRow, _dry_target

if TYPE_CHECKING:
    from .sync import Sync


def check_rows(sync: Sync, headers: list[str], rows: list[list[str]], *, payloads: bool) -> list[CheckedRow]:
    """Each row (cells in ``headers``' order) checked as `validate` checks a file holding them;
    with each valid row's payload unless ``payloads`` is false (many rows at once: not shown)."""
    with tempfile.TemporaryDirectory(prefix="bulk_sync-review-") as tmp:
        path = Path(tmp) / "rows.csv"
        write_csv(path, headers, rows)
        results: list[RowResult] = []
        try:
            bodies = dry_run(sync, path, results.append, show=len(rows) if payloads else 0)
        except BulkSyncError as exc:  # the mapping no longer fits (a column renamed in the grid)
            return [CheckedRow("invalid", "mapping", [], str(exc)) for _ in rows]
    by_row = {r.row_number: r for r in results}
    out = []
    shown = iter(bodies)
    for n in range(2, len(rows) + 2):
        r = by_row.get(n)
        if r is None:
            out.append(CheckedRow("skipped", None, [], "not read as a row"))
            continue
        columns = [c.strip() for c in (r.column or "").split(";") if c.strip()]
        body = next(shown, None) if r.status == "valid" else None
        message, warning = as_text(r.message) or None, as_text(r.warning) or None  # as the report says them
        out.append(CheckedRow(r.status, r.error_type, columns, message, warning, body))
    return out


def dry_run(sync: Sync, path: Path, emit: Callable[[RowResult], None], show: int = 0) -> list[dict[str, Any]]:
    """What `validate` does with ``path``: each row's result to ``emit`` (blocks row by row), and
    the bodies of the first ``show`` valid rows. Raises BulkSyncError when it cannot start (the
    mapping does not fit the file)."""
    assert sync.mapping is not None
    plan = scan_columns(prepare([path], sync.mapping))
    reps, note = _reps(sync, plan.spec.resource)
    plan = dataclasses.replace(plan, reps=reps, reps_note=note)
    payloads: list[dict[str, Any]] = []

    def each(r: RowResult | ResultBlock) -> None:
        for one in r if isinstance(r, ResultBlock) else (r,):
            emit(one)

    settings = RunSettings(
        token=SecretStr("unused"), dry_run=True, max_body_bytes=sync.delivery.max_body_bytes
    )
    run(plan, settings, each, on_payload=lambda p: payloads.append(p.body), show=show, handle_signals=False)
    return payloads


def _reps(sync: Sync, resource: str) -> tuple[RepCheck | None, str]:
    """SIRO's users, fetched once for a Sync's checks (every row edited on a page is checked with
    the same list)."""
    cached = sync.__dict__.get("_reps")
    if cached is None or cached[0] != resource:
        base_url, token = _dry_target(sync.target)
        cached = (resource, rep_check(sync.guards.reps, base_url, token, QUIET, resource=resource))
        sync.__dict__["_reps"] = cached
    return cached[1]


def write_csv(path: Path, headers: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(headers)
        out.writerows(rows)
