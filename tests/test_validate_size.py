"""Issue 33: `validate` checks record sizes by default, as `run` does (before, `validate` called
valid a record `run` then refused as too-large)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import CliResult

from bulk_sync.sandbox import SandboxServer


@pytest.mark.slow
def test_validate_calls_too_large_what_run_calls_too_large_without_being_asked(
    sandbox: Callable[..., SandboxServer], run_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    big = "x" * 5_100_000  # over run's default --max-body-bytes, 5,000,000
    (tmp_path / "f.csv").write_text(f"Id,Notes\nE-1,short\nE-2,{big}\nE-3,short too\n")
    (tmp_path / "m.yaml").write_text("version: 1\nfields:\n  externalId: Id\n  content: Notes\n")
    checked = run_cli("validate", tmp_path / "f.csv", "-m", tmp_path / "m.yaml")
    assert checked.code == 1, checked.stderr
    assert [r["error_type"] for r in checked.report] == ["", "too-large", ""]
    assert "5,000,000" in checked.report[1]["message"]
    server = sandbox()
    sent = run_cli(
        "run", tmp_path / "f.csv", "-m", tmp_path / "m.yaml", "--base-url", server.base_url, "--no-state"
    )
    assert [r["error_type"] for r in sent.report] == [r["error_type"] for r in checked.report]
    assert set(server.state.records) == {"E-1", "E-3"}
