"""Issue 19, part 5: a mapping with `resource: opportunities` sends OpportunitySyncInput bodies to
PUT .../sync/batch/opportunities, through the real CLI against the sandbox over real HTTP."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from helpers import ROOT, TOKEN, CliResult

from bulk_sync.payload import target_catalog
from bulk_sync.sandbox import Faults, SandboxServer

PRESET = ROOT / "mappings" / "salesforce_opportunities_report.yaml"
SAMPLE = ROOT / "example_data" / "presets" / "salesforce_opportunities_report.csv"


def test_opportunities_go_through_the_batch_endpoint_with_a_422_on_one_record(
    run_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    # SIRO refuses one record of the batch (a 422 whose issue names its index): the rest sync
    server = SandboxServer(TOKEN, Faults(reject_pattern="OkaOAA$")).start()
    state = tmp_path / "state.sqlite3"
    try:
        r = run_cli("run", SAMPLE, "--mapping", PRESET, "--base-url", server.base_url, "--state", state)
        stored = dict(server.state.opportunities)
        engagements = dict(server.state.records)
    finally:
        server.stop()
    assert r.code == 1
    by_id = {row["external_id"]: row for row in r.report}
    assert by_id["0065f00000OkaOAA"]["status"] == "rejected"
    assert by_id["0065f00000OkaOAA"]["error_type"] == "api-invalid"
    synced = {e for e, row in by_id.items() if row["status"] == "synced"}
    assert synced == {"0065f00000LeeOAA", "0065f00000SatOAA", "0065f00000BerOAA"} == set(stored)
    assert not engagements  # nothing went to the engagement endpoints
    assert stored["0065f00000LeeOAA"]["disposition"] == "WON"
    assert stored["0065f00000LeeOAA"]["opportunityUsers"][0]["email"] == "dana.whitfield@brightroof.com"
    assert "match forecast" not in r.stdout  # opportunities are not matched to recordings
    with sqlite3.connect(state) as db:  # their own state target
        targets = {t for (t,) in db.execute("SELECT DISTINCT target FROM records")}
    assert targets == {f"{server.base_url}#opportunities"}


def test_an_engagement_target_in_an_opportunity_mapping_is_refused(
    run_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nresource: opportunities\nfields:\n  externalId: Id\n  subject: Subject\n")
    data = tmp_path / "d.csv"
    data.write_text("Id,Subject\n1,x\n")
    r = run_cli("validate", data, "--mapping", mapping)
    assert r.code == 2 and "subject" in r.stderr
    assert "opportunityUsers[].email" in target_catalog("opportunities")
    assert "engagementUsers[]" not in target_catalog("opportunities")
