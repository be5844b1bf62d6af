"""Issue 36 over real HTTP on 127.0.0.1: the error file is opened once, and what was checked is what
is read. The page checks that a run's error file is a plain file under its folder (no symbolic
link), then reads it: a file swapped for a link to an outside file (names, SSNs) between the check
and the read is refused, and one swapped after it was opened is read as it was (the load stage
reads through the open file, never the name again). A download likewise. The swap is put exactly
in the window by wrapping the step after the check; the files and links are real."""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, ROOT, cli_argv, cli_env, cli_run

from bulk_sync.review import Review, app, runs, safefs
from bulk_sync.review.runs import Run, find_runs
from bulk_sync.review.safefs import OutsideRoot
from bulk_sync.review.server import ReviewThread

SECRET = "Jane Roe 123-45-6789"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `validate` of the example by the real CLI (5 rows to fix): r-errors.csv."""
    folder = tmp_path_factory.mktemp("made")
    argv = cli_argv("validate", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--report", folder / "r.csv")
    cli_run(argv, env=cli_env(None), cwd=folder, timeout=120, check=False, capture_output=True)
    assert (folder / "r-errors.csv").is_file()
    return folder


@pytest.fixture
def page(made: Path, tmp_path: Path) -> Iterator[tuple[httpx.Client, Run, Path]]:
    """The review server over a copy of the run; an outside file shaped as its error file, each
    row's Notes the secret (what a link planted in the run's folder would show)."""
    reports = tmp_path / "reports"
    shutil.copytree(made, reports)
    with (reports / "r-errors.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    notes = rows[0].index("Notes")
    (tmp_path / "outside").mkdir()
    outside = tmp_path / "outside" / "people.csv"
    with outside.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([rows[0], *([*r[:notes], SECRET, *r[notes + 1 :]] for r in rows[1:])])
    runs._GRIDS.clear()
    server = ReviewThread(Review(None, [reports], ROOT / "mappings")).start()
    client = httpx.Client(base_url=server.url, follow_redirects=True, timeout=60)
    client.get(f"/?key={server.review.key}")
    yield client, find_runs(server.review.folders)[0], outside
    client.close()
    server.stop()
    runs._GRIDS.clear()


def swap(errors: Path, outside: Path) -> None:
    """The error file replaced by a link to the outside file (as an attacker with write access to
    the run's folder would, between two steps of the page)."""
    errors.unlink()
    errors.symlink_to(outside)


def test_an_error_file_swapped_for_a_link_after_its_check_is_refused(
    page: tuple[httpx.Client, Run, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, run, outside = page
    errors = run.folder / "r-errors.csv"
    real = runs._read

    def swapped_then_read(*args: Any) -> None:  # the grid's check passed: the read starts
        swap(errors, outside)
        real(*args)

    monkeypatch.setattr(runs, "_read", swapped_then_read)
    html = client.get(f"/runs/{run.id}").text
    assert SECRET not in html
    assert "cannot be read" in html and "symbolic link" in html
    assert os.path.islink(errors)  # (the link was there when it was read)


def test_an_error_file_swapped_after_it_was_opened_is_read_as_it_was(
    page: tuple[httpx.Client, Run, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, run, outside = page
    errors = run.folder / "r-errors.csv"
    with errors.open(encoding="utf-8-sig", newline="") as fh:
        ids = [r["Appointment ID"] for r in csv.DictReader(fh)]
    real = runs.open_sources

    def opened_then_swapped(path: Path, **how: Any) -> Any:  # its header read; its rows not yet
        sources = real(path, **how)
        swap(errors, outside)
        return sources

    monkeypatch.setattr(runs, "open_sources", opened_then_swapped)
    html = client.get(f"/runs/{run.id}/rows?page=1").text  # the grid's rows (the run page would
    assert SECRET not in html  # go on to say its error file is gone: the name is a link by then)
    shown = [c.split(">", 1)[1].split("<", 1)[0] for c in html.split('data-col="Appointment ID"')[1:]]
    assert shown == ids and "APT-24016" in ids  # the rows of the file that was checked and opened


def test_a_download_swapped_for_a_link_after_its_check_is_refused(
    page: tuple[httpx.Client, Run, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, run, outside = page
    errors = run.folder / "r-errors.csv"
    real = app.inside

    def checked_then_swapped(path: Path, root: Path) -> Path:
        found = real(path, root)
        swap(errors, outside)
        return found

    monkeypatch.setattr(app, "inside", checked_then_swapped)
    got = client.get(f"/runs/{run.id}/download/errors")
    assert got.status_code == 403 and SECRET not in got.text and "symbolic link" in got.text


def test_a_link_on_the_way_or_a_fifo_is_never_opened(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (elsewhere / "r-errors.csv").write_text(SECRET, encoding="utf-8")
    (root / "sub").symlink_to(elsewhere)  # a folder on the way, linked out
    (root / "link.csv").symlink_to(elsewhere / "r-errors.csv")
    os.mkfifo(root / "fifo.csv")  # would hang a read by name
    (root / "plain.csv").write_text("ok", encoding="utf-8")
    for name in ("sub/r-errors.csv", "link.csv", "fifo.csv", "../elsewhere/r-errors.csv"):
        with pytest.raises(OutsideRoot):
            safefs.open_plain(root / name, root)
    fd = safefs.open_plain(root / "plain.csv", root)
    try:
        assert os.read(fd, 10) == b"ok"
    finally:
        os.close(fd)
