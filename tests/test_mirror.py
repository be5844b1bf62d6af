"""Issue 19, parts 2 and 4: --mirror (soft-delete what the CRM deleted, guarded) and the predicted
effect of a dry run, through the real CLI against the sandbox over real HTTP. Issue 34: the window is
declared (--window, or a profile's relative mirror_window), never read from the rows, and a file that
looks cut short is held as truncated."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from helpers import EXAMPLE_MAPPING, CliResult, appointments

from bulk_sync.errors import UsageError
from bulk_sync.pipeline.mirror import parse_window
from bulk_sync.sandbox import SandboxServer
from bulk_sync.watch import job_name

MARCH = "2026-03-01..2026-03-31"  # the window the nightly export of March is declared to cover


def mirror_run(
    run_cli: Callable[..., CliResult],
    server: SandboxServer,
    data: Path,
    state: Path,
    *extra: str,
    window: str | None = MARCH,
) -> CliResult:
    declared = ("--window", window) if window else ()
    return run_cli(
        "run", data, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url, "--state", state,
        "--no-rep-check", "--mirror", *declared, *extra,
    )  # fmt: skip


@pytest.mark.slow
def test_mirror_soft_deletes_what_the_crm_deleted_and_lists_it(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite3"
    first = mirror_run(run_cli, siro, appointments(tmp_path / "day1.csv", list(range(20))), state)
    assert first.code == 0, first.stderr
    assert "mirror: soft-deleted 0 records" in first.stdout
    assert len(siro.state.soft_delete_calls) == 1 and not siro.state.soft_deleted
    # the next night the CRM no longer has APT-00007 (1 of 20: 5 %, under the 10 % guard)
    summary = tmp_path / "s.json"
    second = mirror_run(
        run_cli, siro, appointments(tmp_path / "day2.csv", [n for n in range(20) if n != 7]), state,
        "--summary-json", summary,
    )  # fmt: skip
    assert second.code == 0, second.stderr
    assert set(siro.state.soft_deleted) == {"APT-00007"}
    body = siro.state.soft_delete_calls[-1]
    assert "APT-00007" not in body["validExternalIds"] and len(body["validExternalIds"]) == 19
    assert body["fromTime"] == "2026-03-01T00:00:00Z" and body["toTime"] == "2026-03-31T23:59:59Z"
    listing = tmp_path / "report-mirror.csv"
    with listing.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["external_id"] for r in rows] == ["APT-00007"] and rows[0]["action"] == "soft-deleted"
    data = json.loads(summary.read_text())
    assert (
        data["mirror"]["removed"] == 1
        and data["mirror"]["window"] == "2026-03-01T00:00:00Z..2026-03-31T23:59:59Z"
    )
    # the state forgot it: should the CRM list it again, it is new and sent
    third = mirror_run(run_cli, siro, appointments(tmp_path / "day3.csv", list(range(20))), state)
    assert third.code == 0
    assert [r["status"] for r in third.report].count("synced") == 1


@pytest.mark.slow
def test_mirror_holds_when_too_much_would_go_and_sends_nothing(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite3"
    assert mirror_run(run_cli, siro, appointments(tmp_path / "a.csv", list(range(20))), state).code == 0
    requests = siro.state.requests
    half_empty = appointments(tmp_path / "b.csv", list(range(17)))  # 3 of 20 gone: 15 %
    r = mirror_run(run_cli, siro, half_empty, state)
    assert r.code == 2
    assert "mirror held: 3 of the 20 records synced earlier" in r.stderr
    assert "--mirror-max-removed 10%" in r.stderr
    assert siro.state.requests == requests and len(siro.state.soft_delete_calls) == 1  # nothing more
    # accepted on purpose: a larger share
    r2 = mirror_run(run_cli, siro, half_empty, state, "--mirror-max-removed", "20%")
    assert r2.code == 0 and len(siro.state.soft_deleted) == 3


def test_mirror_holds_a_window_wider_than_the_limit(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    data = appointments(tmp_path / "a.csv", [0, 1], spread=2, day0=1)
    r = mirror_run(run_cli, siro, data, tmp_path / "s.sqlite3", window="2026-03-01..2026-06-02")
    assert r.code == 2 and "spans 94.0 days, more than --mirror-max-days 62" in r.stderr
    assert siro.state.requests == 0


@pytest.mark.slow
def test_mirror_deletes_nothing_after_a_run_with_invalid_rows(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite3"
    assert mirror_run(run_cli, siro, appointments(tmp_path / "a.csv", list(range(20))), state).code == 0
    r = mirror_run(
        run_cli,
        siro,
        appointments(tmp_path / "b.csv", [n for n in range(20) if n != 12], bad=frozenset({3})),
        state,
    )
    assert r.code == 2
    assert "mirror held: not every row synced (1 invalid); nothing was deleted" in r.stderr
    assert len(siro.state.soft_delete_calls) == 1 and not siro.state.soft_deleted
    assert [row["status"] for row in r.report].count("invalid") == 1  # the sync itself ran


def test_mirror_needs_the_state(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    r = run_cli(
        "run", appointments(tmp_path / "a.csv", [1, 2]), "--mapping", EXAMPLE_MAPPING, "--base-url",
        siro.base_url, "--no-state", "--no-rep-check", "--mirror",
    )  # fmt: skip
    assert r.code == 2 and "mirror held: it needs the state file" in r.stderr
    assert siro.state.requests == 0


@pytest.mark.slow
def test_a_dry_run_predicts_the_effect_and_what_the_mirror_would_remove(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite3"
    assert mirror_run(run_cli, siro, appointments(tmp_path / "a.csv", list(range(20))), state).code == 0
    calls = (siro.state.requests, len(siro.state.soft_delete_calls))
    nightly = appointments(tmp_path / "b.csv", [n for n in range(21) if n != 2])  # 2 gone, 20 new
    nightly.write_text(nightly.read_text().replace("Visit 9,", "Visit nine,"))  # 9 changed
    summary = tmp_path / "s.json"
    r = run_cli(
        "validate", nightly, "--mapping", EXAMPLE_MAPPING, "--state", state, "--mirror", "--window", MARCH,
        "--base-url", siro.base_url, "--no-rep-check", "--summary-json", summary,
    )  # fmt: skip
    assert r.code == 0, r.stderr
    assert (siro.state.requests, len(siro.state.soft_delete_calls)) == calls  # nothing sent
    effect = ["1 new", "1 changed", "18 unchanged", "0 invalid", "1 removed (--mirror)"]
    assert f"predicted effect of a run (per the state file {state}): " + ", ".join(effect) in r.stdout
    assert "mirror: would soft-delete 1 record with a start in" in r.stdout and "APT-00002" in r.stdout
    data = json.loads(summary.read_text())
    assert data["predicted"] == {"new": 1, "changed": 1, "unchanged": 18, "invalid": 0}
    assert data["predicted_from"] == str(state)  # the state file it read (issue 34)
    assert data["mirror"]["would_remove"] == 1 and data["mirror"]["dry_run"] is True
    notes = {row["external_id"]: (row["status"], row["message"]) for row in r.report}
    assert notes["APT-00020"] == ("valid", "new: a run would send it (it is not in the state file)")
    assert notes["APT-00009"][1].startswith("changed since the last sync")
    assert notes["APT-00001"][0] == "unchanged"


def test_mirror_without_a_declared_window_is_refused_showing_the_files_span(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    r = mirror_run(
        run_cli, siro, appointments(tmp_path / "a.csv", list(range(10))), tmp_path / "s", window=None
    )
    assert r.code == 2
    assert "--mirror deletes only inside a window someone declared" in r.stderr
    assert "the files cover start times 2026-03-02T15:00:00Z..2026-03-06T15:00:00Z" in r.stderr
    assert "pass --window 2026-03-02..2026-03-06" in r.stderr and 'mirror_window = "-7d..+30d"' in r.stderr
    assert siro.state.requests == 0 and not siro.state.soft_delete_calls  # nothing sent, nothing deleted


@pytest.mark.slow
def test_a_file_cut_short_is_held_as_truncated_whatever_its_share(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    """Issue 34: a nightly export sorted by start and cut short (a report that timed out) lacks the
    window's tail. Its last two appointments share a start; the cut one is 1 of 20 (5 %, under the 10 %
    guard), and every record it would remove starts at or after its last row: held as truncated."""
    state = tmp_path / "state.sqlite3"

    def day_of(n: int) -> dt.date:
        return dt.date(2026, 3, 2 + min(n, 18))  # APT-00018 and APT-00019 both on 20 March

    assert (
        mirror_run(
            run_cli, siro, appointments(tmp_path / "a.csv", list(range(20)), day_of=day_of), state
        ).code
        == 0
    )
    requests = siro.state.requests
    cut = appointments(tmp_path / "b.csv", list(range(19)), day_of=day_of)
    r = mirror_run(run_cli, siro, cut, state)
    assert r.code == 2, r.stderr
    assert "mirror held: the file looks cut short: it stops at 2026-03-20T14:00:00Z" in r.stderr
    assert "SIRO holds 1 record at or after it in the window" in r.stderr
    assert "the first at 2026-03-20T14:00:00Z (APT-00019)" in r.stderr and "--accept-truncation" in r.stderr
    assert siro.state.requests == requests and not siro.state.soft_deleted  # held before anything
    accepted = mirror_run(run_cli, siro, cut, state, "--accept-truncation")
    assert accepted.code == 0, accepted.stderr
    assert set(siro.state.soft_deleted) == {"APT-00019"}
    assert "of the 20 records synced earlier in it, 1 is not listed" in accepted.stdout  # singular


@pytest.mark.slow
def test_a_profile_declares_a_relative_window_resolved_at_the_start_of_the_run(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    chicago = ZoneInfo("America/Chicago")
    today = dt.datetime.now(chicago).date()
    config = tmp_path / "bulk_sync.toml"
    config.write_text('[profiles.nightly]\nmirror = true\nmirror_window = "-7d..+30d"\nno_rep_check = true\n')
    data = appointments(tmp_path / "a.csv", list(range(10)), day_of=lambda n: today + dt.timedelta(days=n))
    r = run_cli(
        "run", data, "--mapping", EXAMPLE_MAPPING, "--base-url", siro.base_url, "--state", tmp_path / "s",
        "--config", config, "--profile", "nightly",
    )  # fmt: skip
    assert r.code == 0, r.stderr
    low = dt.datetime.combine(today - dt.timedelta(days=7), dt.time(0), tzinfo=chicago).astimezone(dt.UTC)
    end = dt.datetime.combine(today + dt.timedelta(days=31), dt.time(0), tzinfo=chicago).astimezone(dt.UTC)
    window = f"{low:%Y-%m-%dT%H:%M:%SZ}..{end - dt.timedelta(seconds=1):%Y-%m-%dT%H:%M:%SZ}"
    assert (
        f"mirror: the window -7d..+30d (America/Chicago, resolved at the start of this run) is {window}"
        in r.stdout
    )
    body = siro.state.soft_delete_calls[-1]
    assert f"{body['fromTime']}..{body['toTime']}" == window
    # the profile's window is a default: a profile with a window and no `mirror = true` runs without
    # --mirror, and is not told that --window needs --mirror (the flag on the command line is)
    config.write_text(
        config.read_text() + '[profiles.check]\nmirror_window = "-7d..+30d"\nno_rep_check = true\n'
    )
    plain = run_cli("validate", data, "--mapping", EXAMPLE_MAPPING, "--config", config, "--profile", "check")
    assert plain.code == 0, plain.stderr
    flag = run_cli("validate", data, "--mapping", EXAMPLE_MAPPING, "--window=-7d..+30d")
    assert flag.code == 2 and "--window needs --mirror" in flag.stderr


def test_a_watch_folder_drop_renamed_accept_truncation_is_the_same_job() -> None:
    assert job_name("appointments-2026-11-30 accept-truncation.csv") == job_name(
        "appointments-2026-11-30.csv"
    )


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("2026-03-01..2026-03-31", ("2026-03-01T00:00:00Z", "2026-03-31T23:59:59Z")),
        ("2026-03-01T08:00:00+02:00..2026-03-02T00:00:00Z", ("2026-03-01T06:00:00Z", "2026-03-02T00:00:00Z")),
    ],
)
def test_window_texts(text: str, window: tuple[str, str]) -> None:
    assert parse_window(text) == window


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2026-03-01", "expected FROM..TO"),
        ("-7w..+30d", "or relative"),
        ("2026-03-01T08:00..2026-03-02", "has no zone"),
        ("2026-03-05..2026-03-01", "end is before its start"),
        ("March..April", "is not a date"),
    ],
)
def test_bad_windows_say_what_to_write(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        parse_window(text)


@pytest.mark.slow
def test_delete_by_external_id_asks_first_then_deletes_and_the_state_forgets(
    run_cli: Callable[..., CliResult], siro: SandboxServer, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite3"
    assert mirror_run(run_cli, siro, appointments(tmp_path / "a.csv", list(range(5))), state).code == 0
    ids = tmp_path / "gone.txt"
    ids.write_text("APT-00001\nAPT-00003\n\nAPT-99999\n")
    common = ("--external-ids", ids, "--base-url", siro.base_url, "--state", state)
    asked = run_cli("delete", *common)  # no --yes, and no terminal to ask on
    assert asked.code == 2 and "pass --yes to confirm" in asked.stderr
    assert not siro.state.deleted
    r = run_cli("delete", *common, "--yes")
    assert r.code == 0, r.stderr
    assert "deleted 2, not found 1, failed 0 (of 3)" in r.stdout and "not found: APT-99999" in r.stdout
    assert siro.state.deleted == ["APT-00001", "APT-00003"]
    again = mirror_run(run_cli, siro, appointments(tmp_path / "b.csv", list(range(5))), state)
    assert [row["status"] for row in again.report].count("synced") == 2  # forgotten: sent as new
