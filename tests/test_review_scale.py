"""Issue 36, part 6 over real HTTP on 127.0.0.1: fixes at scale. The grid filtered by error type
and column, the page in the URL; one value applied to every row with the same one in a column
(1,000 rows, each checked), undone before Send; failed rows queued and sent again; downloads."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import EXAMPLE_CSV, EXAMPLE_MAPPING, ROOT, cli_argv, cli_env

from bulk_sync.review import Review
from bulk_sync.review.runs import Run, find_runs
from bulk_sync.review.server import ReviewThread

BAD = "31/02/2026 10:00 AM"
GOOD = "03/02/2026 08:00 AM"  # the rows' End is 09:30 AM that day


def thousand(folder: Path) -> Path:
    """The real CLI's `validate` of 1,000 rows that share one bad date."""
    with EXAMPLE_CSV.open(newline="", encoding="utf-8") as fh:
        header, good = list(csv.reader(fh))[:2]
    with (folder / "many.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for i in range(1000):
            out.writerow([f"M-{i:05d}", *good[1:7], BAD, *good[8:]])
    reports = folder / "reports"
    reports.mkdir()
    argv = cli_argv(
        "validate", folder / "many.csv", "--mapping", EXAMPLE_MAPPING, "--report", reports / "many.csv"
    )
    subprocess.run(argv, env=cli_env(None), cwd=folder, timeout=300, check=False, capture_output=True)
    return reports


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return thousand(tmp_path_factory.mktemp("made"))


@pytest.fixture
def page(made: Path, tmp_path: Path) -> Iterator[tuple[ReviewThread, httpx.Client, str, Run]]:
    reports = tmp_path / "reports"
    shutil.copytree(made, reports)
    (tmp_path / "inbox").mkdir()
    server = ReviewThread(Review(tmp_path / "inbox", [reports], ROOT / "mappings")).start()
    client = httpx.Client(base_url=server.url, follow_redirects=True, timeout=120)
    html = client.get(f"/?key={server.review.key}").text
    csrf = html.split('<meta name="csrf" content="', 1)[1].split('"', 1)[0]
    yield server, client, csrf, find_runs(server.review.folders)[0]
    client.close()
    server.stop()


def rows_shown(html: str) -> int:
    return html.count("<tr data-index=")


def test_filter_by_error_and_column_and_the_page_in_the_url(
    page: tuple[ReviewThread, httpx.Client, str, Run],
) -> None:
    _, client, _, run = page
    html = client.get(f"/runs/{run.id}?error=bad-datetime&column=Start&page=3").text
    assert "1000 row(s)" in html and rows_shown(html) == 100
    assert 'data-page="2"' in html and '<td class="num">202</td>' in html  # page 3: spreadsheet rows 202-301
    assert rows_shown(client.get(f"/runs/{run.id}?error=missing-value").text) == 0
    assert rows_shown(client.get(f"/runs/{run.id}?column=End").text) == 0
    head = html.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert head.index("<th>Start</th>") < head.index("<th>Appointment ID</th>")  # the bad column first
    fragment = client.get(f"/runs/{run.id}/rows?page=10&error=bad-datetime").text
    assert rows_shown(fragment) == 100 and '<td class="num">902</td>' in fragment


def test_apply_to_every_row_checks_each_then_undo_puts_them_back(
    page: tuple[ReviewThread, httpx.Client, str, Run],
) -> None:
    server, client, csrf, run = page
    h = {"X-CSRF-Token": csrf, "X-Reviewer": "Ana"}
    done = client.post(
        f"/runs/{run.id}/replace", json={"column": "Start", "old": BAD, "new": GOOD}, headers=h
    ).json()
    assert done["changed"] == 1000 and done["valid"] == 1000 and done["counts"]["fixed"] == 1000
    assert f">{GOOD}</td>" in client.get(f"/runs/{run.id}?page=10").text
    back = client.post(f"/runs/{run.id}/undo", json={"batch": done["batch"]}, headers=h).json()
    assert back == {"undone": 1000, "left": 0, "counts": {"fixed": 0, "skipped": 0, "sent": 0}}
    assert f">{BAD}</td>" in client.get(f"/runs/{run.id}?page=10").text
    wrong = client.post(
        f"/runs/{run.id}/replace", json={"column": "Start", "old": BAD, "new": "tomorrow"}, headers=h
    )
    assert wrong.json()["valid"] == 0 and wrong.json()["invalid"] == 1000  # checked like one edit: still bad
    client.post(f"/runs/{run.id}/undo", json={"batch": wrong.json()["batch"]}, headers=h)
    again = client.post(
        f"/runs/{run.id}/replace", json={"column": "Start", "old": BAD, "new": GOOD}, headers=h
    ).json()
    sent = client.post(f"/runs/{run.id}/send", json={"send_id": "z"}, headers=h).json()
    assert sent["rows"] == 1000
    late = client.post(f"/runs/{run.id}/undo", json={"batch": again["batch"]}, headers=h).json()
    assert late["undone"] == 0 and late["left"] == 1000  # sent: not undone
    none = client.post(
        f"/runs/{run.id}/replace", json={"column": "Start", "old": BAD, "new": GOOD}, headers=h
    )
    assert none.status_code == 400 and "no row left to fix" in none.json()["error"]
    audit = client.get(f"/runs/{run.id}").text
    assert "Ana" in audit and "replace Start" in audit and "undid" in audit
    inbox = server.review.inbox
    assert inbox is not None
    with next(inbox.glob("*.csv")).open(encoding="utf-8") as fh:
        assert {r["Start"] for r in csv.DictReader(fh)} == {GOOD}


def as_failed(reports: Path) -> None:
    """The run's rows as a run that could not send them would leave them: failed (SIRO answered 500)."""
    errors = reports / "many-errors.csv"
    with errors.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r.update(bulk_sync_status="failed", bulk_sync_error="server-error", bulk_sync_column="",
                 bulk_sync_message="SIRO answered 500 three times")  # fmt: skip
        r["Start"] = GOOD
    with errors.open("w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    summary = json.loads((reports / "many-summary.json").read_text(encoding="utf-8"))
    summary["counts"] = {"failed": 1000}
    summary["error_types"] = {"server-error": 1000}
    (reports / "many-summary.json").write_text(json.dumps(summary), encoding="utf-8")


def test_failed_rows_are_queued_then_sent_again(page: tuple[ReviewThread, httpx.Client, str, Run]) -> None:
    _, client, csrf, run = page
    as_failed(run.folder)
    h = {"X-CSRF-Token": csrf}
    assert "Send the failed and not_sent rows again" in client.get(f"/runs/{run.id}").text
    queued = client.post(f"/runs/{run.id}/resend", headers=h).json()
    assert queued["changed"] == 1000 and queued["valid"] == 1000
    sent = client.post(f"/runs/{run.id}/send", json={"send_id": "r"}, headers=h).json()
    assert sent["rows"] == 1000
    again = client.post(f"/runs/{run.id}/resend", headers=h)
    assert again.status_code == 400 and "no failed or not_sent row is left" in again.json()["error"]


def test_downloads_of_the_report_and_error_file(page: tuple[ReviewThread, httpx.Client, str, Run]) -> None:
    _, client, _, run = page
    report = client.get(f"/runs/{run.id}/download/report")
    assert report.status_code == 200 and report.content == run.report.read_bytes()
    assert report.headers["content-disposition"] == 'attachment; filename="many.csv"'
    errors = client.get(f"/runs/{run.id}/download/errors")
    assert errors.content == (run.folder / "many-errors.csv").read_bytes()
    xlsx = client.get(f"/runs/{run.id}/download/xlsx")
    found = sorted(run.folder.glob("many*.xlsx"))
    assert (xlsx.status_code, xlsx.content) == (
        (200, found[0].read_bytes()) if found else (404, xlsx.content)
    )
    assert client.get(f"/runs/{run.id}/download/..%2f..%2fetc%2fpasswd").status_code == 404


def test_messages_are_in_the_users_words(page: tuple[ReviewThread, httpx.Client, str, Run]) -> None:
    _, client, csrf, run = page
    html = client.get(f"/runs/{run.id}").text
    assert "expected a date like 03/31/2026 10:00 AM, got 31/02/2026 10:00 AM" in html
    assert "%m/%d/%Y" not in html.split("<tbody", 1)[1]  # the developer's format string is not shown
    grid_row = html.split('<tr data-index="0"', 1)[1].split("</tr>", 1)[0]
    assert grid_row.count("expected a date like") == 1  # startTime and startTimeLocalized: said once
    with EXAMPLE_CSV.open(newline="", encoding="utf-8") as fh:
        _, good = list(csv.reader(fh))[:2]
    cells = [good[0], *good[1:7], "13/45/2026 10:00 AM", *good[8:]]
    answer = client.post(
        f"/runs/{run.id}/check", json={"index": 0, "cells": cells}, headers={"X-CSRF-Token": csrf}
    )
    assert answer.json()["said"] == "expected a date like 03/31/2026 10:00 AM, got 13/45/2026 10:00 AM"
