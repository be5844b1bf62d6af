"""Issue 15: the edges a scheduler and an operator hit. Every failure says what to do, in one line,
with the exit code the README documents. Real processes, real signals, real HTTP on loopback, real
mounts (a full tmpfs, a read-only bind mount: those tests need root and skip without it)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    EXAMPLE_CSV,
    EXAMPLE_MAPPING,
    TOKEN,
    CliResult,
    RunCli,
    Sandbox,
    cli_argv,
    cli_env,
    cli_popen,
    cli_run,
    free_port,
    start_run,
    wait_for_records,
)

from bulk_sync.report import read_report
from bulk_sync.sandbox import Faults, SandboxServer


def one_line_error(res: CliResult) -> str:
    """The stderr of a run that could not start: one `error:` line, no traceback."""
    assert "Traceback" not in res.stderr, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    return errors[0]


# --------------------------------------------------------------------------- start-up and configuration


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        (f"http://127.0.0.1:{free_port()}", "Connection refused"),
        ("https://no-such-host.invalid", "no-such-host.invalid"),
    ],
    ids=["refused-port", "no-such-host"],
)
@pytest.mark.slow
def test_siro_that_cannot_be_reached_is_a_start_up_error(run_cli: RunCli, url: str, cause: str) -> None:
    """Was: ~10 s of retries, `failed 55`, exit 1, nothing on stderr."""
    started = time.monotonic()
    res = run_cli("run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", url)
    assert res.code == 2
    line = one_line_error(res)
    assert f"cannot reach SIRO at {url}" in line and cause in line and "nothing was sent" in line
    assert time.monotonic() - started < 20
    assert len(res.report) == 60 and {r["status"] for r in res.report} == {"not_sent"}


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("functions.siro.ai/api-externalApi", "has no https://"),
        ("ftp://functions.siro.ai/api", "has the scheme ftp://"),
        ("http://siro.example.com/api", "would cross the network unencrypted"),
    ],
)
def test_a_base_url_that_is_no_https_url_is_refused(run_cli: RunCli, url: str, said: str) -> None:
    res = run_cli("run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", url)
    assert res.code == 2 and said in one_line_error(res) and res.report == []


@pytest.mark.slow
def test_allow_insecure_http_lets_a_remote_http_url_through(run_cli: RunCli) -> None:
    res = run_cli(
        "run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", "http://no-such-host.invalid",
        "--allow-insecure-http",
    )  # fmt: skip
    assert res.code == 2 and "cannot reach SIRO at http://no-such-host.invalid" in one_line_error(res)


@pytest.mark.slow
def test_no_preflight_sends_no_token_check(sandbox: Sandbox, run_cli: RunCli) -> None:
    """Was: the token check was sent anyway."""
    server = sandbox()
    res = run_cli("run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", server.base_url, "--no-preflight")
    assert res.code == 1 and len(server.state.records) == 55
    assert server.state.identity_requests == 0
    run_cli("run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", server.base_url, "--no-state")
    assert server.state.identity_requests == 1


def test_a_refused_token_names_the_file_it_came_from(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    server = sandbox()
    token_file = tmp_path / "siro.token"
    token_file.write_text("not-the-token\n")
    res = run_cli(
        "run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", server.base_url, "--token-file", token_file,
        token=None,
    )  # fmt: skip
    assert res.code == 2
    line = one_line_error(res)
    assert f"refused the API token from the file {token_file}" in line and "not-the-token" not in res.stderr
    assert server.state.requests == 0
    assert not (tmp_path / "report-errors.csv").exists()  # nothing to fix in the data: only the token


@pytest.mark.slow
def test_watch_once_files_a_file_whose_token_was_refused_in_failed(sandbox: Sandbox, tmp_path: Path) -> None:
    """Was: exit 0, the file left in processing/. Now: failed/ with the reason, and exit 1."""
    server = sandbox()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(EXAMPLE_CSV, inbox / "export.csv")
    proc = cli_run(
        cli_argv("watch", inbox, "--once", "--settle", "0.2", "-m", EXAMPLE_MAPPING, "--base-url", server.base_url),
        capture_output=True, text=True, env=cli_env("a-dead-token"), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = {p.name for p in (inbox / "failed").iterdir()}
    assert any(n.endswith(".csv") and "report" not in n for n in failed)
    (reason,) = [p for p in (inbox / "failed").iterdir() if p.name.endswith("-error.txt")]
    text = reason.read_text()
    assert "could not start (exit 2)" in text and "refused the API token" in text
    assert not any((inbox / "processing").iterdir())


# --------------------------------------------------------------------------- tracebacks


def _damage(state: Path) -> None:
    """Overwrite pages in the middle of a real state database (its header stays whole)."""
    data = bytearray(state.read_bytes())
    page = 4096
    assert len(data) > 6 * page
    for p in range(2, len(data) // page - 1):
        data[p * page + 100 : p * page + 600] = os.urandom(500)
    state.write_bytes(bytes(data))


@pytest.mark.slow
def test_a_damaged_state_file_is_one_line_and_exit_2(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    server = sandbox()
    state = tmp_path / "state.sqlite3"
    big = tmp_path / "big.csv"
    big.write_text("Id,Subject\n" + "".join(f"E-{i},Subject number {i}\n" for i in range(3000)))
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nfields:\n  externalId: Id\n  subject: Subject\n")
    assert run_cli("run", big, "-m", m, "--base-url", server.base_url, "--state", state).code == 0
    with sqlite3.connect(state) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _damage(state)
    sent = server.state.requests
    res = run_cli("run", big, "-m", m, "--base-url", server.base_url, "--state", state)
    assert res.code == 2
    line = one_line_error(res)
    assert f"the state file {state} is damaged" in line and "move it away" in line
    assert server.state.requests == sent


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder on a read-only bind mount (root only: permissions do not stop root)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to make a read-only bind mount")
    source, target = tmp_path / "ro-source", tmp_path / "ro"
    source.mkdir()
    target.mkdir()
    if subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True).returncode:
            pytest.skip("cannot remount read-only here")
        yield target
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)


def test_a_state_folder_that_cannot_be_written_is_one_line_and_exit_2(
    sandbox: Sandbox, run_cli: RunCli, read_only_dir: Path
) -> None:
    server = sandbox()
    res = run_cli(
        "run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", server.base_url,
        "--state", read_only_dir / "state" / "s.sqlite3",
    )  # fmt: skip
    assert res.code == 2
    line = one_line_error(res)
    assert "cannot use the state file" in line and "Read-only file system" in line
    assert server.state.requests == 0


def test_a_log_folder_that_cannot_be_written_is_one_line_and_exit_2(
    sandbox: Sandbox, run_cli: RunCli, read_only_dir: Path
) -> None:
    server = sandbox()
    res = run_cli(
        "run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", server.base_url,
        "--log-file", read_only_dir / "run.log",
    )  # fmt: skip
    assert res.code == 2 and "cannot write the log file" in one_line_error(res)
    assert server.state.requests == 0


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 KB tmpfs (root only)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    target = tmp_path / "tiny"
    target.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(target)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)


@pytest.mark.slow
def test_a_full_disk_while_writing_the_report_stops_the_run_cleanly(
    sandbox: Sandbox, tmp_path: Path, tiny_disk: Path
) -> None:
    """Was: a traceback, exit 1. Now: one line, exit 3; what SIRO acknowledged is in the state file
    (on another disk), and the summary says the report is incomplete and why."""
    server = sandbox()
    data = tmp_path / "many.csv"
    data.write_text(
        "Id,Subject\n"
        + "".join(f"E-{i:05d},A subject long enough to fill the disk {i}\n" for i in range(5000))
    )
    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nfields:\n  externalId: Id\n  subject: Subject\n")
    state, summary = tmp_path / "state.sqlite3", tmp_path / "summary.json"
    proc = cli_run(
        cli_argv("run", data, "-m", m, "--base-url", server.base_url, "--state", state,
                 "--report", tiny_disk / "report.csv", "--summary-json", summary, "--batch-size", "50"),
        capture_output=True, text=True, env=cli_env(), timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "No space left on device" in proc.stderr and "the report stops after row" in proc.stderr
    facts = json.loads(summary.read_text())
    assert facts["exit_code"] == 3 and "No space left on device" in facts["report_incomplete"]
    with sqlite3.connect(state) as db:
        kept = {k for (k,) in db.execute("SELECT key FROM records")}
    assert kept and kept <= set(server.state.records)  # every acknowledged row is remembered
    assert len(kept) >= len(server.state.records) - 8 * 50  # at most what was in flight at the stop


# --------------------------------------------------------------------------- stopping


@pytest.mark.slow
def test_sigterm_during_the_preflight_stops_within_2_seconds(sandbox: Sandbox, tmp_path: Path) -> None:
    """Was: the 60 s read timeout was waited out, and the report was left empty."""
    server = sandbox(Faults(preflight_latency=6))  # a run that did not stop would take 6 s, not 2
    report = tmp_path / "r.csv"
    proc = cli_popen(
        cli_argv("run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", server.base_url, "--report", report),
        env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while server.state.identity_requests == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.state.identity_requests == 1
    time.sleep(0.3)
    sent_at = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    took = time.monotonic() - sent_at
    assert took < 2.0, (took, err)
    assert proc.returncode == 3 and "Traceback" not in err
    rows = read_report(report)
    assert len(rows) == 60 and {r["status"] for r in rows} == {"not_sent"}
    assert server.state.requests == 0


def big_file(path: Path, rows: int) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Id", "Subject", "Notes"])
        w.writerows([f"E-{i:07d}", f"Visit {i}", "x"] for i in range(rows))
    return path


BIG_MAPPING = "version: 1\nfields:\n  externalId: Id\n  subject: Subject\n  content: Notes\n"


def _start_slow_run(
    server: SandboxServer, data: Path, tmp_path: Path, *extra: str
) -> subprocess.Popen[bytes]:
    """The CLI in the background; its stderr goes to tmp_path/stderr.txt (read while it runs)."""
    with (tmp_path / "stderr.txt").open("wb") as err:
        return start_run(server, data, tmp_path, BIG_MAPPING, "--concurrency", "2", *extra,
                         stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip


@pytest.mark.slow
def test_ctrl_c_on_a_big_file_is_acknowledged_at_once_and_accounts_for_every_row(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """1,000,000 rows, two slow requests in flight: Ctrl-C is acknowledged on stderr at once, the
    requests in flight end, and every row not read yet is counted as not_sent within 5 s."""
    server = sandbox(Faults(latency=1.0))
    data = big_file(tmp_path / "big.csv", 1_000_000)
    proc = _start_slow_run(server, data, tmp_path)
    wait_for_records(server, 100)
    proc.send_signal(signal.SIGINT)
    sent_at = time.monotonic()
    heard = ""
    while "stopping" not in heard and time.monotonic() - sent_at < 5:
        heard = (tmp_path / "stderr.txt").read_text()
        time.sleep(0.02)
    acknowledged = time.monotonic() - sent_at
    assert "stopping (SIGINT)" in heard and "press Ctrl-C again" in heard
    assert acknowledged < 1.0
    proc.wait(timeout=60)
    finished = time.monotonic() - sent_at
    assert proc.returncode == 3
    assert finished < 1.0 + 1.5 + 5.0, finished  # the drain (one 1 s answer), then the counting
    with (tmp_path / "r.csv").open(encoding="utf-8-sig", newline="") as fh:
        numbers = [int(r[2]) for r in csv.reader(fh) if r[2] != "row_number"]
    assert numbers == list(range(2, 1_000_002))  # every row, once, in order


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once_and_the_report_says_where_it_stops(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    server = sandbox(Faults(latency=3.0))
    data = big_file(tmp_path / "big.csv", 300_000)
    proc = _start_slow_run(server, data, tmp_path)
    wait_for_records(server, 100)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    sent_at = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert time.monotonic() - sent_at < 5 and proc.returncode == 3
    rows = read_report(tmp_path / "r.csv")
    numbers = [int(r["row_number"]) for r in rows]
    if numbers[-1] != 300_001:  # not every row: the last line says where the report stops
        last = rows[-1]
        assert last["error_type"] == "interrupted" and "the report stops after row" in last["message"]
        assert numbers == list(range(2, numbers[-1] + 1))


# --------------------------------------------------------------------------- the error file


@pytest.mark.slow
def test_after_a_stop_the_error_file_is_a_fix_list(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    """Rows found invalid stay invalid; rows that only need sending are counted, with the command."""
    server = sandbox(Faults(error_5xx=1.0))
    res = run_cli(
        "run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", server.base_url, "--circuit-breaker", "2",
        "--retry-backoff", "0",
    )  # fmt: skip
    assert res.code == 3
    statuses = {r["status"] for r in res.report}
    assert "invalid" in statuses and statuses <= {"invalid", "failed", "not_sent"}
    with (tmp_path / "report-errors.csv").open(encoding="utf-8-sig", newline="") as fh:
        fix = list(csv.DictReader(fh))
    assert {r["bulk_sync_status"] for r in fix} == {"invalid"} and len(fix) == 5
    assert "were not sent or failed; they need no fixing, only sending" in res.stdout
    assert "bulk-sync retry" in res.stdout


@pytest.mark.slow
def test_the_error_file_neutralises_formulas_and_gives_them_back_as_typed(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    data = tmp_path / "f.txt"
    data.write_text(
        "Id\tSubject\tPhone\tStart\n"
        'E-1\t=HYPERLINK("http://x","click")\t+1 312 555 1000\tnot a date\n'
        "E-2\t'quoted\t-42\t2026-03-02 10:00\n"
    )
    m = tmp_path / "m.yaml"
    m.write_text(
        "version: 1\nfields:\n  externalId: Id\n  subject: Subject\n  account.externalId: {value: A-1}\n"
        "  account.phoneNumbers[0]: Phone\n"
        "  startTime: {column: Start, datetime: {format: '%Y-%m-%d %H:%M', timezone: UTC}}\n"
    )
    server = sandbox()
    res = run_cli("run", data, "-m", m, "--base-url", server.base_url, "--no-state")
    assert res.code == 1
    errors = tmp_path / "report-errors.txt"  # a tab-delimited input: not a .csv name
    raw = errors.read_text(encoding="utf-8-sig")
    (row,) = list(csv.DictReader(raw.splitlines(), delimiter="\t"))
    assert row["Subject"] == '\'=HYPERLINK("http://x","click")' and row["Phone"] == "'+1 312 555 1000"
    fixed = raw.replace("not a date", "2026-03-03 09:00")
    errors.write_text(fixed, encoding="utf-8-sig")
    again = run_cli("run", errors, "-m", m, "--base-url", server.base_url, "--no-state")
    assert again.code == 0, again.stderr
    sent = server.state.records["E-1"]
    assert sent["subject"] == '=HYPERLINK("http://x","click")'
    assert sent["account"]["phoneNumbers"] == ["+1 312 555 1000"]


# --------------------------------------------------------------------------- under faults


@pytest.mark.slow
@pytest.mark.parametrize("mode", [[], ["--no-batch"]], ids=["batch", "single"])
def test_a_fault_storm_fails_no_row(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path, mode: list[str]
) -> None:
    """20 % HTTP 500, 10 % 429, 5 % dropped connections: with the default retry policy (time, not a
    count) 10,000 rows all end synced. Was: one row in 10,000 gave up after 6 attempts."""
    server = sandbox(Faults(error_5xx=0.2, throttle_bare=0.1, drop_before=0.05, seed=11))
    data = big_file(tmp_path / "f.csv", 10_000)
    m = tmp_path / "m.yaml"
    m.write_text(BIG_MAPPING)
    res = run_cli(
        "run", data, "-m", m, "--base-url", server.base_url, "--no-state", "--retry-backoff", "0.01",
        "--concurrency", "16", "--rate-per-min", "0", "--circuit-breaker", "0", *mode, timeout=600,
    )  # fmt: skip
    assert res.code == 0, res.stdout + res.stderr[-2000:]
    assert {r["status"] for r in res.report} == {"synced"} and len(server.state.records) == 10_000
    faults = sum(n for status, n in server.state.responses.items() if status >= 429) + server.state.dropped
    assert faults > 0.2 * server.state.requests  # the storm really blew


# --------------------------------------------------------------------------- the watcher's child


@pytest.mark.slow
def test_a_killed_watchers_run_dies_with_it_and_a_restart_finishes_the_file(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    server = sandbox(Faults(latency=1.0))  # 15 batches of 20, one at a time: 15 s of work for the run
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data = big_file(tmp_path / "drop.csv", 300)
    m = tmp_path / "m.yaml"
    m.write_text(BIG_MAPPING)
    state = tmp_path / "state.sqlite3"
    cfg = tmp_path / "bulk_sync.toml"
    cfg.write_text(f'[profiles.default]\nstate = "{state}"\nbatch_size = 20\nconcurrency = 1\n')
    argv = cli_argv("watch", inbox, "--settle", "0.2", "--poll", "0.2", "-m", m, "--base-url", server.base_url,
                    "--config", cfg)  # fmt: skip
    watcher = cli_popen(argv, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.copy(data, inbox / "drop.csv")
    wait_for_records(server, 40)
    (pid_file,) = list((inbox / "processing").glob("*/child.pid"))
    child = int(pid_file.read_text())
    watcher.kill()  # kill -9: no chance to clean up
    watcher.wait()
    deadline = time.monotonic() + 3  # its one request in flight (1 s) ends, then it stops
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the watcher's run outlived it"
    assert len(server.state.records) < 200  # it stopped: it did not go on to the end
    server.sandbox.faults.latency = 0.0  # the rest, for the restart: at once
    again = cli_run([*argv, "--once"], env=cli_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(server.state.records) == 300
    assert any(p.name.endswith(".csv") and "report" not in p.name for p in (inbox / "done").iterdir())
    assert not any((inbox / "processing").iterdir())
    assert max(server.state.writes.values()) <= 2  # resumed: nothing sent twice but what was in flight
    assert TOKEN  # the fixture's token was used throughout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead: reaped by init shortly
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_a_hard_stop_while_the_reader_waits_for_room_reports_its_row_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """One request in flight for 3 s, one record a request: the reader fills the 64 places of the
    dispatcher's queue and waits for room. The second Ctrl-C cancels that wait; the row it was
    handing over belongs to the dispatcher by then, and is reported once, as a leftover (CI once
    saw it twice: the reader reported it not_sent as well)."""
    server = sandbox(Faults(latency=3.0))
    data = big_file(tmp_path / "big.csv", 2_000)
    proc = _start_slow_run(server, data, tmp_path, "--batch-size", "1", "--concurrency", "1")
    deadline = time.monotonic() + 30
    while server.state.requests < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # the reader is waiting for room now (64 rows ready, one in flight)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 3
    rows = read_report(tmp_path / "r.csv")
    numbers = [int(r["row_number"]) for r in rows]
    assert len(numbers) == len(set(numbers)), [n for n in numbers if numbers.count(n) > 1][:5]
    assert numbers == list(range(2, numbers[-1] + 1))
    assert rows[-1]["error_type"] == "interrupted"
