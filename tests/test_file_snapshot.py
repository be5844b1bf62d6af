"""A file is read as it was when the run started (issue 33): its size and modification time are
taken when it is opened, nothing past that size is read, and a file that changes while it is read
stops the run before more of it is sent (exit 3, every row it held at the start accounted)."""

from __future__ import annotations

import csv
import os
import subprocess
import time
from pathlib import Path

import openpyxl
import pytest
from helpers import RunCli, Sandbox, start_run, wait_for_records

from bulk_sync.load import csv as load_csv
from bulk_sync.load import open_source
from bulk_sync.pipeline import prepare, scan_columns
from bulk_sync.report import read_report
from bulk_sync.sandbox import Faults, SandboxServer

MAPPING = "version: 1\nfields:\n  externalId: Id\n  subject: Subject\n  startTime: Start\n"
CHANGED = "the file changed while it was read: run again when it is complete"


def _rows(first: int, n: int) -> list[list[str]]:
    return [[f"E-{i:05d}", f"Visit {i}", "2024-03-05T10:00:00Z"] for i in range(first, first + n)]


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["Id", "Subject", "Start"])
        w.writerows(rows)
    return path


def _start(server: SandboxServer, data: Path, tmp_path: Path) -> subprocess.Popen[str]:
    """The run, in the background, one request of 20 records at a time."""
    return start_run(server, data, tmp_path, MAPPING, "--concurrency", "1", "--batch-size", "20",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


@pytest.mark.slow
def test_a_half_line_and_100_rows_appended_during_a_run_are_never_sent(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Was: the half line was sent with a cut-off subject and no startTime, exit 0."""
    server = sandbox(Faults(latency=0.25))  # 200 rows, 20 a request: about 2.5 s
    data = _write(tmp_path / "growing.csv", _rows(0, 200))
    proc = _start(server, data, tmp_path)
    wait_for_records(server, 20, timeout=30)
    with data.open("a", encoding="utf-8") as fh:  # an export still being written
        fh.write("E-99999,Half a sub")
        fh.flush()
        time.sleep(0.3)
        fh.write("ject,2024-03-05T10:00:00Z\n")
        csv.writer(fh, lineterminator="\n").writerows(_rows(1000, 100))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, (out, err)
    assert "Traceback" not in err
    assert CHANGED in out + err
    sent = set(server.state.records)
    original = {r[0] for r in _rows(0, 200)}
    assert sent and sent <= original  # nothing past the snapshot: not the half line, not the 100 rows
    assert len(sent) < 200  # it stopped before the rest was sent
    rows = read_report(tmp_path / "r.csv")
    assert [int(r["row_number"]) for r in rows] == list(range(2, 202))  # every original row, once
    synced = {r["external_id"] for r in rows if r["status"] == "synced"}
    assert synced == sent
    rest = [r for r in rows if r["status"] != "synced"]
    assert rest and {r["status"] for r in rest} == {"not_sent"}
    assert all(CHANGED in r["message"] for r in rest)


@pytest.mark.slow
def test_rows_appended_before_the_first_request_stop_the_run_with_nothing_sent(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Appended while the pre-flight waits (the file opened, its ids read, nothing sent yet): was,
    the appended rows and the half line were read by the main pass and sent."""
    server = sandbox(Faults(preflight_latency=1.0))
    data = _write(tmp_path / "growing.csv", _rows(0, 50))
    proc = _start(server, data, tmp_path)
    deadline = time.monotonic() + 30
    while server.state.identity_requests == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    with data.open("a", encoding="utf-8") as fh:
        fh.write("E-99999,Half a sub")
        fh.flush()
        csv.writer(fh, lineterminator="\n").writerows(_rows(1000, 100))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3 and "Traceback" not in err, (out, err)
    assert CHANGED in out + err
    assert server.state.records == {}
    rows = read_report(tmp_path / "r.csv")
    assert [int(r["row_number"]) for r in rows] == list(range(2, 52))
    assert {r["status"] for r in rows} == {"not_sent"}


@pytest.mark.slow
def test_a_workbook_saved_again_during_a_run_stops_it(sandbox: Sandbox, tmp_path: Path) -> None:
    """A workbook is read whole at open; saved again (a new mtime) while the run sends: the same stop."""
    server = sandbox(Faults(latency=0.25))
    data = tmp_path / "book.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Id", "Subject", "Start"])
    for row in _rows(0, 200):
        ws.append(row)
    wb.save(data)
    proc = _start(server, data, tmp_path)
    wait_for_records(server, 20, timeout=30)
    later = time.time() + 5
    os.utime(data, (later, later))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3 and "Traceback" not in err, (out, err)
    assert CHANGED in out + err
    rows = read_report(tmp_path / "r.csv")
    assert [int(r["row_number"]) for r in rows] == list(range(2, 202))
    assert {r["status"] for r in rows} == {"synced", "not_sent"}


def test_a_file_without_a_newline_after_its_last_row_is_not_suspect(siro: SandboxServer, run_cli: RunCli,
                                                                    tmp_path: Path) -> None:  # fmt: skip
    data = tmp_path / "no-newline.csv"
    data.write_text("Id,Subject,Start\nE-1,Visit 1,2024-03-05T10:00:00Z\nE-2,Visit 2,2024-03-05T10:00:00Z")
    m = tmp_path / "m.yaml"
    m.write_text(MAPPING)
    res = run_cli("run", data, "-m", m, "--base-url", siro.base_url, "--no-state")
    assert res.code == 0, res.stderr
    assert [r["status"] for r in res.report] == ["synced", "synced"]
    assert siro.state.records["E-2"]["subject"] == "Visit 2"


def test_every_reader_stops_at_the_size_the_file_had_when_opened(tmp_path: Path) -> None:
    """The chunks, the quick column pass and the row count read the bytes of the snapshot only."""
    data = _write(tmp_path / "f.csv", _rows(0, 3))
    src = open_source(data)
    with data.open("a", encoding="utf-8") as fh:
        fh.write("E-HALF,Cut off")
    numbers = [n for chunk in src.chunks() for n in chunk.row_numbers]
    assert numbers == [2, 3, 4]
    ids = [c for chunk in src.chunks(columns=["Id"]) for c in chunk.cells("Id")]
    assert ids == ["E-00000", "E-00001", "E-00002"]
    assert [n for part in src.row_numbers() for n in part] == [2, 3, 4]


def test_the_id_pass_in_two_halves_reads_only_the_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The id pass's helper process reads the second half up to the size at open: rows appended
    after the file was opened, with the ids of rows already there, supersede none of them."""
    monkeypatch.setattr(load_csv, "SPLIT_MIN_BYTES", 0)  # a small file is read in two halves too
    data = _write(tmp_path / "f.csv", _rows(0, 2000))
    m = tmp_path / "m.yaml"
    m.write_text(MAPPING)
    plan = prepare([data], m)
    with data.open("a", encoding="utf-8") as fh:  # the same ids again, after the open
        csv.writer(fh, lineterminator="\n").writerows(_rows(0, 100))
        fh.write("E-00001,Half a li")
    scanned = scan_columns(plan, helper=True)
    assert scanned.splits  # it was read in two halves
    assert scanned.superseded == {}
    src = scanned.jobs[0][0]
    assert [n for chunk in src.chunks() for n in chunk.row_numbers] == list(range(2, 2002))
