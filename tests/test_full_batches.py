"""Full batches on a busy machine (issue 38): the partial batch is held by the bytes of results kept
behind it, not by how many results wait or for how long; a sparse change sends ceil(changed /
batch) requests (+1)."""

from __future__ import annotations

import asyncio
import csv
import math
import random
from pathlib import Path

import pytest
from helpers import EXAMPLE_MAPPING, RunCli, Sandbox, make_file

from bulk_sync.pipeline.results import BACKPRESSURE, Ordered
from bulk_sync.report import UNCHANGED, ResultBlock, RowResult, Summary
from bulk_sync.sandbox import Faults


def _row(n: int, message: str = "") -> RowResult:
    return RowResult("f.csv", None, n + 2, f"E{n}", "synced", message=message or None)


def test_results_held_behind_a_row_count_by_bytes_not_by_number() -> None:
    out: list[object] = []
    ordered = Ordered(out.append, Summary())
    for seq in range(1, 20_001):  # 20,000 small results wait behind row 0 (in a partial batch)
        ordered.put(seq, _row(seq))
    assert not ordered.waiting and out == []  # ~4 MB: the partial batch may stay and fill up
    big = "x" * 1000
    seq = 20_001
    while not ordered.waiting:  # results with long messages: the bytes kept grow faster
        ordered.put(seq, _row(seq, big))
        seq += 1
    assert BACKPRESSURE // 2 < ordered.held < BACKPRESSURE // 2 + 2000
    ordered.put(0, _row(0))
    assert len(out) == seq and ordered.held == 0 and not ordered.waiting


def test_a_block_counts_by_its_rows() -> None:
    ordered = Ordered(lambda r: None, Summary())
    rows = 100_000
    ordered.put(1, ResultBlock("f.csv", None, UNCHANGED, list(range(rows)), [None] * rows))
    assert ordered.held >= 100 * rows  # one entry, but 100,000 rows of memory


def test_the_reader_waits_only_when_too_many_bytes_are_held() -> None:
    async def go() -> bool:
        ordered = Ordered(lambda r: None, Summary())
        big = "x" * 100_000
        for seq in range(1, 200):
            ordered.put(seq, _row(seq, big))  # ~20 MB
        waiter = asyncio.ensure_future(ordered.backpressure())
        await asyncio.sleep(0.01)
        blocked = not waiter.done()
        ordered.put(0, _row(0))
        await asyncio.wait_for(waiter, 5)
        return blocked

    assert asyncio.run(go())


@pytest.mark.slow
def test_a_sparse_change_goes_in_full_batches(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    # the payloads are the example's golden ones (make_file), checked against SIRO's schema by
    # test_golden_payloads.py: the sandbox's own check of 20,000 of them was 10 s of this test's 13
    siro = sandbox(Faults(validate=False))
    rows, changed, batch = 20_000, 200, 100
    make_file(tmp_path / "c.csv", rows)
    common: tuple[str | Path, ...] = (
        "--mapping",
        EXAMPLE_MAPPING,
        "--base-url",
        siro.base_url,
        "--no-rep-check",
    )
    common += ("--state", tmp_path / "s.db", "--batch-size", str(batch))
    assert run_cli("run", tmp_path / "c.csv", *common, "--rate-per-min", "0").code == 0
    with (tmp_path / "c.csv").open(newline="", encoding="utf-8") as fh:
        data = list(csv.reader(fh))
    subject = data[0].index("Subject")
    for i in random.Random(38).sample(range(1, len(data)), changed):
        data[i][subject] += " (moved)"
    with (tmp_path / "c.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(data)
    before = siro.state.requests
    res = run_cli("run", tmp_path / "c.csv", *common)
    assert res.code == 0, res.stderr
    assert siro.state.requests - before <= math.ceil(changed / batch) + 1
    assert sum(r["status"] == "synced" for r in res.report) == changed
    assert sum(r["status"] == "unchanged" for r in res.report) == rows - changed
