"""CLI, outputs: a job's events on the terminal (the job writes the report and the error files):
the progress bar, the problems `validate` lists on stderr, the lines of what it does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..job import Events
from ..report import GOOD, ResultBlock, RowResult, Summary
from ..signals import hold
from .process import tuned_for_a_run
from .progress import err, log, progress, say

LIST_LIMIT = 1000  # `validate` prints this many row problems; the report has them all


class CliEvents(Events):
    """A job's events on the terminal: lines of what it does on stdout (not with --quiet), warnings
    and errors on stderr, the progress bar (or heartbeat), the problems `validate` lists, --show's
    payloads as JSON on stdout; every message in the CLI's log too."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.listing = args.command == "validate" and not args.quiet
        self.warnings = bool(getattr(args, "warnings", False))
        self.listed = 0
        self.bar: Callable[[RowResult | ResultBlock | int | None], None] = lambda r: None
        self.note: Callable[[str], None] = err
        self.tuned: contextlib.AbstractContextManager[None] | None = None

    def info(self, text: str) -> None:
        say(self.args, text)
        log.info("%s", text)

    def warning(self, text: str) -> None:
        err(f"warning: {text}")
        log.warning("%s", text)

    def error(self, text: str) -> None:
        err(f"error: {text}")

    def notice(self, text: str) -> None:
        self.note(text)

    def started(self, estimated_rows: int | None) -> None:
        self.bar, self.note = progress(self.args, estimated_rows)
        self.tuned = tuned_for_a_run()  # the CLI owns its process: set for the rows' pass, once planned
        self.tuned.__enter__()

    def payload(self, body: dict[str, Any]) -> None:
        print(json.dumps(body, indent=2, ensure_ascii=False))

    def row(self, result: RowResult | ResultBlock) -> None:
        if self.listing:
            if self.listed >= LIST_LIMIT:  # past the limit the lines are only counted
                self.listed += line_count(result, self.warnings)
            else:
                noted = result.noted() if isinstance(result, ResultBlock) else (result,)
                for r in noted:
                    for line in problem_lines(r, self.warnings):
                        self.listed += 1
                        if self.listed <= LIST_LIMIT:  # stderr (stdout is --show's JSON), above the bar
                            self.note(line)
        self.bar(result)

    def ahead(self, rows: int) -> None:
        self.bar(rows)

    def finished_rows(self, summary: Summary | None) -> None:
        if self.tuned is not None:
            self.tuned.__exit__(None, None, None)
            self.tuned = None
        hold()  # the run's event loop let go of the signals: noted again, until the end
        self.bar(None)
        if self.listed > LIST_LIMIT:
            self.note(f"... and {self.listed - LIST_LIMIT:,} more row problems: every one is in the report")
        warned = sum(summary.warnings.values()) if summary is not None else 0
        if self.listing and not self.warnings and warned:
            self.note(
                f"{warned:,} warning{'s' if warned != 1 else ''} not listed (counted by kind below; "
                "--warnings lists them, and every one is in the report)"
            )


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
