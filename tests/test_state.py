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
from helpers import EXAMPLE_MAPPING, TOKEN, RunCli, Sandbox, cli_argv, cli_env, cli_popen, cli_run, make_file
from pydantic import SecretStr

from bulk_sync import mapping, pipeline
from bulk_sync.load import Chunk
from bulk_sync.report import ResultBlock, read_report
from bulk_sync.sandbox import Faults
from bulk_sync.settings import RunSettings
from bulk_sync.state import SCHEMA_VERSION, StateStore, target_of


def edit_subjects(data: Path, edits: dict[int, str | Callable[[str], str]]) -> list[list[str]]:
    """Rewrite the Subject cell of the given lines of a CSV (0 = the header); returns the lines."""
    with data.open(newline="") as fh:
        rows = list(csv.reader(fh))
    for line, new in edits.items():
        rows[line][1] = new(rows[line][1]) if callable(new) else new
    with data.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return rows


def acked_keys(state: Path, base_url: str) -> set[str]:
    with sqlite3.connect(state) as db:
        return {k for (k,) in db.execute("SELECT key FROM records WHERE target = ?", [target_of(base_url)])}


@pytest.mark.slow
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

    rows = edit_subjects(data, {42: "A changed subject"})  # one cell of one record
    changed = run_cli(*args)
    assert changed.code == 0
    sent = [r["external_id"] for r in changed.report if r["status"] == "synced"]
    assert sent == [rows[42][0]]
    assert server.state.records[rows[42][0]]["subject"] == "A changed subject"
    assert max(server.state.writes.values()) == 2 and sum(server.state.writes.values()) == 501

    full = run_cli(*args, "--full")
    assert {r["status"] for r in full.report} == {"synced"} and sum(server.state.writes.values()) == 1001


@pytest.mark.slow
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
    proc = cli_popen(cmd, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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

    resumed = cli_run(cmd, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    resent = {k for k in acked if server.state.writes[k] != writes_before[k]}
    assert resent == set()  # no acknowledged record was sent again
    assert server.state.records == expected  # and every record is there, as expected
    assert acked_keys(state, server.base_url) == set(expected)


@pytest.mark.slow
def test_overlapping_runs_are_refused_or_wait(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    data = tmp_path / "o.csv"
    make_file(data, 200)
    state = tmp_path / "s.sqlite3"
    server = sandbox(Faults(latency=0.3))
    slow = cli_popen(
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
        server.sandbox.faults.latency = 0.0  # refused while it ran: now the first may end at once
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
    assert wrong.code == 2  # refused at the pre-flight: nothing sent
    texts = [res.stdout, res.stderr, wrong.stdout, wrong.stderr, (tmp_path / "report.csv").read_text()]
    assert not any(TOKEN in t or "s3cret-wrong-token" in t for t in texts)
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert TOKEN.encode() not in f.read_bytes() and b"s3cret-wrong-token" not in f.read_bytes()


def kept_sources(state: Path, base_url: str) -> dict[str, bytes | None]:
    with sqlite3.connect(state) as db:
        return dict(db.execute("SELECT key, source FROM records WHERE target = ?", [target_of(base_url)]))


@pytest.mark.slow
def test_a_rerun_knows_rows_by_their_source_and_learns_sources_that_map_to_the_same_payload(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    data = tmp_path / "f.csv"
    expected = make_file(data, 300)
    state = tmp_path / "s.sqlite3"
    server = sandbox()
    mapping_file = tmp_path / "m.yaml"
    text = EXAMPLE_MAPPING.read_text(encoding="utf-8")
    mapping_file.write_text(text, encoding="utf-8")
    args = ("run", data, "--mapping", mapping_file, "--base-url", server.base_url, "--state", state)
    assert run_cli(*args).code == 0
    first = kept_sources(state, server.base_url)
    assert set(first) == set(expected) and {len(s or b"") for s in first.values()} == {16}

    rows = edit_subjects(
        data,
        {10: "A new subject", 20: lambda old: f"  {old}  "},  # sent; spaces the mapping trims: not sent
    )
    res = run_cli(*args)
    assert res.code == 0
    assert [r["external_id"] for r in res.report if r["status"] == "synced"] == [rows[10][0]]
    assert {r["status"] for r in res.report if r["external_id"] != rows[10][0]} == {"unchanged"}
    second = kept_sources(state, server.base_url)
    assert {k for k in second if second[k] != first[k]} == {rows[10][0], rows[20][0]}
    requests = server.state.requests
    assert {r["status"] for r in run_cli(*args).report} == {"unchanged"}
    assert kept_sources(state, server.base_url) == second and server.state.requests == requests

    # a mapping that says the same in other words: nothing is sent, every source is learnt anew
    mapping_file.write_text(
        text.replace("map: {Inbound: INBOUND,", "map: {Inbound call: INBOUND, Inbound: INBOUND,")
    )
    res = run_cli(*args)
    assert res.code == 0 and {r["status"] for r in res.report} == {"unchanged"}
    assert server.state.requests == requests
    third = kept_sources(state, server.base_url)
    assert all(third[k] != second[k] for k in third)
    # a mapping that changes what is sent: every record goes again
    mapping_file.write_text(text.replace("subject: Subject", "subject: {column: Subject, lower: true}"))
    res = run_cli(*args)
    assert res.code == 0 and {r["status"] for r in res.report} == {"synced"}
    assert server.state.records[rows[10][0]]["subject"] == "a new subject"


@pytest.mark.slow
def test_a_state_file_of_the_previous_version_is_upgraded_in_place(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    data = tmp_path / "u.csv"
    make_file(data, 120)
    server = sandbox()
    current = tmp_path / "now.sqlite3"
    args = ("run", data, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url, "--state")
    assert run_cli(*args, current).code == 0
    old = tmp_path / "v1.sqlite3"  # what bulk_sync wrote before it kept source fingerprints
    with sqlite3.connect(old) as db:
        db.executescript(
            "CREATE TABLE records (target TEXT NOT NULL, key TEXT NOT NULL, hash BLOB NOT NULL, "
            "status TEXT NOT NULL, synced_at REAL NOT NULL, siro_id TEXT, PRIMARY KEY (target, key)) "
            "WITHOUT ROWID; PRAGMA user_version = 1;"
        )
        db.execute("ATTACH ? AS now", [str(current)])
        db.execute(
            "INSERT INTO records SELECT target, key, hash, status, synced_at, siro_id FROM now.records"
        )
    requests = server.state.requests
    res = run_cli(*args, old)
    assert res.code == 0 and {r["status"] for r in res.report} == {"unchanged"}
    assert server.state.requests == requests
    with sqlite3.connect(old) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # 1 -> 2 -> 3 at once
    store = StateStore(old, target_of(server.base_url))
    store._upgrade()  # as a second connection that saw version 1 would: nothing left to do
    store.close()
    assert kept_sources(old, server.base_url) == kept_sources(current, server.base_url)


def test_rows_known_by_their_source_are_not_mapped_again(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "p.csv"
    make_file(data, 250)
    server = sandbox()
    settings = RunSettings(
        base_url=server.base_url, token=SecretStr(TOKEN), state_path=tmp_path / "s.sqlite3", rate_per_min=None
    )

    def run_once() -> list[str]:
        statuses: list[str] = []
        plan = pipeline.scan_columns(pipeline.prepare([data], EXAMPLE_MAPPING))
        pipeline.run(
            plan,
            settings,
            lambda r: statuses.extend(x.status for x in (r if isinstance(r, ResultBlock) else [r])),
        )
        return statuses

    assert set(run_once()) == {"synced"}
    mapped: list[int] = []
    real = mapping.map_chunk

    def spy(bound: mapping.BoundMapping, chunk: Chunk) -> mapping.MappedChunk:
        mapped.append(len(chunk))
        return real(bound, chunk)

    monkeypatch.setattr(mapping, "map_chunk", spy)
    assert set(run_once()) == {"unchanged"} and sum(mapped) == 0
    edit_subjects(data, {7: "Another subject"})
    statuses = run_once()
    assert statuses.count("synced") == 1 and statuses[6] == "synced"  # rows[7]: the 7th data row
    assert sum(mapped) == 1  # only the changed row was mapped


def test_source_fingerprints_are_compared_and_learnt_only_against_the_kept_payload(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite3", "https://x#engagements")
    h1, h2, s1, s2 = b"h" * 16, b"H" * 16, b"s" * 16, b"S" * 16
    store.record(
        [("a", h1, "id-a", s1), ("b", h1, None, None)] + [(f"k{i}", h1, None, s1) for i in range(700)]
    )
    pairs = [("a", s1), ("a", s2), ("b", s1), ("zz", s1)] + [(f"k{i}", s1) for i in range(700)]
    assert store.same_sources(pairs) == [True, False, False, False] + [True] * 700  # 300 pairs a query
    store.remember_sources([("b", h2, s2)])  # b's payload is no longer h2's: nothing learnt
    store.remember_sources([("a", h1, s2)])
    assert store.same_sources([("a", s2), ("b", s2)]) == [True, False]
    assert store.hashes(["a", "b"]) == {"a": (h1, s2), "b": (h1, None)}
    store.record([("a", h2, None, None)])  # sent again from a row without a fingerprint
    assert store.same_sources([("a", s2)]) == [False]
    store.close()
