"""Grouping benchmark (issue 3): peak memory of a grouped dry run stays flat as the file grows.

    python tests/benchmarks/bench_group.py [--rows 1000000]

A CSV with one row per attendee: 4 rows per meeting, the rows of a meeting scattered over the
whole file (shuffled), `group_by: Meeting ID`. Runs `bulk-sync validate` in a child process at
1/10 of --rows and at --rows; prints rows/s and the child's peak RSS for both.
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAPPING = """\
version: 1
group_by: Meeting ID
fields:
  externalId: Meeting ID
  subject: Subject
  startTime: {column: Start, datetime: {format: "%Y-%m-%d %H:%M", timezone: America/New_York}}
  endTime: {column: End, datetime: {format: "%Y-%m-%d %H:%M", timezone: America/New_York}}
  engagementType.name: {value: Meeting}
  engagementType.activityType: {value: MEETING}
  engagementUsers[0].externalId: Attendee ID
  engagementUsers[0].email: Attendee Email
  account.externalId: Account ID
  account.phoneNumbers[]: Phone
"""
CHILD = """
import resource, runpy, sys
sys.argv = ["bulk-sync", "validate", {data!r}, "-m", {mapping!r}, "--report", {report!r}, "-q"]
try:
    runpy.run_module("bulk_sync", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print("RSS_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "EXIT", code, file=sys.stderr)
"""


def make(path: Path, rows: int) -> None:
    rng = random.Random(3)
    order = list(range(rows))
    rng.shuffle(order)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["Meeting ID", "Subject", "Start", "End", "Attendee Email", "Attendee ID", "Account ID", "Phone"]
        )
        for i in order:
            m = i // 4
            day, hour = 1 + m % 28, 8 + m % 8
            w.writerow([f"M-{m:07d}", f"Meeting {m}", f"2026-10-{day:02d} {hour:02d}:00",
                        f"2026-10-{day:02d} {hour:02d}:45", f"user{i % 4}@x.com", f"U-{i % 4}",
                        f"A-{m % 5000}", f"555-{m % 10000:04d}"])  # fmt: skip


def run(rows: int, tmp: Path) -> None:
    data = tmp / f"attendees-{rows}.csv"
    make(data, rows)
    (mapping := tmp / "m.yaml").write_text(MAPPING)
    t = time.perf_counter()
    child = CHILD.format(data=str(data), mapping=str(mapping), report=str(tmp / f"r{rows}.csv"))
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    el = time.perf_counter() - t
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("RSS_MB")]
    if not line:
        raise SystemExit(proc.stderr[-2000:])
    rss, code = float(line[0].split()[1]), line[0].split()[-1]
    print(f"{rows:>9,} rows ({rows // 4:,} meetings of 4 scattered rows): {el:6.1f} s, "
          f"{rows / el:,.0f} rows/s, peak RSS {rss:.0f} MB, exit {code}")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for n in (a.rows // 10, a.rows):
            run(n, Path(d))


if __name__ == "__main__":
    main()
