"""The watcher's child: each dropped file's job handed over as a JobSpec (JSON on the child's stdin)
that says where the token is, never the token; `run`'s flags for every route checked once, when
the watcher starts."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, TOKEN, cli_argv, cli_env, cli_run

from bulk_sync.inbox import Route, WatchConfig
from bulk_sync.job.spec import JobSpec
from bulk_sync.sandbox import SandboxServer
from bulk_sync.watch import Watcher

SECRET = "secret-token-9d8c7b6a5f4e3d2c1b0a"


def watcher_with_a_recording_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Watcher, Path]:
    """A watcher whose jobs are made by the CLI as `watch` makes them, whose child only keeps what
    it was handed (in ``handed``) and exits 0."""
    from bulk_sync.cli.watching import route_jobs

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BULK_SYNC_CONFIG", raising=False)
    monkeypatch.setenv("SIRO_API_TOKEN", SECRET)
    routes = [Route("*", str(EXAMPLE_MAPPING))]
    jobs = route_jobs(routes, None, None, ["--base-url", "https://siro.example"])
    handed = tmp_path / "handed.json"
    keep = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_bytes(sys.stdin.buffer.read())"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    cfg = WatchConfig(inbox=inbox, routes=routes, settle=0.0, poll=0.1, review_url="http://127.0.0.1:8765")
    return Watcher(cfg, jobs, [sys.executable, "-c", keep, str(handed)], say=lambda m: None), handed


def test_the_job_handed_to_a_child_names_where_the_token_is_never_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher, handed = watcher_with_a_recording_child(tmp_path, monkeypatch)
    shutil.copy(EXAMPLE_CSV, watcher.inbox / "appointments-2026-03-01.csv")
    assert watcher.run_once() == 1
    text = handed.read_text(encoding="utf-8")
    assert SECRET not in text
    job = JobSpec.from_json(text)
    assert job.target.token_env == "SIRO_API_TOKEN" and job.target.token_file is None
    assert job.target.base_url == "https://siro.example"
    assert job.mapping == str(EXAMPLE_MAPPING)
    (path,) = job.files
    assert Path(path).name == "appointments-2026-03-01.csv" and "processing" in Path(path).parts
    assert job.guards.job == "watch:*:appointments-#-#-#.csv" and not job.guards.accept_drift
    assert job.outputs.xlsx and Path(str(job.outputs.report)).name == "report.csv"
    assert str(job.outputs.review_url).startswith("http://127.0.0.1:8765/runs/by-watch/")
    assert job.wait_lock > 0
    for p in tmp_path.rglob("*"):  # nothing the watcher wrote holds the token
        assert not p.is_file() or SECRET.encode() not in p.read_bytes(), p


@pytest.mark.parametrize(
    ("name", "job", "accept_drift"),
    [
        ("export accept-drift.csv", "watch:*:export.csv", True),
        ("export-fixed-20260101-000000.csv", None, False),  # rows fixed on the review page: no drift check
    ],
)
def test_a_drops_name_says_what_its_job_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, job: str | None, accept_drift: bool
) -> None:
    watcher, handed = watcher_with_a_recording_child(tmp_path, monkeypatch)
    shutil.copy(EXAMPLE_CSV, watcher.inbox / name)
    watcher.run_once()
    spec = JobSpec.from_json(handed.read_text(encoding="utf-8"))
    assert (spec.guards.job, spec.guards.accept_drift) == (job, accept_drift)


@pytest.mark.parametrize(
    ("profile", "said"),
    [
        ("require_known_reps = true\nno_rep_check = true\n", "exclude each other"),
        ('mirror = true\nmirror_window = "-1d..+1d"\nmirror_max_removed = "200%"\n', "--mirror-max-removed"),
        ('max_failures = "lots"\n', "max-failures"),
    ],
)
def test_a_setting_no_run_takes_stops_the_watcher_at_start(tmp_path: Path, profile: str, said: str) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(EXAMPLE_CSV, inbox / "drop.csv")
    config = tmp_path / "bulk_sync.toml"
    config.write_text("[profiles.default]\n" + profile)
    res = cli_run(
        cli_argv("watch", inbox, "--once", "-m", EXAMPLE_MAPPING, "--config", config),
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert res.returncode == 2, res.stdout + res.stderr
    assert said in res.stderr
    assert (inbox / "drop.csv").exists() and not (inbox / "failed").exists()  # nothing was taken


@pytest.mark.slow
def test_a_watched_file_is_synced_with_the_token_of_the_environment_and_nothing_keeps_it(
    sandbox: object, tmp_path: Path
) -> None:
    server: SandboxServer = sandbox()  # type: ignore[operator]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(EXAMPLE_CSV, inbox / "drop.csv")
    res = cli_run(
        cli_argv(
            "watch", inbox, "--once", "--settle", "0.2", "-m", EXAMPLE_MAPPING, "--base-url", server.base_url
        ),
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert res.returncode == 1, res.stdout + res.stderr  # the example's 5 invalid rows: failed/
    assert len(server.state.records) == 55  # sent with $SIRO_API_TOKEN, read by the child
    assert TOKEN not in res.stdout + res.stderr
    for p in tmp_path.rglob("*"):
        assert not p.is_file() or TOKEN.encode() not in p.read_bytes(), p
