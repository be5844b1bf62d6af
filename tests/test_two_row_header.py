"""A header over two rows (issue 34): a title block, then `Start` merged over `Date | Time`, `End`
over `Date | Time`, the other headers merged down over both rows. Merged header cells are filled
like any merged cell and the two rows read as one name per column (`Start Date`, `Start Time`);
`header_rows: [7, 8]` in a mapping says so for a file without merged cells; init-mapping proposes
it. Workbooks written by openpyxl, the real CLI in a subprocess."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from helpers import RunCli, outcomes
from openpyxl import Workbook

from bulk_sync.errors import MappingError
from bulk_sync.load import open_sources
from bulk_sync.mapping import parse_mapping
from bulk_sync.payload import target_catalog

NAMES = ["Visit ID", "Subject", "Start Date", "Start Time", "End Date", "End Time", "Rep Email"]


def _two_row_workbook(path: Path) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "Visits"
    ws["A1"] = "Field visits - October 2026"
    ws["A2"] = "Region: North"
    ws["A3"] = "Exported 2026-11-01 by ops"
    ws["A7"], ws["B7"], ws["C7"], ws["E7"], ws["G7"] = "Visit ID", "Subject", "Start", "End", "Rep Email"
    ws["C8"], ws["D8"], ws["E8"], ws["F8"] = "Date", "Time", "Date", "Time"
    for area in ("A7:A8", "B7:B8", "C7:D7", "E7:F7", "G7:G8"):
        ws.merge_cells(area)
    rows = [
        ["V-1", "Roof check", dt.date(2026, 10, 13), dt.time(9, 0), dt.date(2026, 10, 13), dt.time(10, 30),
         "ann@example.com"],
        ["V-2", "Quote", dt.date(2026, 10, 14), dt.time(14, 15), dt.date(2026, 10, 14), dt.time(15, 0),
         "bob@example.com"],
    ]  # fmt: skip
    for r, row in enumerate(rows, start=9):
        for c, value in enumerate(row, start=1):
            ws.cell(r, c, value)
    wb.save(path)
    return path


MAPPING = """\
version: 1
fields:
  externalId: {column: Visit ID, required: true}
  subject: Subject
  startTime:
    template: "{Start Date} {Start Time}"
    datetime: {format: "%Y-%m-%d %H:%M:%S", timezone: Europe/Amsterdam}
  endTime:
    template: "{End Date} {End Time}"
    datetime: {format: "%Y-%m-%d %H:%M:%S", timezone: Europe/Amsterdam}
  engagementUsers[0].externalId: Rep Email
  engagementUsers[0].email: Rep Email
"""


def test_merged_two_row_header_reads_one_name_per_column(tmp_path: Path) -> None:
    [src] = open_sources(_two_row_workbook(tmp_path / "visits.xlsx"))
    assert src.headers == NAMES
    assert (src.header_row, src.header_span) == (8, 2)
    assert any("the header spans rows 7 and 8" in w for w in src.warnings)
    rows = [(r.row_number, r.cells) for c in src.chunks() for r in c.rows()]
    assert [n for n, _ in rows] == [9, 10]  # row numbers as in Excel
    assert rows[0][1]["Start Date"] == "2026-10-13" and rows[0][1]["Start Time"] == "09:00:00"


def test_the_file_validates_with_a_mapping_of_the_combined_names(tmp_path: Path, run_cli: RunCli) -> None:
    data = _two_row_workbook(tmp_path / "visits.xlsx")
    (tmp_path / "m.yaml").write_text(MAPPING)
    res = run_cli("validate", data, "-m", tmp_path / "m.yaml")
    assert res.code == 0, res.stderr
    assert [(r["row_number"], r["status"]) for r in res.report] == [("9", "valid"), ("10", "valid")]
    first = outcomes(data, tmp_path / "m.yaml")[0]["payload"]
    assert (first["startTime"], first["endTime"]) == ("2026-10-13T07:00:00Z", "2026-10-13T08:30:00Z")


def test_init_mapping_proposes_header_rows_and_the_start_and_end(tmp_path: Path, run_cli: RunCli) -> None:
    data = _two_row_workbook(tmp_path / "visits.xlsx")
    out = tmp_path / "starter.yaml"
    res = run_cli("init-mapping", data, "-o", out)
    assert res.code == 0, res.stderr
    text = out.read_text()
    assert "header_rows: [7, 8]" in text
    assert "template: '{Start Date} {Start Time}'" in text and "template: '{End Date} {End Time}'" in text
    out.write_text(text.replace("timezone: TODO", "timezone: Europe/Amsterdam"))
    check = run_cli("validate", data, "-m", out)
    assert check.code == 0, check.stderr
    payload = outcomes(data, out)[1]["payload"]
    assert (payload["startTime"], payload["endTime"]) == ("2026-10-14T12:15:00Z", "2026-10-14T13:00:00Z")


def test_header_rows_in_the_mapping_reads_a_csv_header_over_two_rows(tmp_path: Path) -> None:
    data = tmp_path / "visits.csv"
    data.write_text(
        "Field visits,,,,,,\n\nVisit ID,Subject,Start,,End,,Rep Email\n,,Date,Time,Date,Time,\n"
        "V-1,Roof check,2026-10-13,09:00:00,2026-10-13,10:30:00,ann@example.com\n"
    )
    mapping = tmp_path / "m.yaml"
    mapping.write_text("header_rows: [3, 4]\n" + MAPPING)
    out = outcomes(data, mapping)
    assert [o["status"] for o in out] == ["valid"] and out[0]["row"] == 5
    assert out[0]["payload"]["endTime"] == "2026-10-13T08:30:00Z"
    [src] = open_sources(data, header_row=(3, 4))
    assert src.headers == NAMES


def test_a_merged_header_cell_over_data_is_not_a_second_header_row(tmp_path: Path) -> None:
    # one header row whose "Notes" is merged across two columns, data right below: a single row
    wb = Workbook()
    ws = wb.active
    ws.append(["Id", "Subject", "Notes", None])
    ws.merge_cells("C1:D1")
    ws.append(["1", "Call", "left", "right"])
    wb.save(tmp_path / "one.xlsx")
    [src] = open_sources(tmp_path / "one.xlsx")
    assert src.header_row == 1 and src.headers[:3] == ["Id", "Subject", "Notes"]
    assert [r.cells["Id"] for c in src.chunks() for r in c.rows()] == ["1"]


@pytest.mark.parametrize("rows", ["[7]", "[7, 9]", "[8, 7]"])
def test_header_rows_must_be_two_rows_one_after_the_other(rows: str) -> None:
    with pytest.raises(MappingError, match="header_rows: give the two rows"):
        parse_mapping(f"header_rows: {rows}\n" + MAPPING, target_catalog(), "m.yaml")


def test_the_error_file_of_a_two_row_header_reads_back(tmp_path: Path, run_cli: RunCli) -> None:
    from openpyxl import load_workbook

    data = _two_row_workbook(tmp_path / "visits.xlsx")
    wb = load_workbook(data)
    wb.active["C10"] = "not a date"
    wb.save(data)
    (tmp_path / "m.yaml").write_text("header_rows: [7, 8]\n" + MAPPING)
    first = run_cli("validate", data, "-m", tmp_path / "m.yaml")
    assert first.code == 1, first.stderr
    errors = tmp_path / "fixed.xlsx"  # the error file, as a person drops it back
    errors.write_bytes((tmp_path / "report-errors.xlsx").read_bytes())
    again = run_cli("validate", errors, "-m", tmp_path / "m.yaml")
    assert again.code == 1, again.stderr
    assert [(r["external_id"], r["status"], r["column"]) for r in again.report] == [
        ("V-2", "invalid", "Start Date, Start Time")
    ]
