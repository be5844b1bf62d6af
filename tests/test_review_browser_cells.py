"""The review grid's cells in a real browser (headless Debian Chromium through Selenium, as
tests/test_review_browser.py): a cell is text until it is focused, then an input where the text
was (a page of 100 rows opens twice as fast: tests/benchmarks/bench_review.py). A click puts the
caret where it fell, Tab and Shift+Tab go from cell to cell, a cell keeps its exact value (spaces,
markup), a page turned to is edited as the first one, a row sent is no longer editable. A run over
two files: the second one's rows edited and sent from its own grid; likewise a workbook's second
sheet, with other columns.

Without Chromium these tests skip, unless BULK_SYNC_REQUIRE_BROWSER=1: there they fail instead.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    EXAMPLE_CSV,
    EXAMPLE_MAPPING,
    ROOT,
    cli_argv,
    cli_env,
    cli_run,
    skip_without_a_browser,
    two_files,
    two_sheets,
    wait,
)

from bulk_sync.review import Review
from bulk_sync.review.runs import find_runs
from bulk_sync.review.server import ReviewThread
from bulk_sync.review.store import Store

GOOD = "03/02/2026 08:00 AM"  # the rows' End is 09:30 AM that day
NOTE = "  two  spaces, <b>markup</b> & 'quotes' "  # kept exactly, as text

skip_without_a_browser()

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run by the real CLI: 150 rows with a date that does not exist (two pages), the first with
    a note of spaces and markup."""
    folder = tmp_path_factory.mktemp("cells")
    with EXAMPLE_CSV.open(newline="", encoding="utf-8") as fh:
        header, good = list(csv.reader(fh))[:2]
    with (folder / "cells.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for i in range(150):
            out.writerow(
                [
                    f"C-{i:03d}",
                    good[1],
                    NOTE if i == 0 else good[2],
                    *good[3:7],
                    "31/02/2026 10:00 AM",
                    *good[8:],
                ]
            )
    reports = folder / "reports"
    reports.mkdir()
    argv = cli_argv(
        "validate", folder / "cells.csv", "--mapping", EXAMPLE_MAPPING, "--report", reports / "cells.csv"
    )
    cli_run(argv, env=cli_env(None), cwd=folder, timeout=120, check=False, capture_output=True)
    return reports


@pytest.fixture
def served(made: Path, tmp_path: Path) -> Iterator[ReviewThread]:
    shutil.copytree(made, tmp_path / "reports")
    (tmp_path / "inbox").mkdir()
    server = ReviewThread(Review(tmp_path / "inbox", [tmp_path / "reports"], ROOT / "mappings")).start()
    yield server
    server.stop()


def open_run(driver: Any, server: ReviewThread) -> None:
    run = find_runs(server.review.folders)[0]
    driver.get(f"{server.url}/?key={server.review.key}")
    driver.get(f"{server.url}/runs/{run.id}")
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#grid tbody tr"))


def td(driver: Any, n: int, column: str) -> Any:
    return driver.find_elements(By.CSS_SELECTOR, "#grid tbody tr")[n].find_element(
        By.CSS_SELECTOR, f'td[data-col="{column}"]'
    )


def msg(driver: Any, n: int) -> str:
    return str(driver.find_elements(By.CSS_SELECTOR, "#grid tbody tr td.msg")[n].text)


def active(driver: Any) -> Any:
    return driver.switch_to.active_element


def test_a_page_opens_with_text_cells_and_a_click_edits_where_it_fell(
    browser: Any, served: ReviewThread
) -> None:
    open_run(browser, served)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#grid tbody tr")) == 100
    assert not browser.find_elements(By.CSS_SELECTOR, "#grid td[data-col] input")  # text, until focused
    start = td(browser, 1, "Start")
    assert start.text == "31/02/2026 10:00 AM" and "badcell" in (start.get_attribute("class") or "")
    # a real click between the 2nd and 3rd characters ("31|/02"), as a person points at the month
    x, y, cx, cy = browser.execute_script(
        "const td = arguments[0]; td.scrollIntoView({block: 'center', inline: 'center'});"
        "const r = document.createRange(); r.setStart(td.firstChild, 2); r.setEnd(td.firstChild, 3);"
        "const c = r.getBoundingClientRect(), b = td.getBoundingClientRect();"
        "return [c.left + c.width / 4, c.top + c.height / 2, b.left + b.width / 2, b.top + b.height / 2]",
        start,
    )
    ActionChains(browser).move_to_element_with_offset(start, int(x - cx), int(y - cy)).click().perform()
    cell = active(browser)
    assert cell.tag_name == "input" and cell.get_attribute("value") == "31/02/2026 10:00 AM"
    assert cell.get_attribute("aria-label") == "Start"
    caret = browser.execute_script("return [arguments[0].selectionStart, arguments[0].selectionEnd]", cell)
    assert caret == [2, 2]  # where the click fell, nothing selected
    cell.send_keys(Keys.BACKSPACE, Keys.BACKSPACE, "03")  # the day typed over, the rest kept
    assert cell.get_attribute("value") == "03/02/2026 10:00 AM"
    cell.send_keys(Keys.CONTROL, "a")
    cell.send_keys(GOOD + "\t")
    wait(browser, lambda d: msg(d, 1).startswith("fixed: valid"))
    assert not td(browser, 1, "Start").get_attribute("class").count("badcell")


def test_tab_and_shift_tab_go_from_cell_to_cell(browser: Any, served: ReviewThread) -> None:
    open_run(browser, served)
    first = td(browser, 0, "Start")
    browser.execute_script("arguments[0].focus()", first)  # as Tab reaching it does
    cell = active(browser)
    assert cell.tag_name == "input" and cell.get_attribute("aria-label") == "Start"
    assert (
        browser.execute_script("return arguments[0].selectionEnd - arguments[0].selectionStart", cell) == 19
    )
    cell.send_keys(Keys.TAB)
    after = active(browser)  # the next column shown: an input too, all of it selected, as Tab does
    assert after.tag_name == "input" and after.get_attribute("aria-label") == "Appointment ID"
    assert after.get_attribute("value") == "C-000"
    assert (
        browser.execute_script("return arguments[0].selectionEnd - arguments[0].selectionStart", after) == 5
    )
    after.send_keys(Keys.SHIFT, Keys.TAB)
    back = active(browser)  # back to the first cell's input, not to its cell (Shift+Tab is not stuck)
    assert back.tag_name == "input" and back.get_attribute("aria-label") == "Start"
    back.send_keys(Keys.SHIFT, Keys.TAB)
    assert active(browser).get_attribute("class") == "skip"  # the row's "don't send" box, before the cells


def test_a_cell_keeps_its_exact_value_and_a_turned_page_edits_too(browser: Any, served: ReviewThread) -> None:
    open_run(browser, served)
    notes = td(browser, 0, "Notes")
    assert notes.get_attribute("textContent") == NOTE  # as text, never as markup
    assert not notes.find_elements(By.TAG_NAME, "b")
    browser.execute_script("arguments[0].focus()", notes)
    assert active(browser).get_attribute("value") == NOTE
    start = td(browser, 0, "Start")
    browser.execute_script("arguments[0].focus()", start)
    cell = active(browser)
    cell.send_keys(GOOD + "\t")  # all of it was selected: replaced
    wait(browser, lambda d: msg(d, 0).startswith("fixed: valid"))
    run = find_runs(served.review.folders)[0]
    (kept,) = Store(run.fixes).rows().values()
    assert kept.cells[2] == NOTE and kept.cells[7] == GOOD  # the note sent back exactly as it was
    browser.find_element(By.CSS_SELECTOR, '.pager button[data-go="1"]').click()
    wait(browser, lambda d: d.find_element(By.ID, "page").text == "2")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#grid tbody tr")) == 50
    start = td(browser, 0, "Start")
    browser.execute_script("arguments[0].focus()", start)
    active(browser).send_keys(GOOD + "\t")
    wait(browser, lambda d: msg(d, 0).startswith("fixed: valid"))  # the new page's cells are wired too
    assert browser.find_element(By.ID, "fixed").text == "2"


def test_a_sent_row_is_no_longer_editable(browser: Any, served: ReviewThread) -> None:
    open_run(browser, served)
    start = td(browser, 0, "Start")
    browser.execute_script("arguments[0].focus()", start)
    active(browser).send_keys(GOOD + "\t")
    wait(browser, lambda d: msg(d, 0).startswith("fixed: valid"))
    browser.find_element(By.ID, "send").click()
    wait(browser, lambda d: d.find_element(By.ID, "sent").text.startswith("dropped"))
    other = td(browser, 0, "Notes")  # never opened: it cannot be focused now
    assert other.get_attribute("tabindex") is None
    browser.execute_script("arguments[0].focus()", other)
    assert not other.find_elements(By.TAG_NAME, "input")
    assert td(browser, 0, "Start").find_element(By.TAG_NAME, "input").get_attribute("readonly") == "true"
    browser.refresh()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#grid tbody tr"))
    sent = td(browser, 0, "Start")
    assert sent.text == GOOD and sent.get_attribute("tabindex") is None
    browser.execute_script("arguments[0].focus()", sent)
    assert not sent.find_elements(By.TAG_NAME, "input")


def test_a_run_over_two_files_edits_and_sends_the_second_ones_rows(browser: Any, tmp_path: Path) -> None:
    reports = two_files(tmp_path)
    (tmp_path / "inbox").mkdir()
    server = ReviewThread(Review(tmp_path / "inbox", [reports], ROOT / "mappings")).start()
    try:
        open_run(browser, server)
        assert "in a.csv" in browser.find_element(By.TAG_NAME, "h2").text
        browser.find_element(By.CSS_SELECTOR, "#parts a[href*='?file=r-errors-b.csv']").click()
        wait(browser, lambda d: "in b.csv" in d.find_element(By.TAG_NAME, "h2").text)
        ids = [
            c.get_attribute("textContent")
            for c in browser.find_elements(By.CSS_SELECTOR, 'td[data-col="Appointment ID"]')
        ]
        n = ids.index("BAPT-24016")
        start = td(browser, n, "Start")
        browser.execute_script("arguments[0].focus()", start)
        active(browser).send_keys("03/02/2026 10:00 AM\t")  # its check names b's file
        wait(browser, lambda d: msg(d, n).startswith("fixed: valid"))
        replace = browser.find_element(By.ID, "replace")  # apply-to-all on b's rows, then b's grid again
        Select(replace.find_element(By.NAME, "column")).select_by_visible_text("Activity")
        for name, value in (("old", "Webinar"), ("new", "Meeting")):  # (the fix above filled them in)
            replace.find_element(By.NAME, name).clear()
            replace.find_element(By.NAME, name).send_keys(value)
        replace.find_element(By.CSS_SELECTOR, "button:not([type=button])").click()
        wait(browser, lambda d: d.find_element(By.ID, "bulkdone").text.startswith("1 row(s) changed"))
        shown = [
            c.get_attribute("textContent")
            for c in browser.find_elements(By.CSS_SELECTOR, 'td[data-col="Appointment ID"]')
        ]
        assert shown == ids  # still b's rows
        browser.find_element(By.ID, "send").click()
        wait(browser, lambda d: d.find_element(By.ID, "sent").text.startswith("dropped"))
        (dropped,) = (tmp_path / "inbox").glob("*.csv")
        assert dropped.name.startswith("b-fixed-")
        with dropped.open(encoding="utf-8") as fh:
            assert "BAPT-24016" in [r["Appointment ID"] for r in csv.DictReader(fh)]
    finally:
        server.stop()


def test_a_run_over_two_sheets_with_other_columns_edits_and_sends_the_second_ones_rows(
    browser: Any, tmp_path: Path
) -> None:
    reports = two_sheets(tmp_path)
    (tmp_path / "inbox").mkdir()
    server = ReviewThread(Review(tmp_path / "inbox", [reports], ROOT / "mappings")).start()
    try:
        open_run(browser, server)
        assert "in book.xlsx, sheet East" in browser.find_element(By.TAG_NAME, "h2").text
        assert not browser.find_elements(By.CSS_SELECTOR, 'th[data-col="Region"], td[data-col="Region"]')
        browser.find_element(By.LINK_TEXT, "book.xlsx, sheet West").click()
        wait(browser, lambda d: "in book.xlsx, sheet West" in d.find_element(By.TAG_NAME, "h2").text)
        regions = browser.find_elements(By.CSS_SELECTOR, 'td[data-col="Region"]')
        assert [c.get_attribute("textContent") for c in regions] == ["W", "W", "W"]  # West's own column
        amounts = [
            c.get_attribute("textContent")
            for c in browser.find_elements(By.CSS_SELECTOR, 'td[data-col="Amount"]')
        ]
        n = amounts.index("12k")
        amount = td(browser, n, "Amount")
        browser.execute_script("arguments[0].focus()", amount)
        active(browser).send_keys(Keys.CONTROL, "a")
        active(browser).send_keys("12000\t")  # its check names West's sheet
        wait(browser, lambda d: msg(d, n).startswith("fixed: valid"))
        browser.find_element(By.ID, "send").click()
        wait(browser, lambda d: d.find_element(By.ID, "sent").text.startswith("dropped"))
        (dropped,) = (tmp_path / "inbox").glob("*.csv")
        assert dropped.name.startswith("book-West-fixed-")
        with dropped.open(encoding="utf-8") as fh:
            assert [(r["Region"], r["Amount"]) for r in csv.DictReader(fh)] == [("W", "12000")]
        browser.find_element(By.LINK_TEXT, "book.xlsx, sheet East").click()  # East: nothing fixed there
        wait(browser, lambda d: "in book.xlsx, sheet East" in d.find_element(By.TAG_NAME, "h2").text)
        assert browser.find_element(By.ID, "fixed").text == "0"
    finally:
        server.stop()
