"""Issue 36 over real HTTP on 127.0.0.1: a run over two files where only the second has rows to fix.
The real CLI's `validate a.csv b.csv` then writes one error file, r-errors.csv (no file's name in
it), holding b.csv's rows: the run page says they are b.csv's, and the fixed file sent from it is
named after b.csv (b-fixed-...), not after the run's first file."""

from __future__ import annotations

import csv
from pathlib import Path

import httpx
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, ROOT, cli_argv, cli_env, cli_run

from bulk_sync.review import Review
from bulk_sync.review.runs import find_runs, grid_of
from bulk_sync.review.server import ReviewThread

GOOD = "03/02/2026 10:00 AM"  # the bad-date row's End is later that day


def only_b_has_rows_to_fix(folder: Path) -> Path:
    """a.csv: the example's first 7 rows (all valid); b.csv: the whole example, ids starting with B
    (5 rows to fix). Returns the report folder of the real `validate a.csv b.csv`."""
    with EXAMPLE_CSV.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    b = [rows[0], *([f"B{r[0]}", *r[1:]] if r[0] else r for r in rows[1:])]
    for name, body in (("a.csv", rows[:8]), ("b.csv", b)):
        with (folder / name).open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(body)
    reports = folder / "reports"
    reports.mkdir()
    argv = cli_argv("validate", "a.csv", "b.csv", "--mapping", EXAMPLE_MAPPING, "--report", reports / "r.csv")
    done = cli_run(argv, env=cli_env(None), cwd=folder, timeout=120, check=False, capture_output=True)
    assert done.returncode == 1, done.stderr
    assert sorted(p.name for p in reports.glob("r-errors*")) == ["r-errors.csv"]  # one file: no name in it
    return reports


def test_the_only_error_file_of_a_two_file_run_is_named_after_the_file_its_rows_came_from(
    tmp_path: Path,
) -> None:
    reports = only_b_has_rows_to_fix(tmp_path)
    (tmp_path / "inbox").mkdir()
    server = ReviewThread(Review(tmp_path / "inbox", [reports], ROOT / "mappings")).start()
    try:
        with httpx.Client(base_url=server.url, follow_redirects=True, timeout=60) as client:
            html = client.get(f"/?key={server.review.key}").text
            csrf = html.split('<meta name="csrf" content="', 1)[1].split('"', 1)[0]
            (run,) = find_runs(server.review.folders)
            assert [p.source for p in run.parts] == ["b.csv"]
            page = client.get(f"/runs/{run.id}").text
            assert "Rows that did not sync (5) in b.csv" in page
            grid = grid_of(run)
            index = [r[0] for r in grid.rows].index("BAPT-24016")  # its start, 31/02/2026, does not exist
            cells = list(grid.rows[index])
            cells[grid.headers.index("Start")] = GOOD
            h = {"X-CSRF-Token": csrf, "X-Reviewer": "Ana"}
            checked = client.post(f"/runs/{run.id}/check", json={"index": index, "cells": cells}, headers=h)
            assert checked.status_code == 200 and checked.json()["status"] == "valid"
            sent = client.post(f"/runs/{run.id}/send", json={"send_id": "s"}, headers=h).json()
            assert sent["rows"] == 1 and sent["dropped"].startswith("b-fixed-"), sent
            fixed = tmp_path / "inbox" / sent["dropped"]
            with fixed.open(encoding="utf-8") as fh:
                sent_rows = list(csv.DictReader(fh))
            assert [r["Appointment ID"] for r in sent_rows] == ["BAPT-24016"]
            assert [r["bulk_sync_row"] for r in sent_rows] == ["17"]  # its number in b.csv
    finally:
        server.stop()
    again = tmp_path / "again.csv"  # the fixed file's own run speaks b.csv's row number
    argv = cli_argv("validate", fixed, "--mapping", EXAMPLE_MAPPING, "--report", again, "--no-rep-check")
    done = cli_run(argv, env=cli_env(None), cwd=tmp_path, timeout=120, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    with again.open(encoding="utf-8-sig") as fh:
        assert [(r["row_number"], r["status"]) for r in csv.DictReader(fh)] == [("17", "valid")]
