"""Issue 17: reaching the quota. Full batches on sparse reruns (a partial batch only at the end),
the sandbox's limiter kinds, and the pacer over real HTTP against a strict limiter."""

from __future__ import annotations

import csv
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, RunCli

from bulk_sync.sandbox import Faults, Sandbox, SandboxServer

SandboxFactory = Callable[..., SandboxServer]


def _rows(n: int) -> tuple[list[str], list[list[str]]]:
    with EXAMPLE_CSV.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    good = [r for r in rows[1:] if r[0] and not r[2].startswith("INVALID")]
    return rows[0], [[f"Q-{i:06d}", *good[i % len(good)][1:]] for i in range(n)]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])
    return path


@pytest.mark.slow  # three syncs and reruns of 2,000 rows through the real CLI
@pytest.mark.parametrize(("changed", "batch"), [(37, 100), (237, 100), (95, 10)])
def test_a_sparse_rerun_sends_full_batches(
    run_cli: RunCli, sandbox: SandboxFactory, tmp_path: Path, changed: int, batch: int
) -> None:
    """Before: batches left every chunk read (5,000 rows), so 1 % changed went as batches of ~50."""
    header, rows = _rows(30_000)
    data = _write(tmp_path / "appointments.csv", header, rows)
    server = sandbox(Faults(validate=False))
    args = ("--base-url", server.base_url, "--batch-size", str(batch), "--rate-per-min", "0")
    first = run_cli("run", data, "-m", EXAMPLE_MAPPING, *args)
    assert first.code == 0, first.stderr
    subject = header.index("Subject")
    for i in random.Random(changed).sample(range(len(rows)), changed):  # scattered over the file
        rows[i][subject] += " (moved)"
    _write(data, header, rows)
    before = server.state.requests
    again = run_cli("run", data, "-m", EXAMPLE_MAPPING, *args)
    assert again.code == 0, again.stderr
    assert server.state.requests - before == math.ceil(changed / batch)
    statuses = [r["status"] for r in again.report]
    assert statuses.count("synced") == changed and statuses.count("unchanged") == len(rows) - changed


# --------------------------------------------------------------------------- the sandbox's limiters


def _limited(kind: str, **kw: object) -> Sandbox:
    return Sandbox("t", Faults(rate_per_min=600, limiter=kind, **kw))  # type: ignore[arg-type]


def test_a_token_bucket_of_one_wants_requests_an_interval_apart() -> None:
    box = _limited("bucket")
    t = 1000.0
    assert box._limit(t) is None  # it starts full
    assert box._limit(t + 0.05) == pytest.approx(0.05)  # 600/min: one token each 0.1 s
    assert box._limit(t + 0.1) is None
    assert box._limit(t + 0.199) is not None
    assert box._limit(t + 0.2) is None


def test_a_token_bucket_with_a_burst() -> None:
    box = _limited("bucket", rate_burst=5)
    assert [box._limit(0.0) is None for _ in range(6)] == [True] * 5 + [False]


def test_a_sliding_window_counts_the_last_window() -> None:
    box = _limited("sliding", rate_window=6.0)  # 600/min: 60 per 6 s
    assert all(box._limit(i * 0.01) is None for i in range(60))
    assert box._limit(1.0) == pytest.approx(5.0)  # the first one leaves the window at 6 s
    assert box._limit(6.0) is None


def test_a_fixed_window_starts_on_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    box = _limited("fixed", rate_window=6.0)
    wall = [600.0 + 4.5]  # 4.5 s into a window that started at 600 s
    monkeypatch.setattr(time, "time", lambda: wall[0])
    assert all(box._limit(0.0) is None for _ in range(60))
    assert box._limit(0.0) == pytest.approx(1.5)  # until 606 s
    wall[0] = 606.0
    assert box._limit(0.0) is None


# --------------------------------------------------------------------------- the id pass, bounded


def test_the_id_pass_spilled_to_disk_finds_the_same_repeats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past SPILL_BYTES the id table goes to temporary files in parts; the superseded rows are the
    same as when it is held in memory (issue 17: memory flat at any size)."""
    from bulk_sync.pipeline import idtable, prepare, scan_columns, superseded

    header, rows = _rows(12_000)
    rng = random.Random(5)
    for i in rng.sample(range(1, len(rows)), 700):  # repeats of earlier ids, scattered
        rows[i][0] = rows[rng.randrange(i)][0]
    first = _write(tmp_path / "a.csv", header, rows[:7_000])
    second = _write(tmp_path / "b.csv", header, rows[7_000:])  # some repeats cross the files
    in_memory = scan_columns(prepare([first, second], EXAMPLE_MAPPING)).superseded
    monkeypatch.setattr(idtable, "SPILL_BYTES", 4096)
    parts = []
    real_parts = superseded.IdTable.parts

    def counted(self: superseded.IdTable) -> Any:
        for part in real_parts(self):
            parts.append(len(part))
            yield part

    monkeypatch.setattr(superseded.IdTable, "parts", counted)
    spilled = scan_columns(prepare([first, second], EXAMPLE_MAPPING)).superseded
    assert len(parts) > 32 and sum(parts) == 12_000  # it did go to disk, in parts, every row once
    assert spilled == in_memory and len(in_memory) >= 650
