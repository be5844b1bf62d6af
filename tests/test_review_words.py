"""Issue 36: the review page's messages in the words of the ops staff it is for, for every kind of
problem, not only a date's format: what the cell should hold and what it holds, without SIRO's
field paths, format strings, the mapping's keys or a library's phrasing; what to do when the cell
is not the problem. The messages are the real engine's (the page's check runs what `validate`
runs), on the example mapping and on one with the other kinds of cell; the report and the error
file keep the run's own."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, ROOT, cli_argv, cli_env, cli_run

from bulk_sync.review import Review
from bulk_sync.review.check import check_rows
from bulk_sync.review.runs import Run, find_runs, grid_of
from bulk_sync.review.server import ReviewThread
from bulk_sync.review.words import said

# what a person fixing a spreadsheet should not have to read
DEVELOPER = re.compile(
    r"%[a-zA-Z]|`|\b(?:externalId|startTime|endTime|opportunity\.|engagementUsers|account\.|"
    r"activityType|the mapping maps|default: invalid|decimal:|ISO 8601|IANA|true/false \(|"
    r"String should|Input should)"
)

EXAMPLE_CASES = {  # column: (cell, what the page says)
    "Appointment ID": ("", "expected a value: the cell is empty"),
    "Start": ("31/02/2026 10:00 AM", "expected a date like 03/31/2026 10:00 AM, got 31/02/2026 10:00 AM"),
    "End": (
        "03/08/2026 02:30 AM",
        "03/08/2026 02:30 AM does not exist in America/Chicago: the clocks skip that hour when daylight "
        "saving time starts",
    ),
    "Activity": (
        "Webinar",
        "expected one of 'Appointment', 'Meeting', 'Call', 'Site Visit', got Webinar; or one of SIRO's own: ",
    ),
    "Amount": ("12,5x", "expected a number, got 12,5x"),
    "Rep Share": ("1.5", "expected a share from 0 to 1 (0.5 or 50% is half), got 1.5"),
    "Latitude": ("200", "expected a number from -90 to 90, got 200"),
    "Rep Email": ("bob", "expected an email address like name@example.com, got bob; SIRO links people"),
    "Close Date": ("2026-13-45", "expected a date like 03/31/2026, got 2026-13-45"),
}

OTHER_MAPPING = """\
version: 1
fields:
  externalId: Id
  subject: {column: Subject, extract: "Ticket #(\\\\d+)"}
  startTime:
    column: Start
    datetime: {format: "%Y-%m-%d %H:%M", timezone: America/New_York, timezone_column: Zone}
  endTime: {column: Duration, duration: {from: startTime, unit: minutes}}
  opportunity.externalId: Id
  opportunity.copyEngagementRelationships: {column: Copy}
  opportunity.amount: Amount
  engagementUsers[]: {column: People, split: ";", parse: name_email}
"""
OTHER_HEADER = ["Id", "Subject", "Start", "Zone", "Duration", "Copy", "Amount", "People"]
OTHER_GOOD = ["O-0", "Ticket #12", "2026-03-09 10:00", "", "45", "yes", "100", "Ann Lee <ann@example.com>"]
OTHER_CASES = {
    "Subject": (
        "hello",
        "hello does not have the part the mapping takes from this column (what matches Ticket #(\\d+)): "
        "check the cell, or ask whoever keeps the mapping",
    ),
    "Zone": ("Mars/Base", "expected a time zone such as America/Chicago or Europe/Berlin, got Mars/Base"),
    "Duration": (
        "soon",
        "expected a duration like 01:30, 1:30:00, 90 for minutes, 1h 30m or PT1H30M, got soon",
    ),
    "Copy": ("maybe", "expected yes or no (or true/false, 1/0), got maybe"),
    "Amount": (
        "1,500",
        "1,500 could be 1500 or 1.5: type it without a thousands separator, with a point for decimals "
        "(1500 or 1.5)",
    ),
    "People": (
        "Ann Lee",
        "expected a name with an email address, like Ann Lee <ann@example.com>, got Ann Lee; SIRO needs an "
        "email address for each person (it links people by email)",
    ),
    "Start": ("11/01/2026 01:30", "expected a date like 2026-03-31 10:00, got 11/01/2026 01:30"),
}


def checked(
    header: list[str], good: list[str], cases: dict[str, tuple[str, str]], mapping: str
) -> dict[str, str]:
    """Each case's row (the good row with that one cell) checked by the real engine: the run's
    message, per case."""
    rows = []
    for n, (column, (cell, _)) in enumerate(cases.items()):
        row = list(good)
        row[0] = f"W-{n}"
        row[header.index(column)] = cell
        rows.append(row)
    results = check_rows(header, rows, mapping, payloads=False)
    assert all(r.status == "invalid" for r in results), [(r.status, r.message) for r in results]
    return {column: said(r.message, r.error_type) for column, r in zip(cases, results, strict=True)}


def test_every_kind_of_problem_in_the_example_is_said_in_a_persons_words() -> None:
    with EXAMPLE_CSV.open(newline="", encoding="utf-8") as fh:
        header, good = list(csv.reader(fh))[:2]
    shown = checked(header, good, EXAMPLE_CASES, str(EXAMPLE_MAPPING))
    for column, (_, words) in EXAMPLE_CASES.items():
        assert shown[column].startswith(words), (column, shown[column])
        assert not DEVELOPER.search(shown[column]), (column, shown[column])


def test_the_other_kinds_of_cell_are_said_too(tmp_path: Path) -> None:
    mapping = tmp_path / "other.yaml"
    mapping.write_text(OTHER_MAPPING, encoding="utf-8")
    shown = checked(OTHER_HEADER, OTHER_GOOD, OTHER_CASES, str(mapping))
    for column, (_, words) in OTHER_CASES.items():
        assert shown[column] == words, (column, shown[column])
        assert not DEVELOPER.search(shown[column]), (column, shown[column])


@pytest.mark.parametrize(
    ("message", "kind", "words"),
    [
        (  # an ambiguous hour: the engine's text (ROW_TEMPLATES), in the example's zone
            "startTime: '11/01/2026 01:30 AM' happens twice in America/Chicago (the clocks go back an "
            "hour): 2026-11-01T06:30:00Z (2026-11-01T01:30-05:00) or 2026-11-01T07:30:00Z "
            "(2026-11-01T01:30-06:00), and nothing in the file says which; set `ambiguous: earlier` or "
            "`ambiguous: later` in the field's `datetime:` in the mapping (or give the time with its offset)",
            "ambiguous-datetime",
            "11/01/2026 01:30 AM happens twice in America/Chicago (the clocks go back an hour): type it "
            "with its offset to say which (2026-11-01T01:30-05:00 or 2026-11-01T01:30-06:00)",
        ),
        (
            "account.name differs inside the group: 'Lee' (an earlier row) vs 'Li' (row 7); make the "
            "rows agree, or set `conflicts: first` or `last`",
            "group-conflict",
            "'Lee' in an earlier row of the same record, 'Li' in row 7; make the rows agree",
        ),
        (
            "the record is 1,200,000 bytes as JSON, more than the 1,000,000 a request may carry "
            "(--max-body-bytes); shorten its longest cells",
            "too-large",
            "the row is too long to send (1,200,000 bytes, at most 1,000,000); shorten its longest cells",
        ),
        (  # SIRO's 422, as the uploader writes it (path: message; ...)
            "startTime: Invalid datetime; engagementUsers[0].email: Invalid email",
            "api-invalid",
            "SIRO refused it: expected a date and time; expected a valid email",
        ),
        (
            "subject: String must contain at most 255 character(s)",
            "api-invalid",
            "SIRO refused it: expected at most 255 characters",
        ),
        (  # Zod's enum refusal, as the sandbox answers it
            "activityType: Invalid enum value. Expected 'MEETING' | 'CALL', received 'WEBINAR'",
            "api-invalid",
            "SIRO refused it: expected one of 'MEETING', 'CALL', got WEBINAR",
        ),
        (  # a rule of SIRO's that names its field: of the cell's value
            "externalId: externalId is reserved (sandbox rule)",
            "api-invalid",
            "SIRO refused it: the value is reserved (sandbox rule)",
        ),
        (
            "gave up after 5 attempt(s) in 31.0s; last error: HTTP 503",
            "retries-exhausted",
            "SIRO did not take it (5 tries: it timed out or failed); nothing to fix: send it again",
        ),
        (
            "not sent: SIRO refused the API token",
            "aborted",
            "the run stopped before sending it; nothing to fix: send it again",
        ),
        (
            "lead.emailAddresses[0] is required when lead is sent; the mapping gives no value for it",
            "missing-value",
            "SIRO needs a value the mapping does not give: ask whoever keeps the mapping",
        ),
        (
            "mapping /srv/m.yaml: 1 problem:\n  - line 9: fields.Start: no such column",
            "mapping",
            "the run's mapping cannot check this row: ask whoever keeps the mapping (mapping /srv/m.yaml: 1 "
            "problem: - line 9: fields.Start: no such column)",
        ),
        (  # a shape not known here: as the run wrote it, without its field path
            "account.owner.externalId: something new went wrong",
            "invalid-field",
            "something new went wrong",
        ),
        (  # not a field path: kept whole
            "this row has more cells than the header has columns (4); extra: 'x'. A value probably "
            "contains an unquoted comma, which shifts the cells after it",
            "extra-cells",
            "this row has more cells than the header has columns (4); extra: 'x'. A value probably "
            "contains an unquoted comma, which shifts the cells after it",
        ),
        ("amount: ' 12' is not a number", "bad-number", "expected a number, got ' 12'"),  # spaces shown
    ],
)
def test_each_message_shape(message: str, kind: str, words: str) -> None:
    assert said(message, kind) == words


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[httpx.Client, str, Run]]:
    reports = tmp_path / "reports"
    reports.mkdir()
    argv = cli_argv("validate", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--report", reports / "ex.csv")
    cli_run(argv, env=cli_env(None), cwd=tmp_path, timeout=120, check=False, capture_output=True)
    server = ReviewThread(Review(None, [reports], ROOT / "mappings")).start()
    client = httpx.Client(base_url=server.url, follow_redirects=True, timeout=60)
    html = client.get(f"/?key={server.review.key}").text
    csrf = html.split('<meta name="csrf" content="', 1)[1].split('"', 1)[0]
    yield client, csrf, find_runs([reports])[0]
    client.close()
    server.stop()


def test_the_run_page_and_a_check_say_it_in_those_words(page: tuple[httpx.Client, str, Run]) -> None:
    client, csrf, run = page
    html = client.get(f"/runs/{run.id}").text
    shown = [m.split("</td>", 1)[0].replace("&#39;", "'") for m in html.split('<td class="msg">')[1:]]
    assert len(shown) == 5
    for text in shown:
        assert not DEVELOPER.search(text), text
    assert "missing-value: expected a value: the cell is empty" in shown
    assert "bad-number: expected a number, got abc" in shown or any(
        t.startswith("bad-number: expected a number, got ") for t in shown
    )
    assert "bad-datetime: expected a date like 03/31/2026 10:00 AM, got 31/02/2026 10:00 AM" in shown
    grid = grid_of(run)
    index = next(i for i, p in enumerate(grid.problems) if p["error"] == "bad-number")
    cells = list(grid.rows[index])
    cells[grid.headers.index("Amount")] = "lots"
    answer = client.post(
        f"/runs/{run.id}/check", json={"index": index, "cells": cells}, headers={"X-CSRF-Token": csrf}
    ).json()
    assert answer["said"] == "expected a number, got lots"
    assert answer["message"] == "opportunity.amount: 'lots' is not a number"  # the run's own, beside it
