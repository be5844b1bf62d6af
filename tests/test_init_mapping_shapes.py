"""init-mapping on the export shapes of issue 34: Zoho's day-first 12-hour dates, Outlook's calendar
export (English and Dutch: a date and a time column for the start and for the end), a day/month
order nothing in the file settles (a TODO, never a guess), `ambiguous: error` on every zone's
date-time, the TODO count it prints, and `--resource opportunities`. Real files (openpyxl
workbooks, CSV as the CRMs write them), the real CLI in a subprocess."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import CliResult, RunCli, outcomes
from openpyxl import Workbook


def _xlsx(path: Path, rows: list[list[Any]]) -> Path:
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def _starter(run_cli: RunCli, data: Path, *extra: str) -> tuple[str, CliResult]:
    out = data.with_suffix(".yaml")
    res = run_cli("init-mapping", data, "-o", out, *extra)
    assert res.code == 0, res.stderr
    return out.read_text(), res


def _filled(text: str, zone: str, path: Path) -> Path:
    path.write_text(text.replace("timezone: TODO", f"timezone: {zone}"))
    return path


ZOHO = [
    ["Meeting Id", "Title", "From", "To", "Host", "Related To", "Created Time"],
    ["z1", "Visit", "01/10/2026 09:00 AM", "01/10/2026 10:00 AM", "Ann Lee", "Acme", "01/09/2026 09:00 AM"],
    ["z2", "Call", "05/11/2026 02:30 PM", "05/11/2026 03:00 PM", "Ann Lee", "Beta", "01/09/2026 09:00 AM"],
    ["z3", "Demo", "31/10/2026 02:30 PM", "31/10/2026 03:30 PM", "Bob Ray", "Gamma", "02/09/2026 10:00 AM"],
    *[[f"z1{i}", "Call", f"0{i}/11/2026 11:15 AM", f"0{i}/11/2026 11:45 AM", "Bob Ray", "Delta",
       "02/09/2026 10:00 AM"] for i in range(1, 10)],
]  # fmt: skip


def test_zoho_day_first_12_hour_dates_get_a_day_first_format(run_cli: RunCli, tmp_path: Path) -> None:
    # one cell (31/10) among twelve settles the order; "Created Time" (every day <= 12) follows it
    text, _ = _starter(run_cli, _xlsx(tmp_path / "zoho_meetings.xlsx", ZOHO))
    assert "format: '%d/%m/%Y %I:%M %p'" in text and "%m/%d/%Y" not in text
    assert "day first, as '31/10/2026 02:30 PM' in the column 'From' shows" in text  # Created Time
    mapping = _filled(text, "Europe/London", tmp_path / "m.yaml")
    rows = {
        o["payload"]["externalId"]: o["payload"] for o in outcomes(tmp_path / "zoho_meetings.xlsx", mapping)
    }
    assert rows["z2"]["startTime"] == "2026-11-05T14:30:00Z"  # 5 November, not 11 May
    assert rows["z3"]["startTime"] == "2026-10-31T14:30:00Z"
    assert rows["z1"]["startTime"] == "2026-10-01T08:00:00Z"  # BST
    assert rows["z1"]["remoteCreatedAt"] == "2026-09-01T08:00:00Z"


def test_a_day_month_order_nothing_settles_is_a_todo_and_the_count_is_true(
    run_cli: RunCli, tmp_path: Path
) -> None:
    rows = [["Id", "Subject", "Start", "End"]] + [
        [f"a{d}", "Call", f"0{d}/11/2026 14:{d}0", f"0{d}/11/2026 15:{d}0"] for d in range(1, 6)
    ]
    text, res = _starter(run_cli, _xlsx(tmp_path / "plain.xlsx", rows))
    assert "format: TODO" in text
    assert "reads as 2026-01-11 with '%m/%d/%Y %H:%M' and as 2026-11-01 with '%d/%m/%Y %H:%M'" in text
    check = run_cli("validate", tmp_path / "plain.xlsx", "-m", tmp_path / "plain.yaml")
    listed = check.stderr.count("TODO left")
    assert check.code == 2 and listed == 5  # format x3 (start, local start, end), zone x2
    assert f"replace its TODOs ({listed})" in res.stdout  # not the word's count in the comments
    assert text.count("TODO") > listed


OUTLOOK_EN = (
    "Subject,Start Date,Start Time,End Date,End Time,All day event,Reminder on/off,Reminder Date,"
    "Reminder Time,Meeting Organizer,Required Attendees,Description,Location\r\n"
    "Site visit Lee,10/13/2026,9:00:00 AM,10/13/2026,10:30:00 AM,False,True,10/13/2026,8:45:00 AM,"
    "Dana Whitfield,ann@lee.example,Gate code 1004,Amsterdam\r\n"
    "Call Sato,10/2/2026,2:30:00 PM,10/2/2026,3:00:00 PM,False,False,,,Marcus Ochoa,,,\r\n"
)
OUTLOOK_NL = (
    "Onderwerp,Begindatum,Begintijd,Einddatum,Eindtijd,Gebeurtenis duurt hele dag,Herinnering aan/uit,"
    "Herinneringsdatum,Herinneringstijd,Organisator van vergadering,Vereiste deelnemers,Beschrijving,"
    "Locatie\r\n"
    "Bezoek Lee,13-10-2026,9:00:00,13-10-2026,10:30:00,Onwaar,Waar,13-10-2026,8:45:00,Dana Whitfield,,"
    "Poortcode 1004,Amsterdam\r\n"
    "Gesprek Sato,2-10-2026,14:30:00,2-10-2026,15:00:00,Onwaar,Onwaar,,,Marcus Ochoa,,,\r\n"
)


def test_outlook_date_and_time_columns_make_the_start_and_the_end(run_cli: RunCli, tmp_path: Path) -> None:
    for name, content, start, end in (
        ("outlook_en.csv", OUTLOOK_EN, "{Start Date} {Start Time}", "{End Date} {End Time}"),
        ("outlook_nl.csv", OUTLOOK_NL, "{Begindatum} {Begintijd}", "{Einddatum} {Eindtijd}"),
    ):
        data = tmp_path / name
        data.write_bytes(content.encode("utf-8-sig"))
        text, _ = _starter(run_cli, data)
        assert re.search(rf"  startTime:\n    template: '{re.escape(start)}'", text), text
        assert re.search(rf"  endTime:\n    template: '{re.escape(end)}'", text), text
        assert "Herinnering" not in text.split("# Columns not placed")[0].replace("#", "")
        assert "Reminder Date}" not in text
        # Outlook has no id column: the person names one (the subject stands in for the test)
        subject = "Subject" if "en" in name else "Onderwerp"
        filled = _filled(
            text.replace("column: TODO", f"column: {subject}"), "Europe/Amsterdam", tmp_path / "m.yaml"
        )
        rows = [o for o in outcomes(data, filled)]
        assert [o["status"] for o in rows] == ["valid", "valid"], rows
        first, second = rows[0]["payload"], rows[1]["payload"]
        assert (first["startTime"], first["endTime"]) == ("2026-10-13T07:00:00Z", "2026-10-13T08:30:00Z")
        assert (second["startTime"], second["endTime"]) == ("2026-10-02T12:30:00Z", "2026-10-02T13:00:00Z")


def test_every_date_time_with_a_zone_refuses_the_repeated_hour(run_cli: RunCli, tmp_path: Path) -> None:
    rows = [
        ["Afspraak ID", "Onderwerp", "Start", "Einde"],
        ["A1", "Bezoek", "13-10-2026 09:00", "13-10-2026 09:30"],
        ["A2", "Bezoek", "25-10-2026 02:30", "25-10-2026 03:00"],  # 02:30 happens twice in Amsterdam
    ]
    data = _xlsx(tmp_path / "afspraken.xlsx", rows)
    text, _ = _starter(run_cli, data)
    assert text.count("ambiguous: error") == 2  # startTime, endTime (not the local start)
    assert "# ambiguous: error: a time in the hour that happens twice" in text
    out = {o["row"]: o for o in outcomes(data, _filled(text, "Europe/Amsterdam", tmp_path / "m.yaml"))}
    assert out[2]["status"] == "valid"
    assert out[3]["status"] == "invalid" and ["ambiguous-datetime", "Start"] in out[3]["errors"]


DEALS = [
    ["Deal ID", "Deal Name", "Company", "Company ID", "Amount", "Stage", "Close Date", "Owner", "Owner Email",
     "Created", "Last Activity", "Subject"],
    ["D-100", "Roof Lee", "Lee Household", "C-1", "$12,500.00", "Won", "31/10/2026", "Dana Whitfield",
     "Dana@brightroof.com", "01/09/2026 09:00", "02/10/2026", "x"],
    ["D-101", "Gutters Sato", "Sato Household", "C-2", "$4,200.00", "Open", "05/11/2026", "Marcus Ochoa",
     "marcus@brightroof.com", "03/09/2026 10:00", "04/10/2026", "y"],
]  # fmt: skip


def test_resource_opportunities_writes_an_opportunity_mapping(run_cli: RunCli, tmp_path: Path) -> None:
    data = _xlsx(tmp_path / "deals.xlsx", DEALS)
    text, _ = _starter(run_cli, data, "--resource", "opportunities")
    assert "resource: opportunities" in text
    assert "externalId: {column: Deal ID, required: true}" in text
    assert "  name: Deal Name" in text and "  disposition:" in text and "  closedAt:" in text
    assert "subject" not in text.split("# Columns not placed")[0]  # an opportunity has no subject
    out = outcomes(data, _filled(text, "Europe/London", tmp_path / "m.yaml"))
    assert [o["status"] for o in out] == ["valid", "valid"], out
    deal = out[0]["payload"]
    assert deal["name"] == "Roof Lee" and deal["amount"] == 12500 and deal["disposition"] == "WON"
    assert deal["closedAt"] == "2026-10-31T00:00:00Z" and deal["lastActivityAt"] == "2026-10-01T23:00:00Z"
    assert deal["account"] == {"externalId": "C-1", "name": "Lee Household"}
    assert deal["opportunityUsers"] == [
        {"externalId": "dana@brightroof.com", "email": "dana@brightroof.com", "name": "Dana Whitfield"}
    ]


def test_a_preset_that_already_says_which_instant_keeps_it() -> None:
    from bulk_sync.scaffold.preset import Preset, from_preset

    text = (
        "fields:\n"
        '  startTime: {column: S, datetime: {format: "%Y-%m-%d %H:%M", timezone: America/Chicago}}\n'
        "  endTime: {column: E, datetime: {timezone: America/Chicago, ambiguous: later}}\n"
        "  remoteCreatedAt: {column: C, datetime: {timezone: UTC}}\n"
    )
    out = from_preset(Preset("p", text), "export.csv")
    assert "timezone: TODO, ambiguous: error}}" in out  # startTime
    assert "timezone: TODO, ambiguous: later}}" in out and out.count("ambiguous:") == 3  # + the comment
    assert "timezone: UTC}}" in out  # a time with its offset: nothing to choose


def test_the_opportunity_starter_syncs_to_the_opportunity_endpoint(
    run_cli: RunCli, tmp_path: Path, sandbox: Callable[..., Any]
) -> None:
    data = _xlsx(tmp_path / "deals.xlsx", DEALS)
    text, _ = _starter(run_cli, data, "--resource", "opportunities")
    mapping = _filled(text, "Europe/London", tmp_path / "m.yaml")
    server = sandbox()
    res = run_cli("run", data, "-m", mapping, "--base-url", server.base_url, "--no-state")
    assert res.code == 0, res.stderr
    assert set(server.state.opportunities) == {"D-100", "D-101"} and not server.state.records
    assert server.state.opportunities["D-101"]["disposition"] == "OPEN"
