"""Notes: what bulk_sync says about a row besides an error, as data. Each kind is a frozen dataclass
with a ``code`` (stable, machine-readable: the summary counts warnings by it) and a ``template`` its
fields fill; the stages hand these objects on, and text is made here only, when an output (the
report, the XLSX, the summary, the terminal, the review page) asks for it with ``str()``.

::

    Note
    ├── RowWarning          what SIRO will make of a row it accepts: the report's ``warning``
    │   ├── EndBeforeStart      end-before-start: endTime ... is before startTime ...
    │   └── CannotMatch         matching-warning: SIRO cannot match recordings to it: <reasons>
    ├── MatchReason         why SIRO cannot match a row to recordings (a CannotMatch's reasons)
    │   ├── NoTimes, NoEndTime, NoStartTime, NoEngagementUser, NotMatchableType
    │   └── UnknownReps         none of its reps is an active SIRO user (each: missing or disabled)
    └── RowNote             the ``message`` of a row that is fine: why it is not sent, or what a
        │                   run would do with it
        ├── Superseded          a later row of the run has the same externalId
        ├── Unchanged           the payload SIRO acknowledged last time
        ├── PredictedNew        a dry run with a state file: a run would send it, it is new
        └── PredictedChanged    ... it changed since the last sync

A row's warnings travel together as :class:`RowWarnings` (written ``a | b`` in the report).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

WARNING_SEPARATOR = " | "  # between a row's warnings in the report's `warning` cell
REASON_SEPARATOR = "; "  # between the reasons of a matching-warning


@dataclass(frozen=True, slots=True)
class Note:
    """A kind of note: ``code`` names it, ``template`` is filled from :meth:`values` (its fields,
    and what a kind works out from them for its text)."""

    code: ClassVar[str]
    template: ClassVar[str]

    def values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def message(self) -> str:
        return self.template.format_map(self.values())

    def __str__(self) -> str:
        return self.message()


# --------------------------------------------------------------------------- matching reasons


@dataclass(frozen=True, slots=True)
class MatchReason(Note):
    """Why SIRO cannot match a row it accepts to recordings."""


@dataclass(frozen=True, slots=True)
class NoTimes(MatchReason):
    code = "no-times"
    template = "no startTime/endTime"


@dataclass(frozen=True, slots=True)
class NoEndTime(MatchReason):
    code = "no-end-time"
    template = "no endTime (the row has a startTime; SIRO needs both)"


@dataclass(frozen=True, slots=True)
class NoStartTime(MatchReason):
    code = "no-start-time"
    template = "no startTime (the row has an endTime; SIRO needs both)"


@dataclass(frozen=True, slots=True)
class NoEngagementUser(MatchReason):
    code = "no-engagement-user"
    template = "no engagement user"


@dataclass(frozen=True, slots=True)
class NotMatchableType(MatchReason):
    """An activityType SIRO does not match (None: not set)."""

    code = "not-matchable-type"
    template = "activityType is {shown}, not MEETING/EVENT/APPOINTMENT"
    activity_type: str | None

    def values(self) -> dict[str, Any]:
        return {"shown": self.activity_type or "not set"}


RepStatus = Literal["missing", "disabled"]
REP_PHRASES: dict[RepStatus, str] = {"missing": "not a SIRO user", "disabled": "a disabled SIRO user"}
REP_ADVICE: dict[RepStatus, str] = {
    "missing": "add them in SIRO or correct the email in the CRM",
    "disabled": "re-enable them in SIRO",
}


@dataclass(frozen=True, slots=True)
class UnknownReps(MatchReason):
    """Why SIRO will not link a row to one of its users: each of its reps' emails, with whether SIRO
    has no such user (``missing``) or has one that is disabled (the fixes differ). No reps: no
    engagement user has an email. Its text has three shapes (no email; one status; both), each a
    template."""

    code = "unknown-rep"
    template = "{who}: {advice}, or rows with {these} will not match recordings"
    template_no_email: ClassVar[str] = (
        "no engagement user has an email, so SIRO cannot tell which of its users the rep is"
    )
    template_mixed: ClassVar[str] = "{clauses}: rows with {these} will not match recordings"
    template_clause: ClassVar[str] = "{who} ({advice})"
    template_one: ClassVar[str] = "{email} is {phrase}"
    template_many: ClassVar[str] = "{emails} are each {phrase}"

    reps: tuple[tuple[str, RepStatus], ...]

    @property
    def emails(self) -> list[str]:
        return [email for email, _ in self.reps]

    def message(self) -> str:
        if not self.reps:
            return self.template_no_email
        by: dict[RepStatus, list[str]] = {}
        for email, status in self.reps:
            by.setdefault(status, []).append(email)
        these = "this rep" if len(self.reps) == 1 else "these reps"
        if len(by) == 1:
            ((status, emails),) = by.items()
            return self.template.format(who=self._who(emails, status), advice=REP_ADVICE[status], these=these)
        clauses = " and ".join(
            self.template_clause.format(who=self._who(emails, status), advice=REP_ADVICE[status])
            for status, emails in by.items()
        )
        return self.template_mixed.format(clauses=clauses, these=these)

    def _who(self, emails: list[str], status: RepStatus) -> str:
        if len(emails) == 1:
            return self.template_one.format(email=emails[0], phrase=REP_PHRASES[status])
        return self.template_many.format(emails=", ".join(emails), phrase=REP_PHRASES[status])


# --------------------------------------------------------------------------- row warnings


@dataclass(frozen=True, slots=True)
class RowWarning(Note):
    """What SIRO will make of a row it accepts; written ``code: message``."""

    def __str__(self) -> str:
        return f"{self.code}: {self.message()}"


@dataclass(frozen=True, slots=True)
class EndBeforeStart(RowWarning):
    """Both are instants and the end comes first: SIRO accepts it, but it is probably a typo."""

    code = "end-before-start"
    template = "endTime {end} is before startTime {start}"
    start: str
    end: str


@dataclass(frozen=True, slots=True)
class CannotMatch(RowWarning):
    code = "matching-warning"
    template = "SIRO cannot match recordings to it: {reasons}"
    reasons: tuple[MatchReason, ...]

    def values(self) -> dict[str, Any]:
        return {"reasons": REASON_SEPARATOR.join(map(str, self.reasons))}

    def with_reason(self, reason: MatchReason) -> CannotMatch:
        return CannotMatch((*self.reasons, reason))


@dataclass(frozen=True, slots=True)
class RowWarnings:
    """The warnings of one row, in the order the report writes them. Its hash is worked out once:
    a dry run's blocks count and write a million rows' warnings, a few distinct objects shared."""

    notes: tuple[RowWarning, ...]
    _hash: int = field(init=False, repr=False, compare=False)
    _text: str | None = field(default=None, init=False, repr=False, compare=False)  # once made

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash(self.notes))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[RowWarnings], tuple[tuple[RowWarning, ...]]]:
        return (RowWarnings, (self.notes,))  # the hash is made again (it differs between processes)

    @property
    def codes(self) -> list[str]:
        return [w.code for w in self.notes]

    def cannot_match(self) -> CannotMatch | None:
        return next((w for w in self.notes if isinstance(w, CannotMatch)), None)

    def __str__(self) -> str:
        if self._text is None:  # a run writes each row's result: the text is made once an object
            object.__setattr__(self, "_text", WARNING_SEPARATOR.join(map(str, self.notes)))
        assert self._text is not None
        return self._text


def warnings_of(*found: RowWarning | None) -> RowWarnings | None:
    """A row's warnings, those that are not None, in this order (None: none)."""
    notes = tuple(w for w in found if w is not None)
    return RowWarnings(notes) if notes else None


# --------------------------------------------------------------------------- notes of rows that are fine


@dataclass(frozen=True, slots=True)
class RowNote(Note):
    """The ``message`` of a row that is fine (not sent, or what a run would do with it)."""


Place = tuple[str, str | None, int]  # a row of the run: file, sheet, row number


@dataclass(frozen=True, slots=True)
class Superseded(RowNote):
    """A later row of the run has the same externalId: that one is sent. ``file``/``sheet``: the
    later row's, when they are not this row's (None: the same)."""

    code = "superseded"
    template = (
        "row {row}{of_file}{in_sheet} has the same externalId {external_id!r} and comes later: "
        "that row is sent, this one is not"
    )
    external_id: str | None
    row: int
    file: str | None = None
    sheet: str | None = None

    @classmethod
    def by(cls, place: Place, later: Place, external_id: str | None) -> Superseded:
        """Row ``place`` superseded by row ``later``."""
        file = later[0] if later[0] != place[0] else None
        sheet = later[1] if later[1] and later[1] != place[1] else None
        return cls(external_id, later[2], file, sheet)

    def values(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "of_file": f" of {self.file}" if self.file is not None else "",
            "in_sheet": f" [{self.sheet}]" if self.sheet is not None else "",
            "external_id": self.external_id,
        }


@dataclass(frozen=True, slots=True)
class Unchanged(RowNote):
    code = "unchanged"
    template = "same payload as the last sync; not sent"


@dataclass(frozen=True, slots=True)
class PredictedNew(RowNote):
    code = "new"
    template = "new: a run would send it (it is not in the state file)"


@dataclass(frozen=True, slots=True)
class PredictedChanged(RowNote):
    code = "changed"
    template = "changed since the last sync: a run would send it"


UNCHANGED_NOTE = Unchanged()
PREDICTED_NEW = PredictedNew()
PREDICTED_CHANGED = PredictedChanged()

# every kind, by code (the docs and the tests read it)
CATALOGUE: dict[str, type[Note]] = {
    kind.code: kind
    for kind in (
        EndBeforeStart,
        CannotMatch,
        NoTimes,
        NoEndTime,
        NoStartTime,
        NoEngagementUser,
        NotMatchableType,
        UnknownReps,
        Superseded,
        Unchanged,
        PredictedNew,
        PredictedChanged,
    )
}


def as_text(value: str | Note | RowWarnings | None) -> str:
    """A report cell's text: a note rendered, a text as it is, None as ``""``."""
    if value is None:
        return ""
    return value if type(value) is str else str(value)
