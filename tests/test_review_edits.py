"""Issue 36, part 1 over real HTTP on 127.0.0.1: what the review page shows fixed is what Send sends.
Each row's edit is stored with a version (a stale window is refused, never written over), edits
made at once are all kept, a send is one new file whose rows are marked sent and not offered again,
and a run goes from needs attention to fixed and sent to done. Part 2: every failed request answers
in words, a deleted error file is said, not shown as "No row to fix."."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from helpers import (
    EXAMPLE_CSV,
    EXAMPLE_MAPPING,
    ROOT,
    TOKEN,
    cli_argv,
    cli_env,
    cli_run,
    dropped_earlier,
    review_session,
    review_sign_in,
    watch_argv,
)

from bulk_sync.review import Review
from bulk_sync.review.runs import Run, find_runs, grid_of
from bulk_sync.review.server import ReviewThread
from bulk_sync.review.store import STALE
from bulk_sync.sandbox import SandboxServer


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `validate` of the example by the real CLI (5 rows to fix), copied for each test."""
    folder = tmp_path_factory.mktemp("made")
    argv = cli_argv(
        "validate", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--report", folder / "appointments.csv"
    )
    cli_run(argv, env=cli_env(None), cwd=folder, timeout=120, check=False, capture_output=True)
    assert (folder / "appointments-summary.json").is_file()
    return folder


@pytest.fixture
def page(made: Path, tmp_path: Path) -> Iterator[tuple[ReviewThread, httpx.Client, str]]:
    reports = tmp_path / "reports"
    shutil.copytree(made, reports)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    server = ReviewThread(Review(inbox, [reports], ROOT / "mappings")).start()
    client, csrf = review_session(server)
    yield server, client, csrf
    client.close()
    server.stop()


def the_run(server: ReviewThread) -> Run:
    return find_runs(server.review.folders)[0]


def fixed_cells(run: Run, index: int) -> list[str]:
    """Row ``index`` of the grid with its bad date (or, for other errors, nothing) fixed."""
    grid = grid_of(run)
    cells = list(grid.rows[index])
    cells[grid.headers.index("Start")] = "03/02/2026 10:00 AM"
    return cells


def date_rows(run: Run) -> list[int]:
    return [i for i, p in enumerate(grid_of(run).problems) if p["error"] == "bad-datetime"]


def check(
    client: httpx.Client, csrf: str, run: Run, index: int, cells: list[str], version: int
) -> httpx.Response:
    body = {"index": index, "cells": cells, "version": version}
    return client.post(
        f"/runs/{run.id}/check", json=body, headers={"X-CSRF-Token": csrf, "X-Reviewer": "Ana"}
    )


def test_a_check_answers_with_the_version_it_stored_and_a_stale_window_is_refused(
    page: tuple[ReviewThread, httpx.Client, str],
) -> None:
    server, client, csrf = page
    run = the_run(server)
    (index,) = date_rows(run)[:1]
    first = check(client, csrf, run, index, fixed_cells(run, index), 0)
    assert first.status_code == 200 and first.json()["version"] == 1 and first.json()["status"] == "valid"
    # another window, opened before that edit, still shows version 0: its edit is refused, not kept
    other = grid_of(run).rows[index]
    stale = check(client, csrf, run, index, other, 0)
    assert stale.status_code == 409 and stale.json()["error"] == STALE and stale.json()["version"] == 1
    shown = client.get(f"/runs/{run.id}").text
    assert "03/02/2026 10:00 AM" in shown and 'data-version="1"' in shown  # the first edit, kept
    again = check(client, csrf, run, index, other, 1)  # reloaded: now on version 1
    assert again.status_code == 200 and again.json()["version"] == 2 and again.json()["status"] == "invalid"


def test_five_edits_at_once_are_all_kept(page: tuple[ReviewThread, httpx.Client, str]) -> None:
    server, client, csrf = page
    run = the_run(server)
    grid = grid_of(run)
    rows = list(range(len(grid.rows)))
    assert len(rows) == 5
    with ThreadPoolExecutor(5) as pool:  # five checks in flight together, as fast typing makes them
        answers = list(
            pool.map(lambda i: check(client, csrf, run, i, [*grid.rows[i][:-1], f"note {i}"], 0), rows)
        )
    assert [a.status_code for a in answers] == [200] * 5
    html = client.get(f"/runs/{run.id}").text
    assert all(f">note {i}</td>" in html for i in rows), "an edit made at the same time was lost"


def test_send_sends_exactly_the_rows_shown_fixed_once(page: tuple[ReviewThread, httpx.Client, str]) -> None:
    server, client, csrf = page
    run = the_run(server)
    (index,) = date_rows(run)[:1]
    version = check(client, csrf, run, index, fixed_cells(run, index), 0).json()["version"]
    headers = {"X-CSRF-Token": csrf, "X-Reviewer": "Ana"}
    stale = client.post(
        f"/runs/{run.id}/send", json={"send_id": "a", "shown": {str(index): 0}}, headers=headers
    )
    assert stale.status_code == 409 and "changed in another window" in stale.json()["error"]
    inbox = server.review.inbox
    assert inbox is not None and not list(inbox.iterdir())  # nothing sent from a stale page
    body = {"send_id": "b", "shown": {str(index): version}}
    first = client.post(f"/runs/{run.id}/send", json=body, headers=headers)
    assert first.status_code == 200 and first.json()["rows"] == 1
    retried = client.post(f"/runs/{run.id}/send", json=body, headers=headers)  # the same click, retried
    assert retried.json()["dropped"] == first.json()["dropped"] and retried.json()["again"] is True
    second = client.post(f"/runs/{run.id}/send", json={"send_id": "c"}, headers=headers)  # clicked again
    assert second.status_code == 400 and "no row is fixed and not yet sent" in second.json()["error"]
    files = list(inbox.glob("*.csv"))
    assert [f.name for f in files] == [first.json()["dropped"]]
    with files[0].open(encoding="utf-8") as fh:
        assert [r["Start"] for r in csv.DictReader(fh)] == ["03/02/2026 10:00 AM"]
    html = client.get(f"/runs/{run.id}").text
    sent_row = html.split(f'<tr data-index="{index}"', 1)[1].split("</tr>", 1)[0]
    assert f"sent in {files[0].name}" in sent_row and "tabindex" not in sent_row  # not editable any more
    assert check(client, csrf, run, index, fixed_cells(run, index), version).status_code == 409  # not again
    assert (
        "Ana" in html and "sent 1 row(s) in" in html and "&#39;31/02/2026 10:00 AM&#39; -&gt;" in html
    )  # audit


def test_two_sends_at_once_make_two_files_or_one_never_the_same_rows_twice(
    page: tuple[ReviewThread, httpx.Client, str],
) -> None:
    server, client, csrf = page
    run = the_run(server)
    (index,) = date_rows(run)[:1]
    check(client, csrf, run, index, fixed_cells(run, index), 0)

    def send(n: int) -> httpx.Response:
        return client.post(f"/runs/{run.id}/send", json={"send_id": f"s{n}"}, headers={"X-CSRF-Token": csrf})

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(send, range(4)))
    assert sorted(a.status_code for a in answers) == [200, 400, 400, 400]
    inbox = server.review.inbox
    assert inbox is not None and len(list(inbox.glob("*-fixed-*.csv"))) == 1


def test_a_failed_request_answers_in_words(page: tuple[ReviewThread, httpx.Client, str]) -> None:
    server, client, csrf = page
    run = the_run(server)
    h = {"X-CSRF-Token": csrf}
    for body in (b"{not json", b"[1, 2]", b'{"index": "x", "cells": []}', b'{"index": 999, "cells": []}'):
        resp = client.post(
            f"/runs/{run.id}/check", content=body, headers={**h, "Content-Type": "application/json"}
        )
        assert resp.status_code in (400, 404) and "reload" in resp.json()["error"], body
    resp = client.post(f"/runs/{run.id}/check", json={"index": 0, "cells": []}, headers={"X-CSRF-Token": "0"})
    assert resp.status_code == 403 and "stale" in resp.text and "reload" in resp.text
    assert "moved or deleted" in client.get("/runs/0000000000000000").text


def test_a_deleted_error_file_is_said_not_shown_as_nothing_to_fix(
    page: tuple[ReviewThread, httpx.Client, str],
) -> None:
    server, client, _ = page
    run = the_run(server)
    for p in run.error_files:
        p.unlink()
    html = client.get(f"/runs/{run.id}").text
    assert "No row to fix." not in html
    assert "the run&#39;s error file is gone" in html and "had 5 row(s) to fix" in html


@pytest.mark.slow
def test_a_run_goes_from_needs_attention_to_fixed_and_sent_to_done(tmp_path: Path) -> None:
    siro = SandboxServer(TOKEN).start()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    watch = watch_argv(inbox, "--once", "--base-url", siro.base_url, "--mapping", EXAMPLE_MAPPING)
    server = ReviewThread(Review(inbox, [], ROOT / "mappings")).start()
    client = httpx.Client(base_url=server.url, follow_redirects=True, timeout=60)
    try:
        shutil.copy(EXAMPLE_CSV, inbox / "appointments.csv")
        dropped_earlier(inbox / "appointments.csv")
        cli_run(watch, capture_output=True, env=cli_env(), cwd=tmp_path, timeout=120, check=False)
        csrf = review_sign_in(client, server)
        run = the_run(server)

        def state() -> str:
            row = client.get("/").text.split(f'href="/runs/{run.id}"', 1)[1]
            return row.split('<td class="state', 1)[1].split(">", 1)[1].split("<", 1)[0]

        assert state() == "needs attention"
        grid = grid_of(run)
        for i in range(len(grid.rows)):
            version = 0
            if i in date_rows(run):
                answer = check(client, csrf, run, i, fixed_cells(run, i), 0).json()
                if answer["status"] == "valid":
                    continue
                version = answer["version"]
            # the others cannot be fixed from the example's data alone: marked "don't send"
            body = {"index": i, "cells": grid.rows[i], "version": version, "skip": True}
            assert client.post(f"/runs/{run.id}/check", json=body, headers={"X-CSRF-Token": csrf}).is_success
        sent = client.post(
            f"/runs/{run.id}/send", json={"send_id": "x"}, headers={"X-CSRF-Token": csrf}
        ).json()
        assert state() == "fixed and sent" and "appointments.csv" not in client.get("/?attention=1").text
        dropped_earlier(inbox / sent["dropped"])
        cli_run(watch, capture_output=True, env=cli_env(), cwd=tmp_path, timeout=120, check=False)
        assert state() == "done"
    finally:
        client.close()
        server.stop()
        siro.stop()
