"""State: unchanged reruns send nothing, changed cells send exactly their record, a SIGKILLed run
resumes without resending anything acknowledged, overlapping runs are refused, `retry` resends
exactly the rows that failed. All through the real CLI against the sandbox on loopback."""

from __future__ import annotations

import csv
import random
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import EXAMPLE_MAPPING, TOKEN, CliResult, cli_argv, cli_env
from test_delivery import make_file

from bulk_sync.report import read_report
from bulk_sync.sandbox import Faults, SandboxServer
from bulk_sync.state import target_of

Sandbox = Callable[..., SandboxServer]
RunCli = Callable[..., CliResult]


def acked_keys(state: Path, base_url: str) -> set[str]:
    with sqlite3.connect(state) as db:
        return {k for (k,) in db.execute("SELECT key FROM records WHERE target = ?", [target_of(base_url)])}


def test_unchanged_rerun_sends_nothing_and_a_changed_cell_sends_only_its_record(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    data = tmp_path / "d.csv"
    expected = make_file(data, 500)
    state = tmp_path / "s.sqlite3"
    server = sandbox()
    args = ("run", data, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url, "--state", state)
    first = run_cli(*args)
    assert first.code == 0 and {r["status"] for r in first.report} == {"synced"}
    assert acked_keys(state, server.base_url) == set(expected)
    requests_after_first = server.state.requests

    again = run_cli(*args)
    assert again.code == 0
    assert {r["status"] for r in again.report} == {"unchanged"}
    assert server.state.requests == requests_after_first  # not one sync request
    assert re.search(r"unchanged\s+500\n", again.stdout)

    with data.open(newline="") as fh:
        rows = list(csv.reader(fh))
    rows[42][1] = "A changed subject"  # one cell of one record
    with data.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    changed = run_cli(*args)
    assert changed.code == 0
    sent = [r["external_id"] for r in changed.report if r["status"] == "synced"]
    assert sent == [rows[42][0]]
    assert server.state.records[rows[42][0]]["subject"] == "A changed subject"
    assert max(server.state.writes.values()) == 2 and sum(server.state.writes.values()) == 501

    full = run_cli(*args, "--full")
    assert {r["status"] for r in full.report} == {"synced"} and sum(server.state.writes.values()) == 1001


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_then_resume_resends_nothing_acknowledged(
    sandbox: Sandbox, tmp_path: Path, seed: int
) -> None:
    data = tmp_path / "k.csv"
    expected = make_file(data, 3000)
    state = tmp_path / "s.sqlite3"
    server = sandbox(Faults(latency=0.01, error_5xx=0.05, seed=seed))
    cmd = cli_argv(
        "run",
        data,
        "--mapping",
        EXAMPLE_MAPPING,
        "--base-url",
        server.base_url,
        "--state",
        state,
        "--batch-size",
        "20",
        "--concurrency",
        "4",
        "--rate-per-min",
        "0",
        "--retry-backoff",
        "0.01",
        "--report",
        tmp_path / "r.csv",
    )
    proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = random.Random(seed).randint(300, 2500)  # kill somewhere along the way
    deadline = time.monotonic() + 60
    while len(server.state.records) < target and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    acked = acked_keys(state, server.base_url)  # what the killed run knew SIRO had
    writes_before = dict(server.state.writes)
    assert 0 < len(acked) < 3000
    assert acked <= set(writes_before)

    resumed = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    resent = {k for k in acked if server.state.writes[k] != writes_before[k]}
    assert resent == set()  # no acknowledged record was sent again
    assert server.state.records == expected  # and every record is there, as expected
    assert acked_keys(state, server.base_url) == set(expected)


def test_overlapping_runs_are_refused_or_wait(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    data = tmp_path / "o.csv"
    make_file(data, 200)
    state = tmp_path / "s.sqlite3"
    server = sandbox(Faults(latency=0.3))
    slow = subprocess.Popen(
        cli_argv(
            "run",
            data,
            "--mapping",
            EXAMPLE_MAPPING,
            "--base-url",
            server.base_url,
            "--state",
            state,
            "--batch-size",
            "10",
            "--concurrency",
            "1",
            "--report",
            tmp_path / "slow.csv",
        ),
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not server.state.records and time.monotonic() < deadline:
            time.sleep(0.05)
        second = run_cli(
            "run", data, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url, "--state", state
        )
        assert second.code == 2
        assert "is in use by another bulk-sync run (pid" in second.stderr and "--wait-lock" in second.stderr
        waited = run_cli(
            "run",
            data,
            "--mapping",
            EXAMPLE_MAPPING,
            "--base-url",
            server.base_url,
            "--state",
            state,
            "--wait-lock",
            "60",
        )
        assert waited.code == 0
        assert {r["status"] for r in waited.report} == {"unchanged"}  # the first run synced them all
    finally:
        slow.kill()
        slow.wait()


def test_bad_state_files_are_clear_errors(run_cli: RunCli, tmp_path: Path, sandbox: Sandbox) -> None:
    data = tmp_path / "b.csv"
    make_file(data, 5)
    server = sandbox()
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    res = run_cli("run", data, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url, "--state", junk)
    assert (
        res.code == 2 and "is not a bulk_sync state database" in res.stderr and "Traceback" not in res.stderr
    )
    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 99")
    res = run_cli("run", data, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url, "--state", newer)
    assert res.code == 2 and "written by a newer bulk_sync" in res.stderr
    assert server.state.requests == 0


def test_state_never_holds_the_token(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    data = tmp_path / "t.csv"
    make_file(data, 50)
    state = tmp_path / "s.sqlite3"
    server = sandbox()
    assert (
        run_cli(
            "run", data, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url, "--state", state
        ).code
        == 0
    )
    for f in tmp_path.glob("s.sqlite3*"):
        assert TOKEN.encode() not in f.read_bytes()


def test_retry_resends_exactly_the_rows_that_did_not_sync(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    data = tmp_path / "r.csv"
    make_file(data, 100)
    bad = {"APT-R000010", "APT-R000020", "APT-R000030"}
    server = sandbox(Faults(reject_pattern="^(" + "|".join(bad) + ")$"))
    report = tmp_path / "first.csv"
    first = run_cli(
        "run", data, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url, "--report", report
    )
    assert first.code == 1
    assert {r["external_id"] for r in read_report(report) if r["status"] == "rejected"} == bad
    server.sandbox.faults.reject_pattern = None  # the server-side problem is fixed
    writes = sum(server.state.writes.values())
    again = run_cli("retry", report, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url)
    assert again.code == 0, again.stderr
    assert {r["external_id"]: r["status"] for r in again.report} == dict.fromkeys(bad, "synced")
    assert [int(r["row_number"]) for r in again.report] == [12, 22, 32]  # as Excel numbers them
    assert sum(server.state.writes.values()) == writes + 3
    done = run_cli(
        "retry", tmp_path / "report.csv", "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url
    )
    assert done.code == 0 and "nothing to retry" in done.stdout


def test_the_token_appears_nowhere(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    """A run with a known token: stdout, stderr, the report and the state hold no trace of it."""
    data = tmp_path / "n.csv"
    make_file(data, 30)
    server = sandbox(Faults(error_5xx=0.3, seed=3))
    state = tmp_path / "s.sqlite3"
    res = run_cli(
        "run",
        data,
        "--mapping",
        EXAMPLE_MAPPING,
        "--base-url",
        server.base_url,
        "--state",
        state,
        "--retry-backoff",
        "0.01",
        "--max-attempts",
        "20",
        "--batch-size",
        "5",
    )
    assert res.code == 0, res.stderr
    wrong = run_cli(
        "run",
        data,
        "--mapping",
        EXAMPLE_MAPPING,
        "--base-url",
        server.base_url,
        "--state",
        state,
        "--full",
        token="s3cret-wrong-token",
    )
    assert wrong.code == 3
    texts = [res.stdout, res.stderr, wrong.stdout, wrong.stderr, (tmp_path / "report.csv").read_text()]
    assert not any(TOKEN in t or "s3cret-wrong-token" in t for t in texts)
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert TOKEN.encode() not in f.read_bytes() and b"s3cret-wrong-token" not in f.read_bytes()
