"""Delivery benchmarks (issue 5): the real CLI against the sandbox, each in its own process.

    python tests/benchmarks/bench_delivery.py rate        # 50,000 rows, batch 100, limit 1000/min
    python tests/benchmarks/bench_delivery.py overshoot   # client told 2000/min, server allows 1000/min
    python tests/benchmarks/bench_delivery.py latency     # single records, 64 workers, 50 ms server latency
    python tests/benchmarks/bench_delivery.py cpu         # single records against a fast local server
    python tests/benchmarks/bench_delivery.py all

Each prints its figure (median of --repeat runs) and, where the issue asks, the bound measured in the
same run. Not run by pytest: these take minutes and measure the machine as much as the code.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from _common import MAPPING, TOKEN, make_csv, median, run_cli, sandbox_process, stats


def bench_rate(tmp: Path, repeat: int) -> None:
    data = make_csv(tmp / "rate.csv", 50_000)
    spans, walls, throttled = [], [], []
    for _ in range(repeat):
        with sandbox_process("--rate-per-min", "1000", "--no-validate") as url:
            wall, proc = run_cli(
                data, "--mapping", MAPPING, "--base-url", url, "--batch-size", "100", "--rate-per-min", "1000"
            )
            st = stats(url)
        assert proc.returncode == 0, proc.stderr
        assert st["records"] == 50_000
        spans.append(float(st["write_span"]))  # type: ignore[arg-type]
        walls.append(wall)
        throttled.append(int(st["responses"].get("429", 0)))  # type: ignore[union-attr]
    minimum = 499 * 60 / 1000  # 500 requests at 1000/min: the first at 0 s, the last at 29.94 s
    print(
        f"rate-limited: 50,000 rows in 500 batch requests at 1000/min; sending span median "
        f"{median(spans):.2f} s (minimum {minimum:.2f} s, ratio {median(spans) / minimum:.3f}); "
        f"whole CLI run {median(walls):.2f} s; 429s {max(throttled)}"
    )


def bench_overshoot(tmp: Path, repeat: int) -> None:
    """Server: 1000/min as 100 per 6 s sliding window (so 500 requests overshoot); client told 2000/min."""
    data = make_csv(tmp / "over.csv", 50_000)
    rates, throttled = [], []
    for _ in range(repeat):
        with sandbox_process("--rate-per-min", "1000", "--rate-window", "6", "--no-validate") as url:
            _, proc = run_cli(
                data, "--mapping", MAPPING, "--base-url", url, "--batch-size", "100", "--rate-per-min", "2000"
            )
            st = stats(url)
        assert proc.returncode == 0, proc.stderr
        assert st["records"] == 50_000
        per_min = 499 / float(st["write_span"]) * 60  # type: ignore[arg-type]
        rates.append(per_min)
        throttled.append(int(st["responses"].get("429", 0)))  # type: ignore[union-attr]
    print(
        f"limit twice too high: every row synced; achieved median {median(rates):.0f} requests/min = "
        f"{median(rates) / 1000:.1%} of the server's 1000/min; 429s median {median(throttled):.0f}"
    )


async def _raw_bound(url: str, n: int, conns: int) -> float:
    """The bound: a minimal aiohttp client (no mapping, no retries) against the same sandbox."""
    import aiohttp

    body = b'{"externalId":"bound"}'
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    left = n
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns)) as s:

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                async with s.put(f"{url}/v1/integrations/sync/engagements", data=body, headers=headers) as r:
                    await r.read()

        t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conns)))
        return n / (time.perf_counter() - t)


def _single_record_run(tmp: Path, rows: int, conns: int, repeat: int, *sandbox_args: str) -> None:
    data = make_csv(tmp / f"single-{rows}.csv", rows)
    cli_rates, cli_walls, bounds = [], [], []
    for _ in range(repeat):
        with sandbox_process(*sandbox_args) as url:
            bounds.append(asyncio.run(_raw_bound(url, min(rows, 20_000), conns)))
        with sandbox_process(*sandbox_args) as url:
            wall, proc = run_cli(
                data,
                "--mapping",
                MAPPING,
                "--base-url",
                url,
                "--no-batch",
                "--concurrency",
                str(conns),
                "--rate-per-min",
                "0",
            )
            st = stats(url)
        assert proc.returncode == 0, proc.stderr
        cli_rates.append((rows - 1) / float(st["write_span"]))  # type: ignore[arg-type]
        cli_walls.append(rows / wall)
    print(
        f"  bulk-sync: median {median(cli_rates):,.0f} requests/s sustained "
        f"({median(cli_walls):,.0f} rows/s over the whole CLI run, start-up and file reading included)"
    )
    print(
        f"  bound (raw aiohttp client, same sandbox, same run): median {median(bounds):,.0f} requests/s; "
        f"ratio {median(cli_rates) / median(bounds):.1%}"
    )


def bench_latency(tmp: Path, repeat: int) -> None:
    print(
        "latency-bound: single-record mode, 64 workers, sandbox latency 50 ms (theoretical 64/0.05 = 1,280/s)"
    )
    _single_record_run(tmp, 20_000, 64, repeat, "--latency", "0.05", "--no-validate")


def bench_cpu(tmp: Path, repeat: int) -> None:
    print("CPU-bound: single-record mode, 16 workers, sandbox answering at once (payload building included)")
    _single_record_run(tmp, 30_000, 16, repeat, "--no-validate")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("which", choices=["rate", "overshoot", "latency", "cpu", "all"])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, fn in [
            ("rate", bench_rate),
            ("overshoot", bench_overshoot),
            ("latency", bench_latency),
            ("cpu", bench_cpu),
        ]:
            if args.which in (name, "all"):
                fn(tmp, args.repeat)


if __name__ == "__main__":
    main()
