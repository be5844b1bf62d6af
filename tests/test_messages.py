"""Issue 34, item 5: messages that point the right way, through the real CLI on real files.

A renamed column's "did you mean" ranks the file's columns the mapping does not read (never one it
already reads); a start without an end is warned as such; a workbook's sheets are sheets; a load
error for `engagementUsers[].email` names `engagementUsers[]`. (The mirror's singular, the predicted
effect's state file: tests/test_mirror.py; a profile job's drift advice: tests/test_drift.py.)
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from helpers import RunCli

from bulk_sync.errors import MappingError
from bulk_sync.mapping import parse_mapping
from bulk_sync.payload import target_catalog

MAPPING = """\
version: 1
fields:
  externalId: Id
  startTime: {column: Start Date/Time, datetime: {format: "%Y-%m-%d %H:%M", timezone: UTC}}
  endTime: {column: End Date/Time, datetime: {format: "%Y-%m-%d %H:%M", timezone: UTC}}
  engagementType.name: {value: Meeting}
  engagementType.activityType: {value: MEETING}
  engagementUsers[0].externalId: Rep
  engagementUsers[0].email: Rep
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_did_you_mean_ranks_the_columns_the_mapping_does_not_read(run_cli: RunCli, tmp_path: Path) -> None:
    """`Start Date/Time` was renamed `Start`: the closest header by spelling is `End Date/Time`, but
    the mapping reads that one already, so it cannot be the renamed column."""
    data = _write(
        tmp_path, "x.csv", "Id,Start,End Date/Time,Rep,Notes\nA,2026-11-03 09:00,2026-11-03 10:00,a@x.com,\n"
    )
    r = run_cli("validate", data, "-m", _write(tmp_path, "m.yaml", MAPPING))
    assert r.code == 2
    assert "column 'Start Date/Time' (did you mean 'Start'?)" in r.stderr
    assert "did you mean 'End Date/Time'" not in r.stderr
    assert (
        "the file's columns the mapping does not read (new or renamed ones are here): 'Start', 'Notes'"
        in r.stderr
    )


def test_a_start_without_an_end_is_warned_as_such(run_cli: RunCli, tmp_path: Path) -> None:
    rows = (
        "Id,Start Date/Time,End Date/Time,Rep\n"
        "A,2026-11-03 09:00,,a@x.com\nB,,2026-11-03 10:00,a@x.com\nC,,,a@x.com\n"
    )
    r = run_cli("validate", _write(tmp_path, "x.csv", rows), "-m", _write(tmp_path, "m.yaml", MAPPING))
    assert r.code == 0, r.stderr
    warned = {row["external_id"]: row["warning"] for row in r.report}
    lead = "matching-warning: SIRO cannot match recordings to it: "
    assert warned["A"] == lead + "no endTime (the row has a startTime; SIRO needs both)"
    assert warned["B"] == lead + "no startTime (the row has an endTime; SIRO needs both)"
    assert warned["C"] == lead + "no startTime/endTime"


@pytest.mark.parametrize(
    ("sheets", "says"), [(["Ann", "Bo", "Cy"], "3 sheets of 1 workbook"), (["Ann"], "1 sheet of 1 workbook")]
)
def test_a_workbooks_sheets_are_counted_as_sheets(
    run_cli: RunCli, tmp_path: Path, sheets: list[str], says: str
) -> None:
    wb = openpyxl.Workbook()
    first = wb.active
    assert first is not None
    wb.remove(first)
    for n, name in enumerate(sheets):
        ws = wb.create_sheet(name)
        ws.append(["Id", "Start Date/Time", "End Date/Time", "Rep"])
        ws.append([f"{name}-{n}", "2026-11-03 09:00", "2026-11-03 10:00", "a@x.com"])
    wb.save(book := tmp_path / "reps.xlsx")
    r = run_cli("validate", book, "--sheet", "*", "-m", _write(tmp_path, "m.yaml", MAPPING))
    assert r.code == 0, r.stderr
    rows = "1 row" if len(sheets) == 1 else f"{len(sheets)} rows"
    assert f"checked {rows} from {says} in " in r.stdout
    assert "file(s)" not in r.stdout


def test_a_csv_is_one_file(run_cli: RunCli, tmp_path: Path) -> None:
    data = _write(
        tmp_path,
        "x.csv",
        "Id,Start Date/Time,End Date/Time,Rep\nA,2026-11-03 09:00,2026-11-03 10:00,a@x.com\n",
    )
    r = run_cli("validate", data, "-m", _write(tmp_path, "m.yaml", MAPPING))
    assert "checked 1 row from 1 file in " in r.stdout


def test_engagement_users_append_email_points_to_the_people_feature() -> None:
    text = "version: 1\nfields:\n  externalId: Id\n  engagementUsers[].email: Reps\n"
    with pytest.raises(MappingError) as info:
        parse_mapping(text, target_catalog())
    said = str(info.value)
    assert "map the whole cell to `engagementUsers[]`" in said and "parse: name_email" in said
    assert "engagementUsers[0].email" in said  # the fixed-position way, as before
    # the line it suggests loads
    parse_mapping(
        'version: 1\nfields:\n  externalId: Id\n  engagementUsers[]: {column: Participants, split: ";", '
        "parse: name_email}\n",
        target_catalog(),
    )
