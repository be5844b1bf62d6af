"""Issue 19, part 1: the rep check and the match forecast, against the sandbox over real HTTP.

SIRO's users are fetched once a run (every page of GET /v1/core/users); a row none of whose
engagement users is an active SIRO user (by email, case-insensitive) gets a matching-warning naming
the email, or with --require-known-reps is invalid (unknown-rep) and never sent.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, TOKEN, CliResult

from bulk_sync.forecast import Forecast
from bulk_sync.notes import CannotMatch, EndBeforeStart, NoEngagementUser, RowWarnings, UnknownReps
from bulk_sync.pipeline.reps import RepCheck, rep_reason
from bulk_sync.sandbox import Faults, SandboxServer, user_record

KNOWN = ["Dana.Whitfield@BrightRoof.com", "marcus.ochoa@brightroof.com"]  # case differs on purpose
DISABLED = "priya.raman@brightroof.com"  # a SIRO user, but disabled: not a match
# tom.becker@brightroof.com is not a SIRO user at all


def siro_users() -> list[dict[str, object]]:
    """250 users (three pages of 100): filler, the known reps, and a disabled one."""
    users = [user_record(f"user{n}@elsewhere.example", n=n) for n in range(246)]
    users += [user_record(e, n=300 + k) for k, e in enumerate(KNOWN)]
    users.append(user_record(DISABLED, disabled=True, n=400))
    users.append(user_record("nobody.else@brightroof.com", n=401))
    return users


def start(faults: Faults | None = None, users: list[dict[str, object]] | None = None) -> SandboxServer:
    return SandboxServer(TOKEN, faults or Faults(users_page=100), users=users).start()


def rows_without_a_known_rep() -> dict[str, set[str]]:
    """Appointment ID -> the unknown emails, for the example's rows with no known rep."""
    known = {e.lower() for e in KNOWN}
    out = {}
    with EXAMPLE_CSV.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        emails = {e for e in (row["Rep Email"], row["Co-Rep Email"]) if e}
        if not emails & known:
            out[row["Appointment ID"]] = emails
    return out


def test_validate_checks_every_rep_against_every_page_of_siro_users(
    run_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    server = start(users=siro_users())
    try:
        summary = tmp_path / "summary.json"
        r = run_cli(
            "validate", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url,
            "--summary-json", summary,
        )  # fmt: skip
        state = server.state
    finally:
        server.stop()
    assert state.calls["users"] == 3  # one fetch: three pages of 100, 100, 50
    assert state.requests == 0  # validate sends nothing
    assert "checked against 249 active SIRO users (250 users in all)" in r.stdout
    valid = {row["external_id"] for row in r.report if row["status"] == "valid"}
    expected = {ext: emails for ext, emails in rows_without_a_known_rep().items() if ext in valid}
    assert len(expected) >= 10  # the example has such rows (tom's and priya's alone)
    flagged = {
        row["external_id"]: row["warning"]
        for row in r.report
        if "not a SIRO user" in row["warning"] or "disabled SIRO user" in row["warning"]
    }
    assert set(flagged) == set(expected)
    for ext, warning in flagged.items():
        assert warning.startswith("matching-warning: SIRO cannot match recordings to it")
        for email in expected[ext]:
            # a disabled user is told from a missing one, each with its own fix (issue 34)
            if email == DISABLED:
                assert f"{email} is a disabled SIRO user" in warning and "re-enable them in SIRO" in warning
            else:
                assert email in warning and "not a SIRO user" in warning
        assert "rows with this rep will not match recordings" in warning or "these reps" in warning
    # a row with a known rep (dana, whose email SIRO has in other case) carries no rep reason
    dana = next(row for row in r.report if row["external_id"] == "APT-24001")
    assert "not a SIRO user" not in dana["warning"]
    data = json.loads(summary.read_text())["forecast"]
    assert data["rows"] == len(valid)
    missing = sum(1 for emails in expected.values() if emails - {DISABLED})
    disabled = sum(1 for emails in expected.values() if DISABLED in emails)
    assert missing and disabled
    assert data["reasons"]["rep is not a SIRO user"] == missing
    assert data["reasons"]["rep is a disabled SIRO user"] == disabled
    assert set(data["unknown_reps"]) == {"tom.becker@brightroof.com", DISABLED}
    assert data["reps"]["tom.becker@brightroof.com"]["status"] == "missing"
    assert data["reps"][DISABLED] == {"status": "disabled", "rows": disabled}
    assert data["matchable"] == sum(1 for row in r.report if row["status"] == "valid" and not row["warning"])
    assert "match forecast:" in r.stdout and "by rep: " in r.stdout
    assert f"{DISABLED} (a disabled SIRO user, {disabled})" in r.stdout
    assert "tom.becker@brightroof.com (not a SIRO user, " in r.stdout
    assert f"rep is a disabled SIRO user ({disabled})" in r.stdout


@pytest.mark.slow
def test_require_known_reps_makes_those_rows_invalid_and_sends_the_rest(
    run_cli: Callable[..., CliResult],
) -> None:
    server = start(users=siro_users())
    try:
        r = run_cli(
            "run", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url, "--no-state",
            "--require-known-reps",
        )  # fmt: skip
        records = dict(server.state.records)
    finally:
        server.stop()
    assert r.code == 1
    unknown = {row["external_id"]: row for row in r.report if row["error_type"] == "unknown-rep"}
    invalid_anyway = {row["external_id"] for row in r.report if row["status"] == "invalid"} - set(unknown)
    expected = {e: v for e, v in rows_without_a_known_rep().items() if e not in invalid_anyway}
    assert set(unknown) == set(expected)
    for ext, row in unknown.items():
        assert row["status"] == "invalid" and row["column"] == "Rep Email"
        assert ext not in records  # never sent
        # the error names which: a disabled SIRO user, or none at all (issue 34)
        if expected[ext] == {DISABLED}:
            assert row["message"].startswith(f"{DISABLED} is a disabled SIRO user: re-enable them in SIRO")
        if "tom.becker@brightroof.com" in expected[ext]:
            assert "tom.becker@brightroof.com is not a SIRO user" in row["message"]
    assert any(v == {DISABLED} for v in expected.values())
    synced = {row["external_id"] for row in r.report if row["status"] == "synced"}
    assert synced and synced == set(records)


def test_validate_without_a_token_says_the_rep_check_was_skipped(run_cli: Callable[..., CliResult]) -> None:
    r = run_cli(
        "validate", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--base-url", "http://127.0.0.1:9", token=None
    )
    assert r.code == 1  # the example's invalid rows, as always
    assert "reps: not checked: no API token" in r.stdout
    assert not [row for row in r.report if "not a SIRO user" in row["warning"]]


@pytest.mark.slow
def test_users_that_cannot_be_fetched_skip_the_check_or_with_require_stop_the_run(
    run_cli: Callable[..., CliResult],
) -> None:
    server = start(users=None)  # the sandbox without users answers 404
    try:
        r = run_cli(
            "run", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url, "--no-state"
        )
        assert r.code == 1 and sum(row["status"] == "synced" for row in r.report) == 55
        assert "warning: reps not checked: SIRO's users could not be fetched (HTTP 404" in r.stderr
        before = server.state.requests
        r2 = run_cli(
            "run", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url, "--no-state",
            "--require-known-reps",
        )  # fmt: skip
        assert r2.code == 2
        assert "--require-known-reps: SIRO's users could not be fetched" in r2.stderr
        assert server.state.requests == before  # nothing sent
    finally:
        server.stop()


@pytest.mark.slow
def test_a_wrong_token_on_the_users_call_is_said_and_the_run_stops_at_its_pre_flight(
    run_cli: Callable[..., CliResult],
) -> None:
    server = start(users=siro_users())
    try:
        checked = run_cli(
            "validate",
            EXAMPLE_CSV,
            "--mapping",
            EXAMPLE_MAPPING,
            "--base-url",
            server.base_url,
            token="wrong",
        )
        sent = run_cli(
            "run", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url, token="wrong"
        )
        strict = run_cli(
            "run", EXAMPLE_CSV, "--mapping", EXAMPLE_MAPPING, "--base-url", server.base_url,
            "--require-known-reps", token="wrong",
        )  # fmt: skip
        requests = server.state.requests
    finally:
        server.stop()
    said = (
        "warning: reps not checked: SIRO's users could not be fetched (SIRO refused the API token (HTTP 401"
    )
    assert checked.code == 1 and said in checked.stderr  # validate goes on: the file is still checked
    assert (
        sent.code == 2 and said in sent.stderr and "SIRO refused the API token" in sent.stderr.split(said)[1]
    )
    assert strict.code == 2 and "--require-known-reps: SIRO's users could not be fetched" in strict.stderr
    assert requests == 0  # nothing was sent
    for r in (checked, sent, strict):
        assert "wrong" not in r.stderr.replace("wrong for", "")  # the token itself is never printed


def test_rep_reason_rules() -> None:
    check = RepCheck(frozenset({"a@x.com"}))
    assert rep_reason([], check) is None  # no user at all: a matching reason of its own
    assert rep_reason(["A@X.com"], check) is None  # case-insensitive
    assert rep_reason(["b@x.com", "a@x.com"], check) is None  # one known rep is enough
    assert (
        str(rep_reason(["b@x.com"], check))
        == "b@x.com is not a SIRO user: add them in SIRO or correct the email in the CRM, or rows with "
        "this rep will not match recordings"
    )
    assert "b@x.com, c@x.com are each not a SIRO user" in str(rep_reason(["b@x.com", "c@x.com"], check))
    assert "no engagement user has an email" in str(rep_reason([None], check))


def test_the_forecast_counts_the_reasons_of_a_rows_warnings() -> None:
    reps = UnknownReps((("b@x.com", "missing"), ("c@x.com", "missing")))
    warning = RowWarnings((EndBeforeStart("y", "x"), CannotMatch((NoEngagementUser(), reps))))
    assert str(warning) == (
        "end-before-start: endTime x is before startTime y | matching-warning: SIRO cannot match "
        "recordings to it: no engagement user; b@x.com, c@x.com are each not a SIRO user: add them in "
        "SIRO or correct the email in the CRM, or rows with these reps will not match recordings"
    )
    assert reps.emails == ["b@x.com", "c@x.com"]
    f = Forecast()
    f.add("a.csv", warning, 3)
    f.add("a.csv", None, 7)
    assert (f.rows, f.matchable, f.reps["c@x.com"], f.reasons["rep is not a SIRO user"]) == (10, 7, 3, 3)
    assert f.lines()[0].startswith(
        "match forecast: 7 of 10 rows SIRO takes can be matched to recordings (70.0%)"
    )


def test_a_disabled_user_is_told_from_a_missing_one() -> None:
    """Issue 34: the fixes differ (re-enable the user in SIRO vs add one / correct the CRM email)."""
    check = RepCheck(frozenset({"a@x.com"}), disabled=frozenset({"d@x.com"}))
    one = rep_reason(["D@x.com"], check)
    assert str(one) == (
        "D@x.com is a disabled SIRO user: re-enable them in SIRO, or rows with this rep will not match "
        "recordings"
    )
    both = rep_reason(["d@x.com", "e@x.com"], check)
    assert str(both) == (
        "d@x.com is a disabled SIRO user (re-enable them in SIRO) and e@x.com is not a SIRO user (add them "
        "in SIRO or correct the email in the CRM): rows with these reps will not match recordings"
    )
    assert rep_reason(["d@x.com", "a@x.com"], check) is None  # an active rep beside it is enough
    # the forecast counts the reasons of the rows' warnings, status and all
    assert one is not None and both is not None
    f = Forecast()
    f.add("a.csv", RowWarnings((CannotMatch((both,)),)), 2)
    f.add("a.csv", RowWarnings((CannotMatch((one,)),)), 3)
    assert f.reasons == {"rep is a disabled SIRO user": 5, "rep is not a SIRO user": 2}
    assert f.data()["reps"] == {
        "D@x.com": {"status": "disabled", "rows": 3},
        "d@x.com": {"status": "disabled", "rows": 2},
        "e@x.com": {"status": "missing", "rows": 2},
    }
    assert (
        "  by rep: D@x.com (a disabled SIRO user, 3), d@x.com (a disabled SIRO user, 2), "
        "e@x.com (not a SIRO user, 2)" in f.lines()
    )


def test_the_sandbox_serves_a_disabled_user(run_cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """`bulk-sync sandbox --users FILE` takes a `disabled` column; SIRO's users endpoint shape."""
    from bulk_sync.cli.commands import sandbox_users

    users_csv = tmp_path / "users.csv"
    users_csv.write_text("email,firstName,disabled\nann@x.com,Ann,\nbo@x.com,Bo,true\n")
    server = start(users=sandbox_users(users_csv))
    try:
        import httpx

        got = httpx.get(
            f"{server.base_url}/v1/core/users", headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()
    finally:
        server.stop()
    assert [(u["email"], u["disabled"]) for u in got["data"]] == [("ann@x.com", False), ("bo@x.com", True)]
