"""What a run leaves behind for people and schedulers: XLSX report, re-importable error file,
summary JSON, --max-failures, logs with secrets redacted, webhook notifications, config profiles.
The real CLI as a subprocess against the sandbox on 127.0.0.1."""

from __future__ import annotations

import csv
import json
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import openpyxl
import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, EXAMPLE_XLSX, RunCli, Sandbox, cli_run

from bulk_sync.errorfile import Failures, write_error_files
from bulk_sync.load import open_source
from bulk_sync.report import RowResult, read_report

INVALID_ROWS = {9, 17, 25, 33, 46}  # the example file's deliberately broken rows


def test_xlsx_report_summary_json_and_error_file(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    server = sandbox()
    out = tmp_path / "out"
    res = run_cli(
        "run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", server.base_url,
        "--report", out / "nightly.csv", "--report-xlsx", "--summary-json", out / "summary.json",
    )  # fmt: skip
    assert res.code == 1, res.stderr
    # summary JSON: what a scheduler reads
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exit_code"] == 1 and summary["rows"] == 60
    assert summary["counts"]["synced"] == 55 and summary["counts"]["invalid"] == 5
    assert sum(summary["error_types"].values()) == 5
    assert summary["report"] == str(out / "nightly.csv") and summary["rows_per_second"] > 0
    # XLSX: Summary + Results, frozen header, autofilter, the rows that did not sync highlighted
    wb = openpyxl.load_workbook(out / "nightly.xlsx")
    assert wb.sheetnames == ["Summary", "Results"]
    counts = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r[0]}
    assert counts["synced"] == 55 and counts["invalid"] == 5 and counts["rows"] == 60
    results = wb["Results"]
    assert results.freeze_panes == "A2" and results.auto_filter.ref == "A1:L61"
    header = [c.value for c in results[1]]
    status_col = header.index("status")
    fills = {
        row[2].value: row[status_col].fill.fgColor.rgb
        for row in results.iter_rows(min_row=2)
        if row[status_col].value == "invalid"
    }
    assert set(fills) == INVALID_ROWS and all(str(c).endswith("FFD7D7") for c in fills.values())
    # the error file: the original columns of the 5 rows, plus why
    errors = out / "nightly-errors.csv"
    with errors.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["bulk_sync_row"]) for r in rows] == sorted(INVALID_ROWS)
    assert all(r["bulk_sync_status"] == "invalid" and r["bulk_sync_message"] for r in rows)
    with EXAMPLE_CSV.open(encoding="utf-8", newline="") as fh:
        original = list(csv.DictReader(fh))
    assert {k: rows[0][k] for k in original[0]} == original[7]  # row 9 = record 8, cells untouched


@pytest.mark.slow
def test_a_fixed_error_file_dropped_again_syncs(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    server = sandbox()
    first = run_cli("run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", server.base_url, "--no-state")
    assert first.code == 1
    errors = tmp_path / "report-errors.csv"
    with errors.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
        fields = list(rows[0])
    with EXAMPLE_CSV.open(encoding="utf-8", newline="") as fh:
        good = next(csv.DictReader(fh))  # row 2 is valid: "fix" each bad row by copying good cells
    for i, r in enumerate(rows):
        r.update(good, **{"Appointment ID": f"FIXED-{i}"})
    with errors.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.DictWriter(fh, fields)
        w.writeheader()
        w.writerows(rows)
    again = run_cli("run", errors, "-m", EXAMPLE_MAPPING, "--base-url", server.base_url, "--no-state")
    assert again.code == 0, again.stderr
    assert [r["status"] for r in again.report] == ["synced"] * 5
    assert {f"FIXED-{i}" for i in range(5)} <= set(server.state.records)


def test_workbook_input_gets_a_workbook_error_file(run_cli: RunCli, tmp_path: Path) -> None:
    res = run_cli("validate", EXAMPLE_XLSX, "-m", EXAMPLE_MAPPING)
    assert res.code == 1
    wb = openpyxl.load_workbook(tmp_path / "report-errors.xlsx")
    assert wb.sheetnames == ["Appointments"]
    again = run_cli(
        "validate", tmp_path / "report-errors.xlsx", "-m", EXAMPLE_MAPPING, "--report", tmp_path / "r2.csv"
    )
    assert again.code == 1  # still broken (nobody fixed them), but the same mapping reads the file
    rows = read_report(tmp_path / "r2.csv")
    assert [r["status"] for r in rows] == ["invalid"] * 5


@pytest.mark.parametrize(
    ("limit", "code"), [("5", 0), ("4", 1), ("10%", 0), ("5%", 1), ("many", 2), ("-1", 2), ("101%", 2)]
)
def test_max_failures(run_cli: RunCli, limit: str, code: int) -> None:
    res = run_cli("validate", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--max-failures", limit)
    assert res.code == code, res.stderr
    if code == 2:
        assert "--max-failures takes a row count or a percentage" in res.stderr and not res.report


def test_report_cells_never_run_as_formulas(run_cli: RunCli, tmp_path: Path) -> None:
    src = tmp_path / "evil.csv"
    with EXAMPLE_CSV.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    rows[1][0] = '=HYPERLINK("http://evil.example","x")'  # an externalId the report will show
    rows[1][7] = "not a date"  # make the row invalid so the error file carries it too
    with src.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows[:3])
    res = run_cli("validate", src, "-m", EXAMPLE_MAPPING, "--report-xlsx")
    assert res.code == 1
    assert res.report[0]["external_id"].startswith("'=HYPERLINK")  # CSV report: neutralised
    cell = openpyxl.load_workbook(tmp_path / "report.xlsx")["Results"]["D2"]
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK") and cell.quotePrefix


def test_a_report_path_ending_in_xlsx_gets_an_excel_report(tmp_path: Path) -> None:
    """`--report results.xlsx`: the Excel report there, the CSV beside it, never CSV text in a file
    Excel would refuse to open."""
    import sys

    out = tmp_path / "results.xlsx"
    res = cli_run(
        [sys.executable, "-m", "bulk_sync", "validate", str(EXAMPLE_CSV), "-m", str(EXAMPLE_MAPPING),
         "--report", str(out), "-q"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    wb = openpyxl.load_workbook(out)  # a real workbook
    assert wb.sheetnames[:2] == ["Summary", "Results"]
    rows = read_report(tmp_path / "results.csv")
    assert (
        len(rows) == 60 and {int(r["row_number"]) for r in rows if r["status"] == "invalid"} == INVALID_ROWS
    )


# --------------------------------------------------------------------------- notifications


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, object]]]]:
    received: list[dict[str, object]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/T000/B000/secret-part", received
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_notification_posts_the_summary(
    sandbox: Sandbox, run_cli: RunCli, webhook: tuple[str, list[dict[str, object]]]
) -> None:
    url, received = webhook
    server = sandbox()
    res = run_cli(
        "run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", server.base_url, "--notify-url", url
    )
    assert res.code == 1
    assert len(received) == 1
    body = received[0]
    assert body["exit_code"] == 1 and body["counts"]["synced"] == 55  # type: ignore[index]
    assert "bulk_sync" in str(body["text"]) and "synced 55" in str(body["text"])
    # only on failure: a clean run posts nothing
    good = run_cli("run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", server.base_url,
                   "--notify-url", url, "--notify-on", "failure", "--max-failures", "5")  # fmt: skip
    assert good.code == 0 and len(received) == 1


@pytest.mark.slow
def test_validate_never_posts_the_webhook(
    run_cli: RunCli, tmp_path: Path, webhook: tuple[str, list[dict[str, object]]]
) -> None:
    """A profile's notify_url is for runs that sync: a dry run posts nothing, and says so in --help."""
    url, received = webhook
    cfg = tmp_path / "bulk_sync.toml"
    cfg.write_text(f'[profiles.default]\nnotify_url = "{url}"\nnotify_on = "always"\n')
    res = run_cli("validate", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--config", cfg)
    assert res.code == 1 and received == []
    assert run_cli("validate", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--notify-url", url).code == 2
    help_text = run_cli("validate", "--help").stdout
    assert "never posts a notification webhook" in help_text and "--summary-json" in help_text


def test_a_failing_webhook_never_fails_the_run(sandbox: Sandbox, run_cli: RunCli) -> None:
    server = sandbox()
    res = run_cli(
        "run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--max-failures", "5", "--base-url", server.base_url,
        "--notify-url", "http://127.0.0.1:9/hooks/secret-part",
    )  # fmt: skip
    assert res.code == 0
    assert "could not reach the notification webhook at http://127.0.0.1:9" in res.stderr
    assert "secret-part" not in res.stderr + res.stdout


def test_could_not_start_is_reported_too(
    run_cli: RunCli, tmp_path: Path, webhook: tuple[str, list[dict[str, object]]]
) -> None:
    url, received = webhook
    res = run_cli(
        "run", tmp_path / "missing.csv", "-m", EXAMPLE_MAPPING, "--summary-json", tmp_path / "s.json",
        "--notify-url", url,
    )  # fmt: skip
    assert res.code == 2
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["exit_code"] == 2 and "file not found" in summary["error"]
    assert received and received[0]["exit_code"] == 2


# --------------------------------------------------------------------------- config profiles


@pytest.mark.slow
def test_profiles_give_defaults_and_flags_override(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "bulk_sync.toml").write_text(
        f"""
[profiles.default]
mapping = "{EXAMPLE_MAPPING}"
report_dir = "nightly-reports"

[profiles.lenient]
mapping = "{EXAMPLE_MAPPING}"
max_failures = "10%"
"""
    )  # found in the working directory
    res = run_cli("validate", EXAMPLE_CSV)
    assert res.code == 1 and len(res.report) == 60  # mapping from the default profile
    assert run_cli("validate", EXAMPLE_CSV, "--profile", "lenient").code == 0
    assert run_cli("validate", EXAMPLE_CSV, "--profile", "lenient", "--max-failures", "0").code == 1
    res = run_cli("validate", EXAMPLE_CSV, "--profile", "nope")
    assert res.code == 2 and "no profile 'nope'; it has: default, lenient" in res.stderr


def test_profile_report_dir_is_used(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "cfg.toml").write_text(
        f'[profiles.default]\nmapping = "{EXAMPLE_MAPPING}"\nreport_dir = "out"\n'
    )

    from helpers import cli_argv, cli_env

    proc = cli_run(
        cli_argv("validate", EXAMPLE_CSV, "--config", tmp_path / "cfg.toml"),
        capture_output=True, text=True, env=cli_env(), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert len(list((tmp_path / "out").glob("engagements-*.csv"))) == 2  # the report and the error file


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[profiles.default]\nconcurency = 4\n", "concurency: unknown key"),
        ('[profiles.default]\nconcurrency = "four"\n', "concurrency: expected a whole number, got 'four'"),
        ("mapping = 'x'\n", "unknown top-level key(s) ['mapping']"),
        ("[profiles.default\n", "not valid TOML"),
    ],
)
def test_bad_config_is_a_clear_error(run_cli: RunCli, tmp_path: Path, content: str, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(content)
    res = run_cli("validate", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--config", cfg)
    assert res.code == 2 and message in res.stderr and "Traceback" not in res.stderr


# --------------------------------------------------------------------------- secrets


@pytest.mark.slow
def test_the_token_appears_nowhere(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    token = "tok-9f8e7d6c5b4a39281706"
    server = sandbox(token=token)
    out = tmp_path / "out"
    common = ["--report", out / "r.csv", "--report-xlsx", "--summary-json", out / "s.json", "--log-file",
              out / "run.log", "--log-level", "debug", "--state", out / "state.sqlite3"]  # fmt: skip
    ok = run_cli("run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", server.base_url, *common,
                 "--log-format", "json", token=token)  # fmt: skip
    assert ok.code == 1, ok.stderr
    assert (out / "run.log").read_text().count("\n") >= 3
    refused = run_cli("run", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--base-url", server.base_url, *common,
                      "--full", token=token[::-1])  # fmt: skip
    assert refused.code == 2
    texts = [ok.stdout, ok.stderr, refused.stdout, refused.stderr]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".csv", ".xlsx", ".json", ".log", ".sqlite3"}
    for p in files:
        data = p.read_bytes()
        assert token.encode() not in data and token[::-1].encode() not in data, p
    for t in texts:
        assert token not in t and token[::-1] not in t


def test_the_example_config_is_valid() -> None:
    from helpers import ROOT

    from bulk_sync.config import load_profile

    example = ROOT / "bulk_sync.example.toml"
    assert load_profile(example, None)["mapping"] == "mappings/engagements.yaml"
    nightly = load_profile(example, "nightly")
    assert nightly["max_failures"] == "2%" and nightly["concurrency"] == 4
    from bulk_sync.config import load_watch
    from bulk_sync.inbox import routes_from

    section = load_watch(example)
    assert section.settle_seconds == 10 and [r.match for r in routes_from(section.routes, None)] == [
        "salesforce/*.csv",
        "*.xlsx",
    ]


def test_a_report_line_holds_every_field_under_its_column(tmp_path: Path) -> None:
    from dataclasses import asdict

    from bulk_sync.report import CsvReport, RowResult, read_report

    r = RowResult(
        "f.csv", "S1", 7, "=E1", "rejected", "api-rejected", "Col", "msg, with comma", 409, 2, "siro-1",
        "matching-warning: no engagement user",
    )  # fmt: skip
    with CsvReport(tmp_path / "r.csv") as rep:
        rep.write(r)
        rep.write(RowResult("f.csv", None, 8, None, "invalid"))
    first, second = read_report(tmp_path / "r.csv")
    assert first == {k: ("'=E1" if k == "external_id" else str(v)) for k, v in asdict(r).items()}
    assert (
        second["sheet"] == second["external_id"] == second["http_status"] == "" and second["attempts"] == "0"
    )


def _result(path: Path, row: int, sheet: str | None = None, message: str = "bad") -> RowResult:
    return RowResult(str(path), sheet, row, f"E-{row}", "invalid", "validation", "Start", message)


@pytest.mark.parametrize("source", [EXAMPLE_CSV, EXAMPLE_XLSX])
def test_failed_rows_past_memory_go_to_disk_and_give_the_same_error_file(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failures keeps the rows to fix in memory up to MEMORY_ROWS, then in a temporary SQLite file:
    the error file is the same either way, a row added twice keeps its last result, and close()
    deletes the file."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    src = open_source(source)
    sheet = src.sheet
    rows = [7, 3, 12, 5, 40, 3]  # out of order, one twice

    def fill(failures: Failures) -> Failures:
        for k, n in enumerate(rows):
            failures.add(_result(src.path, n, sheet, f"bad {k}"))
        return failures

    small = fill(Failures())
    monkeypatch.setattr(Failures, "MEMORY_ROWS", 3)
    monkeypatch.setattr(Failures, "INSERT_ROWS", 2)  # several results a statement, and the rest
    big = fill(Failures())
    assert list(tmp_path.glob("bulk_sync-failures-*/failures.sqlite3"))  # it went to disk
    for failures in (small, big):
        got = failures.get((str(src.path), sheet))
        assert got is not None and len(got) == 5
        assert [r.row_number for r in got] == [3, 5, 7, 12, 40]
        assert next(iter(got)).message == "bad 5"  # row 3's last result
        assert sorted(got.between(5, 12)) == [5, 7, 12]
        assert failures.get(("elsewhere.csv", None)) is None
    outs = []
    for name, failures in (("small", small), ("big", big)):
        (tmp_path / name).mkdir()
        written = write_error_files([src], failures, tmp_path / name / "report.csv")
        assert len(written) == 1
        outs.append(written[0])
        failures.close()
    if source.suffix == ".csv":
        assert outs[0].read_bytes() == outs[1].read_bytes()
    else:
        cells = [[[c.value for c in r] for r in openpyxl.load_workbook(p).active.iter_rows()] for p in outs]
        assert cells[0] == cells[1] and len(cells[0]) == 6
    assert not list(tmp_path.glob("bulk_sync-failures-*"))  # close() deleted it


@pytest.mark.slow
def test_an_error_file_of_more_failed_rows_than_memory_holds(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file whose every row is invalid: memory does not hold them all (Failures spills past
    20,000, the kept cells stop at KEEP_BYTES), yet each row is in the error file with its own
    cells, with or without a worker process, and no temporary file is left."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))  # the CLI's temporary files
    with EXAMPLE_CSV.open(encoding="utf-8", newline="") as fh:
        header, good = next(csv.reader(fh)), next(csv.reader(fh))
    start = header.index("Start")
    n = Failures.MEMORY_ROWS + 1500
    src = tmp_path / "all-bad.csv"
    with src.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i in range(n):
            row = [f"BAD-{i}", *good[1:]]
            row[start] = f"not a date {i}"
            w.writerow(row)
    monkeypatch.setenv("BULK_SYNC_WORKERS", "0")  # in one process: the reference
    one = run_cli("validate", src, "-m", EXAMPLE_MAPPING, "-q", "--report", tmp_path / "one.csv")
    assert one.code == 1, one.stderr
    monkeypatch.setenv("BULK_SYNC_WORKERS", "1")
    res = run_cli("validate", src, "-m", EXAMPLE_MAPPING)
    assert res.code == 1, res.stderr
    assert "1 worker process" in res.stdout + res.stderr
    assert len(res.report) == n and {r["status"] for r in res.report} == {"invalid"}
    # the rows' cells pass KEEP_BYTES half way: the worker stops sending them back, the error file
    # reads them from the file; the same file either way
    assert (tmp_path / "report-errors.csv").read_bytes() == (tmp_path / "one-errors.csv").read_bytes()
    with (tmp_path / "report-errors.csv").open(encoding="utf-8-sig", newline="") as fh:
        back = list(csv.DictReader(fh))
    assert [r["bulk_sync_row"] for r in back] == [str(i + 2) for i in range(n)]
    assert all(r["Start"] == f"not a date {i}" and r[header[0]] == f"BAD-{i}" for i, r in enumerate(back))
    assert all(r["bulk_sync_column"] == "Start" and r["bulk_sync_message"] for r in back)
    assert not list(tmp.iterdir())  # the temporary file is gone
