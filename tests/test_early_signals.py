"""Signals at any moment (issue 33): Ctrl-C or SIGTERM in the first second of a run (while modules are
imported, the mapping is read, the id pass runs) ends with the report and exit 3, or exit 2 when no
row was read; never a traceback, never pandas' "Error tokenizing data".

Real signals to real `bulk-sync` subprocesses. Each delay counts from the moment the process has
its signal handlers (its SigCgt mask in /proc shows SIGTERM caught: the first line of bulk_sync
has run), or from READY_SECONDS after its start; before the first line the interpreter itself is
starting and a signal is the system's business.
"""

from __future__ import annotations

import asyncio
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import Sandbox, cli_argv, cli_env

from bulk_sync.report import read_report

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")

ROWS = 20_000
MAPPING = "version: 1\nfields:\n  externalId: Id\n  subject: Subject\n  startTime: Start\n"
DELAYS = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
# the handlers are in within ~0.3 s of the start on a busy machine; a CLI that has none of its own
# until its event loop runs (before this release) is signalled after this long, while importing
READY_SECONDS = 1.0


def _catches_sigterm(pid: int) -> bool:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    except OSError:
        pass
    return False


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "big.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Id", "Subject", "Start"])
        w.writerows([f"E-{i:06d}", f"Visit {i}", "2024-03-05T10:00:00Z"] for i in range(ROWS))
    (tmp_path / "m.yaml").write_text(MAPPING)
    return path


def _stop_at(argv: list[str], sig: signal.Signals, delay: float, cwd: Path) -> tuple[int, str]:
    proc = subprocess.Popen(argv, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd)  # fmt: skip
    deadline = time.monotonic() + READY_SECONDS
    while not _catches_sigterm(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _check(code: int, err: str, report: Path, sig: signal.Signals, count: int = ROWS) -> None:
    assert "Traceback" not in err, err
    assert "tokenizing" not in err, err
    assert code in (2, 3), (code, err)
    if code == 2:
        assert f"stopped by {sig.name} before any row was read: nothing was sent" in err
        assert not report.exists() or not read_report(report)
        return
    rows = read_report(report)
    assert [int(r["row_number"]) for r in rows] == list(range(2, count + 2))  # every row, once
    assert {r["status"] for r in rows} <= {"synced", "unchanged", "valid", "not_sent"}
    assert f"stopped by {sig.name}" in err


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_in_the_first_second_of_a_run_ends_with_the_report_or_exit_2(
    sig: signal.Signals, data: Path, sandbox: Sandbox, tmp_path: Path
) -> None:
    server = sandbox()
    for delay in DELAYS:  # which of 2 and 3 a delay gives depends on the machine: each is checked as it came
        report = tmp_path / f"r-{delay}.csv"
        argv = cli_argv("run", data, "-m", tmp_path / "m.yaml", "--base-url", server.base_url, "--no-state",
                        "--report", report)  # fmt: skip
        code, err = _stop_at(argv, sig, delay, tmp_path)
        _check(code, err, report, sig)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_early_in_validate_too(sig: signal.Signals, data: Path, tmp_path: Path) -> None:
    big = tmp_path / "bigger.csv"  # a dry run is fast: 5x the rows, so that it is still going
    lines = data.read_text().splitlines(keepends=True)
    with big.open("w") as fh:
        fh.write(lines[0])
        for k in range(5):
            fh.writelines(line.replace("E-", f"E{k}-", 1) for line in lines[1:])
    for delay in (0.0, 0.1, 0.3):  # a dry run of these rows takes about a second on a quiet machine
        report = tmp_path / f"v-{delay}.csv"
        argv = cli_argv("validate", big, "-m", tmp_path / "m.yaml", "--no-rep-check", "--report", report)
        code, err = _stop_at(argv, sig, delay, tmp_path)
        _check(code, err, report, sig, count=5 * ROWS)


def test_a_held_signal_that_also_reaches_the_loop_is_one_signal() -> None:
    """A signal that arrives while the handlers change hands is held by the CLI's handler and also
    reaches the loop's (CI once saw one SIGTERM taken for two: a hard stop, a report of one line).
    Here the held one is handed on and the same signal then reaches the loop: one call; a second
    signal after SAME_SIGNAL_SECONDS is a second one."""
    from bulk_sync.pipeline.stopping import SAME_SIGNAL_SECONDS, signals

    async def main() -> list[str]:
        calls: list[str] = []
        with signals(calls.append, enabled=True, held=lambda: "SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)  # the same signal, as the loop sees it
            await asyncio.sleep(0.05)
            assert calls == ["SIGTERM"]
            await asyncio.sleep(SAME_SIGNAL_SECONDS)
            os.kill(os.getpid(), signal.SIGTERM)  # a second one, later
            await asyncio.sleep(0.05)
        return calls

    assert asyncio.run(main()) == ["SIGTERM", "SIGTERM"]
