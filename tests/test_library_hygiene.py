"""The library changes nothing process-wide: importing bulk_sync and running a dry run from Python (as
a notebook, an orchestrator's task or the review page does) leaves the GIL switch interval, the
garbage collector, csv's field size limit, the picklers and the signal handlers as they were, and
reads no BULK_SYNC_* variable; only the CLI, which owns its process, reads the environment and
tunes the process for a run (bulk_sync/cli/process.py)."""

from __future__ import annotations

import ast
import csv
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, ROOT
from pydantic import SecretStr

from bulk_sync import pipeline
from bulk_sync.csvfields import long_fields
from bulk_sync.report import VALUES, RowResult
from bulk_sync.settings import UNLIMITED_BODY, RunSettings

PKG = ROOT / "bulk_sync"

# In a fresh interpreter: what the process looks like before bulk_sync is imported, after every one of
# its modules is, and after library-level dry runs (in one process, with a forked worker, the review
# page's row check). BULK_SYNC_WORKERS=0 is set for it: the run asked for a worker gets one all the same.
PROBE = r"""
import copyreg, csv, gc, importlib, json, pkgutil, signal, sys

def ours(obj):
    return getattr(obj, "__module__", "").startswith("bulk_sync")

def state():
    return {
        "switch interval": sys.getswitchinterval(),
        "gc frozen": gc.get_freeze_count(),
        "gc enabled": gc.isenabled(),
        "gc thresholds": list(gc.get_threshold()),
        "csv field size limit": csv.field_size_limit(),
        "SIGINT": repr(signal.getsignal(signal.SIGINT)),
        "SIGTERM": repr(signal.getsignal(signal.SIGTERM)),
    }

before, picklers = state(), dict(copyreg.dispatch_table)
import bulk_sync
for mod in pkgutil.walk_packages(bulk_sync.__path__, "bulk_sync."):
    if mod.name != "bulk_sync.__main__":  # (runs the CLI)
        importlib.import_module(mod.name)
imported = state()
registered = sorted(  # picklers of ours (third-party imports, numpy's say, may add their own)
    repr(k) for k, v in copyreg.dispatch_table.items() if picklers.get(k) is not v and (ours(k) or ours(v))
)
picklers = dict(copyreg.dispatch_table)

from pydantic import SecretStr
from bulk_sync import pipeline
from bulk_sync.review.check import check_rows
from bulk_sync.settings import UNLIMITED_BODY, RunSettings

csv_path, mapping = sys.argv[1], sys.argv[2]
workers = {}
for asked in (0, 1):
    plan = pipeline.scan_columns(pipeline.prepare([csv_path], mapping))
    settings = RunSettings(
        token=SecretStr("unused"), dry_run=True, max_body_bytes=UNLIMITED_BODY, workers=asked
    )
    workers[asked] = pipeline.run(plan, settings, lambda r: None).workers
with open(csv_path, encoding="utf-8", newline="") as fh:
    rows = list(csv.reader(fh))
checked = check_rows(rows[0], rows[1:3], mapping)
after = state()
print(json.dumps({
    "before": before, "imported": imported, "after": after, "registered": registered,
    "picklers changed by the runs": picklers != dict(copyreg.dispatch_table),
    "workers": workers, "checked": [c.status for c in checked],
}))
"""


def test_importing_and_running_the_library_changes_nothing_in_the_process() -> None:
    env = {**os.environ, "BULK_SYNC_WORKERS": "0", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(EXAMPLE_CSV), str(EXAMPLE_MAPPING)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert seen["before"]["gc frozen"] == 0
    assert seen["imported"] == seen["before"]
    assert seen["after"] == seen["before"]
    assert seen["registered"] == []
    assert seen["picklers changed by the runs"] is False
    # the runs ran: the worker asked for (settings, not $BULK_SYNC_WORKERS), and the review's check
    assert seen["workers"] == {"0": 0, "1": (1 if sys.platform.startswith("linux") else 0)}
    assert len(seen["checked"]) == 2


def test_a_result_pickles_as_its_values_without_a_registration() -> None:
    import copyreg
    import pickle

    r = RowResult("f.csv", None, 7, "E-7", "invalid", "value", "Start", "not a date", warning="w: x")
    assert RowResult not in copyreg.dispatch_table
    assert r.__reduce_ex__(pickle.HIGHEST_PROTOCOL) == (RowResult, VALUES(r))
    assert pickle.loads(pickle.dumps(r, pickle.HIGHEST_PROTOCOL)) == r


def test_a_long_cell_is_read_and_the_field_size_limit_put_back(tmp_path: Path) -> None:
    """csv refuses a field over 131,072 characters by default: a note of 300,000 is read (the
    sniffed first lines, the row count), and the limit is the process's own again after."""
    limit = csv.field_size_limit()
    assert limit < 300_000  # (the default: nothing raised it for the whole process)
    src = tmp_path / "long.csv"
    src.write_text(f'Id,Notes\nE-1,"{"x" * 300_000}"\nE-2,short\n', encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nfields:\n  externalId: Id\n  content: Notes\n")
    plan = pipeline.scan_columns(pipeline.prepare([src], str(mapping)))
    assert [n for part in plan.jobs[0][0].row_numbers() for n in part] == [2, 3]
    results: list[object] = []
    settings = RunSettings(token=SecretStr("unused"), dry_run=True, max_body_bytes=UNLIMITED_BODY, workers=0)
    summary = pipeline.run(plan, settings, results.append)
    assert summary.rows == 2
    assert csv.field_size_limit() == limit


def test_overlapping_reads_share_one_raise() -> None:
    """Two reads at once (the reader thread and another): the limit stays raised until the last
    one ends, then is the one found before the first."""
    limit = csv.field_size_limit()
    first_in, second_done = threading.Event(), threading.Event()

    def other() -> None:
        with long_fields():
            first_in.wait()
        second_done.set()

    with long_fields():
        t = threading.Thread(target=other)
        t.start()
        first_in.set()
        second_done.wait(5)
        assert csv.field_size_limit() > 300_000  # the other read ended: this one still reads long cells
    t.join()
    assert csv.field_size_limit() == limit


# (module, how many times) where the environment is touched below the CLI, and why it may be
ENVIRONMENT_USES = {
    "watch.py": 1,  # the run it starts gets the watcher's environment, plus the watcher's pid
}


def test_nothing_below_the_cli_reads_the_environment() -> None:
    """Settings come in as arguments (RunSettings.workers, a state path, the env a caller passes);
    only bulk_sync/cli/ reads os.environ (the sandbox, a test server, is left out)."""
    found: dict[str, int] = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if rel.parts[0] in ("cli", "sandbox"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            environ = isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb")
            imported = isinstance(node, ast.ImportFrom) and node.module == "os"
            if environ or (imported and {a.name for a in node.names} & {"environ", "getenv", "environb"}):
                found[rel.as_posix()] = found.get(rel.as_posix(), 0) + 1
    assert {k: n for k, n in found.items() if n > ENVIRONMENT_USES.get(k, 0)} == {}
