"""Property: any cell values through the example mapping -> a valid payload or row errors, never a crash."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
from conftest import EXAMPLE_MAPPING
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulk_sync import payload
from bulk_sync.load import Chunk
from bulk_sync.mapping import (
    _OMIT,
    _convert,
    _convert_column,
    _fill,
    apply,
    bind,
    load_mapping,
    parse_mapping,
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


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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


@settings(max_examples=200, deadline=None)
@given(st.lists(dt_cell, min_size=1, max_size=30))
def test_vectorised_datetimes_equal_the_scalar_reference(cells: list[str]) -> None:
    for f in DT_FIELDS[1:]:
        fast = _convert_column(f, cells, "T")
        slow = [_convert(f, c, "T") for c in cells]
        assert fast == slow


@settings(max_examples=100, deadline=None)
@given(st.lists(st.fixed_dictionaries({c: cell for c in COLUMNS}), min_size=1, max_size=5))
def test_generated_row_builder_equals_the_tree_walk(rows: list[dict[str, str]]) -> None:
    chunk = Chunk(
        "x.csv", None, list(range(2, 2 + len(rows))), pd.DataFrame(rows, columns=COLUMNS, dtype=str)
    )
    for rec in apply(BOUND, chunk):
        plan, cols, i = rec._tree
        walked = {} if (w := plan.root.build(cols, i)) is _OMIT else w
        _fill(walked, BOUND.spec.fills)  # address parts left empty are sent as "" (after either walk)
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


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
