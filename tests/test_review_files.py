"""Issue 36 over real HTTP on 127.0.0.1: a run over several files shows each file's error file. The
real CLI's `validate a.csv b.csv` writes r-errors-a.csv and r-errors-b.csv; the run page names
both, shows either one's rows in the grid (?file=), downloads each, and keeps each one's edits
apart: an edit, an apply-to-all and a send of b's rows touch b's only, and the fixed file is named
after b.csv. The run is "fixed and sent" only once the rows of both are handled."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import ROOT, review_session, two_files

from bulk_sync.review import Review
from bulk_sync.review.runs import Run, find_runs, grid_of
from bulk_sync.review.server import ReviewThread
from bulk_sync.review.store import Store

GOOD = "03/02/2026 10:00 AM"  # the bad-date row's End is later that day


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_files(tmp_path_factory.mktemp("files"))


@pytest.fixture
def page(made: Path, tmp_path: Path) -> Iterator[tuple[ReviewThread, httpx.Client, str, Run]]:
    shutil.copytree(made, tmp_path / "reports")
    (tmp_path / "inbox").mkdir()
    server = ReviewThread(Review(tmp_path / "inbox", [tmp_path / "reports"], ROOT / "mappings")).start()
    client, csrf = review_session(server)
    yield server, client, csrf, find_runs(server.review.folders)[0]
    client.close()
    server.stop()


def ids(html: str) -> list[str]:
    """The Appointment IDs of the grid's rows."""
    return [c.split(">", 1)[1].split("<", 1)[0] for c in html.split('data-col="Appointment ID"')[1:]]


def rows_in(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def test_the_run_page_names_each_file_and_shows_either_ones_rows(
    page: tuple[ReviewThread, httpx.Client, str, Run],
) -> None:
    _, client, _, run = page
    a, b = rows_in(run.folder / "r-errors-a.csv"), rows_in(run.folder / "r-errors-b.csv")
    html = client.get(f"/runs/{run.id}").text
    assert f"Rows that did not sync ({len(a)}) in a.csv" in html  # the first file's, by default
    assert ids(html) == [r["Appointment ID"] for r in a]
    nav = html.split('id="parts"', 1)[1].split("</nav>", 1)[0]
    assert "<strong>a.csv</strong>" in nav and f'href="/runs/{run.id}?file=r-errors-b.csv">b.csv</a>' in nav
    assert "also in" not in html  # nothing left out any more
    other = client.get(f"/runs/{run.id}?file=r-errors-b.csv").text
    assert f"Rows that did not sync ({len(b)}) in b.csv" in other and "<strong>b.csv</strong>" in other
    assert ids(other) == [r["Appointment ID"] for r in b] and "BAPT-24016" in ids(other)
    assert 'data-file="r-errors-b.csv"' in other  # the page's actions name b's file
    assert '<input type="hidden" name="file" value="r-errors-b.csv">' in other  # and so does its filter
    fragment = client.get(f"/runs/{run.id}/rows?page=1&file=r-errors-b.csv").text
    assert ids(fragment) == ids(other)
    for wrong in ("r-errors-c.csv", "../r-errors-b.csv", "r.csv"):
        assert client.get(f"/runs/{run.id}", params={"file": wrong}).status_code == 404
        assert client.get(f"/runs/{run.id}/rows", params={"file": wrong}).status_code == 404


def test_each_error_file_downloads(page: tuple[ReviewThread, httpx.Client, str, Run]) -> None:
    _, client, _, run = page
    html = client.get(f"/runs/{run.id}").text
    links = [href.split('"', 1)[0] for href in html.split('href="')[1:] if "/download/errors?file=" in href]
    assert links == [f"/runs/{run.id}/download/errors?file=r-errors-{x}.csv" for x in ("a", "b")]
    for link, name in zip(links, ("r-errors-a.csv", "r-errors-b.csv"), strict=True):
        got = client.get(link)
        assert got.status_code == 200 and got.content == (run.folder / name).read_bytes()
        assert got.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert (
        client.get(f"/runs/{run.id}/download/errors").content == (run.folder / "r-errors-a.csv").read_bytes()
    )
    assert client.get(f"/runs/{run.id}/download/errors?file=r.csv").status_code == 404  # an error file only
    assert client.get(f"/runs/{run.id}/download/errors?file=../r-errors-a.csv").status_code == 404


def test_each_files_edits_are_its_own_and_a_send_is_named_after_its_file(
    page: tuple[ReviewThread, httpx.Client, str, Run],
) -> None:
    server, client, csrf, run = page
    a, b = run.parts
    assert (a.source, b.source) == ("a.csv", "b.csv") and a.fixes != b.fixes
    grid = grid_of(run, b)
    index = [r[0] for r in grid.rows].index("BAPT-24016")  # its start date, 31/02/2026, does not exist
    cells = list(grid.rows[index])
    cells[grid.headers.index("Start")] = GOOD
    h = {"X-CSRF-Token": csrf, "X-Reviewer": "Ana"}
    answer = client.post(
        f"/runs/{run.id}/check?file=r-errors-b.csv", json={"index": index, "cells": cells}, headers=h
    )
    assert answer.status_code == 200 and answer.json()["status"] == "valid"
    assert Store(b.fixes).rows()[index].cells == cells and not Store(a.fixes).exists()  # b's store only
    assert GOOD not in client.get(f"/runs/{run.id}").text  # a's grid: untouched
    assert f">{GOOD}</td>" in client.get(f"/runs/{run.id}?file=r-errors-b.csv").text
    wrong = client.post(
        f"/runs/{run.id}/check?file=nope.csv", json={"index": index, "cells": cells}, headers=h
    )
    assert wrong.status_code == 404 and "no such error file" in wrong.json()["error"]
    # apply-to-all on b: b's rows only (a has the same bad date in its own row)
    bad = "31/02/2026 10:00 AM"
    done = client.post(
        f"/runs/{run.id}/replace?file=r-errors-b.csv",
        json={"column": "Start", "old": bad, "new": GOOD},
        headers=h,
    )
    assert done.status_code == 400 and "no row left to fix has" in done.json()["error"]  # b's was fixed
    done = client.post(
        f"/runs/{run.id}/replace?file=r-errors-a.csv",
        json={"column": "Start", "old": bad, "new": GOOD},
        headers=h,
    ).json()
    assert done["changed"] == 1 and done["counts"]["fixed"] == 1
    undone = client.post(f"/runs/{run.id}/undo?file=r-errors-a.csv", json={"batch": done["batch"]}, headers=h)
    assert undone.json()["undone"] == 1
    sent = client.post(f"/runs/{run.id}/send?file=r-errors-b.csv", json={"send_id": "s"}, headers=h).json()
    assert sent["rows"] == 1 and sent["dropped"].startswith("b-fixed-")  # named after the file it came from
    inbox = server.review.inbox
    assert inbox is not None
    assert [r["Appointment ID"] for r in rows_in(inbox / sent["dropped"])] == [cells[0]]
    nothing = client.post(f"/runs/{run.id}/send", json={"send_id": "t"}, headers=h)
    assert nothing.status_code == 400  # a's rows: none fixed


def test_the_run_is_fixed_and_sent_once_both_files_rows_are_handled(
    page: tuple[ReviewThread, httpx.Client, str, Run],
) -> None:
    _, client, csrf, run = page
    h = {"X-CSRF-Token": csrf, "X-Reviewer": "Ana"}

    def state() -> str:
        row = client.get("/").text.split(f'href="/runs/{run.id}"', 1)[1]
        return row.split('<td class="state', 1)[1].split(">", 1)[1].split("<", 1)[0]

    for n, part in enumerate(run.parts):
        grid = grid_of(run, part)
        for i in range(len(grid.rows)):  # every row marked "don't send"
            body = {"index": i, "cells": grid.rows[i], "version": 0, "skip": True}
            assert client.post(f"/runs/{run.id}/check?file={part.name}", json=body, headers=h).is_success
        assert state() == ("needs attention" if n == 0 else "done")  # (nothing to send: none left)
