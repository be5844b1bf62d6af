"""Job, result: what a job did, as one object: the counts, the error types and warnings, the
forecast, the mirror, the predicted effect of a dry run, the outputs written, the exit code and the
summary JSON's data.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EXIT_OK, EXIT_ROWS_FAILED, UsageError
from ..report import GOOD, Summary


@dataclass
class SyncResult:
    """The outcome of :meth:`Sync.run`, :meth:`Sync.validate` or :meth:`Sync.retry`.

    ``exit_code`` is what a scheduler should see (0 every row fine, or within ``max_failures``;
    1 rows did not sync; 2 could not start or a guard held it; 3 stopped early); ``outputs`` the
    files written, the report first; ``as_dict()`` the summary JSON."""

    command: str
    exit_code: int
    summary: Summary | None = None
    outputs: list[Path] = field(default_factory=list)
    dry_run: bool = False
    failed_rows: int = 0  # rows that did not sync (or, dry, are not valid)
    allowed_failures: int | None = None  # max_failures, in rows (None: none allowed)
    nothing_to_retry: bool = False  # a retry whose report had every row synced: nothing was done
    problems: list[str] = field(default_factory=list)  # outputs that could not be written, and why
    mapping: str | None = None  # the mapping used (a retry's: the one its report's run used)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def report(self) -> Path | None:
        return self.outputs[0] if self.outputs else None

    @property
    def counts(self) -> dict[str, int]:
        """Rows by status: synced, unchanged, valid, invalid, rejected, failed, not_sent, skipped."""
        return dict(self.summary.counts) if self.summary is not None else {}

    @property
    def error_types(self) -> Counter[str]:
        return Counter(self.summary.error_types) if self.summary is not None else Counter()

    @property
    def warnings(self) -> Counter[str]:
        return Counter(self.summary.warnings) if self.summary is not None else Counter()

    @property
    def mirror(self) -> dict[str, Any] | None:
        return self.summary.mirror if self.summary is not None else None

    @property
    def predicted(self) -> dict[str, int] | None:
        """A dry run's predicted effect per the state (new, changed, unchanged), or None."""
        return self.summary.predicted() if self.summary is not None else None

    @property
    def ok(self) -> bool:
        return self.exit_code == EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        """The summary JSON's data (what ``<report>-summary.json`` holds)."""
        return dict(self.data)


def allowed(max_failures: int | str | None, rows: int) -> int | None:
    """``max_failures`` in rows: ``N`` rows, or ``"N%"`` of the rows read (rounded down)."""
    if max_failures is None:
        return None
    text = str(max_failures)
    try:
        if text.endswith("%"):
            pct = float(text[:-1])
            if not 0 <= pct <= 100:
                raise ValueError
            return int(rows * pct / 100)
        n = int(text)
        if n < 0:
            raise ValueError
        return n
    except ValueError:
        raise UsageError(
            f"--max-failures takes a row count or a percentage (e.g. 25 or 2%), not {text!r}"
        ) from None


def verdict(summary: Summary, max_failures: int | str | None) -> tuple[int, int, int | None]:
    """(exit code, rows that did not sync, rows allowed not to) of a run that was not aborted."""
    bad = sum(n for status, n in summary.counts.items() if status not in GOOD)
    limit = allowed(max_failures, summary.rows)
    if bad == 0 or (limit is not None and bad <= limit):
        return EXIT_OK, bad, limit
    return EXIT_ROWS_FAILED, bad, limit
