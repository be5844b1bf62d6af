"""The real CLI, as a subprocess, against the SIRO sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import (
    EXAMPLE_CSV,
    EXAMPLE_MAPPING,
    EXAMPLE_XLSX,
    TOKEN,
    RunCli,
    Sandbox,
    cli_argv,
    cli_env,
    cli_popen,
)
from openpyxl import Workbook

from bulk_sync.report import read_report
from bulk_sync.sandbox import Faults

GOLDEN = Path(__file__).parent / "golden" / "engagements.jsonl"
EXPECTED = {
    o["payload"]["externalId"]: o["payload"]
    for o in map(json.loads, GOLDEN.read_text().splitlines())
    if o["status"] == "valid"
}
# retried at once, and not paced as SIRO (1000 requests a minute): the faults are what is tested
FAST_RETRY = ["--retry-backoff", "0.01", "--max-attempts", "25", "--rate-per-min", "0"]


def assert_complete_report(rows: list[dict[str, str]], source_rows: int = 60) -> None:
    """One line per input row, in input order, each with a final status."""
    assert [int(r["row_number"]) for r in rows] == list(range(2, 2 + source_rows))
    assert all(r["status"] in {"synced", "valid", "invalid", "rejected", "failed", "not_sent"} for r in rows)


def test_clean_run_syncs_every_valid_row_with_the_expected_payload(sandbox: Sandbox, run_cli: RunCli) -> None:
    server = sandbox()
    res = run_cli("run", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url)
    assert res.code == 1, res.stderr  # 5 rows of the example are invalid on purpose
    assert_complete_report(res.report)
    synced = {r["external_id"] for r in res.report if r["status"] == "synced"}
    assert synced == set(EXPECTED)
    assert server.state.records == EXPECTED
    assert all(r["siro_id"].startswith("eng_") for r in res.report if r["status"] == "synced")
    invalid = [
        (r["row_number"], r["error_type"], r["column"]) for r in res.report if r["status"] == "invalid"
    ]
    assert invalid == [
        ("9", "missing-value", "Appointment ID"),
        ("17", "bad-datetime", "Start"),
        ("25", "invalid-enum", "Activity"),
        ("33", "bad-datetime", "End"),
        ("46", "bad-number", "Amount"),
    ]
    assert "synced            55" in res.stdout and "invalid            5" in res.stdout


@pytest.mark.slow
def test_all_valid_file_exits_0_and_xlsx_works(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    with EXAMPLE_CSV.open(newline="") as src, good.open("w", newline="") as dst:
        rows = list(csv.reader(src))
        keep = [rows[0]] + [r for r in rows[1:] if r[0] in EXPECTED]
        csv.writer(dst).writerows(keep)
    server = sandbox()
    res = run_cli("run", good, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url)
    assert res.code == 0, res.stderr
    assert len(res.report) == 55 and {r["status"] for r in res.report} == {"synced"}

    server2 = sandbox()
    res = run_cli("run", EXAMPLE_XLSX, "--mapping", EXAMPLE_MAPPING, "--base-url", server2.base_url)
    assert res.code == 1
    assert {r["sheet"] for r in res.report} == {"Appointments"}
    assert server2.state.records == EXPECTED


@pytest.mark.slow
@pytest.mark.parametrize("mode", [["--batch-size", "5"], ["--no-batch"]])
def test_faults_every_valid_row_still_ends_synced(sandbox: Sandbox, run_cli: RunCli, mode: list[str]) -> None:
    faults = Faults(
        error_5xx=0.20, throttle=0.05, throttle_bare=0.05, retry_after=0.05, drop_before=0.05, seed=7
    )
    server = sandbox(faults)
    res = run_cli(
        "run",
        EXAMPLE_CSV,
        "--mapping",
        EXAMPLE_MAPPING,
        "--base-url",
        server.base_url,
        "--concurrency",
        "16",
        *mode,
        *FAST_RETRY,
    )
    assert res.code == 1, res.stderr
    assert_complete_report(res.report)
    synced = {r["external_id"] for r in res.report if r["status"] == "synced"}
    assert synced == set(EXPECTED)
    assert server.state.records == EXPECTED
    codes = server.state.responses
    assert codes[500] + codes[502] + codes[503] > 0 and codes[429] > 0 and server.state.dropped > 0
    assert max(int(r["attempts"]) for r in res.report) > 1


@pytest.mark.slow
def test_retries_exhausted_rows_end_failed_with_the_last_error(sandbox: Sandbox, run_cli: RunCli) -> None:
    server = sandbox(Faults(error_5xx=1.0))
    res = run_cli(
        "run",
        EXAMPLE_CSV,
        "--mapping",
        EXAMPLE_MAPPING,
        "--base-url",
        server.base_url,
        "--retry-backoff",
        "0",
        "--max-attempts",
        "2",
        "--limit",
        "4",
    )
    assert res.code == 1
    assert [r["status"] for r in res.report] == ["failed"] * 4
    assert all(r["attempts"] == "2" and "Internal Server Error" in r["message"] for r in res.report)


def test_wrong_token_aborts_fast_and_nothing_is_synced(sandbox: Sandbox, run_cli: RunCli) -> None:
    """A token refused at the pre-flight is a configuration problem: exit 2 (not 3, whose advice
    "run again" never fixes a dead token), saying where the token came from; every row not_sent."""
    server = sandbox()
    started = time.monotonic()
    res = run_cli(
        "run",
        EXAMPLE_CSV,
        "--mapping",
        EXAMPLE_MAPPING,
        "--base-url",
        server.base_url,
        token="wrong-token-123",
    )
    assert res.code == 2
    assert time.monotonic() - started < 20
    assert "refused the API token from $SIRO_API_TOKEN" in res.stderr and "Traceback" not in res.stderr
    assert {r["status"] for r in res.report} == {"not_sent"}
    assert server.state.identity_requests == 1 and server.state.requests == 0
    assert server.state.records == {}
    assert_complete_report(res.report)
    assert "synced" not in {r["status"] for r in res.report}
    assert "wrong-token-123" not in res.stdout + res.stderr + json.dumps(res.report)


def test_wrong_token_without_preflight_stops_at_the_first_401(sandbox: Sandbox, run_cli: RunCli) -> None:
    server = sandbox()
    res = run_cli(
        "run",
        EXAMPLE_CSV,
        "--mapping",
        EXAMPLE_MAPPING,
        "--base-url",
        server.base_url,
        "--no-preflight",
        "--concurrency",
        "2",
        "--batch-size",
        "10",
        token="wrong-token-123",
    )
    assert res.code == 3  # refused mid-run: aborted, as before
    assert_complete_report(res.report)
    assert server.state.identity_requests == 0  # --no-preflight: no token check was sent
    assert server.state.requests <= 2  # only what was in flight when the first 401 came back
    statuses = {r["status"] for r in res.report}
    assert statuses <= {"failed", "not_sent", "invalid"} and "not_sent" in statuses
    assert "auth-refused" in {r["error_type"] for r in res.report}


@pytest.mark.parametrize(
    ("args", "setup", "message"),
    [
        (["--mapping", "missing.yaml"], None, "mapping missing.yaml: 1 problem"),
        (
            ["--mapping", "bad.yaml"],
            "version: 1\nfields: {externalId: Id, startTme: Start}\n",
            "fields.startTme: unknown SIRO field; did you mean startTime",
        ),
        (
            ["--mapping", "cols.yaml"],
            "version: 1\nfields: {externalId: Meeting Id}\n",
            "column 'Meeting Id' from mapping cols.yaml not found; the file's columns the mapping does not "
            "read (new or renamed ones are here): 'Appointment ID'",
        ),
    ],
)
def test_bad_mapping_or_missing_column_exits_2_and_sends_nothing(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path, args: list[str], setup: str | None, message: str
) -> None:
    if setup:
        (tmp_path / args[1]).write_text(setup)
    server = sandbox()
    res = run_cli("run", EXAMPLE_CSV, *args, "--base-url", server.base_url)
    assert res.code == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert server.state.requests == 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("export.xlsx", b"not,a,workbook\n", "is named like a workbook (.xlsx) but its content is not one"),
        ("export.csv", b"\x00\x01\x02\xff\xfe" * 50, "is not a text file"),
        ("quote.csv", b'Appointment ID,Subject\n1,"open\n2,x\n', 'has a quote (") that is never closed'),
        ("empty.csv", b"", "the file is empty"),
    ],
)
def test_unreadable_file_exits_2_with_one_line(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    bad = tmp_path / name
    bad.write_bytes(content)
    server = sandbox()
    # a good file first: nothing of it may be sent either
    res = run_cli("run", EXAMPLE_CSV, bad, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url)
    assert res.code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and name in lines[0]
    assert server.state.requests == 0


def test_token_never_comes_from_a_flag(run_cli: RunCli) -> None:
    res = run_cli("run", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--token", "abc")
    assert res.code == 2 and "unrecognized arguments: --token" in res.stderr


@pytest.mark.slow
def test_token_file(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    server = sandbox()
    tf = tmp_path / "token"
    tf.write_text(TOKEN + "\n")
    res = run_cli(
        "run",
        EXAMPLE_CSV,
        "--mapping",
        EXAMPLE_MAPPING,
        "--base-url",
        server.base_url,
        "--token-file",
        tf,
        "--limit",
        "3",
        token=None,
    )
    assert res.code == 0, res.stderr
    res = run_cli("run", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url, token=None)
    assert res.code == 2 and "no API token" in res.stderr


def test_validate_sends_nothing_and_shows_payloads(run_cli: RunCli) -> None:
    res = run_cli("validate", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--show", "2", token=None)
    assert res.code == 1
    assert_complete_report(res.report)
    assert {r["status"] for r in res.report} == {"valid", "invalid"}
    shown = json.loads("[" + res.stdout[: res.stdout.index("\nchecked")].replace("}\n{", "},{") + "]")
    assert [p["externalId"] for p in shown] == ["APT-24001", "APT-24002"]
    assert shown[0] == EXPECTED["APT-24001"]


def test_embedded_sandbox_quickstart(run_cli: RunCli) -> None:
    res = run_cli("run", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--sandbox", token=None)
    assert res.code == 1, res.stderr
    assert "sandbox: SIRO emulator listening on http://127.0.0.1:" in res.stdout
    assert sum(r["status"] == "synced" for r in res.report) == 55


@pytest.mark.slow
@pytest.mark.parametrize("mode", [["--no-batch"], ["--batch-size", "3"]])
def test_sigterm_mid_run_writes_a_complete_report_and_exits_3(
    sandbox: Sandbox, tmp_path: Path, mode: list[str]
) -> None:
    server = sandbox(Faults(latency=0.2))
    report = tmp_path / "r.csv"
    proc = cli_popen(
        cli_argv(
            "run",
            EXAMPLE_CSV,
            "--mapping",
            EXAMPLE_MAPPING,
            "--base-url",
            server.base_url,
            "--concurrency",
            "2",
            *mode,
            "--report",
            report,
        ),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while len(server.state.records) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    rows = read_report(report)
    assert_complete_report(rows)
    synced = {r["external_id"] for r in rows if r["status"] == "synced"}
    assert 6 <= len(synced) < 55
    assert synced == set(server.state.records)  # reported synced <=> SIRO has it
    assert {r["status"] for r in rows} == {"synced", "invalid", "not_sent"}


QUIRKS_MAPPING = """\
version: 1
fields:
  externalId: {column: Activity ID, required: true}
  subject: Subject
  startTime: {column: Start, datetime: {format: "%d.%m.%Y %H:%M", timezone: Europe/Berlin}}
"""


@pytest.mark.slow
def test_real_world_quirks_end_to_end(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    """A cp1252, semicolon-separated report export with title lines and a footer, and a workbook
    whose every visible sheet is read: every row is accounted for, the footer is `skipped`.
    'Zoë' is 'Zoė' in the Baltic code page: without --encoding the file is refused, nothing sent."""
    mapping = tmp_path / "m.yaml"
    mapping.write_text(QUIRKS_MAPPING)
    export = tmp_path / "Aktivitäten Bericht.csv"
    export.write_bytes(
        (
            '"Aktivitäten – November"\r\n"Gefiltert nach: Datum = diesen Monat"\r\n\r\n'
            "Activity ID;Subject;Start;Owner\r\n"
            "A-1;Präsentation für Müller;03.11.2026 09:00;Jürgen\r\n"
            'A-2;"Anruf; Rückfrage";04.11.2026 14:30;Zoë\r\n'
            "\r\n"
            '"Generated By: Jürgen Weiß 24.11.2026 16:10"\r\n'
            '"Copyright (c) 2000-2026 salesforce.com, inc."\r\n'
        ).encode("cp1252")
    )
    book = tmp_path / "events.xlsx"
    wb = Workbook()
    wb.active.title = "North"
    wb.active.append(["Activity ID", "Subject", "Start"])
    wb.active.append(["N-1", "Demo", "05.11.2026 10:00"])
    south = wb.create_sheet("South")
    south.append(["Activity ID", "Subject", "Start"])
    south.append(["S-1", "Visit", "06.11.2026 11:00"])
    hidden = wb.create_sheet("Old")
    hidden.append(["Activity ID", "Subject", "Start"])
    hidden.append(["X-1", "never read", "07.11.2026 11:00"])
    hidden.sheet_state = "hidden"
    wb.save(book)

    server = sandbox()
    res = run_cli("run", export, book, "--sheet", "*", "--mapping", mapping, "--base-url", server.base_url)
    assert res.code == 2 and "'Zoë' as cp1252" in res.stderr and "'Zoė' as cp1257" in res.stderr
    assert server.state.requests == 0
    res = run_cli(
        "run",
        export,
        book,
        "--sheet",
        "*",
        "--encoding",
        "cp1252",
        "--mapping",
        mapping,
        "--base-url",
        server.base_url,
    )
    assert res.code == 0, res.stderr
    got = [(r["sheet"], r["row_number"], r["status"]) for r in res.report]
    assert got == [
        ("", "5", "synced"),
        ("", "6", "synced"),
        ("", "8", "skipped"),
        ("", "9", "skipped"),
        ("North", "2", "synced"),
        ("South", "2", "synced"),
    ]
    assert "header is on row 4" in res.stderr
    assert server.state.records["A-2"] == {
        "externalId": "A-2",
        "subject": "Anruf; Rückfrage",
        "startTime": "2026-11-04T13:30:00Z",
    }
    assert set(server.state.records) == {"A-1", "A-2", "N-1", "S-1"}
