"""Report stage, forecast: of the rows SIRO takes in a run, how many it can match to recordings, and
why not the others (by reason, by rep, by file). Counted from each row's warnings (the
:class:`~bulk_sync.notes.CannotMatch` among them), made text only when the forecast is shown.

A row SIRO can match has a start and an end time, an appointment-type activity (MEETING, EVENT,
APPOINTMENT) and, when SIRO's users were fetched, an engagement user who is an active SIRO user.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .notes import (
    PREDICTED_CHANGED,
    PREDICTED_NEW,
    REP_PHRASES,
    MatchReason,
    RepStatus,
    RowNote,
    RowWarnings,
    UnknownReps,
)

TOP = 5

# a reason counted without the reps' emails (the emails: by rep)
REP_REASONS: dict[RepStatus, str] = {s: f"rep is {p}" for s, p in REP_PHRASES.items()}


@dataclass
class Forecast:
    """Rows SIRO takes in this run (synced; valid in a dry run) and how many of them it can match."""

    rows: int = 0
    matchable: int = 0
    causes: Counter[MatchReason | RepStatus] = field(default_factory=Counter)  # reason -> rows
    reps: Counter[str] = field(default_factory=Counter)  # unknown rep's email -> rows
    rep_status: dict[str, RepStatus] = field(default_factory=dict)  # unknown rep's email -> why
    files: Counter[str] = field(default_factory=Counter)  # file -> rows SIRO cannot match
    reps_checked: str | None = None  # how the reps were checked ("N active SIRO users"), or why not
    applies: bool = True  # False for opportunities: SIRO matches only engagements to recordings

    def add(self, file: str, warnings: RowWarnings | None, n: int = 1) -> None:
        if not self.applies:
            return
        self.rows += n
        cannot = warnings.cannot_match() if warnings is not None else None
        if cannot is None:
            self.matchable += n
            return
        self.files[file] += n
        for reason in cannot.reasons:
            if not isinstance(reason, UnknownReps) or not reason.reps:
                self.causes[reason] += n
                continue
            for status in dict.fromkeys(s for _, s in reason.reps):
                self.causes[status] += n
            for email, status in reason.reps:
                self.reps[email] += n
                self.rep_status[email] = status

    @property
    def reasons(self) -> Counter[str]:
        """Rows by the reason SIRO cannot match them, as the forecast says it."""
        out: Counter[str] = Counter()
        for cause, n in self.causes.items():
            out[REP_REASONS[cause] if isinstance(cause, str) else str(cause)] += n
        return out

    def _said(self, email: str) -> str:
        return REP_PHRASES[self.rep_status.get(email, "missing")]

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
        if self.causes:
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


def predicted(effect: Counter[RowNote], counts: Counter[str]) -> dict[str, int]:
    """A dry run with a state file: what a run would do with its rows (``effect``: the valid rows'
    notes, counted; ``counts``: the rows by status)."""
    return {
        "new": effect.get(PREDICTED_NEW, 0),
        "changed": effect.get(PREDICTED_CHANGED, 0),
        "unchanged": counts.get("unchanged", 0),
        "invalid": counts.get("invalid", 0),
    }
