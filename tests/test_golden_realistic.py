"""The realistic golden set: exports of the kinds people really drop (an EU CRM CSV, a three-sheet
ops workbook with totals rows and padded zips, a Salesforce report with percents, a damaged UTF-8
file, a cp1252 file, a US file whose amounts read both ways, a HubSpot-shaped export with emails,
a hand-made workbook, Outlook calendar exports in English and Dutch, a Mac Roman file, a
tab-separated `.xls`, a Dynamics export with its id in a hidden column), each run by the real CLI
against the sandbox.

Compared byte for byte: the payloads SIRO stored (JSONL, by externalId) and the report (its
``siro_id`` cells written as ``eng_*``: the sandbox numbers records in arrival order).
Regenerate after an intended change with:  BULK_SYNC_UPDATE_GOLDEN=1 pytest tests/test_golden_realistic.py
(and read the diff: these files are the specification). Inputs: tests/golden/realistic/make_inputs.py.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import cli_argv, cli_env, cli_run

from bulk_sync.sandbox import SandboxServer

HERE = Path(__file__).parent / "golden" / "realistic"
CASES = sorted(d.name for d in HERE.iterdir() if (d / "case.json").exists())
OUTPUTS = {"mapping.yaml", "case.json", "expected-payloads.jsonl", "expected-report.csv"}


def test_the_set_holds_at_least_thirteen_exports() -> None:
    assert len(CASES) >= 13
    assert {"outlook_calendar_en", "outlook_calendar_nl", "mac_roman_export", "tab_separated_xls",
            "dynamics_hidden_id"} <= set(CASES)  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_realistic_export_matches_golden(
    name: str, sandbox: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    folder = HERE / name
    (data,) = [p for p in folder.iterdir() if p.name not in OUTPUTS]
    flags = json.loads((folder / "case.json").read_text())["flags"]
    server = sandbox()
    report = tmp_path / "report.csv"
    argv = cli_argv(
        "run", data.name, "-m", "mapping.yaml", "--base-url", server.base_url, "--no-state",
        "--report", report, *flags,
    )  # fmt: skip
    proc = cli_run(argv, capture_output=True, text=True, env=cli_env(), cwd=folder, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    payloads = "".join(
        json.dumps(server.state.records[k], sort_keys=True, ensure_ascii=False) + "\n"
        for k in sorted(server.state.records)
    )
    got_report = _normalised(report.read_text(encoding="utf-8-sig"))
    want_payloads, want_report = folder / "expected-payloads.jsonl", folder / "expected-report.csv"
    if os.environ.get("BULK_SYNC_UPDATE_GOLDEN"):
        want_payloads.write_text(payloads, encoding="utf-8")
        want_report.write_text(got_report, encoding="utf-8")
    assert payloads == want_payloads.read_text(encoding="utf-8")
    assert got_report == want_report.read_text(encoding="utf-8")


def _normalised(text: str) -> str:
    rows = list(csv.DictReader(io.StringIO(text)))
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    w.writeheader()
    for r in rows:
        if r["siro_id"]:
            r["siro_id"] = "eng_*"
        w.writerow(r)
    return out.getvalue()
