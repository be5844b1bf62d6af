"""CLI, outputs: where each result of a run goes while it goes on: the report (and its .xlsx), the rows
to fix (for the error file), the problems `validate` lists on stderr, the progress bar.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from ..errorfile import Failures
from ..report import GOOD, TO_FIX, CsvReport, ResultBlock, RowResult, Summary, XlsxReport
from .progress import err

LIST_LIMIT = 1000  # `validate` prints this many row problems; the report has them all


class Outputs:
    """Where each result goes while the run goes on: the report (and its .xlsx), the rows to fix
    (for the error file), the problems listed on stderr (validate), the progress bar."""

    def __init__(
        self,
        report: CsvReport,
        xlsx: XlsxReport | None,
        failures: Failures,
        bar: Callable[[RowResult | ResultBlock | None], None],
        note: Callable[[str], None],
        listing: bool,
        warnings: bool = False,
    ) -> None:
        self.report, self.xlsx, self.failures, self.bar, self.note = report, xlsx, failures, bar, note
        self.listing, self.warnings = listing, warnings
        self.listed = 0

    def emit(self, result: RowResult | ResultBlock) -> None:
        noted: Iterable[RowResult]
        every: Iterable[RowResult]
        if isinstance(result, ResultBlock):  # rows that need no attention (valid, unchanged)
            self.report.write_block(result)
            noted, every = result.noted(), result
        else:
            self.report.write(result)
            noted = every = (result,)
            if result.status in TO_FIX:  # the error file holds the rows a person must fix
                self.failures.add(result)
        if self.listing and self.listed >= LIST_LIMIT:  # past the limit the lines are only counted
            self.listed += line_count(result, self.warnings)
        elif self.listing:
            for r in noted:
                for line in problem_lines(r, self.warnings):
                    self.listed += 1
                    if self.listed <= LIST_LIMIT:  # stderr (stdout is --show's JSON), above the bar
                        self.note(line)
        if self.xlsx is not None:
            for r in every:
                self.xlsx.write(r)
        self.bar(result)

    def close(self, summary: Summary | None, about: dict[str, object]) -> None:
        if self.listed > LIST_LIMIT:
            self.note(f"... and {self.listed - LIST_LIMIT:,} more row problems: every one is in the report")
        warned = sum(summary.warnings.values()) if summary is not None else 0
        if self.listing and not self.warnings and warned:
            self.note(
                f"{warned:,} warning{'s' if warned != 1 else ''} not listed (counted by kind below; "
                "--warnings lists them, and every one is in the report)"
            )
        if self.xlsx is not None:
            try:
                self.xlsx.close(summary, about)
            except Exception as exc:  # xlsxwriter raises its own types for a failed write
                err(f"warning: could not write the XLSX report: {exc}")


def line_count(result: RowResult | ResultBlock, warnings: bool) -> int:
    """How many lines :func:`problem_lines` gives for ``result`` (a block: its warned rows),
    without writing them."""
    if not isinstance(result, ResultBlock):
        return len(problem_lines(result, warnings))
    error = 1 if result.error_type and result.status not in GOOD else 0
    if not warnings:  # a block's rows are fine (valid, unchanged), but for their warnings
        return sum(len(problem_lines(r, False)) for r in result.noted()) if error else 0
    return sum(error + len(w.notes) for w in result.warnings or () if w is not None)


def problem_lines(r: RowResult, warnings: bool) -> list[str]:
    """`validate`'s lines for a row: its problem, and (``warnings``) each of its warnings."""
    where = f"{Path(r.source_file).name}{f' [{r.sheet}]' if r.sheet else ''} row {r.row_number}"
    lines = []
    if r.error_type and r.status not in GOOD:
        column = f" [{r.column}]" if r.column else ""
        lines.append(f"{where}{column}: {r.status} {r.error_type}: {r.message}")
    if r.warning is not None and warnings:
        lines += [f"{where}: warning {w}" for w in r.warning.notes]
    return lines
