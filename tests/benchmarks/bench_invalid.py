"""An all-invalid file against the same file valid (issue 38): `bulk-sync validate`, the whole run.

    python tests/benchmarks/bench_invalid.py [--rows 200000] [--repeat 3] [--cases dates mapping]
    python tests/benchmarks/bench_invalid.py --save /tmp/before      # keep the outputs ...
    python tests/benchmarks/bench_invalid.py --compare /tmp/before   # ... and compare them later

The file is bench_validate.py's Salesforce-shaped export (30 columns, no bad row but 1 in 25,000
whose end time falls in the hour the clocks go back: ambiguous, invalid). Each case is a
way a new user's first `validate` goes wrong on every row:

* ``dates``: the same rows with their four date-times written "01.03.2026 08:00" where the mapping
  reads "%m/%d/%Y %I:%M %p" (a wrong date format: four bad-datetime errors a row);
* ``mapping``: the same file as the valid run, with a mapping whose ``direction`` names the Type
  column (a wrong column for an enum map: an invalid-enum error a row).

Each run is the real CLI in a child process (``python -m bulk_sync validate``, the report written,
the error file beside it, the listing on stderr as a person sees it: not --quiet), valid and each
case in turn, ``--repeat`` times; prints the median rows/s of each (for the whole CLI run) and the
ratio of each case's to the valid run's (the goal: 0.5 or more), with the load average.
``--save DIR`` keeps each run's outputs (the report, the error file, the listing, the summary JSON
with its timings and paths taken out); ``--compare DIR`` says whether they are byte for byte the
same as those saved. ``--tree`` runs another checkout's bulk_sync (its root, put on PYTHONPATH).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_validate import MAPPING, make_csv

ROOT = Path(__file__).resolve().parents[2]
DATE_COLUMNS = range(4, 8)  # Start, End, Created Date, Last Modified Date
_US = re.compile(r"(\d+)/(\d+)/(\d+) (\d+):(\d+) (AM|PM)")
_TIMING = re.compile(r" in [0-9.]+ ?m?s \([0-9,.]+ rows/s")
_HEARTBEAT = re.compile(r"^bulk-sync: [0-9,]+ rows .*rows/s.*\n", re.M)


def _day_first(cell: str) -> str:
    """'3/1/2026 8:00 AM' -> '01.03.2026 08:00' (a European export: the mapping's format does not
    read it, nor does ISO 8601)."""
    m = _US.fullmatch(cell)
    assert m, cell
    month, day, year, hour, minute, half = m.groups()
    h = int(hour) % 12 + (12 if half == "PM" else 0)
    return f"{int(day):02d}.{int(month):02d}.{year} {h:02d}:{minute}"


def make_cases(tmp: Path, rows: int) -> dict[str, tuple[Path, Path]]:
    """Each case's (file, mapping): valid, and every row invalid."""
    valid = make_csv(tmp / "events.csv", rows, bad_rows=False)
    mapping = tmp / "salesforce.yaml"
    mapping.write_text(MAPPING)
    dates = tmp / "events-day-first.csv"
    with (
        valid.open(newline="", encoding="utf-8") as src,
        dates.open("w", newline="", encoding="utf-8") as out,
    ):
        w = csv.writer(out, quoting=csv.QUOTE_ALL)
        reader = csv.reader(src)
        w.writerow(next(reader))
        for row in reader:
            for c in DATE_COLUMNS:
                row[c] = _day_first(row[c])
            w.writerow(row)
    wrong = tmp / "salesforce-wrong-column.yaml"
    text = MAPPING.replace("direction: {column: Direction,", "direction: {column: Type,")
    assert text != MAPPING
    wrong.write_text(text)
    return {"valid": (valid, mapping), "dates": (dates, mapping), "mapping": (valid, wrong)}


def run(tree: Path, data: Path, mapping: Path, out: Path, quiet: bool) -> tuple[float, str, str, int]:
    """One `validate`: elapsed seconds, its stdout and stderr, its exit code."""
    env = {k: v for k, v in os.environ.items() if k not in ("SIRO_API_TOKEN", "BULK_SYNC_WORKERS")}
    env["PYTHONPATH"] = str(tree)
    argv = [sys.executable, "-m", "bulk_sync", "validate", str(data), "-m", str(mapping)]
    argv += ["--report", str(out), "--no-rep-check", *(["--quiet"] if quiet else [])]
    t = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=out.parent, env=env)
    el = time.perf_counter() - t
    if proc.returncode not in (0, 1) or "Traceback" in proc.stderr:
        raise SystemExit(proc.stderr[-3000:])
    return el, proc.stdout, proc.stderr, proc.returncode


def outputs(report: Path, stdout: str, stderr: str) -> dict[str, bytes]:
    """What a person gets from the run, its timings and the run's folder taken out."""
    folder = str(report.parent)
    summary = json.loads(report.with_name(report.stem + "-summary.json").read_text())
    for key in ("duration_seconds", "rows_per_second", "started_at", "finished_at"):
        summary.pop(key, None)
    listing = _TIMING.sub(" in <time>", stdout + "\n--- stderr\n" + stderr)
    listing = _HEARTBEAT.sub("", listing)  # (a run's progress every 30 s: how many depends on its time)
    got = {
        "report.csv": report.read_bytes().replace(folder.encode(), b"<dir>"),  # (its rows' file)
        "listing.txt": listing.replace(folder, "<dir>").encode(),
        "summary.json": json.dumps(summary, indent=1, sort_keys=True).replace(folder, "<dir>").encode(),
    }
    errors = report.with_name(report.stem + "-errors.csv")
    if errors.exists():
        got["errors.csv"] = errors.read_bytes()
    return got


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cases", nargs="+", default=["dates", "mapping"], choices=["dates", "mapping"])
    p.add_argument("--quiet", action="store_true", help="run validate with --quiet (no listing)")
    p.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose bulk_sync runs")
    p.add_argument("--save", type=Path, help="keep each case's outputs in this folder")
    p.add_argument("--compare", type=Path, help="compare each case's outputs with those saved here")
    a = p.parse_args()
    names = ["valid", *a.cases]
    with tempfile.TemporaryDirectory(prefix="bench-invalid-") as d:
        tmp = Path(d)
        cases = make_cases(tmp, a.rows)
        times: dict[str, list[float]] = {name: [] for name in names}
        last: dict[str, tuple[str, str, int]] = {}
        load = [os.getloadavg()[0]]
        run(a.tree, *cases["valid"], tmp / "warm.csv", a.quiet)  # the file cache, the imports
        for _ in range(a.repeat):  # valid and each case in turn, so that the ratio holds under load
            for name in names:
                el, out, err, code = run(a.tree, *cases[name], tmp / f"{name}.csv", a.quiet)
                times[name].append(el)
                last[name] = (out, err, code)
                load.append(os.getloadavg()[0])
        print(f"{a.rows:,} rows x 30 columns, `validate` {'--quiet ' if a.quiet else ''}(tree {a.tree}); "
              f"load average (1 min) {min(load):.2f} to {max(load):.2f}")  # fmt: skip
        base = statistics.median(times["valid"])
        for name in names:
            med = statistics.median(times[name])
            with (tmp / f"{name}.csv").open(newline="", encoding="utf-8-sig") as fh:
                statuses = [r["status"] for r in csv.DictReader(fh)]
            assert len(statuses) == a.rows, (name, len(statuses))
            invalid = statuses.count("invalid")
            ratio = "" if name == "valid" else f"; {base / med:.2f}x the valid run's rows/s"
            print(f"  {name:<8} median {med:6.2f} s -> {a.rows / med:8,.0f} rows/s{ratio} "
                  f"(runs: {', '.join(f'{t:.2f}' for t in times[name])}; {invalid:,} invalid)")  # fmt: skip
            # (the valid file has a few rows whose end time falls in the hour the clocks go back)
            assert invalid < a.rows // 1000 if name == "valid" else invalid == a.rows, (name, invalid)
        for name in names:
            got = outputs(tmp / f"{name}.csv", *last[name][:2])
            if a.save is not None:
                (a.save / name).mkdir(parents=True, exist_ok=True)
                for file, data in got.items():
                    (a.save / name / file).write_bytes(data)
            if a.compare is not None:
                _compare(a.compare / name, got, name)


def _compare(saved: Path, got: dict[str, bytes], name: str) -> None:
    were = {f.name: f.read_bytes() for f in saved.iterdir()}
    same = [f for f in sorted(were.keys() | got.keys()) if were.get(f) == got.get(f)]
    differ = sorted((were.keys() | got.keys()) - set(same))
    print(f"  {name}: {'the same' if not differ else 'DIFFERENT'} as {saved}: "
          f"{', '.join(same) or '-'} same{'; differ: ' + ', '.join(differ) if differ else ''}")  # fmt: skip


if __name__ == "__main__":
    main()
