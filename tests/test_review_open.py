"""What the run page's cold open takes (issue 36: a 100,000-row run with 20,000 rows to fix opens
in under 1 s; tests/benchmarks/bench_review.py measures it), checked for what it must not change.
A large CSV error file's rows' problems are read first (5 columns), then the cells, chunk by chunk,
in a thread of its own: the first page need not wait for the last row's cells; anything else waits
for the whole; the grid is the same whichever way it was read; a read that fails says so to
whoever waits, and is tried again at the next request. The static files are asked for by their
content's hash, so a browser keeps them (the run page after the runs list asks the server for its
HTML only).
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, ROOT, cli_argv, cli_env, cli_run

from bulk_sync.review import Review, runs
from bulk_sync.review.runs import Grid, Run, find_runs, grid_of
from bulk_sync.review.server import ReviewThread
from bulk_sync.review.store import Store
from bulk_sync.review.view import view


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`validate` of the example 40 times over (2,400 rows, 200 to fix: five kinds of problem)."""
    folder = tmp_path_factory.mktemp("grid")
    with EXAMPLE_CSV.open(newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    with (folder / "big.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for i in range(40):
            out.writerows([f"{r[0]}-{i}" if r[0] else "", *r[1:]] for r in rows if r)
    reports = folder / "reports"
    reports.mkdir()
    argv = cli_argv("validate", "big.csv", "--mapping", EXAMPLE_MAPPING, "--report", reports / "big.csv")
    cli_run(argv, env=cli_env(None), cwd=folder, timeout=300, check=False, capture_output=True)
    return reports


@pytest.fixture
def run(made: Path) -> Iterator[Run]:
    runs._GRIDS.clear()
    yield find_runs([made])[0]
    runs._GRIDS.clear()


def small_chunks(
    monkeypatch: pytest.MonkeyPatch, hold: threading.Event | None = None, fail: bool = False
) -> None:
    """The error file read 100 rows a chunk (a page); the cells' pass held after its first chunk until
    ``hold`` is set, then failing there if ``fail``."""
    real = runs.open_sources

    def opened(path: Path, **how: Any) -> list[Any]:
        sources = real(path, **how)
        for src in sources:
            src.chunk_rows = 100
            chunks = src.chunks

            def held(columns: Any = None, chunks: Any = chunks) -> Iterator[Any]:
                for n, chunk in enumerate(chunks(columns)):
                    if n == 1 and columns is None:
                        if hold is not None:
                            assert hold.wait(30)
                        if fail:
                            raise OSError("the disk went away")
                    yield chunk

            src.chunks = held
        return sources

    monkeypatch.setattr(runs, "open_sources", opened)


def same(a: Grid, b: Grid) -> bool:
    return (a.headers, a.rows, a.problems, a.sheet) == (b.headers, b.rows, b.problems, b.sheet)


def test_read_in_two_passes_or_one_the_grid_is_the_same(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs, "LIGHT_BYTES", 1 << 40)
    one = grid_of(run)
    runs._GRIDS.clear()
    monkeypatch.setattr(runs, "LIGHT_BYTES", 0)
    small_chunks(monkeypatch)
    two = grid_of(run)
    assert same(one, two) and len(two.rows) == len(two.problems) == 200
    assert {p["error"] for p in two.problems} >= {
        "missing-value",
        "bad-datetime",
        "invalid-enum",
        "bad-number",
    }
    assert two.whole


def test_the_first_page_does_not_wait_for_the_last_rows_cells(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "LIGHT_BYTES", 0)
    hold = threading.Event()
    small_chunks(monkeypatch, hold)
    try:
        grid = grid_of(run, whole=False)  # the problems of all 200 rows, the cells of the first 100
        assert len(grid.problems) == 200 and len(grid.rows) <= 100 and not grid.whole
        first = view(grid, Store(run.fixes), 0)
        assert first.total == 200 and first.pages == 2 and len(first.rows) == 100  # its first page
        assert len(grid.rows) == 100 and not grid.whole
        assert sum(n for _, n in first.columns) >= 200  # the columns with problems: of every row
        waited: list[Grid] = []
        other = threading.Thread(target=lambda: waited.append(grid_of(run)))  # a check: the whole grid
        other.start()
        other.join(0.3)
        assert other.is_alive() and not waited  # it waits for the rest
    finally:
        hold.set()
    other.join(30)
    assert waited and waited[0] is grid and grid.whole and len(grid.rows) == 200
    monkeypatch.setattr(runs, "LIGHT_BYTES", 1 << 40)
    runs._GRIDS.clear()
    assert same(grid, grid_of(run))


def test_a_read_that_fails_is_said_and_tried_again(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs, "LIGHT_BYTES", 0)
    hold = threading.Event()
    small_chunks(monkeypatch, hold, fail=True)
    grid = grid_of(run, whole=False)  # the problems were read: the failure comes with the cells
    hold.set()
    with pytest.raises(OSError, match="the disk went away"):
        view(grid, Store(run.fixes), 1)  # the second page: its rows are past the failure
    with pytest.raises(OSError, match="the disk went away"):
        grid_of(run)
    monkeypatch.undo()
    assert len(grid_of(run).rows) == 200  # read again, whole


def test_the_page_over_http_is_the_same_read_either_way(made: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pages = []
    for light in (1 << 40, 0):
        monkeypatch.setattr(runs, "LIGHT_BYTES", light)
        runs._GRIDS.clear()
        server = ReviewThread(Review(None, [made], ROOT / "mappings")).start()
        try:
            with httpx.Client(base_url=server.url, follow_redirects=True, timeout=60) as client:
                client.get(f"/?key={server.review.key}")
                run_id = find_runs([made])[0].id
                got = [
                    client.get(f"/runs/{run_id}?page=2").text,
                    client.get(f"/runs/{run_id}/rows?page=2").text,
                ]
                got.append(client.get(f"/runs/{run_id}?error=bad-number&page=1").text)
        finally:
            server.stop()
        pages.append([page.split('name="csrf" content="', 1)[-1].split('"', 1)[-1] for page in got])
    assert pages[0] == pages[1]
    assert "Rows that did not sync (200)" in pages[1][0] and pages[1][1].count("<tr data-index=") == 100


def test_the_static_files_are_kept_by_the_browser(made: Path) -> None:
    server = ReviewThread(Review(None, [made], ROOT / "mappings")).start()
    try:
        with httpx.Client(base_url=server.url, follow_redirects=True, timeout=60) as client:
            page = client.get(f"/?key={server.review.key}").text
            for name in ("review.js", "review.css"):
                asked = page.split(f'"/static/{name}?v=', 1)[1].split('"', 1)[0]
                assert len(asked) == 12 and asked in client.get(f"/runs/{find_runs([made])[0].id}").text
                kept = client.get(f"/static/{name}?v={asked}")
                assert (
                    kept.status_code == 200
                    and kept.content == (ROOT / "bulk_sync/review/static" / name).read_bytes()
                )
                assert kept.headers["cache-control"] == "max-age=31536000, immutable"
                assert "max-age" not in client.get(f"/static/{name}").headers.get("cache-control", "")
    finally:
        server.stop()
