"""Issue 36, parts 3 and 4 over real HTTP on 127.0.0.1 / ::1: nothing outside the inbox is read or
written (no symbolic link followed, for reading, listing or writing), and the page reachable safely
(a session cookie that is not the key, SameSite=Lax, Secure under TLS; no open redirect; a
malformed key is a 403; the headers; --public-url and --allow-host; a --key-file that survives a
restart; IPv6 printed in brackets; TLS)."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import (
    EXAMPLE_CSV,
    EXAMPLE_MAPPING,
    ROOT,
    cli_argv,
    cli_env,
    cli_popen,
    cli_run,
    free_port,
    review_session,
)

from bulk_sync.review import Review
from bulk_sync.review.runs import find_runs, grid_of
from bulk_sync.review.server import ReviewThread

SECRET = "Jane Roe,123-45-6789"  # what an outside file holds: it must never reach the page


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `validate` of the example by the real CLI (5 rows to fix)."""
    folder = tmp_path_factory.mktemp("made")
    argv = cli_argv("validate", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--report", folder / "r.csv")
    cli_run(argv, env=cli_env(None), cwd=folder, timeout=120, check=False, capture_output=True)
    return folder


def as_watch_run(made: Path, failed: Path, base: str, original: str) -> None:
    """The CLI's outputs named as the watcher files a run in failed/ (with its route record)."""
    failed.mkdir(parents=True, exist_ok=True)
    for src, suffix in (
        ("r.csv", "-report.csv"),
        ("r-errors.csv", "-report-errors.csv"),
        ("r-summary.json", "-summary.json"),
    ):
        shutil.copy(made / src, failed / f"{base}{suffix}")
    route = {"original": original, "route": None, "run": base, "filed": "failed"}
    (failed / f"{base}-route.json").write_text(json.dumps(route), encoding="utf-8")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "people.csv").write_text(f"name,ssn\n{SECRET}\n", encoding="utf-8")
    return folder


@pytest.fixture
def inbox_run(made: Path, tmp_path: Path) -> Iterator[tuple[ReviewThread, httpx.Client, str]]:
    inbox = tmp_path / "inbox"
    as_watch_run(made, inbox / "failed", "appointments-20260101-000000", "appointments.csv")
    server = ReviewThread(Review(inbox, [], ROOT / "mappings")).start()
    client, csrf = review_session(server)
    yield server, client, csrf
    client.close()
    server.stop()


# -- 3. nothing outside the inbox ------------------------------------------------------------


def test_a_linked_done_folder_or_run_file_is_not_followed(made: Path, tmp_path: Path, outside: Path) -> None:
    inbox = tmp_path / "inbox"
    as_watch_run(made, outside / "elsewhere", "leak-20260101-000000", "leak.csv")
    (inbox / "done").parent.mkdir(parents=True, exist_ok=True)
    (inbox / "done").symlink_to(outside / "elsewhere")  # a whole folder linked out
    failed = inbox / "failed"
    as_watch_run(made, failed, "appointments-20260101-000000", "appointments.csv")
    (failed / "appointments-20260101-000000-report-errors.csv").unlink()
    (failed / "appointments-20260101-000000-report-errors.csv").symlink_to(outside / "people.csv")
    (failed / "other-20260101-000000-summary.json").symlink_to(
        outside / "elsewhere" / "leak-20260101-000000-summary.json"
    )
    server = ReviewThread(Review(inbox, [], ROOT / "mappings")).start()
    client, _ = review_session(server)
    try:
        runs = client.get("/").text
        assert (
            "leak.csv" not in runs and "other" not in runs
        )  # neither the linked folder nor a linked summary
        (run,) = find_runs(server.review.folders)
        assert run.error_files == []  # the linked error file is not listed
        page = client.get(f"/runs/{run.id}").text
        assert "123-45-6789" not in page and "Jane Roe" not in page
        assert "error file is gone" in page  # said: the run had rows to fix, their file is not usable
    finally:
        client.close()
        server.stop()


def test_an_edit_never_writes_through_a_link(
    inbox_run: tuple[ReviewThread, httpx.Client, str], outside: Path
) -> None:
    server, client, csrf = inbox_run
    run = find_runs(server.review.folders)[0]
    grid = grid_of(run)
    target = outside / "people.csv"
    before = target.read_bytes()
    run.fixes.symlink_to(target)  # planted where the page keeps its edits
    resp = client.post(
        f"/runs/{run.id}/check", json={"index": 0, "cells": grid.rows[0]}, headers={"X-CSRF-Token": csrf}
    )
    assert (
        resp.status_code == 403
        and "not kept" in resp.json()["error"]
        and "symbolic link" in resp.json()["error"]
    )
    assert target.read_bytes() == before
    run.fixes.unlink()
    for side in ("-wal", "-shm", "-journal"):  # SQLite's own files beside it, planted as links too
        run.fixes.with_name(run.fixes.name + side).symlink_to(target)
    resp = client.post(
        f"/runs/{run.id}/check", json={"index": 0, "cells": grid.rows[0]}, headers={"X-CSRF-Token": csrf}
    )
    assert resp.status_code == 500 and "not kept" in resp.json()["error"]  # SQLite refuses the links
    assert target.read_bytes() == before


def test_a_send_never_writes_through_a_linked_folder_or_name(
    made: Path, tmp_path: Path, outside: Path
) -> None:
    inbox = tmp_path / "inbox"
    as_watch_run(made, inbox / "failed", "appointments-20260101-000000", "crm/appointments.csv")
    (inbox / "crm").symlink_to(outside)  # the route's sub-folder, linked out
    server = ReviewThread(Review(inbox, [], ROOT / "mappings")).start()
    client, csrf = review_session(server)
    try:
        run = find_runs(server.review.folders)[0]
        grid = grid_of(run)
        index = next(i for i, p in enumerate(grid.problems) if p["error"] == "bad-datetime")
        cells = list(grid.rows[index])
        cells[grid.headers.index("Start")] = "03/02/2026 10:00 AM"
        h = {"X-CSRF-Token": csrf}
        assert (
            client.post(f"/runs/{run.id}/check", json={"index": index, "cells": cells}, headers=h).json()[
                "status"
            ]
            == "valid"
        )
        resp = client.post(f"/runs/{run.id}/send", json={"send_id": "a"}, headers=h)
        assert (
            resp.status_code == 500
            and "nothing was sent" in resp.json()["error"]
            and "symbolic link" in resp.json()["error"]
        )
        assert sorted(p.name for p in outside.iterdir()) == ["people.csv"]  # nothing written outside
        (inbox / "crm").unlink()
        (inbox / "crm").mkdir()
        resp = client.post(
            f"/runs/{run.id}/send", json={"send_id": "b"}, headers=h
        )  # the row was not marked sent
        assert resp.status_code == 200 and resp.json()["dropped"].startswith("crm/appointments-fixed-")
    finally:
        client.close()
        server.stop()


def test_a_preview_drop_never_writes_through_a_link(tmp_path: Path, outside: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "appointments.csv").symlink_to(outside / "people.csv")  # planted under the upload's name
    server = ReviewThread(Review(inbox, [], ROOT / "mappings")).start()
    client, csrf = review_session(server)
    try:
        files = {"file": ("appointments.csv", EXAMPLE_CSV.read_bytes())}
        page = client.post("/preview", data={"csrf": csrf, "mapping": "engagements.yaml"}, files=files)
        assert 'action="/preview/' in page.text, page.text[-3000:]  # the preview's result, to drop
        token = page.text.split('action="/preview/', 1)[1].split("/drop", 1)[0]
        assert client.post(f"/preview/{token}/drop", data={"csrf": csrf}).status_code == 200
        assert (outside / "people.csv").read_text(encoding="utf-8") == f"name,ssn\n{SECRET}\n"
        assert (inbox / f"appointments-{token}.csv").read_bytes() == EXAMPLE_CSV.read_bytes()
    finally:
        client.close()
        server.stop()


# -- 4. reachable, safely --------------------------------------------------------------------


def test_the_cookie_is_a_signed_session_not_the_key(
    inbox_run: tuple[ReviewThread, httpx.Client, str],
) -> None:
    server, _, _ = inbox_run
    first = httpx.get(f"{server.url}/?key={server.review.key}")
    cookie = first.headers["set-cookie"]
    value = cookie.split("=", 1)[1].split(";", 1)[0]
    assert server.review.key not in cookie and "SameSite=Lax" in cookie and "HttpOnly" in cookie
    assert httpx.get(f"{server.url}/", cookies={"bulk_sync_review": value}).status_code == 200
    sid, mac = value.split(".")
    for forged in (f"{sid}x.{mac}", f"{sid}.{'0' * len(mac)}", server.review.key, sid):
        assert httpx.get(f"{server.url}/", cookies={"bulk_sync_review": forged}).status_code == 403, forged
    raw = [(b"cookie", "bulk_sync_review=\u00e9t\u00e9.\u00e9".encode())]  # non-ASCII bytes: a 403 too
    assert httpx.get(f"{server.url}/", headers=raw).status_code == 403


@pytest.mark.parametrize(
    "key",
    ["%C3%A9t%C3%A9", "%E2%82%AC" * 30, "%00", "%FF%FE", "a" * 5000, "", "%F0%9F%94%91"],
)
def test_a_malformed_key_is_a_403_never_a_500(
    inbox_run: tuple[ReviewThread, httpx.Client, str], key: str
) -> None:
    server, _, _ = inbox_run
    resp = httpx.get(f"{server.url}/?key={key}")
    assert resp.status_code == 403 and "Traceback" not in resp.text


@pytest.mark.parametrize(
    "path", ["//evil.example/", "/\\evil.example/", "//evil.example/%2F..", "/%2F%2Fevil.example"]
)
def test_the_key_redirect_stays_on_this_server(
    inbox_run: tuple[ReviewThread, httpx.Client, str], path: str
) -> None:
    server, _, _ = inbox_run
    with httpx.Client() as raw:
        resp = raw.get(f"{server.url}{path}?key={server.review.key}")
    where = resp.headers.get("location", "")
    assert resp.status_code == 302 and where.startswith("/") and not where.startswith(("//", "/\\")), where
    assert httpx.URL(server.url).join(where).host == "127.0.0.1"


def test_every_answer_carries_the_headers(inbox_run: tuple[ReviewThread, httpx.Client, str]) -> None:
    server, client, csrf = inbox_run
    run = find_runs(server.review.folders)[0]
    answers = [
        client.get("/"),
        client.get(f"/runs/{run.id}"),
        client.get(f"/runs/{run.id}/rows?page=0"),
        client.post(f"/runs/{run.id}/check", json={"index": 0, "cells": []}, headers={"X-CSRF-Token": csrf}),
        httpx.get(f"{server.url}/"),  # refused
    ]
    for resp in answers:
        csp = resp.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp and "default-src 'self'" in csp
        assert resp.headers["cache-control"] == "no-store" and resp.headers["x-frame-options"] == "DENY"
    assert "no-store" not in client.get("/static/review.js").headers.get("cache-control", "")


def test_allowed_host_names_are_accepted_others_refused(made: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    as_watch_run(made, inbox / "failed", "appointments-20260101-000000", "appointments.csv")
    server = ReviewThread(Review(inbox, [], ROOT / "mappings"), allow_hosts=["review.example.test"]).start()
    try:
        url = f"{server.url}/?key={server.review.key}"
        for host, code in (
            (f"review.example.test:{server.port}", 302),
            ("review.example.test", 302),
            (f"REVIEW.example.test:{server.port}", 302),
            (f"evil.example:{server.port}", 403),
            (f"review.example.test.evil.example:{server.port}", 403),
        ):
            assert httpx.get(url, headers={"Host": host}).status_code == code, host
    finally:
        server.stop()


def start_serve(tmp_path: Path, *extra: str | Path) -> tuple[subprocess.Popen[str], list[str]]:
    argv = cli_argv("serve", "--inbox", tmp_path / "inbox", "--port", "0", *extra)
    proc = cli_popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(), cwd=tmp_path
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline()]
    while lines[-1] and not lines[-1].startswith("open "):
        lines.append(proc.stdout.readline())
    return proc, [line.strip() for line in lines]


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.communicate(timeout=10)


@pytest.mark.slow
def test_a_key_file_is_created_once_mode_600_and_links_survive_a_restart(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    keyfile = tmp_path / "review.key"
    proc, lines = start_serve(tmp_path, "--key-file", keyfile)
    try:
        assert (keyfile.stat().st_mode & 0o777) == 0o600
        key = keyfile.read_text(encoding="ascii").strip()
        url = lines[-1].removeprefix("open ")
        assert url.endswith(f"/?key={key}")
        cookie = httpx.get(url).headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    finally:
        stop(proc)
    proc, lines = start_serve(tmp_path, "--key-file", keyfile)  # restarted: same key, same session
    try:
        again = lines[-1].removeprefix("open ")
        assert again.endswith(f"/?key={key}")
        assert (
            httpx.get(again.split("/?", 1)[0] + "/", cookies={"bulk_sync_review": cookie}).status_code == 200
        )
    finally:
        stop(proc)
    keyfile.unlink()
    keyfile.symlink_to(tmp_path / "inbox")  # not a plain file: refused in words
    proc = cli_run(
        cli_argv("serve", "--inbox", tmp_path / "inbox", "--key-file", keyfile),
        capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "not a plain file" in proc.stderr and "Traceback" not in proc.stderr


def test_ipv6_is_printed_in_brackets_and_answers(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    proc, lines = start_serve(tmp_path, "--host", "::1")
    try:
        url = lines[-1].removeprefix("open ")
        assert url.startswith("http://[::1]:")
        assert httpx.get(url, follow_redirects=True).status_code == 200
    finally:
        stop(proc)


def test_public_url_is_printed_and_its_host_accepted(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    port = free_port()
    proc, lines = start_serve(
        tmp_path, "--public-url", "https://review.example.test:8443", "--port", str(port)
    )
    try:
        url = lines[-1].removeprefix("open ")
        assert url.startswith("https://review.example.test:8443/?key=")  # what people open, e.g. via a proxy
        local = f"http://127.0.0.1:{port}/?key={url.split('key=', 1)[1]}"
        first = httpx.get(local, headers={"Host": "review.example.test:8443"})
        assert first.status_code == 302 and "Secure" in first.headers["set-cookie"]  # https: Secure
        assert httpx.get(local, headers={"Host": "review.example.test"}).status_code == 403  # not its port
        assert httpx.get(local, headers={"Host": f"evil.example:{port}"}).status_code == 403
    finally:
        stop(proc)


def test_tls_serves_https_with_a_secure_cookie(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    proc, lines = start_serve(tmp_path, "--tls-cert", cert, "--tls-key", key)
    try:
        url = lines[-1].removeprefix("open ")
        assert url.startswith("https://127.0.0.1:")
        trust = ssl.create_default_context(cafile=str(cert))
        first = httpx.get(url, verify=trust)
        assert first.status_code == 302 and "Secure" in first.headers["set-cookie"]
        with pytest.raises(httpx.HTTPError):
            httpx.get(url.replace("https://", "http://"), timeout=5)  # no plain HTTP on that port
    finally:
        stop(proc)


def test_an_access_log_says_each_request_never_the_key(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    log = tmp_path / "access.log"
    proc, lines = start_serve(tmp_path, "--access-log", log)
    try:
        url = lines[-1].removeprefix("open ")
        key = url.split("key=", 1)[1]
        with httpx.Client(follow_redirects=True) as client:
            client.get(url)
            client.get(url.split("/?", 1)[0] + "/preview")
        httpx.get(url.split("/?", 1)[0] + "/?key=wrong")
    finally:
        stop(proc)
    text = log.read_text(encoding="utf-8")
    assert key not in text and "wrong" not in text
    said = [line.split()[2:] for line in text.splitlines()]
    assert said == [["GET", "/", "302"], ["GET", "/", "200"], ["GET", "/preview", "200"], ["GET", "/", "403"]]
    assert (log.stat().st_mode & 0o777) == 0o600
