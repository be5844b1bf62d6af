"""Pipeline, reps: does a row's rep exist in SIRO? SIRO links an engagement's users to its own users
by email; a row none of whose engagement users is an active SIRO user is accepted by the API and
then never matches a recording. With SIRO's users fetched once a run (``upload.calls``), each
row's emails are looked up in that set; the reason (a :class:`~bulk_sync.notes.UnknownReps`: each
rep's email, disabled or missing) joins the row's ``matching-warning`` (or, with
``--require-known-reps``, makes it ``invalid``: ``unknown-rep``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .. import mapping
from ..notes import UnknownReps

_EMAIL_TARGET = re.compile(r"engagementUsers\[\d+\]\.email")
PEOPLE_TARGET = "engagementUsers[]"


@dataclass(frozen=True)
class RepCheck:
    """SIRO's active users' emails (lower-case), and what a row without a known rep becomes."""

    known: frozenset[str]
    required: bool = False  # --require-known-reps: invalid (unknown-rep) rather than a warning
    disabled: frozenset[str] = frozenset()  # emails of SIRO users who are disabled (and not also active)
    source: str = "SIRO"  # where the users came from, for messages


def emails_of(values: dict[str, Any]) -> tuple[str | None, ...]:
    """Each engagement user's email in a record's values (None for a user without one)."""
    users = values.get("engagementUsers") or ()
    return tuple(u.get("email") if isinstance(u, dict) else None for u in users)


def rep_reason(emails: Iterable[str | None], check: RepCheck) -> UnknownReps | None:
    """Why SIRO will not link the row to one of its users, or None (a known rep, or no user at all:
    that is a matching reason of its own). Each rep is named with why: a disabled SIRO user (re-enable
    them) or none at all (add them, or correct the email in the CRM)."""
    emails = tuple(emails)
    if not emails:
        return None
    real = list(dict.fromkeys(e.strip() for e in emails if isinstance(e, str) and e.strip()))
    if any(e.lower() in check.known for e in real):
        return None
    return UnknownReps(tuple((e, "disabled" if e.lower() in check.disabled else "missing") for e in real))


def email_columns(mc: mapping.MappedChunk) -> list[list[Any]]:
    """The chunk's columns that hold engagement users' emails (one per ``engagementUsers[N].email``
    field, and the people column, whose values are tuples of users)."""
    return [
        col
        for f, col in zip(mc.bound.spec.fields, mc.cols, strict=True)
        if f.target == PEOPLE_TARGET or _EMAIL_TARGET.fullmatch(f.target)
    ]


def email_header(bound: mapping.BoundMapping) -> str | None:
    """The spreadsheet column of the first engagement user's email (for an ``unknown-rep`` error)."""
    for f in bound.spec.fields:
        if (f.target == PEOPLE_TARGET or _EMAIL_TARGET.fullmatch(f.target)) and f.spec.column:
            return str(bound.columns.get(f.spec.column, f.spec.column))
    return None


def rep_reasons(
    mc: mapping.MappedChunk,
    rows: list[int],
    check: RepCheck,
    shapes: list[int],
    memo: dict[tuple[int, tuple[Any, ...]], UnknownReps | None],
) -> list[UnknownReps | None]:
    """The rep reason of each of ``rows`` (valid rows of ``mc``), worked out once per distinct
    (row shape, emails) pair: reps are few, rows many."""
    cols = email_columns(mc)
    out: list[UnknownReps | None] = []
    for i in rows:
        key = (shapes[i], tuple(_hashable(col[i]) for col in cols))
        if key not in memo:
            memo[key] = rep_reason(emails_of(mc.record(i).values), check)
        out.append(memo[key])
    return out


def _hashable(value: Any) -> Any:
    if type(value) is tuple:  # a people cell: its users' emails
        return tuple(u.get("email") if isinstance(u, dict) else None for u in value)
    return value if type(value) is str or value is None else id(type(value))
