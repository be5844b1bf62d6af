"""`bulk-sync watch`: a real folder, a real watcher process, real runs against the sandbox."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from helpers import (
    EXAMPLE_MAPPING,
    Sandbox,
    cli_argv,
    cli_env,
    cli_run,
    dropped_earlier,
    files,
    start_watch,
    valid_csv,
    wait_for,
    watch_argv,
)

from bulk_sync.report import read_report
from bulk_sync.sandbox import Faults


@pytest.mark.slow
def test_once_files_every_drop_where_it_belongs(sandbox: Sandbox, tmp_path: Path) -> None:
    server = sandbox()
    inbox = tmp_path / "inbox"
    (inbox / "hubspot").mkdir(parents=True)
    valid_csv(inbox / "Termine März 2026.csv")  # spaces and non-ASCII in the name
    valid_csv(inbox / "hubspot" / "meetings.csv", prefix="H")
    (inbox / "broken.csv").write_bytes(b"\x00\x01\x02binary junk" * 20)
    (inbox / "notes.txt").write_text("not a spreadsheet for any rule")
    ignored = ["~$Termine.xlsx", ".~lock.Termine.xlsx#", "upload.tmp", "big.csv.part", ".hidden.csv"]
    for name in ignored:
        (inbox / name).write_text("Appointment ID\nX-1\n")
    config = tmp_path / "bulk_sync.toml"
    config.write_text(
        f'[[watch.routes]]\nmatch = "hubspot/*.csv"\nmapping = "{EXAMPLE_MAPPING}"\n'
        f'[[watch.routes]]\nmatch = "*.csv"\nmapping = "{EXAMPLE_MAPPING}"\n'
    )
    for p in inbox.rglob("*"):
        dropped_earlier(p)
    proc = cli_run(
        [*watch_argv(inbox, "--once", "--base-url", server.base_url, "--config", config)],
        capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr  # some files went to failed/
    done, failed = inbox / "done", inbox / "failed"
    assert len(files(done, ".csv")) == 4  # two inputs + their reports
    stems = {
        n.rsplit("-", 2)[0]
        for n in files(done)
        if not n.endswith(("-report.csv", "-report.xlsx", "-summary.json", "-route.json"))
    }
    assert stems == {"Termine März 2026", "meetings"}
    report = next(done.glob("Termine März 2026-*-report.csv"))
    assert {r["status"] for r in read_report(report)} == {"synced"} and len(read_report(report)) == 55
    assert any(n.startswith("broken-") and n.endswith("-error.txt") for n in files(failed))
    no_rule = next(failed.glob("notes-*-error.txt")).read_text()
    assert "no routing rule matches this file" in no_rule and "nothing was sent" in no_rule
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == sorted(ignored)  # left alone
    assert files(inbox / "processing") == []
    assert len(server.state.records) == 110


@pytest.mark.slow
def test_watching_waits_for_slow_writes_and_stops_on_sigterm(sandbox: Sandbox, tmp_path: Path) -> None:
    server = sandbox()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    watcher = start_watch(inbox, tmp_path, "-m", EXAMPLE_MAPPING, "--base-url", server.base_url)
    try:
        wait_for(lambda: (inbox / "processing").exists(), what="the watcher to start")
        full = valid_csv(tmp_path / "full.csv", rows=400).read_bytes()
        target = inbox / "slow export.csv"
        with target.open("wb") as fh:  # a slow copy: a chunk every 0.3 s for ~3 s
            for i in range(10):
                fh.write(full[i * len(full) // 10 : (i + 1) * len(full) // 10])
                fh.flush()
                time.sleep(0.3)
                assert files(inbox / "done") == [], "picked up before the copy finished"
        valid_csv(inbox / "second.csv", prefix="S")
        wait_for(lambda: len(files(inbox / "done", "-report.csv")) == 2, what="both files in done/")
        slow_report = next((inbox / "done").glob("slow export-*-report.csv"))
        rows = read_report(slow_report)
        assert len(rows) == 400 and {r["status"] for r in rows} == {"synced"}
        watcher.send_signal(signal.SIGTERM)
        assert watcher.wait(20) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert len(server.state.records) == 455


@pytest.mark.slow
def test_sigterm_finishes_the_current_file_first(sandbox: Sandbox, tmp_path: Path) -> None:
    server = sandbox(Faults(latency=0.3))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    dropped_earlier(valid_csv(inbox / "a.csv", rows=300))
    watcher = start_watch(
        inbox,
        tmp_path,
        "-m",
        EXAMPLE_MAPPING,
        "--base-url",
        server.base_url,
        "--config",
        _slow_config(tmp_path),
    )
    try:
        wait_for(lambda: any((inbox / "processing").glob("*/child.pid")), what="the run to start")
        time.sleep(0.5)
        watcher.send_signal(signal.SIGTERM)  # mid-run: the run goes on, the file is filed, then exit
        server.sandbox.faults.latency = 0.0  # the rest of the run need not be slow
        assert watcher.wait(120) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
    rows = read_report(next((inbox / "done").glob("a-*-report.csv")))
    assert len(rows) == 300 and {r["status"] for r in rows} == {"synced"}
    assert files(inbox / "processing") == []


def _slow_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "slow.toml"
    cfg.write_text("[profiles.default]\nbatch_size = 10\nconcurrency = 2\n")
    return cfg


@pytest.mark.slow
def test_a_crash_mid_file_is_resumed_without_loss_or_duplicates(sandbox: Sandbox, tmp_path: Path) -> None:
    server = sandbox(Faults(latency=0.2))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    dropped_earlier(valid_csv(inbox / "big.csv", rows=600))
    cfg = _slow_config(tmp_path)
    watcher = start_watch(
        inbox, tmp_path, "-m", EXAMPLE_MAPPING, "--base-url", server.base_url, "--config", cfg
    )
    pid_file: list[Path] = []
    try:
        wait_for(
            lambda: bool(pid_file.extend((inbox / "processing").glob("*/child.pid")) or pid_file), what="run"
        )
        wait_for(lambda: len(server.state.writes) >= 100, what="some records synced")
        child = int(pid_file[0].read_text())
        watcher.kill()  # a power cut: the watcher and its run die at once
        os.kill(child, signal.SIGKILL)
        watcher.wait(10)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    written_before = sum(server.state.writes.values())
    assert 100 <= written_before < 600
    assert files(inbox / "done") == [] and len(files(inbox / "processing")) == 1  # left mid-way
    server.sandbox.faults.latency = 0.0  # the resumed run: at once (the crash is what is tested)
    again = cli_run(
        watch_argv(inbox, "--once", "-m", EXAMPLE_MAPPING, "--base-url", server.base_url, "--config", cfg),
        capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=180,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    report = read_report(next((inbox / "done").glob("big-*-report.csv")))
    assert len(report) == 600 and {r["status"] for r in report} <= {"synced", "unchanged"}
    assert len(server.state.records) == 600  # nothing lost
    resent = sum(server.state.writes.values()) - 600
    assert resent <= 2 * 10  # at most the batches in flight at the kill (concurrency 2 x batch 10)
    assert files(inbox / "processing") == []


@pytest.mark.slow
def test_names_never_collide_and_links_out_are_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    server = sandbox()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    outside = valid_csv(tmp_path / "secret.csv")
    for round_ in range(2):  # the same name dropped twice, in the same second if the machine is fast
        dropped_earlier(valid_csv(inbox / "daily.csv", prefix=f"R{round_}"))
        if round_ == 0:
            (inbox / "link.csv").symlink_to(outside)
        proc = cli_run(
            watch_argv(inbox, "--once", "-m", EXAMPLE_MAPPING, "--base-url", server.base_url),
            capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=120,
        )  # fmt: skip
        assert proc.returncode == (1 if round_ == 0 else 0), proc.stdout + proc.stderr
    inputs = [n for n in files(inbox / "done") if n.startswith("daily-") and n.count("-report") == 0]
    inputs = [n for n in inputs if n.endswith(".csv") and not n.endswith("summary.json")]
    assert len(inputs) == 2 and len(set(inputs)) == 2
    assert len(files(inbox / "done", "-report.csv")) == 2
    refused = next((inbox / "failed").glob("link-*-error.txt")).read_text()
    assert "outside the inbox" in refused
    assert outside.exists() and len(server.state.records) == 110


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('[[watch.routes]]\nmapping = "m.yaml"\n', "needs `match` and `mapping`"),
        ("[watch]\nsettle = 3\n", "settle: unknown key"),
    ],
)
def test_bad_watch_config(tmp_path: Path, config: str, message: str) -> None:
    (tmp_path / "inbox").mkdir()
    cfg = tmp_path / "c.toml"
    cfg.write_text(config)
    proc = cli_run(
        cli_argv("watch", tmp_path / "inbox", "--once", "--config", cfg),
        capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
