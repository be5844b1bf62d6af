"""`init-mapping` (a starter mapping from a file's headers) and `validate`'s listing and warnings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, RunCli

from bulk_sync.payload import target_catalog
from bulk_sync.scaffold import guess_formats, match_headers


def test_headers_match_by_synonym_and_fuzzily() -> None:
    got = match_headers(
        ["Meeting start time", "Meeting end time", "Record ID", "Meeting name", "Activity assigned to",
         "Associated Company", "Zip Code", "Deal Stage", "Favourite colour", "Assigned  Email "]
    )  # fmt: skip
    assert got == {
        "startTime": "Meeting start time",
        "endTime": "Meeting end time",
        "externalId": "Record ID",
        "subject": "Meeting name",
        "engagementUsers[0].name": "Activity assigned to",
        "engagementUsers[0].email": "Assigned  Email ",
        "account.name": "Associated Company",
        "account.addresses[0].zip": "Zip Code",
        "opportunity.disposition": "Deal Stage",
    }
    catalog = {k.replace("[]", "[0]") for k in target_catalog()}
    assert set(got) <= catalog


def test_date_formats_are_guessed_from_samples() -> None:
    def fmt(cells: list[str]) -> object:
        found = guess_formats(cells)
        return None if found is None else (found.format, found.todo is not None)

    assert fmt(["11/3/2026 9:00 AM", "11/14/2026 2:30 PM", "oops"] * 5) is None  # 2/3 parse
    # one bad cell among many does not drop the format
    assert fmt(["11/3/2026 9:00 AM", "11/14/2026 2:30 PM"] * 10 + ["oops"]) == ("%m/%d/%Y %I:%M %p", False)
    assert fmt(["24.11.2026 16:10", "01.12.2026 09:00"]) == ("%d.%m.%Y %H:%M", False)
    assert fmt(["2026-11-24 16:10:00"]) == (None, False)  # ISO 8601 needs no format
    # every day is 12 or less: day/month order cannot be settled from the cells, so it is a TODO
    assert fmt(["03/11/2026 09:00", "04/11/2026 10:00"])[1] is True  # type: ignore[index]


@pytest.mark.slow
def test_init_mapping_writes_a_mapping_that_validates(run_cli: RunCli, tmp_path: Path) -> None:
    out = tmp_path / "generated.yaml"
    res = run_cli("init-mapping", EXAMPLE_CSV, "-o", out)
    assert res.code == 0 and out.exists(), res.stderr
    text = out.read_text()
    assert "externalId: {column: Appointment ID, required: true}" in text
    assert "format: '%m/%d/%Y %I:%M %p'" in text and "TODO" in text
    assert "#   Co-Rep Email" in text  # columns it could not place are listed
    again = run_cli("init-mapping", EXAMPLE_CSV, "-o", out)
    assert again.code == 2 and "pass --force" in again.stderr
    check = run_cli("validate", EXAMPLE_CSV, "-m", out)
    assert check.code == 2 and "TODO" in check.stderr, check.stderr  # the time zone is left to the person
    assert "Webinar: TODO" in text  # a value it cannot place is the person's to decide
    # the person's choices: the zone, and "Webinar" left unmapped (such rows are invalid, as with
    # the hand-written mapping)
    out.write_text(
        re.sub(r"\n *Webinar: TODO", "", text.replace("timezone: TODO", "timezone: America/New_York"))
    )
    check = run_cli("validate", EXAMPLE_CSV, "-m", out)
    assert check.code == 1, check.stderr
    assert sum(r["status"] == "valid" for r in check.report) == 55


def test_validate_lists_row_errors_and_counts_warnings(run_cli: RunCli) -> None:
    """The rows that are not valid are listed; the warnings are counted by kind (--warnings lists
    them): 20,000 real errors are not hidden among matching warnings."""
    res = run_cli("validate", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING)
    assert res.code == 1
    assert "engagements.csv row 9 [Appointment ID]: invalid missing-value:" in res.stderr
    assert "row 33 [End]: invalid bad-datetime:" in res.stderr
    warned = [r for r in res.report if r["warning"].startswith("matching-warning")]
    assert warned and all(r["status"] == "valid" and not r["error_type"] for r in warned)
    assert any("activityType is CALL" in r["warning"] for r in warned)
    assert "warning matching-warning" not in res.stderr
    assert f"{len(warned)} warnings not listed (counted by kind below; --warnings lists them" in res.stderr
    assert f"warnings: matching-warning {len(warned)}" in res.stdout
    listed = run_cli("validate", EXAMPLE_CSV, "-m", EXAMPLE_MAPPING, "--warnings")
    assert listed.stderr.count("warning matching-warning: SIRO cannot match recordings to it") == len(warned)
    assert "row 9 [Appointment ID]: invalid missing-value:" in listed.stderr
