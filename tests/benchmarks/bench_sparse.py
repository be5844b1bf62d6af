"""Full batches on a sparse rerun (issue 17): a nightly rerun where 1 % of a 1M-row file changed,
the changed rows scattered over the whole file.

    python tests/benchmarks/bench_sparse.py                      # 1,000,000 rows, 1 % changed, 3 reruns
    python tests/benchmarks/bench_sparse.py --rows 100000 --repeat 1

The file is synced once (no rate limit) and rerun unchanged (--repeat times: 0 requests; rows/s
of the whole CLI run). Then each rerun changes the Subject of a fresh random
1 % of the rows and runs the same command with the default settings (batches of 100, paced at
1000 requests/min). Prints, per rerun, the sync requests the sandbox received beside the bound
ceil(changed / batch size) + 1 (at most one partial batch per file), the rows it synced, and the
rerun's elapsed time.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import tempfile
from pathlib import Path

from _common import MAPPING, make_csv, median, run_cli, sandbox_process, stats

BATCH = 100


def requests_so_far(url: str) -> int:
    return int(stats(url)["requests"])  # type: ignore[call-overload]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--share", type=float, default=0.01, help="share of rows changed per rerun")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d, sandbox_process("--no-validate") as url:
        data = make_csv(Path(d) / "nightly.csv", args.rows)
        state = Path(d) / "state.sqlite"
        common = ("--mapping", MAPPING, "--base-url", url, "--state", state, "--batch-size", str(BATCH))
        took, proc = run_cli(data, *common, "--rate-per-min", "0", "--concurrency", "8")
        assert proc.returncode == 0, proc.stderr
        print(f"{args.rows:,} rows synced once in {took:.1f} s")
        unchanged = []
        for _ in range(args.repeat):  # the nightly rerun when nothing changed: 0 requests
            before = requests_so_far(url)
            took, proc = run_cli(data, *common)
            assert proc.returncode == 0, proc.stderr
            assert requests_so_far(url) == before, "an unchanged rerun sent sync requests"
            unchanged.append(args.rows / took)
        each = ", ".join(f"{r:,.0f}" for r in unchanged)
        print(
            f"unchanged rerun: 0 sync requests, median {median(unchanged):,.0f} rows/s "
            f"(whole CLI run; {each})"
        )
        print(f"each rerun below changes {args.share:.0%} of the rows")
        with data.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        subject = rows[0].index("Subject")
        changed = round(args.rows * args.share)
        bound = math.ceil(changed / BATCH) + 1
        times = []
        for r in range(args.repeat):
            for i in random.Random(r).sample(range(1, len(rows)), changed):
                rows[i][subject] += f" (moved {r})"
            with data.open("w", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerows(rows)
            before = requests_so_far(url)
            took, proc = run_cli(data, *common)  # the defaults: paced at 1000 requests/min
            assert proc.returncode == 0, proc.stderr
            sent = requests_so_far(url) - before
            times.append(took)
            print(
                f"rerun {r + 1}: {changed:,} rows changed -> {sent} sync requests "
                f"(bound ceil({changed:,}/{BATCH}) + 1 = {bound}; {'within' if sent <= bound else 'OVER'}), "
                f"{took:.1f} s"
            )
        print(f"median rerun: {median(times):.1f} s")


if __name__ == "__main__":
    main()
