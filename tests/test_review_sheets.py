"""Issue 36 over real HTTP on 127.0.0.1: a run over a workbook's sheets with other columns. A real
.xlsx written by openpyxl: sheet East has the example's columns (2 rows to fix), sheet West a
Region column first, then the example's (3 rows to fix). The real CLI's `validate book.xlsx --sheet
'*'` writes one error workbook, r-errors.xlsx, a sheet each. The run page names both sheets and
shows either one's rows in a grid of its own (``?file=r-errors.xlsx:West``), with West's columns;
each sheet's edits are its own, and each is sent as its own file named after the workbook and the
sheet, which the mapping reads back without a problem."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import EXAMPLE_MAPPING, ROOT, cli_argv, cli_env, cli_run, review_session, two_sheets

from bulk_sync.review import Review
from bulk_sync.review.runs import Run, find_runs, grid_of
from bulk_sync.review.server import ReviewThread
from bulk_sync.review.store import Store

GOOD = "03/02/2026 10:00 AM"  # East's bad-date row's End is later that day
EAST, WEST = "r-errors.xlsx:East", "r-errors.xlsx:West"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_sheets(tmp_path_factory.mktemp("sheets"))


@pytest.fixture
def page(made: Path, tmp_path: Path) -> Iterator[tuple[ReviewThread, httpx.Client, str, Run]]:
    shutil.copytree(made, tmp_path / "reports")
    (tmp_path / "inbox").mkdir()
    server = ReviewThread(Review(tmp_path / "inbox", [tmp_path / "reports"], ROOT / "mappings")).start()
    client, csrf = review_session(server)
    yield server, client, csrf, find_runs(server.review.folders)[0]
    client.close()
    server.stop()


def column(html: str, name: str) -> list[str]:
    """The cells of the grid's column ``name``."""
    return [c.split(">", 1)[1].split("<", 1)[0] for c in html.split(f'data-col="{name}" data-i=')[1:]]


def test_the_run_page_shows_each_sheets_rows_in_a_grid_of_its_own(
    page: tuple[ReviewThread, httpx.Client, str, Run],
) -> None:
    _, client, _, run = page
    assert [(p.name, p.label) for p in run.parts] == [
        (EAST, "book.xlsx, sheet East"),
        (WEST, "book.xlsx, sheet West"),
    ]
    html = client.get(f"/runs/{run.id}").text
    assert "Rows that did not sync (2) in book.xlsx, sheet East" in html
    assert column(html, "Appointment ID") == ["", "APT-24016"] and not column(html, "Region")
    nav = html.split('id="parts"', 1)[1].split("</nav>", 1)[0]
    assert "<strong>book.xlsx, sheet East</strong>" in nav
    assert f'href="/runs/{run.id}?file=r-errors.xlsx%3AWest">book.xlsx, sheet West</a>' in nav
    west = client.get(f"/runs/{run.id}", params={"file": WEST}).text
    assert "Rows that did not sync (3) in book.xlsx, sheet West" in west
    assert column(west, "Region") == ["W", "W", "W"]  # West's own columns
    assert column(west, "Appointment ID") == ["WAPT-24024", "WAPT-24032", "WAPT-24045"]
    assert f'data-file="{WEST}"' in west  # the page's actions name West
    rows = client.get(f"/runs/{run.id}/rows", params={"page": "1", "file": WEST}).text
    assert column(rows, "Appointment ID") == column(west, "Appointment ID")
    # the error file's name alone (a link from before sheets had grids of their own): its first sheet
    assert "sheet East</h2>" in client.get(f"/runs/{run.id}", params={"file": "r-errors.xlsx"}).text
    for wrong in ("r-errors.xlsx:North", "r-errors.xlsx:", ":West"):
        assert client.get(f"/runs/{run.id}", params={"file": wrong}).status_code == 404
    got = client.get(f"/runs/{run.id}/download/errors", params={"file": WEST})
    assert got.content == (run.folder / "r-errors.xlsx").read_bytes()


def test_each_sheets_edits_are_its_own_and_each_is_sent_as_its_own_file(
    page: tuple[ReviewThread, httpx.Client, str, Run], tmp_path: Path
) -> None:
    server, client, csrf, run = page
    east, west = run.parts
    h = {"X-CSRF-Token": csrf, "X-Reviewer": "Ana"}
    grid = grid_of(run, west)
    index = [r[grid.headers.index("Appointment ID")] for r in grid.rows].index("WAPT-24045")
    cells = list(grid.rows[index])
    assert cells[grid.headers.index("Amount")] == "12k"
    cells[grid.headers.index("Amount")] = "12000"
    answer = client.post(
        f"/runs/{run.id}/check?file={WEST}", json={"index": index, "cells": cells}, headers=h
    )
    assert answer.status_code == 200 and answer.json()["status"] == "valid", answer.text
    assert Store(west.fixes).rows()[index].cells == cells and not Store(east.fixes).exists()
    egrid = grid_of(run, east)
    e = [r[0] for r in egrid.rows].index("APT-24016")
    ecells = list(egrid.rows[e])
    ecells[egrid.headers.index("Start")] = GOOD
    answer = client.post(f"/runs/{run.id}/check?file={EAST}", json={"index": e, "cells": ecells}, headers=h)
    assert answer.json()["status"] == "valid"
    assert set(Store(west.fixes).rows()) == {index} and set(Store(east.fixes).rows()) == {e}
    sent = client.post(f"/runs/{run.id}/send?file={WEST}", json={"send_id": "w"}, headers=h).json()
    assert sent["rows"] == 1 and sent["dropped"].startswith("book-West-fixed-"), sent
    assert Store(east.fixes).counts()["fixed"] == 1  # East's fix is not sent with West's
    other = client.post(f"/runs/{run.id}/send?file={EAST}", json={"send_id": "e"}, headers=h).json()
    assert other["rows"] == 1 and other["dropped"].startswith("book-East-fixed-"), other
    inbox = server.review.inbox
    assert inbox is not None
    with (inbox / sent["dropped"]).open(encoding="utf-8") as fh:
        got = list(csv.DictReader(fh))
    assert [(r["Region"], r["Appointment ID"], r["Amount"]) for r in got] == [("W", "WAPT-24045", "12000")]
    # the file sent is one the mapping reads: `validate` finds every row valid
    argv = cli_argv(
        "validate", inbox / sent["dropped"], "--mapping", EXAMPLE_MAPPING, "--report", tmp_path / "v.csv"
    )
    done = cli_run(argv, env=cli_env(None), timeout=120, check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
