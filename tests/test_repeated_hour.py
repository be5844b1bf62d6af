"""Issue 34, item 1: a local time in the hour that happens twice is never sent on a guess.

Amsterdam, 25 October 2026: at 03:00 summer time the clocks go back to 02:00, so 02:00-02:59 happen
twice. A workbook written by openpyxl (text cells and typed date-time cells), through the real CLI
against the sandbox on 127.0.0.1: by default such a row is invalid (`ambiguous-datetime`), its
message naming both instants and the key to set; `ambiguous: earlier`/`later` sends that instant.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest
from helpers import RunCli, Sandbox, map_rows, spec_of

from bulk_sync.errors import ROW_ERRORS, ROW_TEMPLATES

FMT = "%d-%m-%Y %H:%M"
ROWS = [
    ("AMS-1", "25-10-2026 02:30", "25-10-2026 03:00"),  # the start happens twice
    ("AMS-2", "25-10-2026 01:45", "25-10-2026 02:15"),  # the end happens twice
    ("AMS-3", dt.datetime(2026, 10, 25, 2, 30), dt.datetime(2026, 10, 25, 3, 0)),  # typed cells
    ("AMS-4", "25-10-2026 09:00", "25-10-2026 09:30"),  # after the change: once
    ("AMS-5", "29-03-2026 02:30", "29-03-2026 03:30"),  # the spring-forward gap: never
]


def _workbook(tmp_path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Id", "Start", "End"])
    for row in ROWS:
        ws.append(list(row))
    path = tmp_path / "amsterdam.xlsx"
    wb.save(path)
    return path


def _mapping(tmp_path: Path, policy: str | None) -> Path:
    key = "" if policy is None else f", ambiguous: {policy}"
    dts = f'{{format: "{FMT}", timezone: Europe/Amsterdam{key}}}'
    text = (
        "version: 1\nfields:\n  externalId: Id\n"
        f"  startTime: {{column: Start, datetime: {dts}}}\n"
        f"  endTime: {{column: End, datetime: {dts}}}\n"
        "  engagementType.name: {value: Meeting}\n  engagementType.activityType: {value: MEETING}\n"
    )
    path = tmp_path / f"m-{policy}.yaml"
    path.write_text(text)
    return path


def test_the_catalogue_has_the_slug_with_its_template() -> None:
    assert "`ambiguous: earlier` or `later`" in ROW_ERRORS["ambiguous-datetime"]
    template = ROW_TEMPLATES["ambiguous-datetime"]
    assert all(f"{{{k}}}" in template for k in ("text", "zone", "earlier", "later"))


def test_by_default_the_repeated_hour_is_invalid_and_nothing_is_sent(
    run_cli: RunCli, sandbox: Sandbox, tmp_path: Path
) -> None:
    server = sandbox()
    r = run_cli("run", _workbook(tmp_path), "-m", _mapping(tmp_path, None), "--base-url", server.base_url)
    assert r.code == 1, r.stderr
    by_id = {row["external_id"]: row for row in r.report}
    for key, column in (("AMS-1", "Start"), ("AMS-2", "End"), ("AMS-3", "Start")):
        row = by_id[key]
        got = (row["status"], row["error_type"], row["column"])
        assert got == ("invalid", "ambiguous-datetime", column), row
    one = by_id["AMS-1"]["message"]
    # both instants, as UTC and with their offsets, and the key to set
    assert "2026-10-25T00:30:00Z (2026-10-25T02:30+02:00)" in one
    assert "2026-10-25T01:30:00Z (2026-10-25T02:30+01:00)" in one
    assert "`ambiguous: earlier`" in one and "`ambiguous: later`" in one and "Europe/Amsterdam" in one
    two = by_id["AMS-2"]["message"]
    assert "2026-10-25T00:15:00Z" in two and "2026-10-25T01:15:00Z" in two
    gap = by_id["AMS-5"]
    assert (gap["status"], gap["error_type"]) == ("invalid", "bad-datetime")  # the gap stays
    assert by_id["AMS-4"]["status"] == "synced"
    assert set(server.state.records) == {"AMS-4"}  # no repeated-hour row reached SIRO


@pytest.mark.parametrize(
    ("policy", "start", "end_2"),
    [
        ("earlier", "2026-10-25T00:30:00Z", "2026-10-25T00:15:00Z"),  # summer time, +02:00
        ("later", "2026-10-25T01:30:00Z", "2026-10-25T01:15:00Z"),  # winter time, +01:00
    ],
)
def test_the_mapping_says_which_and_that_one_is_sent(
    run_cli: RunCli, sandbox: Sandbox, tmp_path: Path, policy: str, start: str, end_2: str
) -> None:
    server = sandbox()
    r = run_cli("run", _workbook(tmp_path), "-m", _mapping(tmp_path, policy), "--base-url", server.base_url)
    assert r.code == 1, r.stderr  # AMS-5, the gap, is invalid whatever `ambiguous` says
    got = server.state.records
    assert set(got) == {"AMS-1", "AMS-2", "AMS-3", "AMS-4"}
    assert (got["AMS-1"]["startTime"], got["AMS-1"]["endTime"]) == (start, "2026-10-25T02:00:00Z")
    assert got["AMS-3"]["startTime"] == start  # a typed date-time cell reads the same way
    assert (got["AMS-2"]["startTime"], got["AMS-2"]["endTime"]) == ("2026-10-24T23:45:00Z", end_2)
    assert [row["error_type"] for row in r.report if row["status"] == "invalid"] == ["bad-datetime"]


def test_a_column_of_many_rows_takes_the_same_way(tmp_path: Path) -> None:
    """More than 64 cells go the column-at-a-time (pandas) way: the same outcome as one cell."""
    spec = spec_of(_mapping(tmp_path, None).read_text())
    rows = [{"Id": str(i), "Start": "25-10-2026 02:30", "End": "25-10-2026 09:00"} for i in range(100)]
    got = map_rows(spec, rows)
    assert len(got) == 100
    for values, errors in got:
        assert "startTime" not in values and errors == [["ambiguous-datetime", "Start"]]
