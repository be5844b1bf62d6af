"""Dry-run benchmark (issue 3): `bulk-sync validate` on a Salesforce-shaped export.

    python tests/benchmarks/bench_validate.py [--rows 100000 1000000] [--repeat 3]

Generates a CSV of N rows x 30 columns shaped like the Salesforce Events preset: 4 date-time
columns in a US locale with a time zone, 3 enum maps (Type, Direction, Stage), 2 numbers
("$12,345.67" and "40%"), a nested account with a billing address, one engagement user, and
3 unmapped columns. About 1 row in 500 is bad (an unmapped Stage, an empty ID), so the report and
the error file have something in them. Each run is the real CLI in a child process, report
written; prints the median rows/s and the peak RSS (the child's ru_maxrss) per size, and the
ratio of the largest size's rows/s to the smallest's (growth check), and beside each size the
bound measured in the same run: a bare `csv.reader` pass over the same file (every row split into
cells, nothing else), and the dry run's ratio to it (issue 17's target: 4x). The default run (a
worker process maps chunks beside the reader, on a machine with 2+ cores) and a run in one process
(BULK_SYNC_WORKERS=0) are timed in turn, and their reports compared; peak RSS is the CLI process's
and, apart, its worker's (their sum is an upper bound: the worker shares the pages it was forked with).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Stages

ROOT = Path(__file__).resolve().parents[2]

HEADER = [
    "Activity ID", "Subject", "Type", "Direction", "Start", "End", "Created Date", "Last Modified Date",
    "Assigned", "Assigned ID", "Assigned Email", "Share %", "Company / Account", "Account ID",
    "Billing Street", "Billing City", "Billing State/Province", "Billing Zip/Postal Code", "Billing Country",
    "Contact", "Contact ID", "Contact Phone", "Opportunity", "Opportunity ID", "Amount", "Stage",
    "Description", "Location", "Priority", "Status",
]  # fmt: skip

MAPPING = """\
version: 1
fields:
  externalId: {column: Activity ID, required: true}
  subject: Subject
  content: Description
  direction: {column: Direction, map: {Inbound: INBOUND, Outbound: OUTBOUND, In: INBOUND, Out: OUTBOUND}}
  startTime: {column: Start, datetime: {format: "%m/%d/%Y %I:%M %p", timezone: America/Chicago}}
  endTime: {column: End, datetime: {format: "%m/%d/%Y %I:%M %p", timezone: America/Chicago}}
  remoteCreatedAt: {column: Created Date, datetime: {format: "%m/%d/%Y %I:%M %p", timezone: America/Chicago}}
  remoteUpdatedAt: {column: Last Modified Date, datetime: {format: "%m/%d/%Y %I:%M %p", timezone: America/Chicago}}
  engagementType.name: Type
  engagementType.activityType:
    column: Type
    map: {Meeting: MEETING, Call: CALL, Email: EMAIL, Other: EVENT, Site Visit: APPOINTMENT}
  engagementUsers[0].externalId: Assigned ID
  engagementUsers[0].name: Assigned
  engagementUsers[0].email: {column: Assigned Email, lower: true}
  engagementUsers[0].shareOfSale: Share %
  account.externalId: Account ID
  account.name: Company / Account
  account.addresses[0].street: Billing Street
  account.addresses[0].city: Billing City
  account.addresses[0].state: Billing State/Province
  account.addresses[0].zip: Billing Zip/Postal Code
  account.addresses[0].country: Billing Country
  contact.externalId: Contact ID
  contact.name: Contact
  contact.phoneNumbers[]: Contact Phone
  opportunity.externalId: Opportunity ID
  opportunity.name: Opportunity
  opportunity.amount: Amount
  opportunity.disposition:
    column: Stage
    map: {Closed Won: WON, Closed Lost: LOST, Prospecting: OPEN, Qualification: OPEN,
          Needs Analysis: OPEN, Proposal/Price Quote: OPEN, Negotiation/Review: OPEN}
"""

TYPES = ["Meeting", "Call", "Email", "Other", "Site Visit"]
STAGES = ["Closed Won", "Closed Lost", "Prospecting", "Qualification", "Needs Analysis",
          "Proposal/Price Quote", "Negotiation/Review", ""]  # fmt: skip
CITIES = [("Austin", "TX", "78701"), ("Denver", "CO", "80202"), ("Chicago", "IL", "60601"),
          ("Boston", "MA", "02108"), ("Seattle", "WA", "98101")]  # fmt: skip
USERS = [(f"Rep {k}", f"0055f00000{k:05d}AAK", f"Rep.{k}@Example.com") for k in range(40)]


def _us(t: dt.datetime) -> str:
    return f"{t.month}/{t.day}/{t.year} {(t.hour % 12) or 12}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}"


def make_csv(path: Path, rows: int, seed: int = 7, bad_rows: bool = True) -> Path:
    """``bad_rows``: about 1 row in 500 bad (an unmapped Stage, an empty ID); False: none."""
    rng = random.Random(seed)
    base = dt.datetime(2026, 3, 1, 8, 0)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_ALL)  # Salesforce quotes every cell
        w.writerow(HEADER)
        for i in range(rows):
            start = base + dt.timedelta(minutes=15 * rng.randrange(30_000))
            if start.hour < 6:  # keep clear of the DST gap: this benchmark is about speed
                start += dt.timedelta(hours=6)
            end = start + dt.timedelta(minutes=15 * rng.randrange(1, 9))
            city, state, zip_ = CITIES[i % len(CITIES)]
            user = USERS[rng.randrange(len(USERS))]
            acct = rng.randrange(50_000)
            stage = STAGES[rng.randrange(len(STAGES))]
            bad = bad_rows and i % 500 == 499
            w.writerow([
                "" if bad and i % 1000 == 999 else f"00U5f{i:013d}",
                f"Visit {i} - {acct}", TYPES[i % len(TYPES)], "Outbound" if i % 3 else "Inbound",
                _us(start), _us(end), _us(start - dt.timedelta(days=3)), _us(start - dt.timedelta(days=1)),
                user[0], user[1], user[2], f"{rng.randrange(0, 101)}%",
                f"Account {acct}", f"0015f{acct:013d}", f"{rng.randrange(1, 9999)} Main St", city, state, zip_,
                "United States", f"Contact {acct}", f"0035f{acct:013d}", f"+1 512 555 {i % 10000:04d}",
                f"Deal {acct}" if stage else "", f"0065f{acct:013d}" if stage else "",
                f"${rng.randrange(100, 99_999_999):,}.{rng.randrange(100):02d}" if stage else "",
                "Closed Sideways" if bad and i % 1000 == 499 else stage,
                "Notes: " + "lorem ipsum " * rng.randrange(0, 6), "Customer site", "Normal", "Completed",
            ])  # fmt: skip
    return path


CHILD = """
import resource, sys, runpy
sys.argv = ["bulk-sync", "validate", *{argv!r}]
code = 0
try:
    runpy.run_module("bulk_sync", run_name="__main__")
except SystemExit as exc:
    code = exc.code
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the worker process, if any
print("RSS_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, kids, "EXIT", code, file=sys.stderr)
"""


def run_validate(
    data: Path, mapping: Path, report: Path, extra: list[str] | None = None, workers: str | None = None
) -> tuple[float, float, float, str]:
    """Elapsed seconds, the CLI process's peak RSS, its worker's (0: none), and the exit code.
    ``workers``: BULK_SYNC_WORKERS for the run (None: the default)."""
    argv = [str(data), "--mapping", str(mapping), "--report", str(report), "--quiet", *(extra or [])]
    env = {k: v for k, v in os.environ.items() if k != "BULK_SYNC_WORKERS"}
    if workers is not None:
        env["BULK_SYNC_WORKERS"] = workers
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD.format(argv=argv)], capture_output=True, text=True, cwd=ROOT, env=env
    )
    el = time.perf_counter() - t
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("RSS_MB")]
    if not line:
        raise SystemExit(proc.stderr[-3000:])
    parts = line[0].split()
    return el, float(parts[1]), float(parts[2]), parts[-1]


def bare_csv_reader(data: Path) -> float:
    """The bound: one `csv.reader` pass over the file, every row split into cells, nothing kept."""
    t = time.perf_counter()
    with data.open(newline="", encoding="utf-8") as fh:
        for _ in csv.reader(fh):
            pass
    return time.perf_counter() - t


def stages(data: Path, mapping: Path) -> None:
    """Each stage of the dry run timed on its own, in this process, one chunk at a time."""
    sys.path.insert(0, str(ROOT))
    from bulk_sync import mapping as mapping_stage
    from bulk_sync import payload, pipeline
    from bulk_sync.pipeline.warnings import row_warnings
    from bulk_sync.report import CsvReport, ResultBlock

    took = Stages()
    with took("prepare"):
        plan = pipeline.prepare([data], mapping)
    with took("column pass (ids, number columns), in halves (a dry run's default)"):
        pipeline.scan_columns(plan, helper=True)
    with took("column pass (ids, number columns), in one process"):
        plan = pipeline.scan_columns(plan)
    src, bound = plan.jobs[0]
    chunks = src.chunks()
    with tempfile.TemporaryDirectory() as d, CsvReport(Path(d) / "r.csv") as report:
        while True:
            with took("read"):
                chunk = next(chunks, None)
            if chunk is None:
                break
            with took("convert"):
                mc = mapping_stage.map_chunk(bound, chunk)
            with took("check"):
                cc = payload.check_chunk(mc)
            with took("report"):
                rows = [i for i in range(mc.n) if cc.ok[i]]
                warned = row_warnings(mc, cc, rows, {})
                ids = mc.column("externalId") or []
                numbers = [mc.row_numbers[i] for i in rows]
                report.write_block(
                    ResultBlock(mc.file, mc.sheet, "valid", numbers, [ids[i] for i in rows], None, warned)
                )
    print(f"stages: {took}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--stages", action="store_true", help="also time each stage on its own (largest size)")
    p.add_argument("--no-alone", action="store_true", help="do not also time it in one process")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        mapping = tmp / "salesforce.yaml"
        mapping.write_text(MAPPING)
        rates = {}
        for n in a.rows:
            data = make_csv(tmp / f"events-{n}.csv", n)
            run_validate(data, mapping, tmp / "warm.csv")  # file cache, imports
            times, rss, kids, bare, alone = [], [], [], [], []
            for _ in range(a.repeat):  # the default (a worker process), one process, the bound: in turn
                el, mb, kid, code = run_validate(data, mapping, tmp / "report.csv")
                assert code == "1", f"exit {code}: the generated bad rows should make it 1"
                times.append(el)
                rss.append(mb)
                kids.append(kid)
                if not a.no_alone:
                    alone.append(run_validate(data, mapping, tmp / "alone.csv", workers="0")[0])
                bare.append(bare_csv_reader(data))
            with (tmp / "report.csv").open(newline="") as fh:
                statuses = [r["status"] for r in csv.DictReader(fh)]
            assert len(statuses) == n, (len(statuses), n)
            if alone:
                assert (tmp / "alone.csv").read_bytes() == (tmp / "report.csv").read_bytes()
            med = statistics.median(times)
            rates[n] = n / med
            worker = f" + its worker {max(kids):.0f} MB" if max(kids) else " (no worker)"
            print(f"{n:>9,} rows x 30 columns ({data.stat().st_size / 1e6:.0f} MB): median {med:.2f} s -> "
                  f"{n / med:,.0f} rows/s, peak RSS {max(rss):.0f} MB{worker}; "
                  f"{statuses.count('invalid')} invalid; runs: " + ", ".join(f"{t:.2f}" for t in times))  # fmt: skip
            bound = statistics.median(bare)
            print(f"{'':>9}  bound: a bare csv.reader pass, median {bound:.2f} s -> the dry run is "
                  f"{med / bound:.2f}x it (runs: {', '.join(f'{t:.2f}' for t in bare)})")  # fmt: skip
            if alone:
                one = statistics.median(alone)
                print(f"{'':>9}  in one process (BULK_SYNC_WORKERS=0): median {one:.2f} s -> {one / bound:.2f}x "
                      f"the bound (runs: {', '.join(f'{t:.2f}' for t in alone)}); same report")  # fmt: skip
        if a.stages:
            stages(data, mapping)
        if len(rates) > 1:
            lo, hi = min(rates), max(rates)
            print(f"rows/s at {hi:,} rows / rows/s at {lo:,} rows: {rates[hi] / rates[lo]:.2f}")


if __name__ == "__main__":
    main()
