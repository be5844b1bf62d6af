"""State benchmarks (issue 6): an unchanged rerun, and what the state store adds to a full send.

    python tests/benchmarks/bench_state.py [--rows 200000] [--repeat 3] [--stages]

1. unchanged rerun: sync N rows once, then run the same command again: it must send 0 sync
   requests; prints rows/s of the rerun (whole CLI run, start-up included). Rows are known by
   their source fingerprint, without being mapped.
2. the same rerun with a mapping that says the same in other words (an extra, unused `map` entry):
   no fingerprint matches, so every row is built and its payload hash compared, and the new
   fingerprints are written (what the first rerun after upgrading bulk_sync costs). 0 requests.
3. overhead: the same first sync with `--no-state` and with a fresh state file; prints the ratio.
4. with --stages: each stage of the unchanged rerun timed on its own, in this process.
The sandbox runs in its own process without a rate limit (the client's limit is off too), so the
figure is the tool's, not SIRO's 1000 requests/min.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from pathlib import Path

from _common import MAPPING, Stages, make_csv, median, run_cli, sandbox_process, stats

FAST = ("--rate-per-min", "0", "--concurrency", "8", "--batch-size", "100")


def stages(data: Path, state: Path, base_url: str) -> None:
    """Time the stages of an unchanged rerun one by one (what the reader thread does per chunk)."""
    from bulk_sync import mapping, pipeline
    from bulk_sync.report import CsvReport, ResultBlock
    from bulk_sync.state import StateStore, target_of

    took = Stages()
    with took("prepare"):
        plan = pipeline.prepare([data], MAPPING)
    with took("id pass"):
        plan = pipeline.scan_columns(plan)
    store = StateStore(state, target_of(base_url))
    report = CsvReport(state.with_suffix(".report.csv"))
    for src, bound in plan.jobs:
        chunks = src.chunks()
        while True:
            with took("read"):
                chunk = next(chunks, None)
            if chunk is None:
                break
            with took("fingerprints"):
                sources = mapping.fingerprints(bound, chunk)
            with took("ids"):
                ids = mapping.external_ids(bound, chunk)
            with took("compare"):
                same = store.same_sources([(i or "", s) for i, s in zip(ids, sources, strict=True)])
            assert all(same), "a row was not known by its fingerprint"
            with took("report"):
                block = ResultBlock(chunk.file, chunk.sheet, "unchanged", chunk.row_numbers, list(ids))
                report.write_block(block)
    report.close()
    store.close()
    print(f"stages of the unchanged rerun: {took}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--stages", action="store_true", help="also time each stage of the rerun on its own")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        data = make_csv(tmp / "s.csv", args.rows)
        rerun, relearn, with_state, without = [], [], [], []
        same_in_other_words = tmp / "equivalent.yaml"
        text = MAPPING.read_text(encoding="utf-8")
        assert "map: {Inbound: INBOUND," in text
        same_in_other_words.write_text(
            text.replace("map: {Inbound: INBOUND,", "map: {Inbound call: INBOUND, Inbound: INBOUND,")
        )
        with sandbox_process("--no-validate") as url:  # warm-up: file cache, imports
            run_cli(data, "--mapping", MAPPING, "--base-url", url, "--no-state", *FAST)
        for i in range(args.repeat):
            state = tmp / f"state-{i}.sqlite3"
            with sandbox_process("--no-validate") as url:
                t_state, proc = run_cli(
                    data, "--mapping", MAPPING, "--base-url", url, "--state", state, *FAST
                )
                assert proc.returncode == 0, proc.stderr
                before = stats(url)["requests"]
                t_rerun, proc = run_cli(
                    data, "--mapping", MAPPING, "--base-url", url, "--state", state, *FAST
                )
                assert proc.returncode == 0, proc.stderr
                assert stats(url)["requests"] == before, "an unchanged rerun sent sync requests"
                kept = (tmp / "kept.sqlite3", url)  # the state as the rerun saw it, for --stages
                with sqlite3.connect(state) as src, sqlite3.connect(kept[0]) as dst:
                    src.backup(dst)
                t_relearn, proc = run_cli(
                    data, "--mapping", same_in_other_words, "--base-url", url, "--state", state, *FAST
                )
                assert proc.returncode == 0, proc.stderr
                assert stats(url)["requests"] == before, "an equivalent mapping sent sync requests"
            with sandbox_process("--no-validate") as url:
                t_none, proc = run_cli(data, "--mapping", MAPPING, "--base-url", url, "--no-state", *FAST)
                assert proc.returncode == 0, proc.stderr
            rerun.append(args.rows / t_rerun)
            relearn.append(args.rows / t_relearn)
            with_state.append(t_state)
            without.append(t_none)
        print(
            f"unchanged rerun of {args.rows:,} rows: 0 sync requests, median {median(rerun):,.0f} rows/s "
            f"(whole CLI run)"
        )
        print(
            f"rerun with an equivalent mapping (every row built and compared, fingerprints learnt): "
            f"0 sync requests, median {median(relearn):,.0f} rows/s"
        )
        print(
            f"full send of {args.rows:,} rows: median {median(without):.1f} s without state, "
            f"{median(with_state):.1f} s with a fresh state file: the state adds "
            f"{median(with_state) / median(without) - 1:+.1%}"
        )
        if args.stages:
            stages(data, *kept)


if __name__ == "__main__":
    main()
