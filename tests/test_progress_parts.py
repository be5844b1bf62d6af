"""The progress of a large dry run follows both of its parts: the worker process that checks the
file's second half says how far it has got while the reader does the first, so the bar (and the
heartbeat outside a terminal) moves with both instead of stopping near half way and jumping to the
end when the second half's results are handed on. A real dry run in a process of its own (the
split threshold lowered so a 20 MB file is split as a 32 MB one is), its events recorded."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers import EXAMPLE_MAPPING, ROOT, cli_run, example_rows_csv

SCRIPT = """
import json, sys
import bulk_sync as bs
from bulk_sync.load import csv as load_csv
from bulk_sync.report import ResultBlock

load_csv.SPLIT_MIN_BYTES = 0  # split as a 32 MB file is
seen = []

class Recorded(bs.Events):
    def row(self, result):
        seen.append(["row", len(result) if isinstance(result, ResultBlock) else 1])

    def ahead(self, rows):
        seen.append(["ahead", rows])

sync = bs.Sync(sys.argv[1], workers=1, guards=bs.Guards(reps="off"))
result = sync.validate([sys.argv[2]], events=Recorded(), outputs=bs.Outputs(report=sys.argv[3]))
print(json.dumps({"seen": seen, "rows": sum(result.counts.values())}))
"""


def test_the_progress_of_a_dry_run_in_two_parts_follows_both(tmp_path: Path) -> None:
    data = tmp_path / "export.csv"
    data.write_bytes(example_rows_csv(40_000))
    proc = cli_run(
        [sys.executable, "-c", SCRIPT, str(EXAMPLE_MAPPING), str(data), str(tmp_path / "r.csv")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    total, seen = out["rows"], out["seen"]
    assert total == 40_000
    results = position = pending_most = 0
    for kind, n in seen:
        if kind == "row":
            results += n
        position += n
        assert position <= total  # never past the end, whatever the order of the words
        pending_most = max(pending_most, position - results)
    assert position == results == total  # every row's result counted once, what was ahead taken back
    assert any(kind == "ahead" and n > 0 for kind, n in seen), "the worker's progress was never shown"
    # the bar moved with the second half, ahead of its results (by how much depends on how the two
    # processes were scheduled: one of the worker's chunks at least)
    assert pending_most > 0, pending_most
