"""Issue 20: the review page over real HTTP on 127.0.0.1: its security points one by one, the page
and `validate` agreeing on every row, and fixed rows reaching SIRO through the watcher."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from helpers import (
    EXAMPLE_CSV,
    EXAMPLE_MAPPING,
    ROOT,
    TOKEN,
    CliResult,
    cli_argv,
    cli_env,
    cli_popen,
    cli_run,
    dropped_earlier,
    review_sign_in,
    watch_argv,
)

from bulk_sync.review import Review
from bulk_sync.review.runs import find_runs, grid_of
from bulk_sync.review.server import ReviewThread
from bulk_sync.sandbox import SandboxServer

SCRIPT = "<script>alert(1)</script>"

pytestmark = pytest.mark.slow  # each test runs the real CLI or the watcher, several times


@pytest.fixture
def failed_run(run_cli: Callable[..., CliResult], tmp_path: Path) -> Path:
    """A run with rows to fix, written by the real CLI: the example, plus a row whose cells hold markup."""
    data = tmp_path / "appointments.csv"
    text = EXAMPLE_CSV.read_text(encoding="utf-8")
    data.write_text(
        text + f',"{SCRIPT}",notes,Inbound,Visit,T-1,Appointment,03/02/2026 08:00 AM' + "," * 39 + "\n"
    )
    reports = tmp_path / "reports"
    reports.mkdir()
    r = run_cli(
        "run", data, "--mapping", EXAMPLE_MAPPING, "--sandbox", "--report", reports / "appointments-run.csv"
    )
    assert r.code == 1, r.stderr
    return reports


@pytest.fixture
def review(failed_run: Path, tmp_path: Path) -> Iterator[tuple[ReviewThread, httpx.Client]]:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    server = ReviewThread(Review(inbox, [failed_run], ROOT / "mappings", max_upload_mb=0.01)).start()
    client = httpx.Client(base_url=server.url, follow_redirects=True)
    yield server, client
    client.close()
    server.stop()


def test_every_request_needs_the_key_then_a_session_cookie(review: tuple[ReviewThread, httpx.Client]) -> None:
    server, client = review
    assert client.get("/").status_code == 403
    assert client.get("/?key=wrong").status_code == 403
    first = httpx.get(f"{server.url}/?key={server.review.key}")  # no redirect followed: see the cookie
    assert first.status_code == 302 and first.headers["location"] == "/"
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # Lax: mail links
    assert server.review.key not in cookie  # a signed session id, never the key
    review_sign_in(client, server)
    page = client.get("/")
    assert page.status_code == 200 and "appointments.csv" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_the_host_header_must_name_this_server(review: tuple[ReviewThread, httpx.Client]) -> None:
    server, client = review
    review_sign_in(client, server)
    resp = client.get("/", headers={"Host": "evil.example"})
    assert resp.status_code == 403  # a page from another site cannot reach it by DNS rebinding


def test_posts_need_the_csrf_token(review: tuple[ReviewThread, httpx.Client]) -> None:
    server, client = review
    csrf = review_sign_in(client, server)
    run = find_runs(server.review.folders)[0]
    body = {"index": 0, "cells": grid_of(run).rows[0]}
    assert client.post(f"/runs/{run.id}/check", json=body).status_code == 403
    assert (
        client.post(f"/runs/{run.id}/check", json=body, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    )
    assert client.post(f"/runs/{run.id}/check", json=body, headers={"X-CSRF-Token": csrf}).status_code == 200
    assert csrf != server.review.key


def test_cells_are_shown_as_text(review: tuple[ReviewThread, httpx.Client]) -> None:
    server, client = review
    review_sign_in(client, server)
    run = find_runs(server.review.folders)[0]
    page = client.get(f"/runs/{run.id}").text
    assert SCRIPT not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    fragment = client.get(f"/runs/{run.id}/rows?page=0").text
    assert SCRIPT not in fragment and "&lt;script&gt;" in fragment


@pytest.mark.parametrize(
    "path",
    [
        "/static/../../pyproject.toml",
        "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/static/app.py",
        "/runs/..%2f..%2fetc%2fpasswd",
        "/runs/%2e%2e/rows",
    ],
)
def test_no_path_from_a_request_reaches_the_disk(
    review: tuple[ReviewThread, httpx.Client], path: str
) -> None:
    server, client = review
    review_sign_in(client, server)
    resp = client.get(path)
    assert resp.status_code in (403, 404), (path, resp.status_code)
    assert "[project]" not in resp.text and "import" not in resp.text


def test_a_preview_drop_names_an_upload_never_a_path(review: tuple[ReviewThread, httpx.Client]) -> None:
    server, client = review
    csrf = review_sign_in(client, server)
    for token in ("..", "..%2f..%2fetc", "a/b"):
        resp = client.post(f"/preview/{token}/drop", data={"csrf": csrf})
        assert resp.status_code in (400, 404), token


def test_uploads_are_capped(review: tuple[ReviewThread, httpx.Client]) -> None:
    server, client = review  # the fixture caps uploads at 0.01 MB
    csrf = review_sign_in(client, server)
    big = io.BytesIO(b"Appointment ID\n" + b"X-1\n" * 10_000)
    resp = client.post(
        "/preview", data={"csrf": csrf, "mapping": "engagements.yaml"}, files={"file": ("big.csv", big)}
    )
    assert resp.status_code == 413


def test_the_page_never_holds_the_siro_token(review: tuple[ReviewThread, httpx.Client]) -> None:
    server, client = review
    review_sign_in(client, server)
    run = find_runs(server.review.folders)[0]
    for path in ("/", "/?attention=1", f"/runs/{run.id}", f"/runs/{run.id}/rows?page=0", "/preview"):
        assert TOKEN not in client.get(path).text


def test_the_page_and_validate_agree_on_every_row(
    review: tuple[ReviewThread, httpx.Client], run_cli: Callable[..., CliResult]
) -> None:
    server, client = review
    csrf = review_sign_in(client, server)
    run = find_runs(server.review.folders)[0]
    grid = grid_of(run)
    page = [
        client.post(
            f"/runs/{run.id}/check", json={"index": i, "cells": cells}, headers={"X-CSRF-Token": csrf}
        ).json()
        for i, cells in enumerate(grid.rows)
    ]
    cli = run_cli("validate", run.error_files[0], "--mapping", EXAMPLE_MAPPING)
    assert [(p["status"], p["error_type"]) for p in page] == [
        (r["status"], r["error_type"] or None) for r in cli.report
    ]
    assert len(page) == 6 and all(p["status"] == "invalid" for p in page)


@pytest.mark.slow
def test_fixed_rows_go_to_the_inbox_and_the_watcher_syncs_them(
    review: tuple[ReviewThread, httpx.Client], tmp_path: Path
) -> None:
    server, client = review
    csrf = review_sign_in(client, server)
    run = find_runs(server.review.folders)[0]
    grid = grid_of(run)
    before = run.error_files[0].read_bytes()
    index = next(i for i, p in enumerate(grid.problems) if p["error"] == "bad-datetime")
    cells = list(grid.rows[index])
    start = grid.headers.index("Start")
    cells[start] = "03/02/2026 10:00 AM"
    checked = client.post(
        f"/runs/{run.id}/check", json={"index": index, "cells": cells}, headers={"X-CSRF-Token": csrf}
    )
    assert checked.json()["status"] == "valid"
    sent = client.post(f"/runs/{run.id}/send", headers={"X-CSRF-Token": csrf}).json()
    assert sent["rows"] == 1
    inbox = server.review.inbox
    assert inbox is not None
    dropped = inbox / sent["dropped"]
    with dropped.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["Start"] for r in rows] == ["03/02/2026 10:00 AM"]
    assert run.error_files[0].read_bytes() == before  # the run's own files are never edited
    siro = SandboxServer(TOKEN).start()
    try:
        dropped_earlier(dropped)
        proc = cli_run(
            watch_argv(inbox, "--once", "--base-url", siro.base_url, "--mapping", EXAMPLE_MAPPING),
            capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert siro.state.records[rows[0]["Appointment ID"]]["startTime"] == "2026-03-02T16:00:00Z"
    finally:
        siro.stop()


@pytest.mark.slow
def test_the_watchers_alert_and_error_txt_link_to_the_runs_page(tmp_path: Path) -> None:
    siro = SandboxServer(TOKEN).start()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    review = ReviewThread(Review(inbox, [], ROOT / "mappings")).start()
    try:
        (inbox / "appointments.csv").write_bytes(EXAMPLE_CSV.read_bytes())
        dropped_earlier(inbox / "appointments.csv")
        argv = watch_argv(
            inbox,
            "--once",
            "--base-url",
            siro.base_url,
            "--mapping",
            EXAMPLE_MAPPING,
            "--review-url",
            review.url,
        )
        cli_run(argv, capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=120, check=False)
        error_txt = next((inbox / "failed").glob("appointments-*-error.txt")).read_text(encoding="utf-8")
        link = error_txt.split("Fix the rows in the browser: ", 1)[1].strip()
        summary = next((inbox / "failed").glob("appointments-*-summary.json")).read_text(encoding="utf-8")
        assert link.startswith(f"{review.url}/runs/by-watch/") and link in summary  # the webhook's body too
        client = httpx.Client(follow_redirects=True)
        client.get(f"{review.url}/?key={review.review.key}")
        page = client.get(link)
        assert page.status_code == 200 and "Rows that did not sync (5)" in page.text
        client.close()
    finally:
        review.stop()
        siro.stop()


def test_a_preview_shows_the_dry_run_then_drops_the_file_into_the_inbox(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    server = ReviewThread(Review(inbox, [], ROOT / "mappings")).start()
    client = httpx.Client(base_url=server.url, follow_redirects=True)
    try:
        csrf = review_sign_in(client, server)
        files = {"file": ("appointments.csv", EXAMPLE_CSV.read_bytes())}
        page = client.post("/preview", data={"csrf": csrf, "mapping": "engagements.yaml"}, files=files)
        assert page.status_code == 200
        assert "<th>valid</th><td>55</td>" in page.text and "<th>invalid</th><td>5</td>" in page.text
        assert page.text.count("<pre>") == 3 and "&#34;externalId&#34;: &#34;APT-24001&#34;" in page.text
        assert not list(inbox.iterdir())  # nothing dropped yet
        token = page.text.split('action="/preview/', 1)[1].split("/drop", 1)[0]
        dropped = client.post(f"/preview/{token}/drop", data={"csrf": csrf})
        assert (
            dropped.status_code == 200
            and (inbox / "appointments.csv").read_bytes() == EXAMPLE_CSV.read_bytes()
        )
    finally:
        client.close()
        server.stop()


def test_serve_listens_on_loopback_unless_told_and_then_warns(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    temp = tmp_path / "tmp"  # where the page keeps uploaded previews while it runs
    temp.mkdir()
    for host, warned in (("127.0.0.1", False), ("0.0.0.0", True)):
        argv = cli_argv("serve", "--inbox", tmp_path / "inbox", "--host", host, "--port", "0")
        env = {**cli_env(), "TMPDIR": str(temp)}
        proc = cli_popen(argv, stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(1 + warned)]
            assert [p.name[:16] for p in temp.iterdir()] == ["bulk_sync-upload"]
        finally:
            proc.terminate()  # SIGTERM, as systemd stops it
            code = proc.wait(10)
            rest = proc.stdout.read() if proc.stdout is not None else ""
            if proc.stdout is not None:
                proc.stdout.close()
        assert lines[-1].startswith("open http://127.0.0.1:") and "/?key=" in lines[-1]
        assert ("warning: listening on 0.0.0.0" in lines[0]) is warned
        assert code == 0 and "review page stopped" in rest
        assert list(temp.iterdir()) == []  # the uploads folder is removed, not left behind


def test_a_run_names_its_mapping_by_an_absolute_path_so_the_page_finds_it_from_anywhere(
    run_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "engagements.yaml").write_bytes(EXAMPLE_MAPPING.read_bytes())
    r = run_cli("validate", EXAMPLE_CSV, "--mapping", "m/engagements.yaml", "--report", tmp_path / "r.csv")
    assert r.code == 1
    summary = json.loads((tmp_path / "r-summary.json").read_text(encoding="utf-8"))
    assert summary["mapping"] == str((tmp_path / "m" / "engagements.yaml").resolve())
    (run,) = find_runs([tmp_path])
    assert run.mapping == summary["mapping"] and run.exit_code == 1 and run.to_fix == 5


def test_an_unreadable_error_file_is_said_on_the_page_not_a_crash(
    review: tuple[ReviewThread, httpx.Client],
) -> None:
    server, client = review
    review_sign_in(client, server)
    run = find_runs(server.review.folders)[0]
    run.error_files[0].write_bytes(b"\x00\x01 not a spreadsheet" * 100)
    page = client.get(f"/runs/{run.id}")
    assert page.status_code == 200 and "the run&#39;s error file cannot be read" in page.text
