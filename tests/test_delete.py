"""Issue 33, deletes the state remembers: `bulk-sync delete` forgets each id in the state `run`
uses as soon as SIRO's answer proves it gone, finishes after a kill -9, takes from a report only
the rows SIRO holds, and lists what would go with --dry-run. Real subprocesses, the sandbox on
127.0.0.1, a real SIGKILL."""

from __future__ import annotations

import csv
import http.server
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, TOKEN, CliResult, cli_argv, cli_env, cli_popen

from bulk_sync.errors import CallFailed
from bulk_sync.sandbox import Faults, SandboxServer
from bulk_sync.state import StateLock, StateStore, default_state_path, target_of
from bulk_sync.upload.calls import SiroCalls

HEADER = EXAMPLE_CSV.read_text(encoding="utf-8").splitlines()[0].split(",")


def export(path: Path, n: int, bad: set[int] = frozenset()) -> Path:
    """n appointments APT-00000.. (rows in ``bad`` have a start that is not a date: invalid)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, HEADER)
        out.writeheader()
        for i in range(n):
            out.writerow(
                {
                    "Appointment ID": f"APT-{i:05d}",
                    "Subject": f"Visit {i}",
                    "Direction": "Inbound",
                    "Appointment Type": "In-home consultation",
                    "Activity": "Appointment",
                    "Start": "not a date" if i in bad else f"03/{2 + i % 5:02d}/2026 09:00 AM",
                    "End": f"03/{2 + i % 5:02d}/2026 10:00 AM",
                    "Rep ID": "U-1",
                    "Rep Email": "dana@example.com",
                    "Rep Name": "Dana",
                }
            )
    return path


def sync(run_cli: Callable[..., CliResult], server: SandboxServer, data: Path, *extra: str) -> CliResult:
    """A run with the default state (no --state), as an operator's."""
    return run_cli(
        "run", data, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url, "--no-rep-check", *extra
    )


def in_state(ids: list[str], server: SandboxServer, path: Path | None = None) -> set[str]:
    store = StateStore(path or default_state_path(os.environ), target_of(server.base_url))
    try:
        return set(store.hashes(ids))
    finally:
        store.close()


def ids_file(path: Path, ids: list[str]) -> Path:
    path.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    return path


@pytest.mark.slow
def test_a_delete_killed_midway_and_run_again_leaves_the_state_true(
    run_cli: Callable[..., CliResult], sandbox: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    siro = sandbox(Faults(delete_latency=0.4))  # each delete answered 0.4 s after it is done
    data = export(tmp_path / "a.csv", 12)
    first = sync(run_cli, siro, data)
    assert first.code == 0, first.stderr
    gone = [f"APT-{i:05d}" for i in range(8)]
    assert in_state(gone, siro) == set(gone)  # the default state holds them
    argv = cli_argv(
        "delete",
        "--external-ids",
        ids_file(tmp_path / "gone.txt", gone),
        "--base-url",
        siro.base_url,
        "--yes",
    )
    proc = cli_popen(argv, env=cli_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(siro.state.deleted) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # mid-way: the third delete done in SIRO, its answer not yet read
    proc.communicate(timeout=30)
    done = list(siro.state.deleted)
    assert 3 <= len(done) < len(gone)
    held = in_state(gone, siro)
    assert done[0] not in held  # forgotten as soon as its answer came
    assert done[-1] in held  # deleted in SIRO, never heard of: the state is behind, for now
    again = run_cli("delete", "--external-ids", tmp_path / "gone.txt", "--base-url", siro.base_url, "--yes")
    assert again.code == 0, again.stderr
    k = len(done)
    assert f"deleted {8 - k}, not found {k}, failed 0 (of 8)" in again.stdout
    assert f"state: {default_state_path(os.environ)} forgot " in again.stdout
    assert in_state(gone, siro) == set()  # the ones SIRO answered "not found" too
    assert sorted(siro.state.deleted) == gone and set(siro.state.records) == {
        f"APT-{i:05d}" for i in range(8, 12)
    }
    third = sync(run_cli, siro, data)
    assert third.code == 0, third.stderr
    status = {r["external_id"]: r["status"] for r in third.report}
    assert [status[e] for e in gone] == ["synced"] * 8  # sent again, not "unchanged"
    assert {status[f"APT-{i:05d}"] for i in range(8, 12)} == {"unchanged"}
    assert len(siro.state.records) == 12


def test_dry_run_lists_what_would_go_and_sends_nothing(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    assert sync(run_cli, siro, export(tmp_path / "a.csv", 4)).code == 0
    ids = ids_file(tmp_path / "gone.txt", ["APT-00001", "APT-00003"])
    r = run_cli("delete", "--external-ids", ids, "--base-url", siro.base_url, "--dry-run", token=None)
    assert r.code == 0, r.stderr
    assert f"dry run: would delete 2 engagements from SIRO at {siro.base_url}:" in r.stdout
    assert "  APT-00001\n  APT-00003\n" in r.stdout
    assert f"state: {default_state_path(os.environ)} would forget them (2 of them are in it)" in r.stdout
    assert "nothing was sent (dry run)" in r.stdout
    assert siro.state.calls["delete"] == 0 and len(siro.state.records) == 4
    assert in_state(["APT-00001", "APT-00003"], siro) == {"APT-00001", "APT-00003"}


@pytest.mark.slow
def test_a_report_gives_only_its_rows_synced_or_unchanged_unless_all_rows(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    assert sync(run_cli, siro, export(tmp_path / "a.csv", 6)).code == 0  # all six in SIRO
    later = sync(run_cli, siro, export(tmp_path / "b.csv", 7, bad={1, 4}))  # two invalid now, one new
    assert later.code == 1
    assert sorted(r["status"] for r in later.report) == ["invalid"] * 2 + ["synced"] + ["unchanged"] * 4
    report = tmp_path / "later.csv"
    report.write_bytes((tmp_path / "report.csv").read_bytes())
    common = ("--external-ids", report, "--base-url", siro.base_url)
    asked = run_cli("delete", *common)  # no terminal to ask on: the question says how many, and which
    assert asked.code == 2
    assert "delete 5 engagements" in asked.stderr
    assert "from the report: the rows 1 synced, 4 unchanged; left out: 2 invalid" in asked.stderr
    assert "--all-rows" in asked.stderr and siro.state.calls["delete"] == 0
    dry = run_cli("delete", *common, "--dry-run")
    assert "APT-00001" not in dry.stdout and "APT-00004" not in dry.stdout and "APT-00006" in dry.stdout
    r = run_cli("delete", *common, "--yes")
    assert r.code == 0, r.stderr
    assert "deleted 5, not found 0, failed 0 (of 5)" in r.stdout
    assert set(siro.state.records) == {"APT-00001", "APT-00004"}  # the invalid rows' records stay
    every = run_cli("delete", *common, "--yes", "--all-rows")
    assert every.code == 0, every.stderr
    assert "deleted 2, not found 5, failed 0 (of 7)" in every.stdout and not siro.state.records


def test_no_state_leaves_the_state_alone_and_says_so(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    assert sync(run_cli, siro, export(tmp_path / "a.csv", 3)).code == 0
    ids = ids_file(tmp_path / "gone.txt", ["APT-00000"])
    r = run_cli("delete", "--external-ids", ids, "--base-url", siro.base_url, "--yes", "--no-state")
    assert r.code == 0, r.stderr
    assert "state: not changed (--no-state)" in r.stdout and "deleted 1, not found 0" in r.stdout
    assert siro.state.deleted == ["APT-00000"]
    assert in_state(["APT-00000"], siro) == {"APT-00000"}  # as asked: still there


def test_an_explicit_state_is_the_one_forgetting(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    state = tmp_path / "jobs" / "nightly.sqlite3"
    assert sync(run_cli, siro, export(tmp_path / "a.csv", 3), "--state", state).code == 0
    ids = ids_file(tmp_path / "gone.txt", ["APT-00002"])
    r = run_cli("delete", "--external-ids", ids, "--base-url", siro.base_url, "--yes", "--state", state)
    assert r.code == 0, r.stderr
    assert f"state: {state} forgot 1" in r.stdout
    assert in_state(["APT-00000", "APT-00002"], siro, state) == {"APT-00000"}
    assert not default_state_path(os.environ).exists()  # the default was never made


# --------------------------------------------------------------------------- what counts as deleted


class _Answers(http.server.BaseHTTPRequestHandler):
    """Answers every DELETE with the next of ``plan`` (status, exact bytes)."""

    plan: ClassVar[list[tuple[int, bytes]]] = []

    def do_DELETE(self) -> None:
        status, body = self.plan.pop(0) if len(self.plan) > 1 else self.plan[0]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[Callable[[list[tuple[int, bytes]]], str]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def plan(answers: list[tuple[int, bytes]]) -> str:
        _Answers.plan = list(answers)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield plan
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("body", "gone"),
    [(b"true", True), (b"false", False), (b'{"data": true}', True), (b'{"data": false}', False)],
)
def test_a_delete_counts_only_a_boolean_answer(
    answering: Callable[[list[tuple[int, bytes]]], str], body: bytes, gone: bool
) -> None:
    with SiroCalls(answering([(200, body)]), TOKEN, sleep=lambda s: None) as calls:
        assert calls.delete("APT-1") is gone


@pytest.mark.parametrize(
    "body",
    [b"<html>Welcome to the hotel Wi-Fi</html>", b'{"data": tr', b"null", b'{"data": null}', b"", b'"ok"'],
)
def test_any_other_200_is_not_a_delete(
    answering: Callable[[list[tuple[int, bytes]]], str], body: bytes
) -> None:
    with (
        SiroCalls(answering([(200, body)]), TOKEN, sleep=lambda s: None) as calls,
        pytest.raises(CallFailed, match="is not SIRO's answer") as caught,
    ):
        calls.delete("APT-1")
    said = str(caught.value)
    assert (repr(body.decode()[:200]) if body else "an empty body") in said and "gave up after 5" in said


def test_an_unproven_answer_is_retried_then_the_real_one_counts(
    answering: Callable[[list[tuple[int, bytes]]], str],
) -> None:
    waits: list[float] = []
    with SiroCalls(
        answering([(200, b"<html>busy</html>"), (200, b"true")]), TOKEN, sleep=waits.append
    ) as calls:
        assert calls.delete("APT-1") is True
    assert len(waits) == 1


def test_a_delete_waits_for_no_run_it_refuses_beside_one(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    assert sync(run_cli, siro, export(tmp_path / "a.csv", 2)).code == 0
    ids = ids_file(tmp_path / "gone.txt", ["APT-00000"])
    lock = StateLock(default_state_path(os.environ))
    lock.acquire()  # a run using the state right now
    try:
        r = run_cli("delete", "--external-ids", ids, "--base-url", siro.base_url, "--yes")
    finally:
        lock.release()
    assert r.code == 2 and "is in use by another bulk-sync run (pid " in r.stderr
    assert siro.state.calls["delete"] == 0 and in_state(["APT-00000"], siro) == {"APT-00000"}


def test_a_refused_token_stops_at_the_first_id(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    assert sync(run_cli, siro, export(tmp_path / "a.csv", 3)).code == 0
    ids = ids_file(tmp_path / "gone.txt", ["APT-00000", "APT-00001", "APT-00002"])
    r = run_cli("delete", "--external-ids", ids, "--base-url", siro.base_url, "--yes", token="not-the-token")
    assert r.code == 3, r.stdout + r.stderr
    assert "stopped after 1 failed delete(s) in a row (SIRO refused the API token" in r.stderr
    assert "2 not tried. Run the same delete again" in r.stderr and "not-the-token" not in r.stdout + r.stderr
    assert siro.state.deleted == [] and in_state(["APT-00000"], siro) == {"APT-00000"}
