"""Reaching the quota, whatever SIRO's limiter looks like (issue 17).

The real CLI against the sandbox in its own process, which enforces 1000 requests/min as
  bucket  a token bucket of 1 (the strictest: requests must come 60 ms apart),
  sliding at most 1000 requests in any 60 s,
  fixed   at most 1000 requests per clock minute (windows reset at :00),
each with and without Retry-After on its 429s, and with the client told the right limit
(`--rate-per-min 1000`, the default) or twice too much (2000).

    python tests/benchmarks/bench_pace.py                       # every case, 3 runs of 1000 requests
    python tests/benchmarks/bench_pace.py --cases bucket:1000:no --requests 600 --repeat 1

A window limiter admits a whole minute's quota at once, so a run told 2000/min needs more than one
window to say anything: the README's figures use --requests 1000 for the cases told the right
limit and --requests 2000 (two windows) for those told 2000.

For each case it prints the median share of the limit reached: (requests - 1) / sending span,
against the floor of one request every 60 ms measured from the same run's first request (a fixed
window can do a little better than the floor by sending a full minute's quota at the minute's
turn), and the share of requests answered 429. Targets: >= 95 % of the limit, <= 1 % of 429s.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import MAPPING, make_csv, median, run_cli, sandbox_process, stats

LIMIT = 1000
KINDS = ("bucket", "sliding", "fixed")
CASES = [f"{k}:{told}:{ra}" for k in KINDS for told in (1000, 2000) for ra in ("no", "ra")]


def run_case(data: Path, requests: int, kind: str, told: int, retry_after: bool) -> tuple[float, float, int]:
    args = ["--rate-per-min", str(LIMIT), "--limiter", kind, "--no-validate"]
    if retry_after:
        args.append("--rate-retry-after")
    with sandbox_process(*args) as url:
        _, proc = run_cli(
            data, "--mapping", MAPPING, "--base-url", url, "--batch-size", "100", "--rate-per-min", str(told)
        )
        st = stats(url)
    assert proc.returncode == 0, proc.stderr
    throttled = int(st["responses"].get("429", 0))  # type: ignore[union-attr]
    ok = int(st["responses"].get("200", 0))  # type: ignore[union-attr]
    assert ok == requests, st
    floor = (requests - 1) * 60.0 / LIMIT
    return floor / float(st["write_span"]), throttled / (ok + throttled), throttled  # type: ignore[arg-type]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cases", nargs="*", default=CASES, help="kind:told:no|ra (default: all 12)")
    p.add_argument("--requests", type=int, default=1000, help="batch requests per run (100 rows each)")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        data = make_csv(Path(d) / "pace.csv", args.requests * 100)
        print(
            f"{args.requests} requests of 100 rows; the server allows {LIMIT}/min; medians of {args.repeat}"
        )
        print(
            "| server limiter | Retry-After | client told | share of the limit | 429s (share of requests) |"
        )
        print("|---|---|---|---|---|")
        for case in args.cases:
            kind, told, ra = case.split(":")
            runs = [run_case(data, args.requests, kind, int(told), ra == "ra") for _ in range(args.repeat)]
            share = median([r[0] for r in runs])
            refused = median([r[1] for r in runs])
            counts = ", ".join(str(r[2]) for r in runs)
            print(
                f"| {kind} | {'yes' if ra == 'ra' else 'no'} | {told}/min | **{share:.1%}** "
                f"| {refused:.2%} ({counts}) |",
                flush=True,
            )


if __name__ == "__main__":
    main()
