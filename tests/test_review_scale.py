"""Issue 36, part 6 over real HTTP on 127.0.0.1: fixes at scale. The grid filtered by error type
and column, the page in the URL; one value applied to every row with the same one in a column
(1,000 rows, each checked), undone before Send; failed rows queued and sent again; downloads."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import BAD_DATE, EXAMPLE_CSV, GOOD_DATE, ROOT, as_failed, review_session, thousand

from bulk_sync.review import Review
from bulk_sync.review.runs import Run, find_runs
from bulk_sync.review.server import ReviewThread


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return thousand(tmp_path_factory.mktemp("made"))


@pytest.fixture
def page(made: Path, tmp_path: Path) -> Iterator[tuple[ReviewThread, httpx.Client, str, Run]]:
    reports = tmp_path / "reports"
    shutil.copytree(made, reports)
    (tmp_path / "inbox").mkdir()
    server = ReviewThread(Review(tmp_path / "inbox", [reports], ROOT / "mappings")).start()
    client, csrf = review_session(server, timeout=120)
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
        f"/runs/{run.id}/replace", json={"column": "Start", "old": BAD_DATE, "new": GOOD_DATE}, headers=h
    ).json()
    assert done["changed"] == 1000 and done["valid"] == 1000 and done["counts"]["fixed"] == 1000
    assert f">{GOOD_DATE}</td>" in client.get(f"/runs/{run.id}?page=10").text
    back = client.post(f"/runs/{run.id}/undo", json={"batch": done["batch"]}, headers=h).json()
    assert back == {"undone": 1000, "left": 0, "counts": {"fixed": 0, "skipped": 0, "sent": 0}}
    assert f">{BAD_DATE}</td>" in client.get(f"/runs/{run.id}?page=10").text
    wrong = client.post(
        f"/runs/{run.id}/replace", json={"column": "Start", "old": BAD_DATE, "new": "tomorrow"}, headers=h
    )
    assert wrong.json()["valid"] == 0 and wrong.json()["invalid"] == 1000  # checked like one edit: still bad
    client.post(f"/runs/{run.id}/undo", json={"batch": wrong.json()["batch"]}, headers=h)
    again = client.post(
        f"/runs/{run.id}/replace", json={"column": "Start", "old": BAD_DATE, "new": GOOD_DATE}, headers=h
    ).json()
    sent = client.post(f"/runs/{run.id}/send", json={"send_id": "z"}, headers=h).json()
    assert sent["rows"] == 1000
    late = client.post(f"/runs/{run.id}/undo", json={"batch": again["batch"]}, headers=h).json()
    assert late["undone"] == 0 and late["left"] == 1000  # sent: not undone
    none = client.post(
        f"/runs/{run.id}/replace", json={"column": "Start", "old": BAD_DATE, "new": GOOD_DATE}, headers=h
    )
    assert none.status_code == 400 and "no row left to fix" in none.json()["error"]
    audit = client.get(f"/runs/{run.id}").text
    assert "Ana" in audit and "replace Start" in audit and "undid" in audit
    inbox = server.review.inbox
    assert inbox is not None
    with next(inbox.glob("*.csv")).open(encoding="utf-8") as fh:
        assert {r["Start"] for r in csv.DictReader(fh)} == {GOOD_DATE}


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
