"""Issue 36 in a real browser (headless Debian Chromium through Selenium, as tests/test_review_browser.py):
typing then clicking Send at once sends every row; two tabs on one row, the stale one told; five
fast edits all kept; a failed request said on the page; a fix-link opened from a page on another
origin; a desk's view through --public-url (a name the browser resolves to 127.0.0.1); filter and
apply-to-all on 1,000 rows with one bad value, undone, sent; failed rows sent again.

Without Chromium these tests skip, unless BULK_SYNC_REQUIRE_BROWSER=1: there they fail instead.
"""

from __future__ import annotations

import csv
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    BAD_DATE,
    EXAMPLE_CSV,
    EXAMPLE_MAPPING,
    FOCUS,
    GOOD_DATE,
    ROOT,
    as_failed,
    browser_sign_in,
    chromium,
    cli_argv,
    cli_env,
    cli_popen,
    cli_run,
    free_port,
    skip_without_a_browser,
    thousand,
    wait,
)

from bulk_sync.review import Review
from bulk_sync.review.runs import find_runs
from bulk_sync.review.server import ReviewThread

skip_without_a_browser()

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run by the real CLI whose 8 rows all have a date that does not exist."""
    folder = tmp_path_factory.mktemp("made")
    with EXAMPLE_CSV.open(newline="", encoding="utf-8") as fh:
        header, good = list(csv.reader(fh))[:2]
    with (folder / "bad.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for i in range(8):
            out.writerow([f"D-{i:03d}", *good[1:7], "31/02/2026 10:00 AM", *good[8:]])
    reports = folder / "reports"
    reports.mkdir()
    argv = cli_argv(
        "validate", folder / "bad.csv", "--mapping", EXAMPLE_MAPPING, "--report", reports / "bad.csv"
    )
    cli_run(argv, env=cli_env(None), cwd=folder, timeout=120, check=False, capture_output=True)
    return reports


@pytest.fixture
def served(made: Path, tmp_path: Path) -> Iterator[ReviewThread]:
    reports = tmp_path / "reports"
    shutil.copytree(made, reports)
    (tmp_path / "inbox").mkdir()
    server = ReviewThread(Review(tmp_path / "inbox", [reports], ROOT / "mappings")).start()
    yield server
    server.stop()


def open_run(driver: Any, server: ReviewThread) -> str:
    run = find_runs(server.review.folders)[0]
    browser_sign_in(driver, server)
    driver.get(f"{server.url}/runs/{run.id}")
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#grid tbody tr"))
    return run.id


def cell_of(driver: Any, n: int, column: str) -> Any:
    """Row n's cell in ``column``, as its input: a cell is text until it is focused (as Tab or a
    click focuses it)."""
    td = driver.find_elements(By.CSS_SELECTOR, "#grid tbody tr")[n].find_element(
        By.CSS_SELECTOR, f'td[data-col="{column}"]'
    )
    driver.execute_script(FOCUS, td)
    return td.find_element(By.TAG_NAME, "input")


def start_cell(driver: Any, n: int) -> Any:
    return cell_of(driver, n, "Start")


def msg(driver: Any, n: int) -> str:
    return str(driver.find_elements(By.CSS_SELECTOR, "#grid tbody tr td.msg")[n].text)


def test_typing_then_clicking_send_at_once_sends_every_row(browser: Any, served: ReviewThread) -> None:
    open_run(browser, served)
    for n in range(5):
        cell = start_cell(browser, n)
        cell.clear()
        cell.send_keys(GOOD_DATE)  # no Tab: the next click leaves the cell
    browser.find_element(By.ID, "send").click()  # at once, the last cell still being edited
    sent = wait(browser, lambda d: d.find_element(By.ID, "sent").text.startswith("dropped") and d)
    assert "dropped 5 row(s)" in sent.find_element(By.ID, "sent").text
    inbox = served.review.inbox
    assert inbox is not None
    (dropped,) = inbox.glob("*-fixed-*.csv")
    with dropped.open(encoding="utf-8") as fh:
        assert [r["Appointment ID"] for r in csv.DictReader(fh)] == [f"D-{i:03d}" for i in range(5)]
    assert all(msg(browser, n) == f"sent in {dropped.name}" for n in range(5))
    assert (
        browser.find_element(By.ID, "fixed").text == "0"
        and browser.find_element(By.ID, "sentcount").text == "5"
    )


def test_two_tabs_on_one_row_the_stale_one_is_told(browser: Any, served: ReviewThread) -> None:
    # two windows (two browsers: a background tab of headless Chromium gets no focus, so no change event)
    other = chromium()
    try:
        open_run(browser, served)
        open_run(other, served)  # opened before the edit below: it shows the old row
        cell = start_cell(browser, 0)
        cell.clear()
        cell.send_keys(GOOD_DATE + "\t")
        wait(browser, lambda d: msg(d, 0).startswith("fixed: valid"))
        cell = start_cell(other, 0)
        cell.clear()
        cell.send_keys("01/01/2026 09:00 AM\t")
        told = wait(other, lambda d: "another window" in msg(d, 0) and msg(d, 0))
        assert "this row was changed in another window: reload it" in told
        notice = other.find_element(By.ID, "notice")
        assert notice.is_displayed() and "another window" in notice.text
        other.find_element(By.ID, "send").click()  # and its Send sends nothing over the other's fix
        wait(other, lambda d: "Nothing was sent" in d.find_element(By.ID, "notice").text)
        other.refresh()
        wait(other, lambda d: d.find_elements(By.CSS_SELECTOR, "#grid tbody tr"))
        assert start_cell(other, 0).get_attribute("value") == GOOD_DATE  # the first window's fix, not undone
    finally:
        other.quit()


def test_five_fast_edits_are_all_kept(browser: Any, served: ReviewThread) -> None:
    open_run(browser, served)
    for n in range(5):
        cell = start_cell(browser, n)
        cell.clear()
        cell.send_keys(GOOD_DATE + "\t")  # each leaves its cell: five checks on their way at once
    notes = cell_of(browser, 0, "Notes")
    notes.send_keys(" more\t")  # a second edit of row 1 while its first check may be on its way
    wait(browser, lambda d: all(msg(d, n).startswith("fixed: valid") for n in range(5)))
    held = "return arguments[0].defaultValue === arguments[0].value"  # set once the server answered
    wait(browser, lambda d: d.execute_script(held, notes))  # the note's check too, not only the first
    last = notes.get_attribute("value")
    assert last.endswith(" more")
    browser.refresh()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#grid tbody tr"))
    assert [start_cell(browser, n).get_attribute("value") for n in range(5)] == [GOOD_DATE] * 5
    assert cell_of(browser, 0, "Notes").get_attribute("value") == last
    assert browser.find_element(By.ID, "fixed").text == "5"
    cell = start_cell(browser, 5)
    cell.clear()
    cell.send_keys(GOOD_DATE + "\t")
    wait(browser, lambda d: msg(d, 5).startswith("fixed: valid"))
    open_payload = "document.querySelectorAll('#grid tbody tr')[5].querySelector('button.payload').click()"
    browser.execute_script(open_payload)  # (by script: the cell's text is rewritten as the check answers)
    side = browser.find_element(By.ID, "panel")  # the payload in a side panel, not spilling over the grid
    assert side.is_displayed() and '"externalId": "D-005"' in side.find_element(By.TAG_NAME, "pre").text
    assert side.location["x"] > 900


def test_a_failed_request_is_said_on_the_page(browser: Any, served: ReviewThread) -> None:
    open_run(browser, served)
    browser.delete_all_cookies()  # the session is gone (a restart with another key, say): a 403 in text
    cell = start_cell(browser, 0)
    cell.clear()
    cell.send_keys(GOOD_DATE + "\t")
    told = wait(browser, lambda d: "not kept" in msg(d, 0) and msg(d, 0))
    assert "Refused" in told and "open the address" in told
    assert "fixed" not in (
        browser.find_elements(By.CSS_SELECTOR, "#grid tbody tr")[0].get_attribute("class") or ""
    )
    served.stop()  # the server is gone: said too
    cell.send_keys("X\t")
    notice = wait(browser, lambda d: "did not answer" in d.find_element(By.ID, "notice").text and d)
    assert "bulk-sync serve" in notice.find_element(By.ID, "notice").text


def test_a_fix_link_opened_from_a_page_on_another_site_opens_the_run(
    served: ReviewThread, tmp_path: Path
) -> None:
    # webmail or a chat app: another site (mail.example.test, resolved to 127.0.0.1 by the browser only)
    run = find_runs(served.review.folders)[0]
    (tmp_path / "mail").mkdir()
    link = f"{served.url}/runs/{run.id}"
    (tmp_path / "mail" / "index.html").write_text(
        f'<a id="fix" href="{link}">Fix the rows</a>', encoding="utf-8"
    )
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "mail"))
    mail = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=mail.serve_forever, daemon=True).start()
    driver = chromium("--host-resolver-rules=MAP mail.example.test 127.0.0.1")
    try:
        browser_sign_in(driver, served)  # signed in once, earlier
        driver.get(f"http://mail.example.test:{mail.server_address[1]}/index.html")
        driver.find_element(By.ID, "fix").click()
        wait(driver, lambda d: d.current_url == link)
        assert not driver.find_element(By.TAG_NAME, "body").text.startswith("403")  # (a token may hold "403")
        assert driver.find_elements(By.CSS_SELECTOR, "#grid tbody tr")  # the run's grid, not refused
    finally:
        driver.quit()
        mail.shutdown()
        mail.server_close()


def test_a_desk_opens_the_page_through_public_url(made: Path, tmp_path: Path) -> None:
    # a name people type on their desks, resolved to 127.0.0.1 by this test's browser only (loopback)
    reports = tmp_path / "reports"
    shutil.copytree(made, reports)
    port = free_port()
    public = f"http://review.example.test:{port}"
    argv = cli_argv(
        "serve", "--reports", reports, "--mappings", ROOT / "mappings", "--port", port, "--public-url", public
    )
    proc = cli_popen(argv, stdout=subprocess.PIPE, text=True, env=cli_env(), cwd=tmp_path)
    driver = chromium("--host-resolver-rules=MAP review.example.test 127.0.0.1")
    try:
        assert proc.stdout is not None
        printed = proc.stdout.readline().strip().removeprefix("open ")
        assert printed.startswith(f"{public}/?key=")
        driver.get(printed)
        driver.find_element(By.LINK_TEXT, "bad.csv").click()
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#grid tbody tr"))
        assert driver.current_url.startswith(f"{public}/runs/")
        cell = start_cell(driver, 0)
        cell.clear()
        cell.send_keys(GOOD_DATE + "\t")
        wait(driver, lambda d: msg(d, 0).startswith("fixed: valid"))  # its checks (POSTs) pass the guard too
    finally:
        driver.quit()
        proc.terminate()
        proc.communicate(timeout=10)


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return thousand(tmp_path_factory.mktemp("many"))


def serve_copy(reports: Path, tmp_path: Path) -> ReviewThread:
    shutil.copytree(reports, tmp_path / "reports")
    (tmp_path / "inbox").mkdir()
    return ReviewThread(Review(tmp_path / "inbox", [tmp_path / "reports"], ROOT / "mappings")).start()


def bulk_said(driver: Any, start: str) -> str:
    return str(
        wait(
            driver,
            lambda d: (
                d.find_element(By.ID, "bulkdone").text.startswith(start)
                and d.find_element(By.ID, "bulkdone").text
            ),
        )
    )


def test_filter_then_apply_a_fix_to_1000_rows_undo_and_send(browser: Any, many: Path, tmp_path: Path) -> None:
    server = serve_copy(many, tmp_path)
    try:
        open_run(browser, server)
        Select(browser.find_element(By.NAME, "error")).select_by_visible_text("bad-datetime")
        Select(browser.find_element(By.CSS_SELECTOR, "form.filter select[name=column]")).select_by_value(
            "Start"
        )
        browser.find_element(By.CSS_SELECTOR, "form.filter button").click()
        wait(browser, lambda d: "error=bad-datetime" in d.current_url and "column=Start" in d.current_url)
        assert "1000 row(s)" in browser.find_element(By.CSS_SELECTOR, "form.filter").text
        head = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#grid thead th")]
        assert head[3] == "Start"  # the bad column first, beside the problem
        cell = start_cell(browser, 0)
        cell.clear()
        cell.send_keys(GOOD_DATE + "\t")
        wait(browser, lambda d: msg(d, 0).startswith("fixed: valid"))
        form = browser.find_element(By.ID, "replace")  # the fix offered for every row with the same value
        assert form.find_element(By.NAME, "old").get_attribute("value") == BAD_DATE
        assert form.find_element(By.NAME, "new").get_attribute("value") == GOOD_DATE
        form.find_element(By.CSS_SELECTOR, "button:not([type=button])").click()
        assert "999 row(s) changed (999 now valid" in bulk_said(browser, "999")
        wait(browser, lambda d: d.find_element(By.ID, "fixed").text == "1000")
        assert all(msg(browser, n).startswith("fixed: valid") for n in range(5))
        browser.find_element(By.ID, "undo").click()
        assert "999 row(s) put back" in bulk_said(browser, "999 row(s) put back")
        wait(browser, lambda d: d.find_element(By.ID, "fixed").text == "1")
        form.find_element(By.CSS_SELECTOR, "button:not([type=button])").click()
        bulk_said(browser, "999 row(s) changed")
        browser.find_element(By.ID, "send").click()
        wait(browser, lambda d: "dropped 1000 row(s)" in d.find_element(By.ID, "sent").text)
    finally:
        server.stop()


def test_failed_rows_are_sent_again_from_the_page(browser: Any, many: Path, tmp_path: Path) -> None:
    server = serve_copy(many, tmp_path)
    try:
        as_failed(tmp_path / "reports")
        open_run(browser, server)
        browser.find_element(By.ID, "resend").click()
        assert "1000 row(s) changed (1000 now valid" in bulk_said(browser, "1000")
        browser.find_element(By.ID, "send").click()
        wait(browser, lambda d: "dropped 1000 row(s)" in d.find_element(By.ID, "sent").text)
        inbox = server.review.inbox
        assert inbox is not None
        with next(inbox.glob("*-fixed-*.csv")).open(encoding="utf-8") as fh:
            assert sum(1 for _ in csv.DictReader(fh)) == 1000
    finally:
        server.stop()
