"""Report stage, forecast: of the rows SIRO takes in a run, how many it can match to recordings, and
why not the others (by reason, by rep, by file). Read from each row's ``matching-warning``, whose
text is made here too (one format, read and written in one place).

A row SIRO can match has a start and an end time, an appointment-type activity (MEETING, EVENT,
APPOINTMENT) and, when SIRO's users were fetched, an engagement user who is an active SIRO user.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MATCHING = "matching-warning: SIRO cannot match recordings to it: "
REASONS = "; "
NOT_A_USER = "not a SIRO user"
REP_REASON = f"rep is {NOT_A_USER}"  # the reason, counted without the email (the emails: by rep)
SEGMENTS = " | "  # between a row's warnings (report.WARNING_SEPARATOR)
TOP = 5


def reasons_of(warning: str | None) -> list[str]:
    """The reasons in a row's warning cell why SIRO cannot match it ([] when it can)."""
    if not warning:
        return []
    for segment in warning.split(SEGMENTS):
        if segment.startswith(MATCHING):
            return segment[len(MATCHING) :].split(REASONS)
    return []


def unknown_emails(reason: str) -> list[str]:
    """The emails an unknown-rep reason names."""
    for marker in (f" is {NOT_A_USER}:", f" are each {NOT_A_USER}:"):
        if marker in reason:
            return [e.strip() for e in reason.split(marker, 1)[0].split(",")]
    return []


@dataclass
class Forecast:
    """Rows SIRO takes in this run (synced; valid in a dry run) and how many of them it can match."""

    rows: int = 0
    matchable: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # reason -> rows
    reps: Counter[str] = field(default_factory=Counter)  # unknown rep's email -> rows
    files: Counter[str] = field(default_factory=Counter)  # file -> rows SIRO cannot match
    reps_checked: str | None = None  # how the reps were checked ("N active SIRO users"), or why not
    applies: bool = True  # False for opportunities: SIRO matches only engagements to recordings

    def add(self, file: str, warning: str | None, n: int = 1) -> None:
        if not self.applies:
            return
        self.rows += n
        reasons = reasons_of(warning)
        if not reasons:
            self.matchable += n
            return
        self.files[file] += n
        for reason in reasons:
            emails = unknown_emails(reason)
            self.reasons[REP_REASON if emails else reason] += n
            for email in emails:
                self.reps[email] += n

    @property
    def share(self) -> float | None:
        return self.matchable / self.rows if self.rows else None

    def lines(self) -> list[str]:
        """The forecast as text, a few lines (nothing when no row was taken)."""
        if not self.rows:
            return []
        share = self.share or 0.0
        out = [
            f"match forecast: {self.matchable:,} of {self.rows:,} rows SIRO takes can be matched to "
            f"recordings ({share:.1%})"
        ]
        if self.reasons:
            out.append(
                "  cannot match: " + ", ".join(f"{r} ({n:,})" for r, n in self.reasons.most_common(TOP))
            )
        if self.reps:
            out.append("  by rep: " + ", ".join(f"{e} ({n:,})" for e, n in self.reps.most_common(TOP)))
        if len(self.files) > 1:
            out.append("  by file: " + ", ".join(f"{f} ({n:,})" for f, n in self.files.most_common(TOP)))
        if self.reps_checked:
            out.append(f"  reps: {self.reps_checked}")
        return out

    def sheet_lines(self) -> list[tuple[str, object]]:
        """The forecast as (key, value) lines of the XLSX report's Summary sheet."""
        if not self.rows:
            return []
        out: list[tuple[str, object]] = [
            ("match forecast", "rows"),
            ("rows SIRO takes", self.rows),
            ("can be matched", self.matchable),
            ("share", f"{self.share or 0.0:.1%}"),
        ]
        out += [(f"cannot: {r}", n) for r, n in self.reasons.most_common(TOP)]
        out += [(f"unknown rep: {e}", n) for e, n in self.reps.most_common(TOP)]
        if len(self.files) > 1:
            out += [(f"file: {f}", n) for f, n in self.files.most_common(TOP)]
        if self.reps_checked:
            out.append(("reps", self.reps_checked))
        return out

    def data(self) -> dict[str, Any]:
        """For the summary JSON."""
        return {
            "rows": self.rows,
            "matchable": self.matchable,
            "share": None if self.share is None else round(self.share, 4),
            "reasons": dict(self.reasons.most_common()),
            "unknown_reps": dict(self.reps.most_common()),
            "files": dict(self.files.most_common()),
            "reps_checked": self.reps_checked,
        }


# a dry run with a state file notes each valid row with one of these (the predicted effect)
NEW_NOTE = "new: a run would send it (it is not in the state file)"
CHANGED_NOTE = "changed since the last sync: a run would send it"


def predicted(effect: Counter[str], counts: Counter[str]) -> dict[str, int]:
    """A dry run with a state file: what a run would do with its rows (``effect``: the valid rows'
    notes, counted; ``counts``: the rows by status)."""
    return {
        "new": effect.get(NEW_NOTE, 0),
        "changed": effect.get(CHANGED_NOTE, 0),
        "unchanged": counts.get("unchanged", 0),
        "invalid": counts.get("invalid", 0),
    }
