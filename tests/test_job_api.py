"""The job API, called as a notebook or an orchestrator's task calls it: `bulk_sync.Sync` against the
sandbox over real HTTP on 127.0.0.1, in this process, no argparse and no environment."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, TOKEN

import bulk_sync as bs
from bulk_sync.report import read_report
from bulk_sync.sandbox import SandboxServer


class Collected(bs.Events):
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.rows = 0
        self.started_with: int | None = None

    def info(self, text: str) -> None:
        self.lines.append(text)

    def warning(self, text: str) -> None:
        self.lines.append("warning: " + text)

    def started(self, estimated_rows: int | None) -> None:
        self.started_with = estimated_rows

    def row(self, result: object) -> None:
        self.rows += 1


def test_a_run_a_rerun_and_the_result(siro: SandboxServer, tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    sync = bs.Sync(EXAMPLE_MAPPING, bs.Siro(token=TOKEN, base_url=siro.base_url), state=state)
    events = Collected()
    first = sync.run([EXAMPLE_CSV], outputs=bs.Outputs(report=tmp_path / "first.csv"), events=events)
    assert first.counts["synced"] > 0 and first.exit_code == (0 if first.failed_rows == 0 else 1)
    assert first.report == tmp_path / "first.csv" and first.report.is_file()
    rows = read_report(first.report)
    assert sum(first.counts.values()) == len(rows) == first.summary.rows  # every row accounted
    assert {r["status"] for r in rows} <= set(first.counts)
    # the summary JSON beside the report is the result's data
    saved = json.loads((tmp_path / "first-summary.json").read_text(encoding="utf-8"))
    assert saved == first.as_dict() and saved["exit_code"] == first.exit_code
    assert {k: n for k, n in saved["counts"].items() if n} == first.counts and saved["command"] == "run"
    assert events.rows > 0 and events.started_with
    assert any("reps" in line for line in events.lines), events.lines  # the rep check said how it went
    # again, with the state: what SIRO acknowledged is not sent again
    again = sync.run([EXAMPLE_CSV], outputs=bs.Outputs(report=tmp_path / "again.csv"))
    assert again.counts.get("unchanged") == first.counts["synced"] and "synced" not in again.counts
    assert siro.state.stats()["records"] == first.counts["synced"]


def test_validate_sends_nothing_and_predicts_the_effect(siro: SandboxServer, tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    target = bs.Siro(token=TOKEN, base_url=siro.base_url)
    before = siro.state.stats()
    checked = bs.Sync(EXAMPLE_MAPPING, target, state=state).validate(
        [EXAMPLE_CSV], outputs=bs.Outputs(report=tmp_path / "v.csv")
    )
    assert checked.dry_run and checked.counts["valid"] > 0 and not state.exists()
    assert siro.state.stats()["records"] == before["records"]
    bs.Sync(EXAMPLE_MAPPING, target, state=state).run([EXAMPLE_CSV], outputs=bs.Outputs(report_dir=tmp_path))
    predicted = bs.Sync(EXAMPLE_MAPPING, target, state=state).run(
        [EXAMPLE_CSV], dry_run=True, outputs=bs.Outputs(report=tmp_path / "d.csv")
    )
    assert predicted.predicted is not None and predicted.predicted.get("unchanged") == checked.counts["valid"]


def test_check_rows_says_what_validate_says(tmp_path: Path) -> None:
    with EXAMPLE_CSV.open(encoding="utf-8", newline="") as fh:
        table = list(csv.reader(fh))
    headers, rows = table[0], table[1:]
    sync = bs.Sync(EXAMPLE_MAPPING)
    checked = sync.check_rows(headers, rows, payloads=False)
    report = read_report(sync.validate([EXAMPLE_CSV], outputs=bs.Outputs(report=tmp_path / "v.csv")).report)
    assert [c.status for c in checked] == [r["status"] for r in report]
    assert [c.message or "" for c in checked] == [r["message"] for r in report]
    (one,) = sync.check_rows(headers, [rows[0]])
    assert one.status == "valid" and one.payload is not None and one.payload["externalId"]


def test_a_job_that_cannot_start_raises_from_the_tree_and_sends_nothing(
    siro: SandboxServer, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("resource: engagements\nfields:\n  externalId: {column: Nope}\n", encoding="utf-8")
    sync = bs.Sync(bad, bs.Siro(token=TOKEN, base_url=siro.base_url))
    with pytest.raises(bs.ConfigError) as caught:
        sync.run(
            [EXAMPLE_CSV], outputs=bs.Outputs(report=tmp_path / "r.csv", summary_json=tmp_path / "s.json")
        )
    assert isinstance(caught.value, bs.BulkSyncError) and caught.value.exit_code == 2
    assert siro.state.stats()["records"] == 0
    saved = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert saved["exit_code"] == 2 and saved["error"] == str(caught.value)
    with pytest.raises(bs.UsageError, match="needs a target"):
        bs.Sync(EXAMPLE_MAPPING).run([EXAMPLE_CSV], outputs=bs.Outputs(report=tmp_path / "n.csv"))


def test_max_failures_decides_the_exit_code(siro: SandboxServer, tmp_path: Path) -> None:
    sync = bs.Sync(EXAMPLE_MAPPING, bs.Siro(token=TOKEN, base_url=siro.base_url))
    strict = sync.validate([EXAMPLE_CSV], outputs=bs.Outputs(report=tmp_path / "a.csv"))
    assert strict.failed_rows > 0 and strict.exit_code == 1  # the example holds rows to fix
    lenient = sync.validate(
        [EXAMPLE_CSV], outputs=bs.Outputs(report=tmp_path / "b.csv"), max_failures=strict.failed_rows
    )
    assert lenient.exit_code == 0 and lenient.allowed_failures == strict.failed_rows
    with pytest.raises(bs.UsageError, match="--max-failures"):
        sync.validate([EXAMPLE_CSV], outputs=bs.Outputs(report=tmp_path / "c.csv"), max_failures="ten")


def test_the_sandbox_target_starts_and_stops_with_the_job(tmp_path: Path) -> None:
    events = Collected()
    result = bs.Sync(EXAMPLE_MAPPING, bs.Sandbox()).run(
        [EXAMPLE_CSV], outputs=bs.Outputs(report=tmp_path / "r.csv"), events=events
    )
    assert result.counts["synced"] > 0
    (listening,) = [line for line in events.lines if line.startswith("sandbox: SIRO emulator listening")]
    url = listening.split(" on ", 1)[1].split(" ", 1)[0]
    import httpx

    with pytest.raises(httpx.ConnectError):  # stopped with the job
        httpx.get(url, timeout=2)
