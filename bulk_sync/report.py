"""Report stage: one :class:`RowResult` per input row -> the CSV report and the run summary.

The CSV has one line per input row, in input order, and is written as results arrive (it is
flushed as it goes, so a crash leaves every row decided so far on disk). Cells that a spreadsheet
would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or CR) are prefixed with
``'`` in the report; the payload sent to SIRO is never changed.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO

SYNCED = "synced"  # SIRO acknowledged the record
UNCHANGED = "unchanged"  # the same payload was acknowledged by an earlier run; not sent again
VALID = "valid"  # dry run (`validate`): the payload was built and is valid; nothing was sent
INVALID = "invalid"  # the row could not become a valid payload; not sent
REJECTED = "rejected"  # SIRO answered 4xx for this record; not retried
FAILED = "failed"  # transient failures until the retry budget ran out (or the token was refused)
NOT_SENT = "not_sent"  # the run stopped before this row was sent
SKIPPED = "skipped"  # not a record (e.g. a report footer); the message says which rule
STATUSES = (SYNCED, UNCHANGED, VALID, INVALID, REJECTED, FAILED, NOT_SENT, SKIPPED)
GOOD = frozenset({SYNCED, UNCHANGED, VALID, SKIPPED})


@dataclass(frozen=True, slots=True)
class RowResult:
    source_file: str
    sheet: str | None
    row_number: int
    external_id: str | None
    status: str
    error_type: str | None = None
    column: str | None = None
    message: str | None = None
    http_status: int | None = None
    attempts: int = 0
    siro_id: str | None = None


COLUMNS = [f.name for f in fields(RowResult)]


@dataclass
class Summary:
    """Counts and timings of one run; the CLI prints it and decides the exit code from it."""

    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    counts: Counter[str] = field(default_factory=Counter)
    error_types: Counter[str] = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)
    requests: int = 0
    throttled: int = 0  # 429 answers seen
    aborted: str | None = None  # why the run stopped early, if it did

    def add(self, result: RowResult) -> None:
        self.counts[result.status] += 1
        if result.error_type:
            self.error_types[result.error_type] += 1

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def duration(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.duration if self.duration > 0 else 0.0

    @property
    def all_good(self) -> bool:
        return all(status in GOOD for status in self.counts)


def neutralise(text: str) -> str:
    """Stop spreadsheet programs from running a cell as a formula (CSV/formula injection)."""
    return "'" + text if text and text[0] in "=+-@\t\r" else text


class CsvReport:
    """Streams RowResults to a CSV file (UTF-8 with BOM so Excel shows non-ASCII text right)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = self.path.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._fh)
        self._writer.writerow(COLUMNS)
        self._last_flush = time.monotonic()

    def write(self, result: RowResult) -> None:
        self._writer.writerow(
            ["" if (v := getattr(result, c)) is None else neutralise(str(v)) for c in COLUMNS]
        )
        now = time.monotonic()
        if now - self._last_flush > 1.0:
            self._fh.flush()
            self._last_flush = now

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> CsvReport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_report(path: str | Path) -> list[dict[str, str]]:
    """Read a CSV report back (for `retry` and for tests)."""
    with Path(path).open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))
