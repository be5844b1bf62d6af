"""State benchmarks (issue 6): an unchanged rerun, and what the state store adds to a full send.

    python tests/benchmarks/bench_state.py [--rows 200000] [--repeat 3]

1. unchanged rerun: sync N rows once, then run the same command again: it must send 0 sync
   requests; prints rows/s of the rerun (whole CLI run, start-up included). Rows are known by
   their source fingerprint, without being mapped.
2. the same rerun with a mapping that says the same in other words (an extra, unused `map` entry):
   no fingerprint matches, so every row is built and its payload hash compared, and the new
   fingerprints are written (what the first rerun after upgrading bulk_sync costs). 0 requests.
3. overhead: the same first sync with `--no-state` and with a fresh state file; prints the ratio.
The sandbox runs in its own process without a rate limit (the client's limit is off too), so the
figure is the tool's, not SIRO's 1000 requests/min.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import MAPPING, make_csv, median, run_cli, sandbox_process, stats

FAST = ("--rate-per-min", "0", "--concurrency", "8", "--batch-size", "100")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=3)
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


if __name__ == "__main__":
    main()
