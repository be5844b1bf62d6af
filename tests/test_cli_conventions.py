"""The command line follows the conventions of the tools people like: progress a person can trust
outside a terminal, a rehearsal that says how it is paced."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import ROOT, cli_argv, cli_env

from bulk_sync.sandbox import Faults

EXAMPLE = ROOT / "example_data" / "engagements.csv"
MAPPING = ROOT / "mappings" / "engagements.yaml"


def _run(tmp_path: Path, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_argv(*args), capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=timeout
    )


def test_a_run_outside_a_terminal_says_it_is_alive(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    siro = sandbox(Faults(latency=0.6))
    log = tmp_path / "run.log"
    common = [EXAMPLE, "-m", MAPPING, "--base-url", siro.base_url, "--no-state", "--batch-size", "5"]
    common += ["--concurrency", "1", "--heartbeat", "0.5", "--log-file", log, "--log-format", "json"]
    proc = _run(tmp_path, "run", *common)
    assert proc.returncode == 1, proc.stderr  # 5 invalid rows in the example
    beats = [line for line in proc.stderr.splitlines() if line.startswith("bulk-sync: ")]
    assert len(beats) >= 3, proc.stderr  # 11 requests of 0.6 s, a beat every 0.5 s
    assert "rows/s" in beats[-1] and "synced so far" in beats[-1] and " of ~" in beats[-1]
    logged = [json.loads(line)["msg"] for line in log.read_text().splitlines()]
    assert sum(m.startswith("bulk-sync: ") for m in logged) >= 3
    # --quiet: nothing on stderr, the log still has them
    log.unlink()
    quiet = _run(tmp_path, "run", *common, "--quiet")
    assert not [line for line in quiet.stderr.splitlines() if line.startswith("bulk-sync: ")]
    assert any(json.loads(line)["msg"].startswith("bulk-sync: ") for line in log.read_text().splitlines())


def test_heartbeat_zero_is_silent(tmp_path: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    siro = sandbox(Faults(latency=0.3))
    proc = _run(
        tmp_path, "run", EXAMPLE, "-m", MAPPING, "--base-url", siro.base_url, "--no-state",
        "--batch-size", "10", "--concurrency", "1", "--heartbeat", "0",
    )  # fmt: skip
    assert proc.returncode == 1
    assert not [line for line in proc.stderr.splitlines() if line.startswith("bulk-sync: ")]


def test_a_paced_sandbox_run_says_so(tmp_path: Path) -> None:
    proc = _run(tmp_path, "run", EXAMPLE, "-m", MAPPING, "--sandbox")
    assert "paced at 1000 requests/min as SIRO; --rate-per-min 0 for full speed" in proc.stdout
    fast = _run(tmp_path, "run", EXAMPLE, "-m", MAPPING, "--sandbox", "--rate-per-min", "0")
    assert "paced at" not in fast.stdout
