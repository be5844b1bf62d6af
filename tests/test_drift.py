"""Issue 19, part 3: the drift hold for scheduled runs, through the real CLI against the sandbox: each
kind of drift holds the run (exit 2, nothing sent) naming it; --accept-drift (or dropping the file
again with `accept-drift` at the end of its name) sends it and makes it the new normal."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import EXAMPLE_MAPPING, HEADER, CliResult, cli_env, cli_run, dropped_earlier, files, watch_argv

from bulk_sync.sandbox import SandboxServer
from bulk_sync.watch import job_name

pytestmark = pytest.mark.slow  # each test runs the real CLI or the watcher, several times


def export(
    path: Path,
    n: int,
    *,
    start: str = "03/{d:02d}/2026 09:00 AM",
    activity: Callable[[int], str] | None = None,
    header: list[str] | None = None,
) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, header or HEADER)
        out.writeheader()
        for i in range(n):
            row = {
                "Appointment ID": f"D-{i:05d}",
                "Subject": f"Visit {i}",
                "Appointment Type": "Visit",
                "Activity": activity(i) if activity else "Appointment",
                "Start": start.format(d=13 + i % 10),
                "Rep ID": "U-1",
                "Rep Email": "dana@example.com",
            }
            out.writerow({k: v for k, v in row.items() if k in out.fieldnames})
    return path


def nightly(
    run_cli: Callable[..., CliResult], siro: SandboxServer, data: Path, state: Path, *extra: str | Path
) -> CliResult:
    """`run` as the nightly job; ``extra`` may start with another mapping."""
    mapping: str | Path = EXAMPLE_MAPPING
    if extra and str(extra[0]).endswith(".yaml"):
        mapping, extra = extra[0], extra[1:]
    return run_cli(
        "run", data, "--mapping", mapping, "--base-url", siro.base_url, "--state", state, "--no-rep-check",
        "--job", "nightly", *extra,
    )  # fmt: skip


def test_a_half_empty_export_is_held_until_accepted(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite3"
    first = nightly(run_cli, siro, export(tmp_path / "a.csv", 20), state)
    assert first.code == 0 and "the first run of the job 'nightly'" in first.stdout
    sent = siro.state.requests
    small = export(tmp_path / "b.csv", 8)
    held = nightly(run_cli, siro, small, state)
    assert held.code == 2
    assert "drift held: the file is not shaped like the last good run of the job 'nightly'" in held.stderr
    assert "8 rows, fewer than half of the last good run's 20" in held.stderr
    assert "--accept-drift" in held.stderr and siro.state.requests == sent  # nothing sent
    accepted = nightly(run_cli, siro, small, state, "--accept-drift")
    assert accepted.code == 0 and "drift accepted" in accepted.stdout
    assert nightly(run_cli, siro, export(tmp_path / "c.csv", 8), state).code == 0  # the new normal


def test_a_profile_jobs_drift_hold_gives_a_profile_jobs_advice(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    """Issue 34: a scheduled run of a profile is not a watch folder's drop: no file name to change."""
    config = tmp_path / "bulk_sync.toml"
    config.write_text(f'[profiles.nightly]\nstate = "{tmp_path / "s.sqlite3"}"\nno_rep_check = true\n')
    common = (
        "--mapping",
        EXAMPLE_MAPPING,
        "--base-url",
        siro.base_url,
        "--config",
        config,
        "--profile",
        "nightly",
    )
    assert run_cli("run", export(tmp_path / "a.csv", 20), *common).code == 0
    held = run_cli("run", export(tmp_path / "b.csv", 8), *common)
    assert held.code == 2 and "drift held" in held.stderr
    assert "`bulk-sync run FILE --profile nightly --accept-drift`" in held.stderr
    assert "at the end of its name" not in held.stderr


def test_an_optional_column_gone_is_held(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    mapping = tmp_path / "m.yaml"
    text = EXAMPLE_MAPPING.read_text(encoding="utf-8")
    mapping.write_text(text.replace("  subject: Subject\n", "  subject: {column: Subject, optional: true}\n"))
    state = tmp_path / "state.sqlite3"
    assert nightly(run_cli, siro, export(tmp_path / "a.csv", 10), state, mapping).code == 0
    renamed = [("Title" if h == "Subject" else h) for h in HEADER]
    r = nightly(run_cli, siro, export(tmp_path / "b.csv", 10, header=renamed), state, mapping)
    assert r.code == 2 and "the column 'Subject' is gone (new columns: 'Title')" in r.stderr


def test_dates_turning_day_first_are_held(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite3"
    assert nightly(run_cli, siro, export(tmp_path / "a.csv", 10), state).code == 0  # 03/13/2026: month first
    r = nightly(run_cli, siro, export(tmp_path / "b.csv", 10, start="{d:02d}/03/2026 09:00 AM"), state)
    assert r.code == 2 and "the dates in 'Start' are now day-first (they were month-first)" in r.stderr
    assert siro.state.requests == 1  # the first run's one batch only


def test_a_new_enum_value_on_many_rows_is_held(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite3"
    assert nightly(run_cli, siro, export(tmp_path / "a.csv", 20), state).code == 0
    few = export(
        tmp_path / "b.csv", 20, activity=lambda i: "Meeting" if i == 0 else "Appointment"
    )  # 5 %: fine
    assert nightly(run_cli, siro, few, state).code == 0
    many = export(tmp_path / "c.csv", 20, activity=lambda i: "Webinar" if i % 3 == 0 else "Appointment")
    r = nightly(run_cli, siro, many, state)
    assert (
        r.code == 2
        and "'Activity' has values the last good run did not, on 35% of the rows: 'Webinar' (7)" in r.stderr
    )


def test_an_ad_hoc_run_has_no_drift_check(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite3"
    common = ("--mapping", EXAMPLE_MAPPING, "--base-url", siro.base_url, "--state", state, "--no-rep-check")
    assert run_cli("run", export(tmp_path / "a.csv", 20), *common).code == 0
    assert run_cli("run", export(tmp_path / "b.csv", 2), *common).code == 0  # no job: not compared


@pytest.mark.slow
def test_the_watch_folder_files_a_drifted_drop_in_failed_and_takes_it_again_accepted(
    siro: SandboxServer, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = tmp_path / "bulk_sync.toml"
    config.write_text(f'[profiles.default]\nstate = "{tmp_path / "state.sqlite3"}"\nno_rep_check = true\n'
                      f'[[watch.routes]]\nmatch = "*.csv"\nmapping = "{EXAMPLE_MAPPING}"\n')  # fmt: skip

    def once() -> None:
        cli_run(
            watch_argv(inbox, "--once", "--base-url", siro.base_url, "--config", config),
            capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=120,
        )  # fmt: skip

    dropped_earlier(export(inbox / "appointments.csv", 20))
    once()
    assert len(files(inbox / "done", ".csv")) == 2
    dropped_earlier(export(inbox / "appointments.csv", 5))
    once()
    why = next((inbox / "failed").glob("appointments-*-error.txt")).read_text()
    assert "drift held" in why and "5 rows, fewer than half of the last good run's 20" in why
    assert "drop the file again with `accept-drift` at the end of its name" in why  # a watch folder's advice
    dropped_earlier(export(inbox / "appointments accept-drift.csv", 5))
    once()
    assert any(n.startswith("appointments accept-drift-") for n in files(inbox / "done", ".csv"))
    assert job_name("appointments accept-drift.csv") == "appointments.csv"  # the same job, accepted
    assert job_name("appointments-2026-11-30.csv") == job_name("appointments-2026-12-01.csv")
