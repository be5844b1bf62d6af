"""A fixed error file, dropped again, speaks the first run's row numbers: its rows are numbered by
its `bulk_sync_row` column (checked at open: a number on every row, each larger than the one before),
so the second report and error file say "row 46" where the first did, not "row 6" of the error file.
A row added, moved or emptied in a spreadsheet breaks the order: the file is then numbered as it
stands, and a warning says why. Real CLI runs (validate, and run against the sandbox)."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, cli_argv, cli_env, cli_run

from bulk_sync.report import read_report


def _cli(cwd: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return cli_run(cli_argv(*args), capture_output=True, text=True, env=cli_env(), cwd=cwd, timeout=120)


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_a_fixed_error_file_keeps_the_first_runs_row_numbers(tmp_path: Path) -> None:
    first = _cli(
        tmp_path, "validate", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--no-rep-check", "--report", "r1.csv"
    )
    assert first.returncode == 1, first.stderr
    rows = _rows(tmp_path / "r1-errors.csv")
    header, at = rows[0], rows[0].index("bulk_sync_row")
    assert [r[at] for r in rows[1:]] == ["9", "17", "25", "33", "46"]
    for r in rows[1:]:  # fixed as a person would: the enum and the number
        if r[at] == "25":
            r[header.index("Activity")] = "Meeting"
        if r[at] == "46":
            r[header.index("Amount")] = "12000"
    fixed = _write(tmp_path / "fixed.csv", rows)
    again = _cli(
        tmp_path,
        "run",
        fixed,
        "-m",
        EXAMPLE_MAPPING,
        "--sandbox",
        "--rate-per-min",
        "0",
        "--report",
        "r2.csv",
    )
    assert again.returncode == 1, again.stderr  # three rows still to fix
    report = read_report(tmp_path / "r2.csv")
    assert [(r["row_number"], r["status"]) for r in report] == [
        ("9", "invalid"), ("17", "invalid"), ("25", "synced"), ("33", "invalid"), ("46", "synced"),
    ]  # fmt: skip
    assert "fixed.csv row 17 [Start]" not in again.stderr  # (a run lists nothing; the report speaks)
    second = _rows(tmp_path / "r2-errors.csv")
    assert [r[second[0].index("bulk_sync_row")] for r in second[1:]] == ["9", "17", "33"]
    assert "does not hold the first run" not in again.stdout + again.stderr


def test_a_row_added_by_hand_numbers_the_file_as_it_stands_and_says_why(tmp_path: Path) -> None:
    _cli(tmp_path, "validate", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--no-rep-check", "--report", "r1.csv")
    rows = _rows(tmp_path / "r1-errors.csv")
    added = [""] * len(rows[0])
    added[rows[0].index("Appointment ID")] = "NEW-1"
    edited = _write(tmp_path / "edited.csv", [*rows[:3], added, *rows[3:]])
    proc = _cli(tmp_path, "validate", edited, "-m", EXAMPLE_MAPPING, "--no-rep-check", "--report", "r2.csv")
    said = " ".join((proc.stdout + proc.stderr).split())
    assert (
        "bulk_sync_row column (bulk_sync's) does not hold the first run's row numbers in order "
        "(row 4 of this file has none)" in said
    )
    assert [r["row_number"] for r in read_report(tmp_path / "r2.csv")] == ["2", "3", "4", "5", "6", "7"]
