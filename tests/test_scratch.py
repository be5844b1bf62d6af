"""Issue 33, temporary files: each run keeps its temporary files (XlsxWriter's ``tmp*`` files of an
.xlsx report among them) in its own folder under TMPDIR, locked for its life and removed at its
end; a run killed with SIGKILL leaves its folder, and the next run's start removes it, but never
the folder of a run still going. Real subprocesses against the sandbox on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import openpyxl
import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, Sandbox, cli_argv, cli_env, cli_popen, cli_run, valid_csv

from bulk_sync.cli.scratch import LOCK, sweep
from bulk_sync.lockfile import LockFile
from bulk_sync.report import read_report
from bulk_sync.sandbox import Faults


def env(tmp: Path) -> dict[str, str]:
    e = cli_env()
    e.update(TMPDIR=str(tmp), TEMP=str(tmp), TMP=str(tmp))
    return e


def run_folders(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("bulk_sync-run-*"))


def slow_run(data: Path, base_url: str, report: Path, tmp: Path, cwd: Path) -> subprocess.Popen[bytes]:
    argv = cli_argv(
        "run", data, "-m", EXAMPLE_MAPPING, "--base-url", base_url, "--no-rep-check", "--no-state",
        "--batch-size", "10", "--concurrency", "1", "--report", report, "--report-xlsx",
    )  # fmt: skip
    return cli_popen(argv, env=env(tmp), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_rows(report: Path, rows: int, proc: subprocess.Popen[bytes]) -> None:
    """Until the report holds ``rows`` rows (the run is mid-way)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if report.exists() and report.read_bytes().count(b"\n") > rows:
            return
        time.sleep(0.05)
    raise AssertionError("the run did not get mid-way")


def validate(tmp: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = cli_argv(
        "validate", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--no-rep-check", "--report", cwd / "v.csv"
    )
    return cli_run(argv, env=env(tmp), cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_a_killed_runs_temporary_files_are_removed_by_the_next_run(sandbox: Sandbox, tmp_path: Path) -> None:
    siro = sandbox(Faults(latency=0.1))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    report = tmp_path / "r.csv"
    proc = slow_run(valid_csv(tmp_path / "a.csv", rows=400), siro.base_url, report, tmp, tmp_path)
    try:
        wait_rows(report, 50, proc)
        proc.send_signal(signal.SIGKILL)  # mid-way, the .xlsx half written
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    (left,) = run_folders(tmp)  # everything of the killed run is in its own folder ...
    assert list(left.glob("tmp*")), "XlsxWriter's temporary files"
    assert [p for p in tmp.iterdir() if p != left] == []  # ... and nothing beside it
    r = validate(tmp, tmp_path)
    assert r.returncode == 1, r.stderr  # the example has invalid rows
    assert run_folders(tmp) == [] and list(tmp.iterdir()) == []  # the killed run's, and its own


@pytest.mark.slow
def test_a_live_runs_folder_is_left_alone(sandbox: Sandbox, tmp_path: Path) -> None:
    siro = sandbox(Faults(latency=0.1))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    report = tmp_path / "r.csv"
    proc = slow_run(valid_csv(tmp_path / "a.csv", rows=300), siro.base_url, report, tmp, tmp_path)
    try:
        wait_rows(report, 30, proc)
        (live,) = run_folders(tmp)
        assert validate(tmp, tmp_path).returncode == 1
        assert run_folders(tmp) == [live] and list(live.glob("tmp*"))  # still there, still in use
        assert proc.wait(120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert run_folders(tmp) == []  # removed by its run at its end
    assert {r["status"] for r in read_report(report)} == {"synced"}
    book = openpyxl.load_workbook(report.with_suffix(".xlsx"), read_only=True)
    assert book["Results"].max_row == 301


def test_the_sweep_takes_only_the_folders_of_runs_that_are_gone(tmp_path: Path) -> None:
    def folder(name: str, lock: bool = True) -> Path:
        (tmp_path / name).mkdir()
        (tmp_path / name / "tmpab12").write_bytes(b"x" * 100)
        if lock:
            (tmp_path / name / LOCK).write_text("pid 1")
        return tmp_path / name

    dead, live, foreign = (
        folder("bulk_sync-run-dead"),
        folder("bulk_sync-run-live"),
        folder("bulk_sync-run-x", False),
    )
    fresh, stale = folder("bulk_sync-new-fresh"), folder("bulk_sync-new-stale")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))  # a run killed while making its folder
    held = LockFile(live / LOCK)
    assert held.acquire() is None
    try:
        assert sweep(tmp_path) == 2
    finally:
        held.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (live, foreign, fresh))
    assert not dead.exists() and not stale.exists()
