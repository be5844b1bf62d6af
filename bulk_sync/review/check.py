"""Review, check: a row as a person edited it, checked by the job API (``Sync.check_rows``: exactly
what `validate` runs), and a run's messages in an ops person's words.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..job import CheckedRow, Sync
from ..job.check import dry_run as _dry_run
from ..report import RowResult

Checked = CheckedRow


def check_rows(
    headers: list[str], rows: list[list[str]], mapping: str, payloads: bool = True
) -> list[CheckedRow]:
    """Each row (cells in ``headers``' order) checked by :meth:`bulk_sync.Sync.check_rows`: as
    `validate` checks a file holding them; with each valid row's payload unless ``payloads`` is
    false (many rows at once: not shown). The page has no SIRO token (the watcher sends): the rep
    check is made by the run that sends them."""
    return Sync(mapping).check_rows(headers, rows, payloads=payloads)


def dry_run(
    path: Path, mapping: str, emit: Callable[[RowResult], None], show: int = 0
) -> list[dict[str, Any]]:
    """The preview's check of a whole file: what `validate` does with it (see bulk_sync.job.check)."""
    return _dry_run(Sync(mapping), path, emit, show)


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
