"""Report benchmark (issue 7): writing a 100,000-row run's XLSX report (target: <= 15 s).

    python tests/benchmarks/bench_reports.py [--rows 100000] [--repeat 3]

Rows shaped like a real run's results: 90% synced (with a SIRO id and HTTP status), 10% invalid
with a message and a column, all through report.XlsxReport (xlsxwriter, constant memory), the
Summary sheet included. Prints the median seconds and the file size; the CSV report of the same
rows is timed beside it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bulk_sync.report import CsvReport, RowResult, Summary, XlsxReport


def results(n: int) -> list[RowResult]:
    out = []
    for i in range(n):
        if i % 10 == 3:
            out.append(
                RowResult("exports/appointments.csv", None, i + 2, f"APT-{i:07d}", "invalid", "bad-datetime",
                          "Start", f"Start: '31/02/2026 10:00 AM' is not a date in %m/%d/%Y (row {i})")
            )  # fmt: skip
        else:
            out.append(
                RowResult("exports/appointments.csv", None, i + 2, f"APT-{i:07d}", "synced", None, None, None,
                          200, 1, f"eng_{i:08d}")
            )  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    rows = results(a.rows)
    summary = Summary(files=["exports/appointments.csv"], counts=Counter(r.status for r in rows))
    summary.finished = summary.started + 60
    xlsx_times, csv_times = [], []
    with tempfile.TemporaryDirectory() as d:
        for i in range(a.repeat):
            t = time.perf_counter()
            rep = XlsxReport(Path(d) / f"r{i}.xlsx")
            for r in rows:
                rep.write(r)
            rep.close(summary, {"command": "run"})
            xlsx_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            with CsvReport(Path(d) / f"r{i}.csv") as c:
                for r in rows:
                    c.write(r)
            csv_times.append(time.perf_counter() - t)
        size = (Path(d) / "r0.xlsx").stat().st_size / 1e6
    print(f"XLSX report, {a.rows:,} rows: median {statistics.median(xlsx_times):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in xlsx_times)}), {size:.1f} MB")  # fmt: skip
    print(f"CSV report, same rows: median {statistics.median(csv_times):.2f} s")


if __name__ == "__main__":
    main()
