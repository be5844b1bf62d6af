"""Pipeline, warnings: rules about a valid row that do not stop it from being sent: SIRO will not match
it to a recording (matching), its end is before its start, its body is large.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .. import mapping, payload
from ..notes import (
    CannotMatch,
    EndBeforeStart,
    MatchReason,
    NoEndTime,
    NoEngagementUser,
    NoStartTime,
    NoTimes,
    NotMatchableType,
    RowWarnings,
    UnknownReps,
    warnings_of,
)
from .reps import RepCheck, rep_reasons


def row_warnings(
    mc: mapping.MappedChunk,
    cc: payload.CheckedChunk,
    rows: list[int],
    memo: dict[tuple[int, Any], RowWarnings | None],
    reps: RepCheck | None = None,
    rep_memo: dict[tuple[int, tuple[Any, ...]], UnknownReps | None] | None = None,
) -> list[RowWarnings | None]:
    """The warning of each valid row. Matching depends only on the row's shape and activityType, so
    it is worked out once per pair (a rep's email, with ``reps``, once per shape and emails);
    endTime before startTime is compared row by row (as text when both are UTC date-times written
    by `datetime:`, whose text order is their time order)."""
    if mc.bound.spec.resource != "engagements":  # only engagements are matched to recordings
        return [None] * len(rows)
    kinds = mc.column("engagementType.activityType")
    shape = cc.shape
    contiguous = rows[-1] - rows[0] + 1 == len(rows)
    take = (lambda col: col[rows[0] : rows[-1] + 1]) if contiguous else (lambda col: [col[i] for i in rows])
    keys = list(zip(take(shape), take(kinds) if kinds is not None else [None] * len(rows), strict=True))
    for key in set(keys):
        if key not in memo:
            memo[key] = warnings_of(matching_warning(mc.record(rows[keys.index(key)]).values))
    out = [memo[k] for k in keys]
    if reps is not None:
        reasons = rep_reasons(mc, rows, reps, shape, rep_memo if rep_memo is not None else {})
        joined: dict[tuple[RowWarnings | None, UnknownReps], RowWarnings] = {}  # one object a pair
        for k, r in enumerate(reasons):
            if r is not None:
                got = joined.get((out[k], r))
                if got is None:
                    got = joined[(out[k], r)] = with_reason(out[k], r)
                out[k] = got
    starts, ends = mc.column("startTime"), mc.column("endTime")
    if starts is None or ends is None:
        return out
    as_text = all(
        f.spec.datetime is not None and f.spec.default is None and not f.kind.local_time
        for f in mc.bound.spec.fields
        if f.target in ("startTime", "endTime")
    )
    pairs = zip(take(starts), take(ends), strict=True)
    maybe = (
        [k for k, (a, b) in enumerate(pairs) if type(a) is str and type(b) is str and b < a]
        if as_text
        else [k for k, (a, b) in enumerate(pairs) if type(a) is str and type(b) is str]
    )
    for k in maybe:
        order = end_before_start(starts[rows[k]], ends[rows[k]])
        if order is not None:
            known = out[k]
            out[k] = warnings_of(order, *(known.notes if known is not None else ()))
    return out


MATCHABLE_TYPES = frozenset({"MEETING", "EVENT", "APPOINTMENT"})


def with_reason(warnings: RowWarnings | None, reason: MatchReason) -> RowWarnings:
    """A row's warnings with ``reason`` added to its matching warning (one made if it has none)."""
    notes = warnings.notes if warnings is not None else ()
    at = next((i for i, w in enumerate(notes) if isinstance(w, CannotMatch)), None)
    if at is None:
        return RowWarnings((*notes, CannotMatch((reason,))))
    cannot = notes[at]
    assert isinstance(cannot, CannotMatch)
    return RowWarnings((*notes[:at], cannot.with_reason(reason), *notes[at + 1 :]))


def matching_warning(values: dict[str, Any]) -> CannotMatch | None:
    """For a valid row: what SIRO needs to match recordings to it, if missing (a warning, not an
    error: the API accepts the record)."""
    missing: list[MatchReason] = []
    start, end = values.get("startTime"), values.get("endTime")
    if not start and not end:
        missing.append(NoTimes())
    elif not end:
        missing.append(NoEndTime())
    elif not start:
        missing.append(NoStartTime())
    if not values.get("engagementUsers"):
        missing.append(NoEngagementUser())
    kind = (values.get("engagementType") or {}).get("activityType")
    if kind not in MATCHABLE_TYPES:
        missing.append(NotMatchableType(str(kind) if kind else None))
    return CannotMatch(tuple(missing)) if missing else None


def end_before_start(start: Any, end: Any) -> EndBeforeStart | None:
    """``end-before-start`` when both are instants and the end comes first (the row stays valid:
    SIRO accepts it, but it is probably a typo)."""
    if type(start) is not str or type(end) is not str:
        return None
    try:
        a, b = dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)
        if b >= a:
            return None
    except (ValueError, TypeError):  # not instants, or one has a zone and the other none
        return None
    return EndBeforeStart(start, end)


def row_warning(values: dict[str, Any], reason: UnknownReps | None = None) -> RowWarnings | None:
    """Every warning of a valid row; ``reason``: why none of its reps is an active SIRO user (with
    SIRO's users fetched: :func:`~bulk_sync.pipeline.reps.rep_reason`)."""
    matching = matching_warning(values)
    if reason is not None:
        matching = matching.with_reason(reason) if matching is not None else CannotMatch((reason,))
    return warnings_of(end_before_start(values.get("startTime"), values.get("endTime")), matching)
