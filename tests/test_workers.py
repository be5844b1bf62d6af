"""A dry run's worker processes (pipeline/workers.py): the report, the error file and the summary are
what the reader thread alone makes of the same files, byte for byte, whatever the rows hold; a
worker killed mid-run changes nothing in them; a bad BULK_SYNC_WORKERS is refused before anything
is read. Each run is the real CLI in a subprocess, BULK_SYNC_WORKERS set for it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from functools import partial
from pathlib import Path

import pytest
from helpers import (
    EXAMPLE_CSV,
    EXAMPLE_MAPPING,
    EXAMPLE_XLSX,
    cli_argv,
    cli_argv_splitting,
    cli_env,
    cli_popen,
    cli_run,
    dry_run,
    mixed_csv,
    same_outputs,
    without_timing,
)

from bulk_sync.cli.process import workers_asked
from bulk_sync.errors import ConfigError
from bulk_sync.report import read_report
from bulk_sync.sandbox import SandboxServer


@pytest.mark.slow
def test_a_dry_run_mapped_by_a_worker_writes_what_the_reader_alone_writes(tmp_path: Path) -> None:
    big = mixed_csv(tmp_path / "export.csv", 23_000)
    files = (big, EXAMPLE_XLSX, EXAMPLE_CSV)  # several jobs: a CSV, every sheet of a workbook, a CSV
    code1, out1, err1, dir1 = dry_run(tmp_path, "one", "1", *files)
    code0, out0, err0, dir0 = dry_run(tmp_path, "none", "0", *files)
    assert "Traceback" not in err1 + err0
    assert code1 == code0 == 1  # invalid rows
    assert "; 1 worker process)" in out1 and "worker" not in out0  # the worker did map the chunks
    same_outputs(dir1, dir0)
    assert without_timing(out1) == without_timing(out0)
    assert err1 == err0
    report = (dir1 / "report.csv").read_text(encoding="utf-8-sig")
    for status in ("valid", "invalid", "superseded", "skipped"):  # what the file holds did happen
        assert f",{status}," in report, status
    for kind in ("extra-cells", "bad-encoding", "bad-datetime", "invalid-enum", "footer"):
        assert kind in report, kind


@pytest.mark.slow
@pytest.mark.parametrize("split", [None, 0], ids=["chunks", "two-parts"])
def test_a_dry_run_with_a_state_file_predicts_the_same_with_a_worker(
    tmp_path: Path, siro: SandboxServer, split: int | None
) -> None:
    """Each worker opens the state file itself: new, changed and unchanged as the reader says
    (the worker mapping chunks the reader sends, or reading the file's second half itself)."""
    state = tmp_path / "state.db"
    sent = cli_run(
        cli_argv(
            "run", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--base-url", siro.base_url,
            "--allow-insecure-http", "--state", state, "--report", tmp_path / "sent.csv",
        ),
        capture_output=True, text=True, env=cli_env(), timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert sent.returncode in (0, 1) and state.is_file(), sent.stderr
    big = mixed_csv(tmp_path / "export.csv", 21_000)
    extra = ("--state", str(state), "--base-url", siro.base_url, "--allow-insecure-http")  # its target
    code1, out1, err1, dir1 = dry_run(tmp_path, "one", "1", big, EXAMPLE_CSV, extra=extra, split=split)
    code0, out0, err0, dir0 = dry_run(tmp_path, "none", "0", big, EXAMPLE_CSV, extra=extra)
    assert code1 == code0 and "; 1 worker process)" in out1
    assert err1 == err0 and "Traceback" not in err1
    same_outputs(dir1, dir0)
    assert without_timing(out1) == without_timing(out0)
    assert "unchanged" in (dir1 / "report.csv").read_text(encoding="utf-8-sig")  # the state was read


BIG_ROWS = 150_000  # 79 MB: a run long enough to be stopped, or to lose its worker, mid-file


@pytest.fixture(scope="session")
def big_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[int, str, str, Path]]:
    """The 79 MB export and its dry run without workers (the reference the stopped and the killed
    runs are held to): made once for the tests that use it rather than once by each (~10 s of CPU).
    For the session, not the module: under xdist other modules' tests may run between these, and a
    module's fixture would then be made again (twice in a full run, 40 s each under load)."""
    folder = tmp_path_factory.mktemp("big")
    data = mixed_csv(folder / "export.csv", BIG_ROWS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_STATE_HOME", str(folder / "state-home"))  # none: as each test's own
        return data, dry_run(folder, "full", "0", data)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _worker_of(pid: int) -> int | None:
    """The forked worker among ``pid``'s children: it runs the same executable (other children,
    such as the ``ldconfig`` that ctypes runs to find the C library, come and go)."""
    own = Path(f"/proc/{pid}/exe").resolve()
    for kid in _children(pid):
        try:
            if Path(f"/proc/{kid}/exe").resolve() == own:
                return kid
        except OSError:
            continue
    return None


@pytest.mark.slow
@pytest.mark.xdist_group("big_export")  # one worker makes the export, once
@pytest.mark.parametrize("split", [None, 1 << 40], ids=["two-parts", "chunks"])
def test_a_worker_killed_mid_run_leaves_the_report_whole(
    tmp_path: Path, split: int | None, big_export: tuple[Path, tuple[int, str, str, Path]]
) -> None:
    """SIGKILL to the worker (as the kernel's OOM killer would): the reader maps its chunks and the
    rest of the file itself; the report and error file are the ones a run without workers writes.
    The file (79 MB) is read in two parts at once, the worker reading the second; or, with a split
    only past 1 TB, the worker maps the chunks the reader sends it."""
    data, (code0, out0, _, dir0) = big_export
    out = tmp_path / "killed"
    out.mkdir()
    argv = (cli_argv if split is None else partial(cli_argv_splitting, split))(
        "validate", data, "--mapping", EXAMPLE_MAPPING, "--report", out / "report.csv", "--no-rep-check",
        "--log-file", tmp_path / "run.log",
    )  # fmt: skip
    env = {**cli_env(None), "BULK_SYNC_WORKERS": "1"}
    proc = cli_popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    report = out / "report.csv"
    while not report.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)  # the run has begun (the id pass is over): kill the worker mid-file
    time.sleep(0.3)
    while (worker := _worker_of(proc.pid)) is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert worker is not None, "the worker never started"
    os.kill(worker, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "Traceback" not in stderr, stderr
    log = (tmp_path / "run.log").read_text()
    assert "a worker process ended unexpectedly (exit code -9)" in log
    assert ("ids read in two halves" in log) == (split is None)
    assert "read by the worker process, beside the first half" not in log  # it ended before
    assert code0 == 1
    names = same_outputs(out, dir0)
    assert (out / "report.csv").read_text(encoding="utf-8-sig").count("\n") > BIG_ROWS, names
    assert without_timing(stdout).replace(str(out), "OUT") == without_timing(out0)


def test_a_bad_worker_count_is_refused_before_anything_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = cli_run(
        cli_argv("validate", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--report", tmp_path / "r.csv"),
        capture_output=True, text=True, env={**cli_env(None), "BULK_SYNC_WORKERS": "two"}, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "BULK_SYNC_WORKERS='two': expected the number of worker processes" in proc.stderr
    assert not (tmp_path / "r.csv").exists()
    for value, expected in (("0", 0), (" 3 ", 3), ("", None)):
        monkeypatch.setenv("BULK_SYNC_WORKERS", value)
        assert workers_asked() == expected
    for bad in ("-1", "65", "1.5"):
        monkeypatch.setenv("BULK_SYNC_WORKERS", bad)
        with pytest.raises(ConfigError):
            workers_asked()


def test_with_a_worker_the_readers_date_time_memos_take_a_small_share() -> None:
    """The worker maps most chunks and holds the memos; the reader's are 1/8 of theirs (memory)."""
    from bulk_sync import mapping
    from bulk_sync.mapping.columns import DatetimeMemo
    from bulk_sync.pipeline import prepare

    plan = prepare([EXAMPLE_CSV], EXAMPLE_MAPPING)
    src, bound = plan.jobs[0]
    mapping.share_memos(bound, 8)
    mapping.map_chunk(bound, next(src.chunks(text=bound.columns.values())))
    memos = list(bound.memos.datetimes.values())
    assert memos and all(m.max_bytes == DatetimeMemo.MAX_BYTES // 8 for m in memos)
    plan = prepare([EXAMPLE_CSV], EXAMPLE_MAPPING)  # without a share: a whole memo
    src, bound = plan.jobs[0]
    mapping.map_chunk(bound, next(src.chunks(text=bound.columns.values())))
    memos = list(bound.memos.datetimes.values())
    assert memos and all(m.max_bytes == DatetimeMemo.MAX_BYTES for m in memos)


@pytest.mark.slow
@pytest.mark.xdist_group("big_export")  # one worker makes the export, once
@pytest.mark.parametrize(("workers", "when"), [("0", "early"), ("1", "early"), ("1", "late")])
def test_ctrl_c_on_a_dry_run_accounts_for_every_row(
    tmp_path: Path, workers: str, when: str, big_export: tuple[Path, tuple[int, str, str, Path]]
) -> None:
    """A real SIGINT mid-file: validate says it is stopping, the rows not checked yet are counted as
    not_sent, every row is in the report once and in order, exit 3 (as a run that sends). With a
    worker the file (79 MB) is read in two parts at once: the signal comes while the reader reads
    the first ("early"), or while it waits for the worker's results ("late": the worker is held
    with SIGSTOP until the reader has handed on its whole half, then let go after the SIGINT)."""
    data, (code0, _, _, full) = big_export
    assert code0 == 1
    whole_size = (full / "report.csv").stat().st_size
    out = tmp_path / "stopped"
    out.mkdir()
    argv = cli_argv(
        "validate", data, "--mapping", EXAMPLE_MAPPING, "--report", out / "report.csv", "--no-rep-check",
    )  # fmt: skip
    with (tmp_path / "stderr.txt").open("w") as err:
        proc = cli_popen(
            argv, stdout=subprocess.DEVNULL, stderr=err, env={**cli_env(None), "BULK_SYNC_WORKERS": workers}
        )
        deadline = time.monotonic() + 60
        while not (out / "report.csv").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        worker = None
        if when == "early":  # mid-file: rows checked (2 % of the report), not the first part's end
            while (out / "report.csv").stat().st_size < 0.02 * whole_size and time.monotonic() < deadline:
                time.sleep(0.01)
        else:
            while (worker := _worker_of(proc.pid)) is None and time.monotonic() < deadline:
                time.sleep(0.001)
            assert worker is not None, "the worker never started"
            os.kill(worker, signal.SIGSTOP)
            size, still = -1, 0
            while still < 50 and time.monotonic() < deadline:  # the report stops growing: half done
                now = (out / "report.csv").stat().st_size
                still, size = (still + 1 if now == size else 0), now
                time.sleep(0.02)
            assert 0.3 * whole_size < size < 0.7 * whole_size
        assert proc.poll() is None, "the run ended before the signal: make the file bigger"
        proc.send_signal(signal.SIGINT)
        if worker is not None:
            time.sleep(0.2)
            os.kill(worker, signal.SIGCONT)
        assert proc.wait(timeout=120) == 3
    said = (tmp_path / "stderr.txt").read_text()
    assert "stopping (SIGINT)" in said and "Traceback" not in said
    stopped, whole = read_report(out / "report.csv"), read_report(full / "report.csv")
    assert [r["row_number"] for r in stopped] == [r["row_number"] for r in whole]
    statuses = {r["status"] for r in stopped}
    assert "not_sent" in statuses and "valid" in statuses
    assert all(
        r["message"].startswith("not sent: stopped by SIGINT") for r in stopped if r["status"] == "not_sent"
    )
    first_not_sent = next(k for k, r in enumerate(stopped) if r["status"] == "not_sent")
    if when == "late":  # the first part (46 % of the bytes) was all handed on: the stop came after
        assert first_not_sent > 0.4 * len(stopped)
