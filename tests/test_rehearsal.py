"""A rehearsal of a scheduled job against the sandbox behaves as the job will in production: the
sandbox keeps what it was sent, and the rehearsal its state, in ./bulk_sync-sandbox/ from one run
to the next (whatever port the emulator gets), so unchanged rows are skipped and a drift hold can be
rehearsed; `watch --sandbox` sends every dropped file to it. Real CLI runs, real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import ROOT, cli_argv, cli_env, cli_run

from bulk_sync.errors import UsageError
from bulk_sync.job.events import Events
from bulk_sync.job.targets import Sandbox, connect
from bulk_sync.sandbox import KeptError, SandboxServer

EXAMPLE = ROOT / "example_data" / "engagements.csv"
MAPPING = ROOT / "mappings" / "engagements.yaml"


def _run(cwd: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return cli_run(cli_argv(*args), capture_output=True, text=True, env=cli_env(), cwd=cwd, timeout=120)


def _kept(cwd: Path) -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads((cwd / "bulk_sync-sandbox" / "sandbox.json").read_text())
    return data


def test_a_rehearsal_finds_what_the_last_one_sent_and_rehearses_a_drift_hold(tmp_path: Path) -> None:
    prod = tmp_path / "prod"
    config = tmp_path / "bulk_sync.toml"
    config.write_text(
        f'[profiles.nightly]\nbase_url = "https://functions.siro.ai/api-externalApi"\n'
        f'mapping = "{MAPPING}"\nstate = "{prod}/appointments.sqlite3"\nmax_failures = 10\n'
    )
    common = ["--config", config, "--profile", "nightly", "--sandbox", "--rate-per-min", "0"]
    first = _run(tmp_path, "run", EXAMPLE, *common)
    assert first.returncode == 0, first.stderr  # 5 invalid rows, within --max-failures 10
    assert "kept in bulk_sync-sandbox/ for the next rehearsal" in first.stdout.splitlines()[0]
    assert "drift: the first run of the job 'profile:nightly'" in first.stdout
    assert "synced            55" in first.stdout
    assert len(_kept(tmp_path)["records"]) == 55
    again = _run(tmp_path, "run", EXAMPLE, *common)  # another port, the same sandbox
    assert again.returncode == 0, again.stderr
    assert "unchanged         55" in again.stdout and "first run" not in again.stdout
    assert "), 1 request; batches" in again.stdout  # the pre-flight alone: one request, said so
    few = tmp_path / "few.csv"
    few.write_text(
        "".join(EXAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[:9]), encoding="utf-8"
    )
    held = _run(tmp_path, "run", few, *common)
    assert held.returncode == 2, held.stdout + held.stderr
    assert "drift held" in held.stderr and "8 rows, fewer than half of the last good run's 60" in held.stderr
    assert not prod.exists()  # production's state untouched throughout
    plain = tmp_path / "plain"  # a plain --sandbox run (no job): nothing kept, as the Quickstart shows
    plain.mkdir()
    alone = _run(plain, "run", EXAMPLE, "-m", MAPPING, "--sandbox", "--rate-per-min", "0")
    assert alone.returncode == 1 and "records are discarded at exit" in alone.stdout
    assert not (plain / "bulk_sync-sandbox").exists()


def test_watch_sandbox_sends_every_file_to_the_kept_sandbox(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "engagements.csv").write_bytes(EXAMPLE.read_bytes())
    proc = _run(tmp_path, "watch", inbox, "-m", MAPPING, "--sandbox", "--once", "--settle", "0.1")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the example's 5 invalid rows: failed/
    assert "sandbox rehearsal with the job 'watch'" in proc.stdout
    assert len(_kept(tmp_path)["records"]) == 55
    both = _run(
        tmp_path, "watch", inbox, "-m", MAPPING, "--sandbox", "--base-url", "https://x.example", "--once"
    )
    assert both.returncode == 2 and "--sandbox and --base-url exclude each other" in both.stderr


def test_the_kept_records_survive_a_restart_and_a_damaged_file_is_said(tmp_path: Path) -> None:
    keep = tmp_path / "sandbox.json"
    with SandboxServer("t", keep=keep) as server:
        server.sandbox._upsert({"externalId": "A-1", "engagementType": {"name": "Meeting"}})
    assert SandboxServer("t", keep=keep).state.records["A-1"]["externalId"] == "A-1"
    keep.write_text("{not json")
    with pytest.raises(KeptError, match=r"cannot be read .*remove it to start the sandbox afresh"):
        SandboxServer("t", keep=keep)
    good = _run(tmp_path, "run", EXAMPLE, "-m", MAPPING, "--sandbox", "--job", "nightly")
    assert good.returncode == 1, good.stderr  # a job's rehearsal: kept in ./bulk_sync-sandbox/
    assert len(_kept(tmp_path)["records"]) == 55
    (tmp_path / "bulk_sync-sandbox" / "sandbox.json").write_text("[]")
    damaged = _run(tmp_path, "run", EXAMPLE, "-m", MAPPING, "--sandbox", "--job", "nightly")
    assert damaged.returncode == 2 and "are not of this version" in damaged.stderr, damaged.stderr


def test_one_job_at_a_time_keeps_its_records_in_a_folder(tmp_path: Path) -> None:
    first = connect(Sandbox(keep=tmp_path), Events(), None)
    try:
        with pytest.raises(UsageError, match="is in use by another run"):
            connect(Sandbox(keep=tmp_path), Events(), None)
    finally:
        first.close()
    connect(Sandbox(keep=tmp_path), Events(), None).close()  # free again
