"""Issue 20 in a real browser (headless Chromium from Debian's `chromium` and `chromium-driver`,
driven by Selenium): open a failed run, fix a bad date in the grid, see the error vanish, send, and
find the row synced in the sandbox; and a 100,000-row run with 20,000 bad rows opening on its first
page of 100 and turning pages (how fast: tests/benchmarks/bench_review.py).

Without Chromium these tests skip, unless BULK_SYNC_REQUIRE_BROWSER=1 (CI sets it, after
installing the packages): there they fail instead.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    EXAMPLE_CSV,
    EXAMPLE_MAPPING,
    FOCUS,
    ROOT,
    TOKEN,
    browser_sign_in,
    cli_argv,
    cli_env,
    cli_run,
    dropped_earlier,
    skip_without_a_browser,
    wait,
    watch_argv,
)

from bulk_sync.review import Review
from bulk_sync.review.server import ReviewThread
from bulk_sync.sandbox import SandboxServer

SCREENSHOT = ROOT / "docs" / "review.png"

skip_without_a_browser()

from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.slow


def test_fix_a_bad_date_in_the_grid_and_send_it(browser: Any, tmp_path: Path) -> None:
    siro = SandboxServer(TOKEN).start()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    review = None
    try:
        # a nightly drop with bad rows, through the real watcher: it lands in failed/
        shutil.copy(EXAMPLE_CSV, inbox / "appointments.csv")
        dropped_earlier(inbox / "appointments.csv")
        watch = watch_argv(inbox, "--once", "--base-url", siro.base_url, "--mapping", EXAMPLE_MAPPING)
        cli_run(watch, capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=120, check=False)
        assert list((inbox / "failed").glob("appointments-*-report.csv"))
        assert "APT-24016" not in siro.state.records  # its start date, 31/02/2026, does not exist

        review = ReviewThread(Review(inbox, [], ROOT / "mappings")).start()
        browser_sign_in(browser, review)
        browser.find_element(By.LINK_TEXT, "appointments.csv").click()
        row = wait(browser, lambda d: _row_with(d, "31/02/2026"))
        start = row.find_element(By.CSS_SELECTOR, 'td[data-col="Start"]')
        assert "badcell" in start.get_attribute("class")
        assert "bad-datetime" in row.find_element(By.CSS_SELECTOR, "td.msg").text
        cell = editor(browser, start)
        cell.clear()
        cell.send_keys("03/02/2026 10:00 AM\t")  # leaving the cell checks the row again
        wait(browser, lambda d: "fixed: valid" in _row_with(d, "03/02/2026 10:00 AM").text)
        row = _row_with(browser, "03/02/2026 10:00 AM")
        assert not row.find_elements(By.CSS_SELECTOR, "td.badcell")  # the highlight is gone
        browser.execute_script("document.querySelector('.gridwrap').scrollLeft = 0; window.scrollTo(0, 0)")
        browser.save_screenshot(str(tmp_path / "review.png"))
        if os.environ.get("BULK_SYNC_UPDATE_SCREENSHOT"):
            SCREENSHOT.parent.mkdir(exist_ok=True)
            shutil.copy(tmp_path / "review.png", SCREENSHOT)
        assert (tmp_path / "review.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        browser.find_element(By.ID, "send").click()
        sent = wait(
            browser,
            lambda d: "dropped" in d.find_element(By.ID, "sent").text and d.find_element(By.ID, "sent").text,
        )
        assert "dropped 1 row(s) into the inbox" in sent

        for p in inbox.glob("appointments-fixed-*.csv"):
            dropped_earlier(p)
        cli_run(watch, capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=120, check=False)
        assert siro.state.records["APT-24016"]["startTime"] == "2026-03-02T16:00:00Z"  # synced
        fixed = next((inbox / "done").glob("appointments-fixed-*-report.csv"))
        with fixed.open(encoding="utf-8-sig") as fh:
            assert [r["status"] for r in csv.DictReader(fh)] == ["synced"]
    finally:
        if review is not None:
            review.stop()
        siro.stop()


def editor(driver: Any, td: Any) -> Any:
    """The cell's input: a cell is text until it is focused (as Tab or a click focuses it)."""
    driver.execute_script(FOCUS, td)
    return td.find_element(By.TAG_NAME, "input")


VALUES = (
    "return [...arguments[0].querySelectorAll('td[data-col]')]"
    ".map((td) => td.querySelector('input') ? td.querySelector('input').value : td.textContent)"
)


def values(driver: Any, tr: Any) -> list[str]:
    """The row's cells as shown (a cell's input, or its text)."""
    return list(driver.execute_script(VALUES, tr))


def _row_with(driver: Any, text: str) -> Any:
    for tr in driver.find_elements(By.CSS_SELECTOR, "#grid tbody tr"):
        if any(text in v for v in values(driver, tr)):
            return tr
    return None


def test_a_run_with_20000_bad_rows_opens_on_its_first_page_and_turns_pages(
    browser: Any, tmp_path: Path
) -> None:
    # what the page shows; how fast it opens is tests/benchmarks/bench_review.py's figure
    data = tmp_path / "big.csv"
    header = EXAMPLE_CSV.read_text(encoding="utf-8").splitlines()[0]
    good = EXAMPLE_CSV.read_text(encoding="utf-8").splitlines()[1]
    cells = next(csv.reader([good]))
    with data.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header.split(","))
        for i in range(100_000):
            row = list(cells)
            row[0] = f"B-{i:06d}"
            if i % 5 == 0:
                row[7] = "31/02/2026 10:00 AM"  # 20,000 rows with a date that does not exist
            out.writerow(row)
    reports = tmp_path / "reports"
    reports.mkdir()
    argv = cli_argv(
        "validate", data, "--mapping", EXAMPLE_MAPPING, "--report", reports / "big.csv", "--quiet"
    )
    cli_run(argv, env=cli_env(None), cwd=tmp_path, timeout=600, check=False)
    review = ReviewThread(Review(None, [reports], ROOT / "mappings")).start()
    try:
        browser_sign_in(browser, review)
        link = browser.find_element(By.LINK_TEXT, "big.csv").get_attribute("href")
        browser.get(link)
        rows = browser.find_elements(By.CSS_SELECTOR, "#grid tbody tr")
        assert len(rows) == 100
        assert "Rows that did not sync (20000)" in browser.page_source
        assert browser.find_element(By.CSS_SELECTOR, ".pager").get_attribute("data-pages") == "200"
        for page in (2, 3):
            browser.find_element(By.CSS_SELECTOR, '.pager button[data-go="1"]').click()
            wait(browser, lambda d, page=page: d.find_element(By.ID, "page").text == str(page))
            assert len(browser.find_elements(By.CSS_SELECTOR, "#grid tbody tr")) == 100
        ids = [
            td.get_attribute("textContent")
            for td in browser.find_elements(By.CSS_SELECTOR, 'td[data-col="Appointment ID"]')
        ]
        assert ids[0] == "B-001000"  # page 3 starts at the 201st row to fix: every fifth row (5 x 200)
    finally:
        review.stop()
