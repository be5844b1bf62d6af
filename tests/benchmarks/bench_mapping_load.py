"""Mapping-load benchmark (issue 34): a mapping whose `map:` has 100,000 entries (a code table
pasted from a CRM), loaded as `validate` and `run` load it (compose with the safe checks, build,
validate). The bound: under 2 s.

    python tests/benchmarks/bench_mapping_load.py [--entries 100000] [--repeat 3] [--pure]

Prints each run's wall-clock and CPU time and their medians, with the load average (the machine
may be shared: CPU time is what the load costs this process). ``--pure`` also times PyYAML's pure
Python parser, what the loader used before libyaml's (C) parser, for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import yaml

from bulk_sync.mapping import parse_mapping, yamlsafe
from bulk_sync.payload import target_catalog


def big_mapping(entries: int) -> str:
    lines = [
        "version: 1",
        "fields:",
        "  externalId: {column: Id, required: true}",
        "  engagementType.name:",
        "    column: Product Code",
        "    map:",
    ]
    lines += [f'      "P{i:06d}": "Product line {i % 997} / item {i}"' for i in range(entries)]
    lines.append("  engagementType.activityType: {value: MEETING}")
    return "\n".join(lines) + "\n"


def timed(text: str) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    spec = parse_mapping(text, target_catalog(), "bench.yaml")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert any(f.spec.map and len(f.spec.map) > 1000 for f in spec.fields)
    return wall, cpu


def series(text: str, repeat: int, label: str) -> None:
    runs = [timed(text) for _ in range(repeat)]
    walls, cpus = [w for w, _ in runs], [c for _, c in runs]
    print(
        f"{label}: median {statistics.median(walls):.2f} s wall ({', '.join(f'{w:.2f}' for w in walls)}), "
        f"{statistics.median(cpus):.2f} s CPU ({', '.join(f'{c:.2f}' for c in cpus)})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pure", action="store_true", help="also time the pure Python parser")
    args = ap.parse_args()
    text = big_mapping(args.entries)
    print(f"a mapping with a `map:` of {args.entries:,} entries ({len(text) / 1024**2:.1f} MB)")
    print(
        f"parser: {yamlsafe.SAFE_LOADER.__name__}; "
        f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs"
    )
    series(text, args.repeat, "load")
    if args.pure:
        saved = yamlsafe.SAFE_LOADER
        yamlsafe.SAFE_LOADER = yaml.SafeLoader
        try:
            series(text, 1, "load with the pure Python parser")
        finally:
            yamlsafe.SAFE_LOADER = saved


if __name__ == "__main__":
    main()
