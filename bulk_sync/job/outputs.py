"""Job, outputs: what a job writes and where. :class:`Outputs` names the files (the report, its
.xlsx, the summary JSON) and the end-of-run webhook; :class:`RowWriter` puts each result where it
goes while the run goes on (the report, the .xlsx, the rows to fix for the error file) and hands
it to the caller's events.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errorfile import Failures
from ..errors import ConfigError
from ..pipeline.finish import Outcome, notify, outcome_data, write_summary_json
from ..report import TO_FIX, CsvReport, ResultBlock, RowResult, Summary, XlsxReport
from .events import Events


@dataclass(frozen=True)
class Outputs:
    """Where a job's outputs go. ``report``: the CSV report (``.xlsx`` or ``.xlsm``: the CSV goes
    beside it and an .xlsx is written too); None: ``<report_dir>/<first file's name>-<time>.csv``.
    ``summary_json``: the run's outcome as JSON (None: ``<report>-summary.json`` beside the
    report). ``notify_url``: a webhook that gets the outcome (``notify_on="failure"``: only when
    the exit code is not 0); ``review_url``: the run's review page, written in the summary."""

    report: Path | str | None = None
    report_dir: Path | str = "reports"
    xlsx: bool = False
    summary_json: Path | str | None = None
    notify_url: str | None = None
    notify_on: Literal["always", "failure"] = "always"
    review_url: str | None = None

    def report_path(self, first_file: Path | None) -> tuple[Path, bool]:
        """The CSV report's path, and whether an .xlsx goes beside it."""
        if self.report:
            path = Path(self.report)
        else:
            stem = first_file.stem if first_file is not None else "run"
            path = Path(self.report_dir) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.csv"
        if path.suffix.lower() in (".xlsx", ".xlsm"):  # they want it in Excel: the CSV goes beside it
            return path.with_suffix(".csv"), True
        return path, self.xlsx

    def summary_path(self, report: Path | None) -> Path | None:
        if self.summary_json:
            return Path(self.summary_json)
        return report.with_name(report.stem + "-summary.json") if report is not None else None


class RowWriter:
    """Each result, while the run goes on: to the report (and its .xlsx), the rows to fix to
    ``failures`` (for the error file), then to the caller's events."""

    def __init__(self, report_path: Path, xlsx: bool, failures: Failures, events: Events) -> None:
        try:
            self.report = CsvReport(report_path)
            self.xlsx = XlsxReport(report_path.with_suffix(".xlsx")) if xlsx else None
        except OSError as exc:
            raise ConfigError(f"cannot write the report {report_path}: {exc.strerror or exc}") from exc
        self.failures, self.events = failures, events
        self.row = events.row

    def emit(self, result: RowResult | ResultBlock) -> None:
        if isinstance(result, ResultBlock):  # rows that need no attention (valid, unchanged)
            self.report.write_block(result)
        else:
            self.report.write(result)
            if result.status in TO_FIX:  # the error file holds the rows a person must fix
                self.failures.add(result)
        if self.xlsx is not None:
            for r in result if isinstance(result, ResultBlock) else (result,):
                self.xlsx.write(r)
        self.row(result)

    def close(self, summary: Summary | None, about: dict[str, object]) -> None:
        self.events.finished_rows(summary)
        if self.xlsx is not None:
            try:
                self.xlsx.close(summary, about)
            except Exception as exc:  # xlsxwriter raises its own types for a failed write
                self.events.warning(f"could not write the XLSX report: {exc}")


@dataclass(frozen=True)
class About:
    """What a job was, for its summary JSON: the command, its files, its mapping, when it began."""

    command: str
    files: Sequence[str] = ()
    mapping: str | None = None
    started_at: str | None = None


def write_outcome(
    about: About,
    outputs: Outputs,
    code: int,
    summary: Summary | None,
    written: list[Path],
    events: Events,
    *,
    report: Path | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """After the job (or after it could not start): the summary JSON (beside the report unless told
    where) and the webhook; the outcome's data. A problem with either is a warning: the job's result
    stands."""
    outcome = Outcome(
        about.command,
        code,
        files=list(about.files),
        started_at=about.started_at,
        written=written,
        error=error,
        mapping=str(Path(about.mapping).resolve()) if about.mapping else None,
        review_url=outputs.review_url,
    )
    data = outcome_data(summary, outcome)
    target = outputs.summary_path(report)
    if target is not None:  # beside the report by default: the review page lists the run from it
        problem = write_summary_json(str(target), data)
        if problem:
            events.warning(problem)
    problem = notify(outputs.notify_url, data, notify_on=outputs.notify_on, command=about.command, code=code)
    if problem:
        events.warning(f"{problem} (the run's result is unchanged)")
    return data
