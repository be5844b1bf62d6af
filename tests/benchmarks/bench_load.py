"""Loader benchmarks (issue 4): .xlsx reading speed, and peak memory on a 1M-row CSV.

    python tests/benchmarks/bench_load.py xlsx [--rows 100000] [--repeat 3] [--formats]
    python tests/benchmarks/bench_load.py csv-rss [--rows 1000000]

xlsx: a 100,000-row x 30-column workbook written by openpyxl (text, numbers, dates, date-times,
leading-zero codes). Read through bulk_sync's loader (python-calamine; every cell to text, chunks
of 5,000 rows as DataFrames): median rows/s of --repeat runs, beside openpyxl's read-only mode
doing the same cell-to-text work once, for comparison. Then issue 17's Excel figure: the whole
`bulk-sync validate` (a mapping over 7 of the columns, report written) against the bound measured
in the same run, a bare python-calamine read of the sheet (`to_python()`, nothing else).

csv-rss: a 1,000,000-row x 30-column CSV (~370 MB). Peak RSS of (1) the loader alone reading
every chunk, in a child process, and (2) the whole `bulk-sync validate` run (map, validate,
report) with a mapping over its columns. Both children report their own ru_maxrss.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import cli_child

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

WIDTH = 30


def _row(i: int, rng: random.Random) -> list[object]:
    base = dt.datetime(2026, 1, 1, 8, 0)
    out: list[object] = [f"ACT-{i:08d}"]
    for c in range(1, WIDTH):
        k = c % 6
        if k == 0:
            out.append(f"{rng.randrange(100000):05d}")  # a code with leading zeros, stored as text
        elif k == 1:
            out.append(base + dt.timedelta(minutes=30 * (i % 5000) + c))
        elif k == 2:
            out.append(round(rng.random() * 10000, 2))
        elif k == 3:
            out.append(rng.randrange(1_000_000))
        elif k == 4:
            out.append((base + dt.timedelta(days=i % 365)).date())
        else:
            out.append(f"text {i} {c} " + "x" * rng.randrange(20))
    return out


def make_xlsx(path: Path, rows: int, formats: bool = False) -> Path:
    """``formats``: the float columns get the number format 0.00 and the integer ones 000000, so
    the loader's reading of formats (the style table, then a scan of the sheet XML for the cells
    of those styles) has work to do: 10 of the 30 columns."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Activities")
    ws.append([f"Col {c}" for c in range(WIDTH)])
    rng = random.Random(7)
    for i in range(rows):
        row = _row(i, rng)
        if formats:
            for c, v in enumerate(row):
                if c % 6 in (2, 3):
                    cell = WriteOnlyCell(ws, value=v)
                    cell.number_format = "0.00" if c % 6 == 2 else "000000"
                    row[c] = cell
        ws.append(row)
    wb.save(path)
    return path


def read_with_loader(path: Path, expected: list[str] | None = None) -> int:
    from bulk_sync.load import open_source

    src = open_source(path, expected=expected or ())
    return sum(len(chunk) for chunk in src.chunks())


# what a mapping that reads 8 of the 30 columns passes to the loader (with --formats, 2 of them
# carry a number format: Col 2 "0.00" and Col 3 "000000")
MAPPED = ["Col 0", "Col 1", "Col 2", "Col 3", "Col 4", "Col 5", "Col 6", "Col 7"]


def read_with_openpyxl(path: Path) -> int:
    import openpyxl

    from bulk_sync.load import cell_text

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    n = 0
    for values in wb.worksheets[0].iter_rows(min_row=2, values_only=True):
        [cell_text(v) for v in values]
        n += 1
    wb.close()
    return n


def bench_xlsx(rows: int, repeat: int, formats: bool = False) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = make_xlsx(Path(d) / "activities.xlsx", rows, formats)
        print(
            f"workbook: {rows:,} rows x {WIDTH} columns, {path.stat().st_size / 1e6:.1f} MB"
            + (" (number formats 0.00 and 000000 on 10 columns)" if formats else "")
        )
        read_with_loader(path)  # warm-up (imports, file cache)
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            n = read_with_loader(path)
            times.append(time.perf_counter() - t)
            assert n == rows, n
        med = statistics.median(times)
        print(f"bulk_sync loader (calamine): median {med:.2f} s -> {rows / med:,.0f} rows/s  (runs: "
              + ", ".join(f"{t:.2f}" for t in times) + ")")  # fmt: skip
        mapped = []
        for _ in range(repeat):
            t = time.perf_counter()
            assert read_with_loader(path, MAPPED) == rows
            mapped.append(time.perf_counter() - t)
        med_m = statistics.median(mapped)
        print(f"  opened for a mapping reading {len(MAPPED)} of the {WIDTH} columns: median {med_m:.2f} s "
              f"-> {rows / med_m:,.0f} rows/s")  # fmt: skip
        t = time.perf_counter()
        n = read_with_openpyxl(path)
        t_op = time.perf_counter() - t
        assert n == rows
        print(f"openpyxl read-only, same cell-to-text work: {t_op:.2f} s -> {rows / t_op:,.0f} rows/s "
              f"(calamine is {t_op / med:.1f}x faster)")  # fmt: skip
        excel_dry_run(path, Path(d), repeat)


def bare_calamine(path: Path) -> float:
    from python_calamine import CalamineWorkbook

    t = time.perf_counter()
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
    assert rows
    return time.perf_counter() - t


def excel_dry_run(path: Path, tmp: Path, repeat: int) -> None:
    mapping = tmp / "m.yaml"
    mapping.write_text(MAPPING.replace("Activity ID", "Col 0"))  # the workbook's id column
    runs, bare = [], []
    for _ in range(repeat):
        el, _rss, code = whole_validate(path, mapping, tmp / "report.csv")
        assert code in ("0", "1"), code
        runs.append(el)
        bare.append(bare_calamine(path))
    med, bound = statistics.median(runs), statistics.median(bare)
    print(f"whole `bulk-sync validate` of the workbook: median {med:.2f} s; bound: a bare calamine read, "
          f"median {bound:.2f} s -> the dry run is {med / bound:.1f}x it (runs: "
          + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(runs, bare, strict=True)) + ")")  # fmt: skip


def make_csv(path: Path, rows: int) -> Path:
    from bulk_sync.load import cell_text

    rng = random.Random(7)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["Activity ID"] + [f"Col {c}" for c in range(1, WIDTH)])
        for i in range(rows):
            w.writerow([cell_text(v) for v in _row(i, rng)])
    return path


LOADER_ONLY = """
import resource, sys, time
sys.path.insert(0, {root!r})
from bulk_sync.load import open_source
t = time.perf_counter()
src = open_source({path!r})
n = sum(len(c) for c in src.chunks())
el = time.perf_counter() - t
print(n, el, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""

MAPPING = """\
version: 1
fields:
  externalId: {column: Activity ID, required: true}
  subject: Col 5
  content: Col 11
  startTime: {column: Col 1, datetime: {timezone: America/New_York}}
  endTime: {column: Col 7, datetime: {timezone: America/New_York}}
  account.externalId: Col 6
  account.name: Col 17
"""


def bench_csv_rss(rows: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        path = make_csv(tmp / "big.csv", rows)
        print(f"CSV: {rows:,} rows x {WIDTH} columns, {path.stat().st_size / 1e6:.0f} MB")
        out = subprocess.run(
            [sys.executable, "-c", LOADER_ONLY.format(root=str(ROOT), path=str(path))],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        n, el, rss = out.stdout.split()
        print(f"loader alone: {int(n):,} rows in {float(el):.1f} s ({int(n) / float(el):,.0f} rows/s), "
              f"peak RSS {float(rss):.0f} MB")  # fmt: skip
        mapping = tmp / "m.yaml"
        mapping.write_text(MAPPING)
        el, rss, code = whole_validate(path, mapping, tmp / "report.csv")
        print(f"whole `bulk-sync validate` run: {el:.1f} s ({rows / el:,.0f} rows/s), peak RSS {rss:.0f} MB, "
              f"exit code {code} (1: some generated times fall in a DST gap)")  # fmt: skip


def whole_validate(path: Path, mapping: Path, report: Path) -> tuple[float, float, str]:
    """`bulk-sync validate` in a child process: seconds, its peak RSS in MB, its exit code."""
    t = time.perf_counter()
    argv = ["validate", str(path), "--mapping", str(mapping), "--report", str(report)]
    proc = subprocess.run(
        [sys.executable, "-c", cli_child(argv)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    el = time.perf_counter() - t
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("RSS_MB")]
    if not line:
        raise SystemExit(proc.stderr[-2000:])
    return el, float(line[0].split()[1]), line[0].split()[-1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["xlsx", "csv-rss"])
    p.add_argument("--rows", type=int)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--formats", action="store_true", help="xlsx: number formats on 10 columns")
    a = p.parse_args()
    if a.what == "xlsx":
        bench_xlsx(a.rows or 100_000, a.repeat, a.formats)
    else:
        bench_csv_rss(a.rows or 1_000_000)


if __name__ == "__main__":
    main()
