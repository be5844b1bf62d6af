"""Report stage: one :class:`RowResult` per input row -> the CSV report and the run summary.

The CSV has one line per input row, in input order, and is written as results arrive (it is flushed as it
goes, so a crash leaves every row decided so far on disk). Cells that a spreadsheet would run as a formula
(starting with ``=``, ``+``, ``-``, ``@``, tab or CR) are prefixed with ``'`` in the report; the payload
sent to SIRO is never changed.
"""

from __future__ import annotations

import csv
import operator
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any, SupportsIndex

from .csvfields import long_fields
from .forecast import Forecast, predicted
from .notes import RowNote, RowWarnings, as_text

SYNCED = "synced"  # SIRO acknowledged the record
UNCHANGED = "unchanged"  # the same payload was acknowledged by an earlier run; not sent again
VALID = "valid"  # dry run (`validate`): the payload was built and is valid; nothing was sent
INVALID = "invalid"  # the row could not become a valid payload; not sent
REJECTED = "rejected"  # SIRO answered 4xx for this record; not retried
FAILED = "failed"  # transient failures until the retry budget ran out (or the token was refused)
NOT_SENT = "not_sent"  # the run stopped before this row was sent
SKIPPED = "skipped"  # not a record (e.g. a report footer); the message says which rule
SUPERSEDED = "superseded"  # a later row of the run has the same externalId: that one is sent
STATUSES = (SYNCED, UNCHANGED, VALID, INVALID, REJECTED, FAILED, NOT_SENT, SKIPPED, SUPERSEDED)
GOOD = frozenset({SYNCED, UNCHANGED, VALID, SKIPPED, SUPERSEDED})
TAKEN = frozenset({SYNCED, VALID})  # rows this run puts (or, in a dry run, would put) in SIRO
TO_FIX = frozenset({INVALID, REJECTED})  # a person must fix the row; not_sent/failed only need sending


@dataclass(frozen=True, slots=True)
class RowResult:
    source_file: str
    sheet: str | None
    row_number: int
    external_id: str | None
    status: str
    error_type: str | None = None
    column: str | None = None
    message: str | RowNote | None = None  # a problem's text, or the note of a row that is fine
    http_status: int | None = None
    attempts: int = 0
    siro_id: str | None = None
    warning: RowWarnings | None = None  # what SIRO will make of a row it accepts

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[type[RowResult], tuple[Any, ...]]:
        # pickled as its values (a dry run's worker sends thousands a chunk): the state dataclasses
        # pickle for a frozen slots class (a fields() call each way) is 5x slower; __reduce_ex__
        # rather than __reduce__, which object.__reduce_ex__ reaches only after a slower lookup
        return (RowResult, VALUES(self))


COLUMNS = [f.name for f in fields(RowResult)]
VALUES = operator.attrgetter(*COLUMNS)  # a RowResult's values, as a tuple (its fields are flat)


class ResultBlock:
    """The results of consecutive rows of one file that share a status (a dry run's valid rows, a
    rerun's unchanged ones), kept as columns: far cheaper than a RowResult per row. Iterating
    gives the RowResults. ``messages``/``warnings`` are per row (None: none), or None."""

    __slots__ = (
        "error_type",
        "external_ids",
        "messages",
        "row_numbers",
        "sheet",
        "source_file",
        "status",
        "warnings",
    )

    def __init__(
        self,
        source_file: str,
        sheet: str | None,
        status: str,
        row_numbers: list[int],
        external_ids: list[str | None],
        messages: list[str | RowNote | None] | None = None,
        warnings: list[RowWarnings | None] | None = None,
        error_type: str | None = None,
    ) -> None:
        self.source_file, self.sheet, self.status = source_file, sheet, status
        self.row_numbers, self.external_ids = row_numbers, external_ids
        self.messages, self.warnings = messages, warnings
        self.error_type = error_type  # the same for every row of the block (rows not sent: `aborted`)

    def __len__(self) -> int:
        return len(self.row_numbers)

    def __iter__(self) -> Iterator[RowResult]:
        notes = self.messages or [None] * len(self)
        warned = self.warnings or [None] * len(self)
        kind = self.error_type
        for row, ext, note, w in zip(self.row_numbers, self.external_ids, notes, warned, strict=True):
            yield RowResult(self.source_file, self.sheet, row, ext, self.status, kind, None, note, warning=w)

    def noted(self) -> Iterator[RowResult]:
        """Only the rows that carry a warning."""
        if self.warnings is not None:
            yield from (r for r in self if r.warning)


@dataclass
class Summary:
    """Counts and timings of one run; the CLI prints it and decides the exit code from it."""

    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    counts: Counter[str] = field(default_factory=Counter)
    error_types: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)  # by code: rows SIRO accepts, with a catch
    files: list[str] = field(default_factory=list)
    sources: list[tuple[str, str | None]] = field(default_factory=list)  # (path, sheet) of each of files
    state_read: str | None = None  # a dry run: the state file it read (the predicted effect)
    requests: int = 0
    throttled: int = 0  # 429 answers seen
    aborted: str | None = None  # why the run stopped early, if it did
    aborted_code: int = 3  # its exit code: 2 when it could not start (nothing sent), 3 mid-run
    token_refused: bool = False  # it stopped because SIRO refused the token (a rerun will not help)
    report_incomplete: str | None = None  # why the report does not hold every row, if it does not
    forecast: Forecast = field(default_factory=Forecast)  # of the rows SIRO takes, what it can match
    mirror: dict[str, object] | None = None  # --mirror: its window and what it removed (or would)
    effect: Counter[RowNote] | None = None  # a dry run with a state file: valid rows new, changed
    workers: int = 0  # a dry run: the worker processes that mapped its chunks (0: none)
    batches: dict[str, object] | None = None  # a run that sent batches: {"size": 400, "learned": True}

    def add(self, result: RowResult) -> None:
        self.counts[result.status] += 1
        if result.error_type:
            self.error_types[result.error_type] += 1
        if result.warning is not None:
            self.warnings.update(result.warning.codes)
        if result.status in TAKEN:
            self.forecast.add(result.source_file, result.warning)
        if self.effect is not None and result.status == VALID and isinstance(result.message, RowNote):
            self.effect[result.message] += 1  # a row shown on its own (--show): its predicted effect

    def add_block(self, block: ResultBlock) -> None:
        self.counts[block.status] += len(block)
        if block.error_type:
            self.error_types[block.error_type] += len(block)
        warned = Counter(block.warnings) if block.warnings is not None else Counter({None: len(block)})
        for w, n in warned.items():
            if w is not None:
                for code in w.codes:
                    self.warnings[code] += n
            if block.status in TAKEN:
                self.forecast.add(block.source_file, w, n)
        if self.effect is not None and block.status == VALID and block.messages is not None:
            for m, n in Counter(block.messages).items():
                if isinstance(m, RowNote):
                    self.effect[m] += n

    def predicted(self) -> dict[str, int] | None:
        """A dry run with a state file: what a run would do, by row."""
        return None if self.effect is None else predicted(self.effect, self.counts)

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def duration(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.duration if self.duration > 0 else 0.0


def neutralise(text: str) -> str:
    """Stop spreadsheet programs from running a cell as a formula (CSV/formula injection)."""
    return "'" + text if text and text[0] in "=+-@\t\r" else text


_RISKY = re.compile(r'[",\r\n]')  # a cell with these is quoted (the csv module's QUOTE_MINIMAL)
_RISKY_START = re.compile(r"(?:^|\x1f)[=+\-@\t\r]")  # cells that start like a formula


def _csv_cell(text: str) -> str:
    text = neutralise(text)
    return '"' + text.replace('"', '""') + '"' if _RISKY.search(text) else text


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
        r, n = result, neutralise  # the fields in COLUMNS order; None is written as ""
        self._writer.writerow(
            (
                n(r.source_file), n(r.sheet or ""), r.row_number, n(r.external_id or ""), n(r.status),
                n(r.error_type or ""), n(r.column or ""), n(as_text(r.message)),
                "" if r.http_status is None else r.http_status, r.attempts, n(r.siro_id or ""),
                n(as_text(r.warning)),
            )
        )  # fmt: skip
        self._flush_now_and_then()

    def write_block(self, block: ResultBlock) -> None:
        """The block's lines, formatted as the csv module would write them (a test checks it),
        without a list per row: most cells of these rows are the same for the whole block."""
        cell = _csv_cell
        head = f"{cell(block.source_file)},{cell(block.sheet or '')},"
        ids = block.external_ids
        joined = "\x1f".join("" if e is None else e for e in ids)
        if _RISKY.search(joined) or _RISKY_START.search(joined):  # some need quotes or a guard
            ids = [None if e is None else cell(e) for e in ids]
        status = f"{cell(block.status)},{cell(block.error_type or '')}"
        texts = block.messages
        if block.warnings is None and (not texts or texts.count(texts[0]) == len(texts)):
            # one message for every row (an unchanged run): list.count compares by identity first
            tail = f"{status},,{cell(as_text(texts[0] if texts else None))},,0,,\r\n"
            rows = zip(block.row_numbers, ids, strict=True)
            lines = [f"{head}{row},{'' if ext is None else ext},{tail}" for row, ext in rows]
        else:
            lines = self._block_lines(block, head, ids, status)
        self._fh.write("".join(lines))
        self._flush_now_and_then()

    @staticmethod
    def _block_lines(block: ResultBlock, head: str, ids: list[str | None], status: str) -> list[str]:
        cell = _csv_cell
        tails: dict[tuple[str | RowNote | None, RowWarnings | None], str] = {}
        texts = block.messages or [None] * len(block)
        warned = block.warnings or [None] * len(block)
        lines = []
        for row, ext, note, w in zip(block.row_numbers, ids, texts, warned, strict=True):
            tail = tails.get((note, w))
            if tail is None:
                tail = tails[(note, w)] = f"{status},,{cell(as_text(note))},,0,,{cell(as_text(w))}\r\n"
            lines.append(f"{head}{row},{'' if ext is None else ext},{tail}")
        return lines

    def _flush_now_and_then(self) -> None:
        """At most once a second, so that a report being written can be watched (tail -f)."""
        now = time.monotonic()
        if now - self._last_flush > 1.0:
            self._fh.flush()
            self._last_flush = now

    def close(self) -> None:
        """Close the file; a write that fails here (a full disk) is kept in ``error``, not raised:
        the run's outcome stands, and the caller says the report is incomplete."""
        try:
            self._fh.close()
        except OSError as exc:
            self.error = exc

    error: OSError | None = None

    def __enter__(self) -> CsvReport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_report(path: str | Path) -> list[dict[str, str]]:
    """Read a CSV report back (for `retry` and for tests)."""
    with long_fields(), Path(path).open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- XLSX report

_HEADINGS = {"bulk_sync run", "status", "error type", "warning", "match forecast"}  # bold in Summary
XLSX_ALL_ROWS_LIMIT = 500_000  # above this many rows the Results sheet keeps the non-synced rows only
_EXCEL_MAX_ROWS = 1_048_576


class XlsxReport:
    """The report as a workbook for people: a Summary sheet, and a Results sheet (frozen header,
    autofilter, rows that did not sync highlighted). Written with xlsxwriter in constant-memory
    mode: rows stream to disk as they come. Past ``XLSX_ALL_ROWS_LIMIT`` rows only the rows that
    did not sync are added (the CSV report keeps every row); the Summary says so."""

    def __init__(self, path: str | Path, *, all_rows_limit: int = XLSX_ALL_ROWS_LIMIT) -> None:
        import xlsxwriter

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wb = xlsxwriter.Workbook(
            str(self.path), {"constant_memory": True, "strings_to_formulas": False}
        )
        self._summary_ws = self._wb.add_worksheet("Summary")
        self._ws = self._wb.add_worksheet("Results")
        self._bold = self._wb.add_format({"bold": True})
        self._bad = self._wb.add_format({"bg_color": "#FFD7D7"})
        self._bad_quoted = self._wb.add_format({"bg_color": "#FFD7D7", "quote_prefix": True})
        self._quoted = self._wb.add_format({"quote_prefix": True})
        self._warn = self._wb.add_format({"bg_color": "#FFF2C2"})
        self._warn_quoted = self._wb.add_format({"bg_color": "#FFF2C2", "quote_prefix": True})
        self._limit = min(all_rows_limit, _EXCEL_MAX_ROWS - 1)
        self._row = 0
        self._seen = 0
        self._left_out = 0
        self._ws.freeze_panes(1, 0)
        for col, name in enumerate(COLUMNS):
            self._ws.write_string(0, col, name, self._bold)
        self._ws.set_column(0, 0, 28)
        self._ws.set_column(4, 5, 16)
        self._ws.set_column(7, 7, 60)
        self._ws.set_column(len(COLUMNS) - 1, len(COLUMNS) - 1, 60)

    def write(self, result: RowResult) -> None:
        self._seen += 1
        bad = result.status not in GOOD
        if (self._seen > self._limit and not bad) or self._row >= _EXCEL_MAX_ROWS - 1:
            self._left_out += 1
            return
        self._row += 1
        # rows that did not sync in red, rows SIRO takes with a warning in yellow
        plain, quoted = (
            (self._bad, self._bad_quoted) if bad else (self._warn, self._warn_quoted) if result.warning
            else (None, self._quoted)
        )  # fmt: skip
        for col, name in enumerate(COLUMNS):
            v = getattr(result, name)
            if v is None:
                if plain is not None:
                    self._ws.write_blank(self._row, col, None, plain)
                continue
            if isinstance(v, int):
                self._ws.write_number(self._row, col, v, plain)
                continue
            text = str(v)
            risky = bool(text) and text[0] in "=+-@\t\r"  # shown as text, never run as a formula
            self._ws.write_string(self._row, col, text, quoted if risky else plain)

    def close(self, summary: Summary | None = None, extra: dict[str, object] | None = None) -> None:
        self._ws.autofilter(0, 0, max(self._row, 1), len(COLUMNS) - 1)
        ws = self._summary_ws
        ws.set_column(0, 0, 28)
        ws.set_column(1, 1, 60)
        lines: list[tuple[str, object]] = [("bulk_sync run", ""), *(extra or {}).items()]
        if summary is not None:
            lines += [
                ("files", "; ".join(summary.files)),
                ("rows", summary.rows),
                ("duration (s)", round(summary.duration, 1)),
                ("rows/s", round(summary.rows_per_second)),
                ("requests", summary.requests),
                ("answered 429", summary.throttled),
            ]
            if summary.aborted:
                lines.append(("aborted", summary.aborted))
            lines.append(("", ""))
            lines.append(("status", "rows"))
            lines += [(s, summary.counts[s]) for s in STATUSES if summary.counts.get(s)]
            if summary.error_types:
                lines.append(("", ""))
                lines.append(("error type", "rows"))
                lines += list(summary.error_types.most_common())
            if summary.warnings:
                lines.append(("", ""))
                lines.append(("warning", "rows"))
                lines += list(summary.warnings.most_common())
            lines += [("", ""), *summary.forecast.sheet_lines()] if summary.forecast.rows else []
        if self._left_out:
            note = f"{self._left_out:,} rows that synced are not listed here (over {self._limit:,} rows); "
            lines += [("", ""), ("note", note + "the CSV report has every row")]
        for r, (key, value) in enumerate(lines):
            bold = self._bold if key in _HEADINGS else None
            ws.write_string(r, 0, key, bold)
            if isinstance(value, int | float) and not isinstance(value, bool):
                ws.write_number(r, 1, value)
            elif value != "":
                ws.write_string(r, 1, str(value), self._quoted if str(value)[:1] in "=+-@" else None)
        self._wb.close()


def summary_dict(summary: Summary, exit_code: int, **extra: object) -> dict[str, object]:
    """The run summary for `--summary-json` and notifications: machine-readable, no secrets."""
    return {
        "exit_code": exit_code,
        "rows": summary.rows,
        "counts": {s: summary.counts.get(s, 0) for s in STATUSES},
        "error_types": dict(summary.error_types.most_common()),
        "warnings": dict(summary.warnings.most_common()),
        "duration_seconds": round(summary.duration, 3),
        "rows_per_second": round(summary.rows_per_second, 1),
        "requests": summary.requests,
        "throttled": summary.throttled,
        "batches": summary.batches,
        "aborted": summary.aborted,
        "report_incomplete": summary.report_incomplete,
        "files": list(summary.files),
        "forecast": summary.forecast.data() if summary.forecast.applies else None,
        "mirror": summary.mirror,
        "predicted": summary.predicted(),
        "predicted_from": summary.state_read,  # a dry run with a state file: the one it read
        **extra,
    }
