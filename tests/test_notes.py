"""The catalogue of warnings and notes (bulk_sync.notes): each kind renders the text the report,
the summary and the terminal wrote before the kinds were objects, byte for byte; a row's warnings
keep equality and hashing through a worker's pickle; every kind is in the catalogue."""

from __future__ import annotations

import pickle
from collections import Counter

import pytest

from bulk_sync import notes
from bulk_sync.forecast import Forecast
from bulk_sync.notes import (
    CATALOGUE,
    PREDICTED_CHANGED,
    PREDICTED_NEW,
    UNCHANGED_NOTE,
    CannotMatch,
    EndBeforeStart,
    NoEndTime,
    NoEngagementUser,
    NoStartTime,
    NoTimes,
    NotMatchableType,
    RowWarnings,
    Superseded,
    UnknownReps,
    as_text,
    warnings_of,
)
from bulk_sync.pipeline.warnings import end_before_start, matching_warning, row_warning, with_reason
from bulk_sync.report import ResultBlock, RowResult, Summary

RENDERED = [
    (NoTimes(), "no startTime/endTime"),
    (NoEndTime(), "no endTime (the row has a startTime; SIRO needs both)"),
    (NoStartTime(), "no startTime (the row has an endTime; SIRO needs both)"),
    (NoEngagementUser(), "no engagement user"),
    (NotMatchableType("CALL"), "activityType is CALL, not MEETING/EVENT/APPOINTMENT"),
    (NotMatchableType(None), "activityType is not set, not MEETING/EVENT/APPOINTMENT"),
    (UnknownReps(()), "no engagement user has an email, so SIRO cannot tell which of its users the rep is"),
    (
        UnknownReps((("a@x.com", "missing"),)),
        "a@x.com is not a SIRO user: add them in SIRO or correct the email in the CRM, or rows with this "
        "rep will not match recordings",
    ),
    (
        UnknownReps((("a@x.com", "disabled"), ("b@x.com", "disabled"))),
        "a@x.com, b@x.com are each a disabled SIRO user: re-enable them in SIRO, or rows with these reps "
        "will not match recordings",
    ),
    (
        UnknownReps((("d@x.com", "disabled"), ("e@x.com", "missing"))),
        "d@x.com is a disabled SIRO user (re-enable them in SIRO) and e@x.com is not a SIRO user (add "
        "them in SIRO or correct the email in the CRM): rows with these reps will not match recordings",
    ),
    (
        EndBeforeStart("2024-03-01T10:00:00Z", "2024-03-01T09:00:00Z"),
        "end-before-start: endTime 2024-03-01T09:00:00Z is before startTime 2024-03-01T10:00:00Z",
    ),
    (
        CannotMatch((NoTimes(), NoEngagementUser())),
        "matching-warning: SIRO cannot match recordings to it: no startTime/endTime; no engagement user",
    ),
    (UNCHANGED_NOTE, "same payload as the last sync; not sent"),
    (PREDICTED_NEW, "new: a run would send it (it is not in the state file)"),
    (PREDICTED_CHANGED, "changed since the last sync: a run would send it"),
    (
        Superseded.by(("a.csv", None, 3), ("a.csv", None, 9), "E-1"),
        "row 9 has the same externalId 'E-1' and comes later: that row is sent, this one is not",
    ),
    (
        Superseded.by(("a.csv", None, 3), ("b.csv", None, 2), "E-1"),
        "row 2 of b.csv has the same externalId 'E-1' and comes later: that row is sent, this one is not",
    ),
    (
        Superseded.by(("a.xlsx", "Jan", 3), ("a.xlsx", "Feb", 2), "E'1"),
        'row 2 [Feb] has the same externalId "E\'1" and comes later: that row is sent, this one is not',
    ),
    (
        Superseded.by(("a.xlsx", "Jan", 3), ("b.xlsx", "Feb", 2), "E-1"),
        "row 2 of b.xlsx [Feb] has the same externalId 'E-1' and comes later: that row is sent, this one "
        "is not",
    ),
]


@pytest.mark.parametrize(
    ("note", "text"), RENDERED, ids=[f"{n.code}-{k}" for k, (n, _) in enumerate(RENDERED)]
)
def test_each_kind_renders_its_text(note: notes.Note, text: str) -> None:
    assert str(note) == text
    assert as_text(note) == text


def test_every_kind_is_in_the_catalogue_under_its_own_code() -> None:
    families = (notes.Note, notes.RowWarning, notes.MatchReason, notes.RowNote)
    kinds = {
        k
        for k in vars(notes).values()
        if isinstance(k, type) and issubclass(k, notes.Note) and k not in families
    }
    assert set(CATALOGUE.values()) == kinds
    assert all(CATALOGUE[k.code] is k for k in kinds)
    assert {type(n).code for n, _ in RENDERED} == set(CATALOGUE)  # each one is tried above


def test_a_rows_warnings_are_joined_as_the_report_writes_them() -> None:
    both = warnings_of(EndBeforeStart("b", "a"), None, CannotMatch((NoEngagementUser(),)))
    assert both is not None
    assert str(both) == (
        "end-before-start: endTime a is before startTime b | matching-warning: SIRO cannot match "
        "recordings to it: no engagement user"
    )
    assert both.codes == ["end-before-start", "matching-warning"]
    assert warnings_of(None, None) is None
    assert as_text(None) == "" and as_text("plain") == "plain"


def test_a_rows_warnings_hash_by_value_and_survive_a_pickle() -> None:
    """A worker process pickles its blocks; the reader counts them by value (the summary)."""
    one = RowWarnings((CannotMatch((NotMatchableType("CALL"), UnknownReps((("a@x.com", "missing"),)))),))
    again = pickle.loads(pickle.dumps(one, pickle.HIGHEST_PROTOCOL))
    assert again == one and hash(again) == hash(one) and str(again) == str(one)
    other = RowWarnings((CannotMatch((NotMatchableType("EMAIL"),)),))
    assert Counter([one, again, other, one]) == {one: 3, other: 1}
    assert CannotMatch((NoTimes(),)) != CannotMatch((NoEndTime(),))  # kinds without fields differ


def test_the_rules_make_the_same_warnings_as_before() -> None:
    """The per-row rules (pipeline/warnings.py): the text of each case, as the report had it."""
    values = {"startTime": "2024-03-01T10:00:00Z", "engagementType": {"activityType": "CALL"}}
    assert str(matching_warning(values)) == (
        "matching-warning: SIRO cannot match recordings to it: no endTime (the row has a startTime; SIRO "
        "needs both); no engagement user; activityType is CALL, not MEETING/EVENT/APPOINTMENT"
    )
    assert (
        matching_warning(
            {
                "startTime": "a",
                "endTime": "b",
                "engagementUsers": [{}],
                "engagementType": {"activityType": "MEETING"},
            }
        )
        is None
    )
    assert end_before_start("2024-03-01T10:00:00Z", "2024-03-01T10:00:00Z") is None
    assert end_before_start("2024-03-01T10:00:00Z", "2024-03-01T10:00:00") is None  # zone and none
    late = {"startTime": "2024-03-01T10:00:00Z", "endTime": "2024-03-01T09:00:00Z", "engagementUsers": [{}]}
    late["engagementType"] = {"activityType": "MEETING"}
    assert str(row_warning(late)) == (
        "end-before-start: endTime 2024-03-01T09:00:00Z is before startTime 2024-03-01T10:00:00Z"
    )
    rep = UnknownReps((("a@x.com", "missing"),))
    assert str(with_reason(None, rep)) == "matching-warning: SIRO cannot match recordings to it: " + str(rep)
    assert str(with_reason(row_warning(late), rep)) == (
        str(row_warning(late)) + " | matching-warning: SIRO cannot match recordings to it: " + str(rep)
    )
    assert str(with_reason(warnings_of(matching_warning(values)), rep)) == (
        str(matching_warning(values)) + "; " + str(rep)
    )
    # a row on its own (group_by, or checked one by one) gets what a chunk's rows get
    assert row_warning(values, rep) == with_reason(warnings_of(matching_warning(values)), rep)
    assert row_warning(late, rep) == with_reason(row_warning(late), rep)


def test_the_summary_counts_warnings_by_code_and_the_predicted_effect_by_note() -> None:
    warned = RowWarnings((EndBeforeStart("b", "a"), CannotMatch((UnknownReps((("a@x.com", "missing"),)),))))
    s = Summary(effect=Counter())
    block = ResultBlock(
        "f.csv", None, "valid", [2, 3, 4], ["1", "2", "3"], [PREDICTED_NEW, PREDICTED_CHANGED, PREDICTED_NEW],
        [warned, None, warned],
    )  # fmt: skip
    s.add_block(block)
    s.add(RowResult("f.csv", None, 5, "4", "valid", message=PREDICTED_CHANGED, warning=warned))
    assert s.warnings == {"end-before-start": 3, "matching-warning": 3}
    assert s.forecast.reasons == {"rep is not a SIRO user": 3} and s.forecast.reps == {"a@x.com": 3}
    assert s.predicted() == {"new": 2, "changed": 2, "unchanged": 0, "invalid": 0}
    f = Forecast()
    f.add("f.csv", RowWarnings((CannotMatch((NotMatchableType("CALL"), NoEngagementUser())),)), 2)
    f.add("f.csv", RowWarnings((CannotMatch((NotMatchableType("CALL"),)),)), 1)
    assert f.data()["reasons"] == {
        "activityType is CALL, not MEETING/EVENT/APPOINTMENT": 3,
        "no engagement user": 2,
    }


def test_a_reason_whose_text_holds_the_separator_is_counted_as_one() -> None:
    """The forecast once split the warning's text back at "; ", and counted "no endTime (the row has
    a startTime" and "SIRO needs both)" as two reasons; it now counts the reasons themselves."""
    f = Forecast()
    f.add("f.csv", RowWarnings((CannotMatch((NoEndTime(), NoEngagementUser())),)), 2)
    assert f.reasons == {"no endTime (the row has a startTime; SIRO needs both)": 2, "no engagement user": 2}
    assert f.lines()[1] == (
        "  cannot match: no endTime (the row has a startTime; SIRO needs both) (2), no engagement user (2)"
    )
