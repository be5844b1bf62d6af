"""Issue 33, one watcher per inbox: a second `bulk-sync watch` on the same inbox exits 2 with one
line naming the first one's pid and touches nothing; the lock dies with its watcher, however it
dies. Real watcher processes, real runs against the sandbox on 127.0.0.1."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from helpers import (
    EXAMPLE_MAPPING,
    Sandbox,
    cli_env,
    cli_run,
    dropped_earlier,
    files,
    start_watch,
    valid_csv,
    wait_for,
    watch_argv,
)

from bulk_sync.inbox import LOCK_NAME
from bulk_sync.report import read_report
from bulk_sync.sandbox import Faults


@pytest.mark.slow
def test_a_second_watcher_on_the_same_inbox_exits_2_naming_the_first(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    server = sandbox(Faults(latency=0.3))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    dropped_earlier(valid_csv(inbox / "a.csv", rows=200))
    slow = tmp_path / "slow.toml"
    slow.write_text("[profiles.default]\nbatch_size = 10\nconcurrency = 2\n")
    common = ("-m", EXAMPLE_MAPPING, "--base-url", server.base_url, "--config", slow)
    first = start_watch(inbox, tmp_path, *common)
    try:
        wait_for(lambda: any((inbox / "processing").glob("*/child.pid")), what="the first watcher's run")
        dropped_earlier(valid_csv(inbox / "b.csv", rows=5, prefix="B"))  # the second would take this one
        second = cli_run(
            watch_argv(inbox, *common),
            capture_output=True,
            text=True,
            env=cli_env(),
            cwd=tmp_path,
            timeout=60,
        )
        assert second.returncode == 2
        assert second.stderr.startswith(f"error: the inbox {inbox} is already watched by another bulk-sync ")
        assert f"(pid {first.pid}, started " in second.stderr and "stop that one first" in second.stderr
        assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr + second.stdout
        assert len(files(inbox / "processing")) == 1  # the first watcher's file only
        assert (inbox / "b.csv").exists()
        server.sandbox.faults.latency = 0.0  # refused while the first ran: now both files at once
        wait_for(lambda: len(files(inbox / "done", "-report.csv")) == 2, timeout=120, what="both files filed")
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 0
    finally:
        if first.poll() is None:
            first.kill()
    assert files(inbox / "processing") == [] and files(inbox / "failed") == []
    rows = [r for p in (inbox / "done").glob("*-report.csv") for r in read_report(p)]
    assert len(rows) == 205 and {r["status"] for r in rows} == {"synced"}
    assert not (inbox / LOCK_NAME).exists()  # a watcher that stops cleanly leaves no lock file


@pytest.mark.slow
def test_the_lock_dies_with_a_killed_watcher(sandbox: Sandbox, tmp_path: Path) -> None:
    server = sandbox()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    common = ("-m", EXAMPLE_MAPPING, "--base-url", server.base_url)
    first = start_watch(inbox, tmp_path, *common)
    try:
        wait_for(lambda: (inbox / "processing").exists(), what="the watcher to start")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    assert (inbox / LOCK_NAME).exists()  # left behind by kill -9: it holds no lock any more
    dropped_earlier(valid_csv(inbox / "c.csv", rows=3, prefix="C"))
    again = cli_run(
        watch_argv(inbox, "--once", *common),
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
        timeout=120,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(files(inbox / "done", "-report.csv")) == 1 and files(inbox / "processing") == []
