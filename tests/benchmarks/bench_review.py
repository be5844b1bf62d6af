"""Review page benchmark (issues 20 and 36): a 100,000-row run with 20,000 rows to fix, opened in a
real browser (targets: the run page, grid included, under 1 s from a cold start; the next page of
100 rows under 1 s; a cell check, from leaving the cell to "fixed: valid" on the page, under 0.3 s;
apply-to-all on the 20,000 rows, each checked, under 5 s).

    python tests/benchmarks/bench_review.py [--rows 100000] [--repeat 3]

Needs Debian's chromium and chromium-driver (and selenium, from the `test` extra). The run is made
once, by the real CLI (`bulk-sync validate`, one row in five with a date that does not exist).
Then, for each repeat, a cold start: a new review server (nothing cached: it reads the error file
once when the page is first asked for) and a new headless Chromium; the time is from asking for the
run page to the browser's load event. The page turns are timed in the same browser, three each,
from the click until the page number shows the next page (polled every 10 ms: Selenium's default
of 500 ms would make the figure its own). Then five cells fixed in that browser, each timed from
the Tab that leaves it to the row showing fixed; then apply-to-all over HTTP on the other rows.
Prints each figure, the median of the repeats beside its target.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from _common import EXAMPLE_CSV, MAPPING, ROOT, median

from bulk_sync.review import Review
from bulk_sync.review import runs as review_runs
from bulk_sync.review.server import ReviewThread

OPEN_GOAL = 1.0  # issue 36 (issue 20: 2 s)
TURN_GOAL = 1.0
CHECK_GOAL = 0.3
APPLY_GOAL = 5.0


def make_run(folder: Path, n: int) -> Path:
    """The CLI's dry run of n rows, one in five invalid; returns the folder of its reports."""
    with EXAMPLE_CSV.open(newline="", encoding="utf-8") as fh:
        header, good = list(csv.reader(fh))[:2]
    data = folder / "big.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for i in range(n):
            row = list(good)
            row[0] = f"B-{i:06d}"
            if i % 5 == 0:
                row[7] = "31/02/2026 10:00 AM"  # a date that does not exist
            out.writerow(row)
    reports = folder / "reports"
    reports.mkdir()
    argv = ["validate", str(data), "--mapping", str(MAPPING), "--report", str(reports / "big.csv"), "--quiet"]
    # no token: with one, `validate` checks the reps against SIRO's production address (off this machine)
    env = {k: v for k, v in os.environ.items() if k != "SIRO_API_TOKEN"}
    env["XDG_STATE_HOME"] = str(folder / "state")
    subprocess.run([sys.executable, "-m", "bulk_sync", *argv], env=env, check=False, capture_output=True)
    return reports


def chromium() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (binary and driver):
        sys.exit("needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def one_cold_open(reports: Path, bad: int) -> tuple[float, list[float], list[float], float]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    review = ReviewThread(Review(None, [reports], ROOT / "mappings")).start()  # a new server: nothing cached
    browser = chromium()
    try:
        browser.get(f"{review.url}/?key={review.review.key}")
        link = browser.find_element(By.LINK_TEXT, "big.csv").get_attribute("href")
        t = time.perf_counter()
        browser.get(link)  # returns at the load event
        opened = time.perf_counter() - t
        if f"Rows that did not sync ({bad})" not in browser.page_source:
            sys.exit("the run page does not show the rows to fix")
        turns = []
        for page in (2, 3, 4):
            t = time.perf_counter()
            browser.find_element(By.CSS_SELECTOR, '.pager button[data-go="1"]').click()
            WebDriverWait(browser, 30, poll_frequency=0.01).until(
                lambda d, page=page: d.find_element(By.ID, "page").text == str(page)
            )
            turns.append(time.perf_counter() - t)
        checks = []
        for n in range(5):  # a cell fixed, from leaving the cell to "fixed: valid" on the page
            row = browser.find_elements(By.CSS_SELECTOR, "#grid tbody tr")[n]
            td = row.find_element(By.CSS_SELECTOR, 'td[data-col="Start"]')
            browser.execute_script("arguments[0].focus()", td)  # a cell is text until focused: then an input
            cell = td.find_element(By.TAG_NAME, "input")
            cell.clear()
            cell.send_keys("03/02/2026 08:00 AM")
            t = time.perf_counter()
            cell.send_keys("\t")
            WebDriverWait(browser, 30, poll_frequency=0.005).until(
                lambda d, row=row: d.execute_script("return arguments[0].classList.contains('fixed')", row)
            )
            checks.append(time.perf_counter() - t)
        return opened, turns, checks, apply_to_all(review)
    finally:
        browser.quit()
        review.stop()


def apply_to_all(review: ReviewThread) -> float:
    """Every row to fix with the bad date set to a good one (each checked), over HTTP: seconds."""
    import httpx

    with httpx.Client(base_url=review.url, follow_redirects=True, timeout=600) as client:
        html = client.get(f"/?key={review.review.key}").text
        csrf = html.split('<meta name="csrf" content="', 1)[1].split('"', 1)[0]
        run = html.split('href="/runs/', 1)[1].split('"', 1)[0]
        body = {"column": "Start", "old": "31/02/2026 10:00 AM", "new": "03/02/2026 08:00 AM"}
        t = time.perf_counter()
        done = client.post(f"/runs/{run}/replace", json=body, headers={"X-CSRF-Token": csrf}).json()
        took = time.perf_counter() - t
    if not done.get("valid"):
        sys.exit(f"apply-to-all did not fix the rows: {done}")
    return took


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    bad = (a.rows + 4) // 5
    with tempfile.TemporaryDirectory(prefix="bulk_sync-bench-") as d:
        reports = make_run(Path(d), a.rows)
        opens, turns, checks, applies = [], [], [], []
        for i in range(a.repeat):
            for old in reports.glob("*-fixes.sqlite"):
                old.unlink()  # each repeat starts with no edits
            review_runs._GRIDS.clear()  # and with no grid read: cold (the cache is the process's)
            opened, turned, checked, applied = one_cold_open(reports, bad)
            opens.append(opened)
            turns.extend(turned)
            checks.extend(checked)
            applies.append(applied)
            print(
                f"repeat {i + 1}: opened in {opened:.2f} s; page turns "
                + ", ".join(f"{x:.2f}" for x in turned)
                + "; cell checks "
                + ", ".join(f"{x:.2f}" for x in checked)
                + f"; apply-to-all {applied:.2f} s"
            )
    print(
        f"{a.rows:,} rows, {bad:,} to fix: run page from a cold start, median of {a.repeat}: "
        f"{median(opens):.2f} s (goal < {OPEN_GOAL:.0f} s)"
    )
    print(f"next page of 100 rows, median of {len(turns)}: {median(turns):.2f} s (goal < {TURN_GOAL:.0f} s)")
    print(f"a cell check, median of {len(checks)}: {median(checks):.2f} s (goal < {CHECK_GOAL} s)")
    label = f"apply-to-all on {bad - 5:,} rows, median of {len(applies)}"
    print(f"{label}: {median(applies):.2f} s (goal < {APPLY_GOAL:.0f} s)")


if __name__ == "__main__":
    main()
