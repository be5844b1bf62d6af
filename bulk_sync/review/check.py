"""Review, check: a row as a person edited it, checked by exactly what `validate` runs (the same
mapping, the plan, the id pass, the chunk engine, the report's rows), in this process.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from .. import pipeline
from ..errors import BulkSyncError
from ..notes import as_text
from ..report import ResultBlock, RowResult
from ..settings import UNLIMITED_BODY, RunSettings


@dataclass
class Checked:
    """What `validate` says of one row: its status, and if not valid, each problem; the payload."""

    status: str
    error_type: str | None = None
    columns: list[str] = field(default_factory=list)
    message: str | None = None
    warning: str | None = None
    payload: dict[str, Any] | None = None


def check_rows(
    headers: list[str], rows: list[list[str]], mapping: str, payloads: bool = True
) -> list[Checked]:
    """Each row (cells in ``headers``' order) checked as `validate` checks a file holding them;
    with each valid row's payload unless ``payloads`` is false (many rows at once: not shown)."""
    with tempfile.TemporaryDirectory(prefix="bulk_sync-review-") as tmp:
        path = Path(tmp) / "rows.csv"
        write_csv(path, headers, rows)
        results: list[RowResult] = []
        try:
            bodies = dry_run(path, mapping, results.append, show=len(rows) if payloads else 0)
        except BulkSyncError as exc:  # the mapping no longer fits (a column renamed in the grid)
            return [Checked("invalid", "mapping", [], str(exc)) for _ in rows]
    by_row = {r.row_number: r for r in results}
    out = []
    shown = iter(bodies)
    for n in range(2, len(rows) + 2):
        r = by_row.get(n)
        if r is None:
            out.append(Checked("skipped", None, [], "not read as a row"))
            continue
        columns = [c.strip() for c in (r.column or "").split(";") if c.strip()]
        body = next(shown, None) if r.status == "valid" else None
        message, warning = as_text(r.message) or None, as_text(r.warning) or None  # as the report says them
        out.append(Checked(r.status, r.error_type, columns, message, warning, body))
    return out


def dry_run(
    path: Path, mapping: str, emit: Callable[[RowResult], None], show: int = 0
) -> list[dict[str, Any]]:
    """What `validate` does with ``path``: each row's result to ``emit`` (blocks row by row), and
    the bodies of the first ``show`` valid rows. Raises BulkSyncError when it cannot start (the
    mapping does not fit the file)."""
    plan = pipeline.scan_columns(pipeline.prepare([path], mapping))
    payloads: list[dict[str, Any]] = []

    def each(r: RowResult | ResultBlock) -> None:
        for one in r if isinstance(r, ResultBlock) else (r,):
            emit(one)

    settings = RunSettings(token=SecretStr("unused"), dry_run=True, max_body_bytes=UNLIMITED_BODY)
    pipeline.run(plan, settings, each, on_payload=lambda p: payloads.append(p.body), show=show)
    return payloads


def write_csv(path: Path, headers: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(headers)
        out.writerows(rows)


_NO_MATCH = re.compile(r"^\s*[\w.\[\]]+: '(?P<got>.*)' does not match (?P<want>'.+')\s*$")
_EXAMPLE = dt.datetime(2026, 3, 31, 10, 0)


def said(message: str | None) -> str:
    """A run's message in an ops person's words where it is a developer's: a date format becomes
    an example ("expected a date like 03/31/2026 10:00 AM, got 31/02/2026 10:00 AM"); the same
    sentence for two fields is said once. Other messages are kept as they are."""
    out: list[str] = []
    for part in (message or "").split("; "):
        found = _NO_MATCH.match(part)
        if found:
            formats = re.findall(r"'([^']*)'", found["want"])
            like = " or ".join(_EXAMPLE.strftime(f) if "%" in f else f for f in formats)
            part = f"expected a date like {like}, got {found['got']}"
        if part and part not in out:
            out.append(part)
    return "; ".join(out)
