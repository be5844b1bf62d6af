"""Property: any cell values through the example mapping -> a valid payload or row errors, never a crash."""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, examples
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bulk_sync import payload
from bulk_sync.errorfile import pack, unpack
from bulk_sync.errors import RowError
from bulk_sync.load import Chunk
from bulk_sync.mapping import (
    OMIT,
    apply,
    bind,
    binding,
    clock,
    columns,
    convert,
    load_mapping,
    map_chunk,
    numbers,
    parse_mapping,
)
from bulk_sync.notes import (
    PREDICTED_NEW,
    UNCHANGED_NOTE,
    CannotMatch,
    EndBeforeStart,
    NoEngagementUser,
    NotMatchableType,
    RowNote,
    RowWarnings,
    warnings_of,
)
from bulk_sync.sandbox import load_validators

SPEC = load_mapping(EXAMPLE_MAPPING, payload.target_catalog())
COLUMNS = SPEC.columns
BOUND = bind(SPEC, COLUMNS, "x.csv")
ENGAGEMENT_SCHEMA = load_validators()[0]

cell = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            " ",
            "02/30/2026 10:00 AM",
            "03/08/2026 02:30 AM",
            "1e400",
            "nan",
            "-0",
            "Closed Won",
            "meeting",
            "Site Visit",
            "2026-06-13T10:00:00Z",
            "12,5",
            "TRUE",
            "\x00",
            "=1+1",
        ]
    ),
)


@pytest.mark.slow
@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({c: cell for c in COLUMNS}), min_size=1, max_size=5))
def test_any_cells_give_a_payload_or_row_errors(rows: list[dict[str, str]]) -> None:
    chunk = Chunk(
        "x.csv", None, list(range(2, 2 + len(rows))), pd.DataFrame(rows, columns=COLUMNS, dtype=str)
    )
    for rec in apply(BOUND, chunk):
        built = payload.build(rec)
        if isinstance(built, list):
            assert built and all(e.slug and e.message for e in built)
        else:
            assert built.body["externalId"] == rec.values["externalId"]
            assert not list(ENGAGEMENT_SCHEMA.iter_errors(json.loads(built.raw)))  # SIRO would accept it


# --- the fast column paths agree with the scalar reference -------------------------------------

DT_SPEC = """\
version: 1
fields:
  externalId: Id
  startTime:
    column: T
    datetime: {format: ["%m/%d/%Y %I:%M %p", "%Y-%m-%d %H:%M"], timezone: America/New_York}
  startTimeLocalized:
    column: T
    datetime: {format: ["%m/%d/%Y %I:%M %p", "%Y-%m-%d %H:%M"], timezone: America/New_York}
  endTime: {column: T, datetime: {format: "%m/%d/%Y %I:%M %p", timezone: Asia/Kolkata}}
"""
DT_FIELDS = parse_mapping(DT_SPEC, payload.target_catalog()).fields

moments = st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2100, 1, 1))
dt_cell = st.one_of(
    moments.map(lambda d: d.strftime("%m/%d/%Y %I:%M %p")),
    moments.map(lambda d: d.strftime("%Y-%m-%d %H:%M")),
    moments.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S+02:00")),
    # the hours around New York's DST changes: gaps and repeats
    st.sampled_from(
        ["03/08/2026 02:30 AM", "11/01/2026 01:30 AM", "03/09/2025 02:00 AM", "11/02/2025 01:59 AM"]
    ),
    st.text(max_size=12),
    st.just(""),
)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(dt_cell, min_size=1, max_size=30))
def test_vectorised_datetimes_equal_the_scalar_reference(cells: list[str]) -> None:
    for f in DT_FIELDS[1:]:
        fast, maybe_errors = columns.convert_column(f, cells, "T")
        slow = [convert.convert_cell(f, c, "T") for c in cells]
        assert fast == slow
        assert columns.parse_datetimes(f, cells, "T") == slow  # pandas' way (taken for many new texts)
        assert maybe_errors or not any(isinstance(v, RowError) for v in slow)


# one format each: these are read by their day and time parts (clock.py) where that is certain
SPLIT_SPEC = """\
version: 1
fields:
  externalId: Id
  startTime: {column: T, datetime: {format: "%m/%d/%Y %I:%M %p", timezone: America/New_York}}
  startTimeLocalized: {column: T, datetime: {format: "%m/%d/%Y %I:%M %p", timezone: America/New_York}}
  endTime: {column: T, datetime: {format: "%m/%d/%Y %I:%M %p", timezone: Australia/Lord_Howe}}
  remoteCreatedAt: {column: T, datetime: {format: "%m/%d/%Y %I:%M %p", timezone: UTC}}
  remoteUpdatedAt: {column: T, datetime: {format: "%m/%d/%Y %I:%M %p", timezone: Europe/Berlin, ambiguous: error}}
"""
SPLIT_FIELDS = parse_mapping(SPLIT_SPEC, payload.target_catalog()).fields
ISO_SPEC = SPLIT_SPEC.replace("%m/%d/%Y %I:%M %p", "%Y-%m-%dT%H:%M:%S")
ISO_FIELDS = parse_mapping(ISO_SPEC, payload.target_catalog()).fields

# the days around the clock changes of those zones, and any other day
near_changes = st.builds(
    lambda day, minutes: dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minutes),
    st.sampled_from(
        [dt.date(2026, 3, 8), dt.date(2026, 11, 1), dt.date(2026, 3, 29), dt.date(2026, 10, 25),
         dt.date(2026, 4, 5), dt.date(2026, 10, 4), dt.date(2025, 3, 9), dt.date(1999, 12, 31)]
    ).flatmap(lambda d: st.sampled_from([d - dt.timedelta(days=1), d, d + dt.timedelta(days=1)])),
    st.integers(0, 24 * 60 - 1).map(lambda m: m - m % 15 if m % 2 else m),
)  # fmt: skip
any_moment = st.one_of(near_changes, moments, st.datetimes(min_value=dt.datetime(1, 1, 1)))


def _us_text(d: dt.datetime, sep: str = " ") -> str:
    return f"{d.month}/{d.day:02d}/{d.year:04d}{sep}{(d.hour % 12) or 12}:{d.minute:02d} {'AM' if d.hour < 12 else 'pm'}"


split_cell = st.one_of(
    any_moment.map(_us_text),
    any_moment.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S")),
    any_moment.map(lambda d: " " + _us_text(d, "  ")),  # extra blanks: the reference takes them
    any_moment.map(lambda d: _us_text(d, "\t")),
    st.sampled_from(["02/29/2026 10:00 AM", "2/29/2028 10:00 AM", "13/01/2026 1:00 PM", "1/1/2026 13:00 PM",
                     "1/1/2026", "10:00 AM", "1/1/2026 10:00 AM junk", "", " ", "1/ 1/2026 1:00 PM"]),
    st.text(max_size=12),
)  # fmt: skip


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(split_cell, min_size=1, max_size=80))
def test_date_times_read_by_their_parts_equal_the_scalar_reference(cells: list[str]) -> None:
    for f in SPLIT_FIELDS[1:] + ISO_FIELDS[1:]:
        assert clock.parts_for(f) is not None
        seen = columns.DatetimeMemo()
        fast, maybe_errors = columns.convert_column(f, cells, "T", seen=seen)
        slow = [convert.convert_cell(f, c, "T") for c in cells]
        assert fast == slow
        assert maybe_errors or not any(isinstance(v, RowError) for v in slow)


def test_a_day_the_clocks_change_is_left_to_the_reference() -> None:
    f = SPLIT_FIELDS[1]  # America/New_York
    parts = clock.parts_for(f)
    assert parts is not None
    got = clock.read_parts(parts, ["03/08/2026 10:00 AM", "03/09/2026 10:00 AM", "1/1/2026 9:00 AM"])
    assert got == [None, "2026-03-09T14:00:00Z", "2026-01-01T14:00:00Z"]
    assert clock.steady_offset(dt.datetime(2026, 11, 1), parts.tz) is None  # type: ignore[arg-type]
    assert clock.steady_offset(dt.datetime(2026, 11, 2), parts.tz) == -5 * 3600  # type: ignore[arg-type]
    assert clock.split_format("%d.%m.%Y %H:%M") == ("%d.%m.%Y", " ", "%H:%M")
    assert clock.split_format("%Y%m%d %H%M") is None  # directives side by side: left to the reference
    assert clock.split_format("%m/%d %H:%M") is None  # no year
    assert clock.split_format("%Y-%m-%d %H:%M:%S.%f") is None


def test_a_zones_offsets_are_kept_by_year_not_by_day() -> None:
    """The offset on each day is steady_offset's (a leap year, both changes of the clocks), kept in
    one table a (zone, year); the tables start over past _YEARS, so many years take no more room."""
    parts = clock.parts_for(SPLIT_FIELDS[1])  # America/New_York
    assert parts is not None and parts.tz is not None
    clock._OFFSETS.clear()
    days = [dt.datetime(2024, 1, 1) + dt.timedelta(days=k) for k in range(366)]
    assert [clock._offset_on(d, parts.tz) for d in days] == [clock.steady_offset(d, parts.tz) for d in days]
    assert [clock._offset_on(d, parts.tz) for d in days].count(None) == 2  # March 10, November 3
    assert list(clock._OFFSETS) == [(parts.tz, 2024)]
    for year in range(1900, 1900 + 3 * clock._YEARS):
        assert clock._offset_on(dt.datetime(year, 7, 1), parts.tz) == -4 * 3600 or year < 1967
    assert 0 < len(clock._OFFSETS) <= clock._YEARS


def test_kept_cells_come_back_as_they_were() -> None:
    """The error file's kept cells are packed a row to one object, and read back exactly."""
    # a damaged file's undecodable bytes are lone surrogates (surrogateescape): kept as they are
    cells = ["", "Zoë 🙂", 'a,b\n"c"', "\x1f\x00", "=1+2", " spaced ", "caf\udce9", "x" * 5000]
    assert unpack(pack(cells)) == cells
    assert len(pack(cells)) < sum(map(len, cells)) + 12 * len(cells)


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.fixed_dictionaries({c: cell for c in COLUMNS}), min_size=1, max_size=5))
def test_generated_row_builder_equals_the_tree_walk(rows: list[dict[str, str]]) -> None:
    chunk = Chunk(
        "x.csv", None, list(range(2, 2 + len(rows))), pd.DataFrame(rows, columns=COLUMNS, dtype=str)
    )
    for rec in apply(BOUND, chunk):
        plan, cols, i = rec._tree
        walked = {} if (w := plan.root.build(cols, i)) is OMIT else w
        binding.fill_paths(
            walked, BOUND.spec.fills
        )  # address parts left empty are sent as "" (after either walk)
        assert rec.values == walked


TRANSFORMS = parse_mapping(
    """\
version: 1
skip:
  - {column: Status, matches: "(?i)cancel"}
fields:
  externalId: {column: Id, required: true}
  subject: {template: "{First} {Last}"}
  startTime: {template: "{Date} {Time}", datetime: {format: ["%m/%d/%Y %H:%M", "%d.%m.%Y %H:%M"], timezone_column: Zone, timezone: America/New_York, ambiguous: error}}
  startTimeLocalized: {template: "{Date} {Time}", datetime: {format: "%m/%d/%Y %H:%M"}}
  engagementUsers[0].externalId: {column: Owner, extract: '([^\\s()<>]+@[^\\s()<>]+)', lower: true}
  engagementUsers[0].shareOfSale: {column: Share, decimal: ","}
  account.externalId: {value: A-1}
  account.phoneNumbers[]: {column: Phones, split: ";"}
  account.addresses[0].city: City
  opportunity.externalId: {value: O-1}
  opportunity.amount: Amount
  opportunity.disposition: {column: Stage, map: {Closed Won: WON, Closed Lost: LOST}}
  content: {column: Notes, blank: empty}
""",
    payload.target_catalog(),
)
T_COLUMNS = TRANSFORMS.columns
T_BOUND = bind(TRANSFORMS, T_COLUMNS, "t.csv")
t_cell = st.one_of(
    cell,
    st.sampled_from(
        ["Ann Lee (ANN@x.com)", "$1,234.50", "(12)", "50%", "1.234,5 €", "11/01/2026", "01:30", "Europe/Berlin",
         "Mars/Base", "a;b;;a", "46091.5", "Cancelled", "Closed Lost", "11/01/2026 01:30"]
    ),
)  # fmt: skip


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({c: t_cell for c in T_COLUMNS}), min_size=1, max_size=5))
def test_any_cells_through_every_transform_give_a_payload_or_row_errors(rows: list[dict[str, str]]) -> None:
    frame = pd.DataFrame(rows, columns=T_COLUMNS, dtype=str)
    for rec in apply(T_BOUND, Chunk("t.csv", None, list(range(2, 2 + len(rows))), frame)):
        if rec.skip is not None:
            assert "rule 1" in rec.skip
            continue
        built = payload.build(rec)
        if isinstance(built, list):
            assert built and all(e.slug and e.message for e in built)
        else:
            assert not list(ENGAGEMENT_SCHEMA.iter_errors(json.loads(built.raw)))


# --- the chunk check (one pydantic validation per row shape) agrees with validating every row ---

ODD = parse_mapping(
    """\
version: 1
fields:
  externalId: {column: Id}
  subject: {column: S, map: {five: 5, six: "6"}}
  direction: {column: D, blank: "null"}
  deletedAt: {column: Del}
  engagementType.name: {column: S}
  engagementType.activityType: {column: T}
  engagementUsers[0].externalId: U
  engagementUsers[1].externalId: U2
  engagementUsers[1].email: {column: S, lower: true}
  contact.externalId: {column: C}
  contact.name: {column: S}
  contact.account.addresses[0].zip: Z
  contact.account.mergedFromExternalIds[]: {column: U, split: ","}
  opportunity.externalId: {value: O-1}
  opportunity.copyEngagementRelationships: {column: B}
""",
    payload.target_catalog(),
)
ODD_BOUND = bind(ODD, ODD.columns, "o.csv")
o_cell = st.one_of(
    cell,
    st.sampled_from(
        ["five", "six", "INBOUND", "2026-06-13T10:00:00Z", "yes", "0", "x,y,x", "MEETING", "Call"]
    ),
)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([(BOUND, cell), (T_BOUND, t_cell), (ODD_BOUND, o_cell)]).flatmap(
        lambda bc: st.tuples(
            st.just(bc[0]),
            st.lists(st.fixed_dictionaries({c: bc[1] for c in bc[0].spec.columns}), min_size=1, max_size=12),
        )
    )
)
@pytest.mark.slow
def test_the_chunk_check_agrees_with_validating_each_row(case: tuple[Any, list[dict[str, str]]]) -> None:
    bound, rows = case
    frame = pd.DataFrame(rows, columns=bound.spec.columns, dtype=str)
    mc = map_chunk(bound, Chunk("c.csv", None, list(range(2, 2 + len(rows))), frame))
    checked = payload.check_chunk(mc)
    for i, rec in enumerate(mc.records()):
        if rec.skip is not None:
            assert not checked.ok[i]
            continue
        one = payload.build(rec)
        both = checked.result(i)
        assert checked.ok[i] <= isinstance(one, payload.Payload)  # "ok" is never wrong
        if isinstance(one, payload.Payload):
            assert isinstance(both, payload.Payload)
            assert both.raw == one.raw and both.external_id == one.external_id
            if checked.ok[i]:
                assert checked.payload(i).raw == one.raw  # encoded from the columns, byte for byte
        else:
            assert [(e.slug, e.message, e.column) for e in both] == [
                (e.slug, e.message, e.column) for e in one
            ]
    ok_rows = [i for i in range(mc.n) if checked.ok[i]]  # a shape's rows encoded together
    assert checked.bodies(ok_rows) == [checked.payload(i).raw for i in ok_rows]


EXAMPLE_ROWS = pd.read_csv(EXAMPLE_CSV, dtype=str, keep_default_na=False).to_dict("records")


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(range(len(EXAMPLE_ROWS))), st.sets(st.sampled_from(COLUMNS), max_size=12)),
        min_size=1,
        max_size=40,
    )
)
def test_a_row_to_send_names_the_same_columns_from_one_row_of_its_shape(
    picks: list[tuple[int, set[str]]],
) -> None:
    """A row waiting to be sent keeps one row of its shape, not the chunk's columns: where each
    value came from (what names the column when SIRO refuses one) is the same either way."""
    assert not BOUND.plan.splits and T_BOUND.plan.splits  # a split mapping keeps the columns
    rows = [{c: ("" if c in blank else EXAMPLE_ROWS[k][c]) for c in COLUMNS} for k, blank in picks]
    frame = pd.DataFrame(rows, columns=COLUMNS, dtype=str)
    mc = map_chunk(BOUND, Chunk("x.csv", None, list(range(2, 2 + len(rows))), frame))
    checked = payload.check_chunk(mc)
    for i in range(mc.n):
        light = mc.light_record(i, f"id-{i}", checked.shape[i])
        assert light._tree[1] is not mc.cols
        assert light.sources == mc.light_record(i, f"id-{i}").sources == mc.record(i).sources
    assert len(mc.like) == len(set(checked.shape))


@settings(max_examples=examples(500), deadline=None)
@given(
    st.text(alphabet="0123456789$,.-+%() €e", max_size=14)
    | st.from_regex(r"\$?\d[\d,]{0,12}(\.\d{1,4})?", fullmatch=True)
)
def test_the_short_way_for_numbers_equals_the_reference(text: str) -> None:
    def outcome(fn: Any) -> object:
        try:
            v = fn(text)
            return (type(v), v)
        except ValueError as exc:
            return str(exc)

    assert outcome(numbers.parse_number) == outcome(numbers.any_number)


def test_the_date_time_memo_forgets_its_older_half_when_full(monkeypatch: Any) -> None:
    """Past its limit the memo forgets the texts it learnt first (half of them at a time) and keeps
    the chunk at hand: every cell still converts, the same as without a memo."""

    # room for three remembered texts (each its length plus ENTRY_BYTES)
    monkeypatch.setattr(columns.DatetimeMemo, "MAX_BYTES", 3 * (19 + columns.DatetimeMemo.ENTRY_BYTES))
    f = DT_FIELDS[1]
    seen = columns.DatetimeMemo()
    first = ["03/08/2026 10:00 AM", "03/09/2026 10:00 AM", "03/08/2026 02:30 AM"]
    second = ["03/09/2026 10:00 AM", "03/10/2026 10:00 AM", "03/11/2026 10:00 AM", "junk"]
    for cells in (first, second, first):
        got, maybe_errors = columns.convert_column(f, cells, "T", seen=seen)
        assert got == [convert.convert_cell(f, c, "T") for c in cells]
        assert maybe_errors == any(isinstance(v, RowError) for v in got)
    assert len(seen.values) <= 4
    assert seen.bytes <= 4 * (19 + columns.DatetimeMemo.ENTRY_BYTES)
    assert seen.bytes == sum(map(len, seen.values)) + columns.DatetimeMemo.ENTRY_BYTES * len(seen.values)
    assert "03/08/2026 10:00 AM" in seen.values  # the last chunk's texts are the ones kept


def test_a_date_time_memo_grows_only_as_it_answers_cells() -> None:
    """A column whose texts never repeat keeps its memo at the floor; one that repeats earns its
    memo's full room. Every cell converts the same either way (issue 17: memory flat at any size)."""
    f = SPLIT_FIELDS[1]
    base = dt.datetime(2024, 1, 1, 8, 0)
    distinct, repeating = columns.DatetimeMemo(), columns.DatetimeMemo()
    pick = random.Random(17)
    floor = columns.DatetimeMemo.FLOOR_BYTES
    slots = [_us_text(base + dt.timedelta(days=d, hours=h)) for d in range(2500) for h in range(9)]
    for k in range(12):
        once = [_us_text(base + dt.timedelta(minutes=5000 * k + i)) for i in range(5000)]
        again = pick.choices(slots, k=5000)  # meetings on the hour, in no order
        for cells, seen in ((once, distinct), (again, repeating)):
            got, _ = columns.convert_column(f, cells, "T", seen=seen)
            assert got[:50] == [convert.convert_cell(f, c, "T") for c in cells[:50]]
        assert distinct.bytes <= floor
    assert distinct.hits == 0
    assert repeating.hits > 0
    assert repeating.room == columns.DatetimeMemo.MAX_BYTES
    assert repeating.bytes > 4 * floor


# a row's warnings: one or both kinds, texts with commas, quotes and line breaks among them
ROW_WARNINGS = st.builds(
    lambda order, reasons: warnings_of(order, CannotMatch(tuple(reasons)) if reasons else None),
    st.one_of(st.none(), st.builds(EndBeforeStart, st.text(max_size=8), st.just('2024-01-01"T,00'))),
    st.lists(
        st.one_of(st.just(NoEngagementUser()), st.builds(NotMatchableType, st.text(max_size=6))), max_size=3
    ),
).filter(lambda w: w is not None)


@settings(max_examples=examples(200), deadline=None)
@given(
    st.text(max_size=8),
    st.one_of(st.none(), st.text(max_size=6)),
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.text(max_size=10), st.sampled_from(["=1+1", 'a"b', "x,y", "-3", "\r\n"])),
            st.one_of(st.none(), st.sampled_from(["matching-warning", "=x", UNCHANGED_NOTE, PREDICTED_NEW])),
            st.one_of(st.none(), ROW_WARNINGS),
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_a_block_is_written_as_its_rows_would_be(
    file: str, sheet: str | None, rows: list[tuple[str | None, str | RowNote | None, RowWarnings | None]]
) -> None:
    import tempfile
    from pathlib import Path

    from bulk_sync.report import CsvReport, ResultBlock

    block = ResultBlock(
        file, sheet, "valid", list(range(2, 2 + len(rows))), [r[0] for r in rows],
        [r[1] for r in rows], [r[2] for r in rows],
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        as_block, one_by_one = CsvReport(Path(d) / "a.csv"), CsvReport(Path(d) / "b.csv")
        as_block.write_block(block)
        for r in block:
            one_by_one.write(r)
        as_block.close()
        one_by_one.close()
        assert (Path(d) / "a.csv").read_bytes() == (Path(d) / "b.csv").read_bytes()


NUM_FIELDS = parse_mapping(
    """\
version: 1
fields:
  externalId: Id
  opportunity.amount: {column: A, required: true}
  engagementUsers[0].shareOfSale: {column: S, decimal: ","}
  account.latitude: {column: L, default: 1.5}
  opportunity.externalId: {value: O-1}
  engagementUsers[0].externalId: {value: U-1}
""",
    payload.target_catalog(),
).fields[1:4]


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(st.text(alphabet="0123456789$,.-+%() €e\\t", max_size=12) | st.just(""), min_size=1, max_size=20)
)
@example(["-1e1000000", "(1e400)", "1e309", "1e308"])  # past a double: an error cell, never decimal.Overflow
def test_number_columns_equal_the_scalar_reference(cells: list[str]) -> None:
    for f in NUM_FIELDS:
        got, maybe_errors = columns.convert_column(f, cells, "N")
        want = [convert.convert_cell(f, c, "N") for c in cells]
        assert got == want and [type(v) for v in got] == [type(v) for v in want]
        assert maybe_errors == any(isinstance(v, RowError) for v in want)


@st.composite
def written_numbers(draw: Any) -> tuple[str, str, Decimal]:
    """A number as a spreadsheet export writes it, the decimal mark used, and its exact value:
    up to 15 significant digits, grouped or not (',' '.' ' ' "'"), a currency before or after, a
    percent sign, a minus or parentheses."""
    digits = draw(st.integers(min_value=0, max_value=10**15 - 1))
    scale = draw(st.integers(min_value=0, max_value=min(6, len(str(digits)))))
    value = Decimal(digits).scaleb(-scale)
    mark = draw(st.sampled_from([".", ","]))
    whole, _, frac = f"{value:f}".partition(".")
    group = draw(st.sampled_from(["", "thousands", " ", "'"]))
    if group:
        sep = ("," if mark == "." else ".") if group == "thousands" else group
        parts = []
        while len(whole) > 3:
            whole, parts = whole[:-3], [whole[-3:], *parts]
        whole = sep.join([whole, *parts])
    text = whole + (mark + frac if frac else "")
    percent = draw(st.booleans())
    if percent:
        text += draw(st.sampled_from(["%", " %"]))
    currency = draw(st.sampled_from(["", "$", "USD ", "€ "]))
    suffix = draw(st.sampled_from(["", " €", " CHF"])) if not currency else ""
    negative = draw(st.sampled_from(["", "-", "()"]))
    text = currency + text + suffix
    text = f"({text})" if negative == "()" else negative + text
    exact = value.scaleb(-2) if percent else value
    return text, mark, (-exact if negative else exact)


@pytest.mark.slow
@settings(max_examples=examples(2000), deadline=None)
@given(written_numbers())
def test_numbers_arrive_exactly_as_the_cell_writes_them(case: tuple[str, str, Decimal]) -> None:
    """With the column's decimal mark known, the JSON number sent is exactly the cell's number
    (its shortest text is the cell's decimal), or the cell is an error: never a near value. With
    the mark unknown, it is the same number or an `ambiguous-number` error."""
    from pydantic_core import to_json

    text, mark, exact = case
    for decimal in (mark, None):
        try:
            value = numbers.parse_number(text, decimal)
        except ValueError as exc:
            assert decimal is None and getattr(exc, "slug", "") == "ambiguous-number", (text, decimal, exc)
            continue
        sent = to_json(float(value)).decode()  # what the payload carries
        assert Decimal(sent) == exact, (text, decimal, sent)


@settings(max_examples=examples(200), deadline=None)
@given(
    st.sampled_from(["valid", "unchanged", "not_sent"]),
    st.one_of(st.none(), st.just("aborted")),
    st.lists(st.one_of(st.none(), ROW_WARNINGS), min_size=1, max_size=8),
)
def test_problem_lines_past_the_limit_are_counted_as_they_would_be_written(
    status: str, error_type: str | None, warnings: list[RowWarnings | None]
) -> None:
    """Past `validate`'s list limit a block's lines are counted without being written: the same
    count as writing them ("... and N more row problems")."""
    from bulk_sync.cli.outputs import line_count as _line_count
    from bulk_sync.cli.outputs import problem_lines as _problem_lines
    from bulk_sync.report import ResultBlock

    n = len(warnings)
    block = ResultBlock(
        "f.csv", None, status, list(range(2, 2 + n)), [None] * n, ["why"] * n, warnings, error_type
    )
    for warnings_listed in (True, False):  # `--warnings`, and the default
        written = sum(len(_problem_lines(r, warnings_listed)) for r in block.noted())
        assert _line_count(block, warnings_listed) == written
