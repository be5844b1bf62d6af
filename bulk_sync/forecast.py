"""Report stage, forecast: of the rows SIRO takes in a run, how many it can match to recordings, and
why not the others (by reason, by rep, by file). Read from each row's ``matching-warning``, whose
text is made here too (one format, read and written in one place).

A row SIRO can match has a start and an end time, an appointment-type activity (MEETING, EVENT,
APPOINTMENT) and, when SIRO's users were fetched, an engagement user who is an active SIRO user.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

MATCHING = "matching-warning: SIRO cannot match recordings to it: "
REASONS = "; "
NOT_A_USER = "not a SIRO user"
DISABLED_USER = "a disabled SIRO user"
SEGMENTS = " | "  # between a row's warnings (report.WARNING_SEPARATOR)
TOP = 5

RepStatus = Literal["missing", "disabled"]
_PHRASE: dict[RepStatus, str] = {"missing": NOT_A_USER, "disabled": DISABLED_USER}
_ADVICE: dict[RepStatus, str] = {
    "missing": "add them in SIRO or correct the email in the CRM",
    "disabled": "re-enable them in SIRO",
}
# the reason, counted without the emails (the emails: by rep)
REP_REASONS: dict[RepStatus, str] = {s: f"rep is {p}" for s, p in _PHRASE.items()}
REP_REASON = REP_REASONS["missing"]
NO_EMAIL = "no engagement user has an email, so SIRO cannot tell which of its users the rep is"
_CLAUSE = re.compile(
    rf"^(?P<emails>.+?) (?:is|are each) (?P<phrase>{NOT_A_USER}|{DISABLED_USER})(?: \(.*\))?$"
)


@dataclass(frozen=True, slots=True)
class RepReason:
    """Why SIRO will not link a row to one of its users: each of its reps' emails, with whether SIRO
    has no such user (``missing``) or has one that is disabled (the fixes differ). No reps: no
    engagement user has an email. Written into the row's matching warning as ``str(reason)`` and
    read back from it by :meth:`read` (one format, here)."""

    reps: tuple[tuple[str, RepStatus], ...]

    def __str__(self) -> str:
        if not self.reps:
            return NO_EMAIL
        by: dict[RepStatus, list[str]] = {}
        for email, status in self.reps:
            by.setdefault(status, []).append(email)
        these = "this rep" if len(self.reps) == 1 else "these reps"
        if len(by) == 1:
            ((status, emails),) = by.items()
            return (
                f"{_who(emails, status)}: {_ADVICE[status]}, or rows with {these} will not match recordings"
            )
        clauses = " and ".join(f"{_who(emails, status)} ({_ADVICE[status]})" for status, emails in by.items())
        return f"{clauses}: rows with {these} will not match recordings"

    @classmethod
    def read(cls, reason: str) -> RepReason | None:
        """The reps a reason names (None: not a rep reason)."""
        if reason == NO_EMAIL:
            return cls(())
        head = reason.split(": ", 1)[0]
        reps: list[tuple[str, RepStatus]] = []
        for clause in head.split(" and "):
            m = _CLAUSE.match(clause)
            if m is None:
                return None
            status: RepStatus = "missing" if m["phrase"] == NOT_A_USER else "disabled"
            reps += [(e.strip(), status) for e in m["emails"].split(",")]
        return cls(tuple(reps))


def _who(emails: list[str], status: RepStatus) -> str:
    if len(emails) == 1:
        return f"{emails[0]} is {_PHRASE[status]}"
    return f"{', '.join(emails)} are each {_PHRASE[status]}"


def reasons_of(warning: str | None) -> list[str]:
    """The reasons in a row's warning cell why SIRO cannot match it ([] when it can)."""
    if not warning:
        return []
    for segment in warning.split(SEGMENTS):
        if segment.startswith(MATCHING):
            return segment[len(MATCHING) :].split(REASONS)
    return []


def unknown_emails(reason: str) -> list[str]:
    """The emails a rep reason names (missing or disabled)."""
    got = RepReason.read(reason)
    return [e for e, _ in got.reps] if got is not None else []


@dataclass
class Forecast:
    """Rows SIRO takes in this run (synced; valid in a dry run) and how many of them it can match."""

    rows: int = 0
    matchable: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # reason -> rows
    reps: Counter[str] = field(default_factory=Counter)  # unknown rep's email -> rows
    rep_status: dict[str, RepStatus] = field(default_factory=dict)  # unknown rep's email -> why
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
            rep = RepReason.read(reason)
            if rep is None or not rep.reps:
                self.reasons[reason] += n
                continue
            for status in dict.fromkeys(s for _, s in rep.reps):
                self.reasons[REP_REASONS[status]] += n
            for email, status in rep.reps:
                self.reps[email] += n
                self.rep_status[email] = status

    def _said(self, email: str) -> str:
        return _PHRASE[self.rep_status.get(email, "missing")]

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
            out.append(
                "  by rep: "
                + ", ".join(f"{e} ({self._said(e)}, {n:,})" for e, n in self.reps.most_common(TOP))
            )
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
        out += [(f"rep {self._said(e)}: {e}", n) for e, n in self.reps.most_common(TOP)]
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
            "reps": {
                e: {"status": self.rep_status.get(e, "missing"), "rows": n}
                for e, n in self.reps.most_common()
            },
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
