"""Rep-check benchmark (issue 19): what checking every row's rep against SIRO's users costs a dry run.

    python tests/benchmarks/bench_reps.py [--rows 1000000] [--repeat 3]

The Salesforce-shaped file of bench_validate.py (40 reps); a sandbox in its own process serves
1,000 SIRO users in 10 pages of 100 (35 of the 40 reps among them, so 1 row in 8 gets a
`matching-warning` naming its rep). `bulk-sync validate` runs with the rep check (the users fetched
once, every row looked up) and with `--no-rep-check`, alternated, each the real CLI in a child
process. Prints the medians and their ratio (the issue's bound: within 5 %), and the users fetch
alone.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import TOKEN, sandbox_process
from bench_validate import MAPPING, USERS, make_csv, run_validate

from bulk_sync.upload.calls import SiroCalls


def users_csv(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["email", "firstName", "lastName", "disabled"])
        for k in range(965):
            out.writerow([f"someone.{k}@elsewhere.example", "Some", f"One {k}", "false"])
        for name, _, email in USERS[:35]:
            out.writerow([email.lower(), *name.split(" ", 1), "false"])
    return path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    os.environ["SIRO_API_TOKEN"] = TOKEN
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        data = make_csv(tmp / "events.csv", a.rows)
        mapping = tmp / "mapping.yaml"
        mapping.write_text(MAPPING)
        users = users_csv(tmp / "users.csv")
        with sandbox_process("--users", str(users), "--users-page", "100") as url:
            t = time.perf_counter()
            with SiroCalls(url, TOKEN) as calls:
                found = calls.users()
            fetch = time.perf_counter() - t
            print(f"users fetch: {len(found):,} users in 10 pages: {fetch * 1000:.0f} ms")
            times: dict[str, list[float]] = {"--no-rep-check": [], "rep check": []}
            for _ in range(a.repeat):
                for name in times:
                    extra = ["--no-rep-check"] if name == "--no-rep-check" else ["--base-url", url]
                    el, _, _ = run_validate(data, mapping, tmp / "report.csv", extra)
                    times[name].append(el)
        off, on = statistics.median(times["--no-rep-check"]), statistics.median(times["rep check"])
        for name, runs in times.items():
            shown = ", ".join(f"{x:.2f}" for x in runs)
            print(f"{name:>14}: median {statistics.median(runs):.2f} s  (runs {shown})")
        print(f"rep check / --no-rep-check: {on / off:.3f}  (bound: 1.05)")


if __name__ == "__main__":
    main()
