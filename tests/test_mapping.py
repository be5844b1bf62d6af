"""Mapping v1: validation with places in the YAML, binding to headers, converting cells (as tables)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import fingerprints_of, map_rows, spec_of

from bulk_sync.errors import MappingError, RowError, SourceError
from bulk_sync.load import Chunk
from bulk_sync.mapping import apply, bind, parse_mapping
from bulk_sync.payload import target_catalog

CATALOG = target_catalog()
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_TEXT = (ROOT / "mappings" / "engagements.yaml").read_text(encoding="utf-8")  # maps, dates, nesting


def problems_of(yaml_text: str) -> list[str]:
    with pytest.raises(MappingError) as info:
        spec_of(yaml_text)
    return info.value.problems


def test_every_problem_is_reported_at_once_with_its_line() -> None:
    problems = problems_of("""\
        version: 1
        fields:
          externalId: {column: Id, requird: true}
          startTme: Start
          direction: {column: Dir, map: {In: INWARD}}
          startTime: {column: Start, datetime: {format: "%m/%d/%Y", timezone: Mars/Olympus}}
          subject: {column: S, value: x}
        extra: 1
        """)
    text = "\n".join(problems)
    assert "line 3: fields.externalId.requird: unknown key" in text
    assert "line 8: extra: unknown key" in text
    assert len(problems) == 2  # structural errors stop before the field checks


def test_field_level_problems_all_at_once() -> None:
    problems = problems_of("""\
        version: 1
        fields:
          externalId: Id
          startTme: Start
          direction: {column: Dir, map: {In: INWARD}}
          startTime: {column: Start, datetime: {format: "%m/%d/%Y", timezone: Mars/Olympus}}
          endTime: {column: End, datetime: {format: "%m/%d/%Y"}}
          subject: {column: S, value: x}
          engagementUsers[].email: Email
          opportunity.amount: {value: lots}
        """)
    text = "\n".join(problems)
    assert "line 4: fields.startTme: unknown SIRO field; did you mean startTime" in text
    assert "line 5: fields.direction: map value for 'In': 'INWARD' is not one of INBOUND, OUTBOUND" in text
    assert "line 6: fields.startTime: unknown time zone 'Mars/Olympus'" in text
    assert "line 7: fields.endTime: `datetime` needs a `timezone`" in text
    assert "line 8: fields.subject: needs exactly one of `column`" in text
    assert "line 9: fields.engagementUsers[].email: `[]` (append) is for lists of values" in text
    assert "line 10: fields.opportunity.amount: 'lots' is not a number" in text
    assert len(problems) == 7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("version: 1\nfields: {subject: S}\n", "externalId must be mapped"),
        ("version: 2\nfields: {externalId: Id}\n", "unsupported mapping version 2"),
        (
            "version: 1\nfields:\n  externalId: Id\n  externalId: Other\n",
            "line 4: fields.externalId: duplicate key",
        ),
        ("version: 1\nfields: [externalId]\n", "fields: Input should be a valid dictionary"),
        ("version: 1\nfields: {externalId: Id\n", "not valid YAML"),
        ("- just a list\n", "top level must be a mapping"),
    ],
)
def test_bad_mapping_files(text: str, expected: str) -> None:
    assert expected in "\n".join(problems_of(text))


def test_missing_column_names_it_and_lists_the_headers() -> None:
    spec = spec_of("version: 1\nfields: {externalId: Appointment ID, subject: Subjct}\n")
    with pytest.raises(SourceError) as info:
        bind(spec, ["Appointment ID", "Subject", "Start"], "export.csv")
    msg = str(info.value)
    assert "'Subjct' (did you mean 'Subject'?)" in msg
    assert "the file has 3 columns: 'Appointment ID', 'Subject', 'Start'" in msg


def test_headers_match_ignoring_case_and_spacing() -> None:
    spec = spec_of("version: 1\nfields: {externalId: appointment  id}\n")
    assert map_rows(spec, [{"Appointment ID": "A1"}]) == [({"externalId": "A1"}, [])]


DT = """\
    version: 1
    fields:
      externalId: Id
      startTime:
        column: T
        datetime: {format: ["%m/%d/%Y %I:%M %p", "%d.%m.%Y %H:%M"], timezone: America/New_York}
      startTimeLocalized:
        column: T
        datetime: {format: ["%m/%d/%Y %I:%M %p", "%d.%m.%Y %H:%M"], timezone: America/New_York}
    """


@pytest.mark.parametrize(
    ("cell", "start", "local", "errors"),
    [
        ("06/13/2026 10:00 AM", "2026-06-13T14:00:00Z", "2026-06-13T10:00:00", []),  # EDT, UTC-4
        ("01/13/2026 10:00 AM", "2026-01-13T15:00:00Z", "2026-01-13T10:00:00", []),  # EST, UTC-5
        (
            "13.06.2026 22:30",
            "2026-06-14T02:30:00Z",
            "2026-06-13T22:30:00",
            [],
        ),  # second format; next UTC day
        ("2026-06-13 10:00:00", "2026-06-13T14:00:00Z", "2026-06-13T10:00:00", []),  # typed Excel cell
        ("2026-06-13T10:00:00+02:00", "2026-06-13T08:00:00Z", "2026-06-13T04:00:00", []),  # explicit offset
        # 2026-11-01 01:30 happens twice in New York: nothing says which, so startTime is not sent
        # (issue 34); the wall-clock startTimeLocalized is the same either way
        ("11/01/2026 01:30 AM", None, "2026-11-01T01:30:00", [["ambiguous-datetime", "T"]]),
        # 2026-03-08 02:30 does not exist in New York (spring forward)
        ("03/08/2026 02:30 AM", None, None, [["bad-datetime", "T"], ["bad-datetime", "T"]]),
        ("13/13/2026 10:00 AM", None, None, [["bad-datetime", "T"], ["bad-datetime", "T"]]),
    ],
)
def test_datetimes(cell: str, start: str | None, local: str | None, errors: list[list[str]]) -> None:
    ((values, errs),) = map_rows(spec_of(DT), [{"Id": "1", "T": cell}])
    assert values.get("startTime") == start
    assert values.get("startTimeLocalized") == local
    assert errs == errors


ENUMS = """\
    version: 1
    fields:
      externalId: Id
      direction: {column: D, map: {" In ": INBOUND, Out: OUTBOUND, Unknown: null}}
      engagementType.name: {value: Visit}
      engagementType.activityType: A
      opportunity.externalId: {value: O-1}
      opportunity.amount: N
      opportunity.copyEngagementRelationships: B
    """


@pytest.mark.parametrize(
    ("row", "values", "errors"),
    [
        (
            {"D": "in", "A": "meeting", "N": "12.5", "B": "yes"},
            {"direction": "INBOUND", "activityType": "MEETING", "amount": 12.5, "copy": True},
            [],
        ),
        (
            {"D": "  OUT ", "A": "Event", "N": "3", "B": "0"},
            {"direction": "OUTBOUND", "activityType": "EVENT", "amount": 3, "copy": False},
            [],
        ),
        (
            {"D": "unknown", "A": "CALL", "N": "", "B": ""},
            {"direction": None, "activityType": "CALL", "amount": None, "copy": None},
            [],
        ),
        (
            {"D": "sideways", "A": "Webinar", "N": "12k", "B": "maybe"},
            {},
            [["invalid-enum", "D"], ["invalid-enum", "A"], ["bad-number", "N"], ["bad-boolean", "B"]],
        ),
        ({"D": "", "A": "call", "N": "nan", "B": "true"}, {}, [["bad-number", "N"]]),
    ],
)
def test_enums_numbers_booleans(
    row: dict[str, str], values: dict[str, object], errors: list[list[str]]
) -> None:
    ((got, errs),) = map_rows(spec_of(ENUMS), [{"Id": "1", **row}])
    assert errs == errors
    if not errors:
        flat = {
            "direction": got.get("direction"),
            "activityType": got["engagementType"]["activityType"],
            "amount": got["opportunity"].get("amount"),
            "copy": got["opportunity"].get("copyEngagementRelationships"),
        }
        assert flat == values


def test_lists_compact_and_blank_objects_disappear() -> None:
    spec = spec_of("""\
        version: 1
        fields:
          externalId: Id
          account.phoneNumbers[0]: P1
          account.phoneNumbers[1]: P2
          account.phoneNumbers[]: P3
          engagementUsers[0].externalId: U1
          engagementUsers[1].externalId: U2
          engagementUsers[1].email: E2
        """)
    rows = [
        {"Id": "1", "P1": "", "P2": "555", "P3": "777", "U1": "", "U2": "u2", "E2": "b@x.io"},
        {"Id": "2", "P1": "", "P2": "", "P3": "", "U1": "", "U2": "", "E2": ""},
    ]
    (first, _), (second, _) = map_rows(spec, rows)
    assert first == {
        "externalId": "1",
        "account": {"phoneNumbers": ["555", "777"]},
        "engagementUsers": [{"externalId": "u2", "email": "b@x.io"}],
    }
    assert second == {"externalId": "2"}


def test_required_and_default() -> None:
    spec = spec_of("""\
        version: 1
        fields:
          externalId: {column: Id, required: true}
          subject: {column: S, default: (no subject)}
        """)
    assert map_rows(spec, [{"Id": " ", "S": ""}]) == [
        ({"subject": "(no subject)"}, [["missing-value", "Id"]])
    ]


def test_header_row_is_an_optional_positive_row_number() -> None:
    spec = parse_mapping("version: 1\nheader_row: 4\nfields:\n  externalId: Id\n", CATALOG)
    assert spec.header_row == 4
    assert parse_mapping("version: 1\nfields:\n  externalId: Id\n", CATALOG).header_row is None
    with pytest.raises(MappingError, match=r"line 2: header_row: .*greater than or equal to 1"):
        parse_mapping("version: 1\nheader_row: 0\nfields:\n  externalId: Id\n", CATALOG)


def test_a_row_the_loader_flagged_becomes_a_row_error() -> None:
    spec = parse_mapping("version: 1\nfields:\n  externalId: Id\n  subject: S\n", CATALOG)
    bound = bind(spec, ["Id", "S"], "f.csv")
    frame = pd.DataFrame({"Id": ["1", "2"], "S": ["a", "b"]}, dtype=str)
    flagged = RowError("extra-cells", "this row has more cells than the header")
    chunk = Chunk("f.csv", None, [2, 3], frame, problems={3: [flagged]})
    recs = apply(bound, chunk)
    assert recs[0].errors == []
    assert [(e.slug, e.message) for e in recs[1].errors] == [
        ("extra-cells", "this row has more cells than the header")
    ]


FP = "version: 1\nfields: {externalId: Id, subject: Subject, content: Notes}\n"


def test_a_fingerprint_covers_the_mapped_cells_and_the_mapping() -> None:
    rows = [
        {"Id": "A1", "Subject": "Call", "Notes": "n", "Other": "x"},
        {"Id": "A1", "Subject": "Call", "Notes": "n", "Other": "y"},  # an unmapped column differs
        {"Id": "A1", "Subject": "Call ", "Notes": "n", "Other": "x"},  # a mapped cell differs
        {"Id": "A1", "Subject": "a\x1fb", "Notes": "c", "Other": "x"},  # cells holding the separator
        {"Id": "A1", "Subject": "a", "Notes": "b\x1fc", "Other": "x"},
    ]
    fps = fingerprints_of(spec_of(FP), rows)
    assert len(fps[0]) == 16 and fps[0] == fps[1]
    assert len(set(fps[1:])) == 4
    other = spec_of(FP.replace("content: Notes", "content: {column: Notes, lower: true}"))
    assert fingerprints_of(other, rows[:1]) != fps[:1]  # another mapping: another fingerprint


def test_fingerprints_are_the_same_in_another_process() -> None:
    """The key comes from the mapping's repr: nothing in it may depend on the process (addresses,
    the hash seed that orders sets)."""
    rows = [{"Id": "A1", "Subject": "Call", "Notes": "n"}]
    here = fingerprints_of(spec_of(EXAMPLE_TEXT), [{c: "x" for c in spec_of(EXAMPLE_TEXT).columns}])
    code = (
        "import sys; sys.path.insert(0, 'tests'); import helpers as h; "
        f"s = h.spec_of({EXAMPLE_TEXT!r}); "
        "print(h.fingerprints_of(s, [{c: 'x' for c in s.columns}])[0].hex(), "
        f"h.fingerprints_of(h.spec_of({FP!r}), {rows!r})[0].hex())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    ).stdout.split()  # fmt: skip
    assert out == [here[0].hex(), fingerprints_of(spec_of(FP), rows)[0].hex()]
