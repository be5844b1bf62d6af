"""Issue 36, part 5 over real HTTP on 127.0.0.1: a preview is bounded and cancellable. It runs in a
child process with a time limit; a workbook that unpacks past the cap or ratio is refused before it
is read; SIGTERM stops `serve` within 2 s while a preview runs, the child with it; uploads go when
their preview ends."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import httpx
import openpyxl
import pytest
from helpers import EXAMPLE_CSV, ROOT, cli_argv, cli_env, cli_popen, csrf_of, review_session

from bulk_sync.review import Review
from bulk_sync.review.preview import Limits
from bulk_sync.review.server import ReviewThread


def big_csv(rows: int) -> bytes:
    with EXAMPLE_CSV.open(newline="", encoding="utf-8") as fh:
        header, good = list(csv.reader(fh))[:2]
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    for i in range(rows):
        w.writerow([f"P-{i:07d}", *good[1:]])
    return out.getvalue().encode("utf-8")


def big_xlsx(path: Path, rows: int) -> Path:
    with EXAMPLE_CSV.open(newline="", encoding="utf-8") as fh:
        header, good = list(csv.reader(fh))[:2]
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Engagements")
    sheet.append(header)
    for i in range(rows):
        sheet.append([f"P-{i:07d}", *good[1:]])
    book.save(path)
    return path


def previews(parent: int | None = None) -> list[int]:
    """Preview children alive on this machine (by their command line); with ``parent``, only its
    children (not the previews of tests running beside this one, in this run or another)."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if b"bulk_sync.review.preview" in cmd and pid.isdigit() and parent in (None, ppid):
            found.append(int(pid))
    return found


def post_preview(url: str, client: httpx.Client, csrf: str, name: str, body: bytes) -> httpx.Response:
    files = {"file": (name, body)}
    return client.post(f"{url}/preview", data={"csrf": csrf, "mapping": "engagements.yaml"}, files=files)


def test_a_workbook_that_unpacks_too_far_is_refused_before_it_is_read(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", b"<c>" + b"0" * 60_000_000 + b"</c>")  # ~1,000 times its size
    (tmp_path / "inbox").mkdir()
    server = ReviewThread(Review(tmp_path / "inbox", [], ROOT / "mappings")).start()
    client, csrf = review_session(server, timeout=120)
    try:
        started = time.monotonic()
        page = post_preview(server.url, client, csrf, "bomb.xlsx", bomb.read_bytes())
        assert time.monotonic() - started < 2 and page.status_code == 200
        assert "this workbook unpacks to 60 MB" in page.text and "Save it as CSV" in page.text
        assert list(server.review.uploads.iterdir()) == []  # nothing to drop: the upload is gone
    finally:
        client.close()
        server.stop()


@pytest.mark.slow
def test_a_workbook_under_the_ratio_is_stopped_at_its_time_limit(tmp_path: Path) -> None:
    book = big_xlsx(tmp_path / "big.xlsx", 4000)
    (tmp_path / "inbox").mkdir()
    server = ReviewThread(
        Review(tmp_path / "inbox", [], ROOT / "mappings", limits=Limits(seconds=0.5))
    ).start()
    client, csrf = review_session(server, timeout=120)
    try:
        started = time.monotonic()
        page = post_preview(server.url, client, csrf, "big.xlsx", book.read_bytes())
        took = time.monotonic() - started
        assert "the preview took longer than 0.5 s and was stopped" in page.text
        assert took < 2.5, took
        assert previews(os.getpid()) == [] and list(server.review.uploads.iterdir()) == []
    finally:
        client.close()
        server.stop()


def test_a_small_preview_still_runs_in_its_child_and_old_uploads_go(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    server = ReviewThread(Review(tmp_path / "inbox", [], ROOT / "mappings")).start()
    client, csrf = review_session(server, timeout=120)
    try:
        old = server.review.uploads / "0123456789abcdef"
        old.mkdir()
        (old / "left.csv").write_bytes(b"x")
        os.utime(
            old, (time.time() - 2 * 3600, time.time() - 2 * 3600)
        )  # previewed two hours ago, never dropped
        page = post_preview(server.url, client, csrf, "a.csv", EXAMPLE_CSV.read_bytes())
        assert "<th>valid</th><td>55</td>" in page.text and previews(os.getpid()) == []
        assert (
            not old.exists() and len(list(server.review.uploads.iterdir())) == 1
        )  # this one waits to be dropped
    finally:
        client.close()
        server.stop()


@pytest.mark.slow
def test_sigterm_stops_serve_within_2_s_while_a_preview_runs(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    temp = tmp_path / "tmp"
    temp.mkdir()
    argv = cli_argv("serve", "--inbox", tmp_path / "inbox", "--mappings", ROOT / "mappings", "--port", "0",
                    "--preview-seconds", "300")  # fmt: skip
    env = {**cli_env(), "TMPDIR": str(temp)}
    proc = cli_popen(argv, stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip().removeprefix("open ")
    base = url.split("/?", 1)[0]
    client = httpx.Client(follow_redirects=True, timeout=120)
    csrf = csrf_of(client.get(url).text)
    body = big_csv(60_000)

    def upload() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server goes away: expected
            post_preview(base, client, csrf, "big.csv", body)

    sender = threading.Thread(target=upload, daemon=True)
    sender.start()
    deadline = time.monotonic() + 60
    while not previews(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    children = previews(proc.pid)
    assert children, "the preview did not start"
    time.sleep(0.3)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(10)
    took = time.monotonic() - started
    rest = proc.stdout.read()
    proc.stdout.close()
    client.close()
    assert took < 2.0, took
    assert code == 0 and "review page stopped" in rest
    time.sleep(0.2)
    assert not set(children) & set(previews())  # the child ended with it
    assert list(temp.iterdir()) == []  # the uploads folder removed
