"""Row grouping (`group_by`): rows sharing a key, anywhere in the file, become one engagement."""

from __future__ import annotations

from pathlib import Path

from helpers import RunCli, Sandbox

from bulk_sync.group import merge

ROWS = """\
Meeting ID,Subject,Start,End,Attendee Email,Attendee ID,Phone
M-1,Demo,2026-11-03 09:00,2026-11-03 10:00,ann@x.com,U-1,555-1
M-2,Call,2026-11-03 10:00,2026-11-03 10:30,bo@x.com,U-2,
M-1,Demo,2026-11-03 09:00,2026-11-03 10:00,cy@x.com,U-3,555-2
M-1, Demo ,2026-11-03 09:00,2026-11-03 10:00,ann@x.com,U-1,555-1
M-3,Lunch,2026-11-03 12:00,2026-11-03 13:00,di@x.com,U-4,
m-3,Brunch,2026-11-03 12:00,2026-11-03 13:00,ed@x.com,U-5,
M-4,Visit,not a date,2026-11-03 13:00,fe@x.com,U-6,
M-4,Visit,2026-11-03 12:00,2026-11-03 13:00,gi@x.com,U-7,
"""
MAPPING = """\
version: 1
group_by: Meeting ID
conflicts: {conflicts}
fields:
  externalId: {{column: Meeting ID, lower: false}}
  subject: Subject
  startTime: {{column: Start, datetime: {{format: "%Y-%m-%d %H:%M", timezone: UTC}}}}
  endTime: {{column: End, datetime: {{format: "%Y-%m-%d %H:%M", timezone: UTC}}}}
  engagementType.activityType: {{value: MEETING}}
  engagementType.name: {{value: Meeting}}
  engagementUsers[0].externalId: Attendee ID
  engagementUsers[0].email: Attendee Email
  account.externalId: {{value: A-1}}
  account.phoneNumbers[]: Phone
"""


def write(tmp_path: Path, conflicts: str = "error") -> tuple[Path, Path]:
    (data := tmp_path / "attendees.csv").write_text(ROWS)
    (m := tmp_path / "m.yaml").write_text(MAPPING.format(conflicts=conflicts))
    return data, m


def test_merge_rules() -> None:
    a = {"subject": "Demo", "users": [{"id": 1}], "account": {"phones": ["1"]}}
    b = {"subject": "Demo", "users": [{"id": 2}, {"id": 1}], "account": {"phones": ["1", "2"], "name": "X"}}
    assert merge(a, b, "error") == {
        "subject": "Demo",
        "users": [{"id": 1}, {"id": 2}],
        "account": {"phones": ["1", "2"], "name": "X"},
    }
    assert merge({"s": "a"}, {"s": "b"}, "first") == {"s": "a"}
    assert merge({"s": "a"}, {"s": "b"}, "last") == {"s": "b"}


def test_rows_of_a_group_anywhere_become_one_engagement(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    data, m = write(tmp_path)
    server = sandbox()
    res = run_cli("run", data, "-m", m, "--base-url", server.base_url)
    assert res.code == 1, res.stderr
    status = {int(r["row_number"]): (r["status"], r["error_type"]) for r in res.report}
    assert len(status) == 8  # every input row is in the report
    assert {status[n] for n in (2, 4, 5)} == {("synced", "")}  # M-1: rows 2, 4 and 5 (not adjacent)
    assert status[3] == ("synced", "")
    assert {status[n] for n in (6, 7)} == {("invalid", "group-conflict")}  # Lunch vs Brunch (m-3 = M-3)
    assert {status[n] for n in (8, 9)} == {("invalid", "bad-datetime")}  # one bad row spoils its group
    bad = next(r for r in res.report if r["row_number"] == "9")
    assert "row 8:" in bad["message"]  # the message names the bad row
    m1 = server.state.records["M-1"]
    assert m1["engagementUsers"] == [
        {"externalId": "U-1", "email": "ann@x.com"},
        {"externalId": "U-3", "email": "cy@x.com"},
    ]
    assert m1["account"]["phoneNumbers"] == ["555-1", "555-2"]
    assert m1["subject"] == "Demo"
    assert set(server.state.records) == {"M-1", "M-2"}


def test_conflict_policies(run_cli: RunCli, tmp_path: Path) -> None:
    data, m = write(tmp_path, "last")
    res = run_cli("validate", data, "-m", m, "--show", "5")
    assert '"subject": "Brunch"' in res.stdout and '"subject": " demo "' not in res.stdout
    by_row = {r["row_number"]: r["status"] for r in res.report}
    assert by_row["6"] == by_row["7"] == "valid"


def test_without_grouping_the_last_row_of_an_id_wins(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    (a := tmp_path / "a.csv").write_text("Id,Subject\nA,one\nB,two\nA,three\n,no id\n")
    (b := tmp_path / "b.csv").write_text("Id,Subject\nB,four\nC,five\n")
    (m := tmp_path / "m.yaml").write_text("version: 1\nfields:\n  externalId: Id\n  subject: Subject\n")
    server = sandbox()
    res = run_cli("run", a, b, "-m", m, "--base-url", server.base_url)
    assert res.code == 1, res.stderr  # the row without an id is invalid
    got = [(Path(r["source_file"]).name, r["row_number"], r["status"]) for r in res.report]
    assert got == [
        ("a.csv", "2", "superseded"),
        ("a.csv", "3", "superseded"),
        ("a.csv", "4", "synced"),
        ("a.csv", "5", "invalid"),
        ("b.csv", "2", "synced"),
        ("b.csv", "3", "synced"),
    ]
    assert "row 2 of" in res.report[1]["message"] and "b.csv" in res.report[1]["message"]
    assert {k: v["subject"] for k, v in server.state.records.items()} == {
        "A": "three",
        "B": "four",
        "C": "five",
    }
    assert server.state.writes == {"A": 1, "B": 1, "C": 1}  # earlier rows of an id are never sent


def test_a_file_that_breaks_part_way_stops_with_exit_3(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    """The id pass reads only the id column (fast), so a row the CSV parser cannot take (more than
    10 cells past the header) is met by the main pass: the rows before it are sent and reported,
    the run stops with exit 3 and says where; a rerun after the fix is safe."""
    rows = ["Id,Subject"] + [f"R-{i},ok" for i in range(6000)] + ["R-X," + ",".join("x" * 20)]
    (data := tmp_path / "broken.csv").write_text("\n".join(rows) + "\n")
    (m := tmp_path / "m.yaml").write_text("version: 1\nfields:\n  externalId: Id\n  subject: Subject\n")
    server = sandbox()
    res = run_cli("run", data, "-m", m, "--base-url", server.base_url, "--rate-per-min", "0")
    assert res.code == 3, res.stderr
    assert "broken.csv" in res.stderr and "part-way" in res.stderr and "Traceback" not in res.stderr
    assert 0 < len(res.report) < 6000  # the chunks before the bad line
    assert {r["status"] for r in res.report} <= {"synced", "not_sent"}  # not_sent: queued at the stop
    assert set(server.state.records) >= {r["external_id"] for r in res.report if r["status"] == "synced"}


def test_a_report_footer_never_supersedes_a_record(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    # row 6 comes after a blank row and really repeats id 1; rows 8-9, after another blank row,
    # are a footer whose first line is "2", the id of row 3
    (a := tmp_path / "a.csv").write_text(
        "Id,Subject,Notes\n1,one,x\n2,two,y\n3,three,z\n\n1,uno,w\n\n2\nGenerated by CRM\n"
    )
    (m := tmp_path / "m.yaml").write_text("version: 1\nfields:\n  externalId: Id\n  subject: Subject\n")
    server = sandbox()
    res = run_cli("run", a, "-m", m, "--base-url", server.base_url)
    assert res.code == 0, res.stderr
    got = [(r["row_number"], r["status"]) for r in res.report]
    assert got == [
        ("2", "superseded"),
        ("3", "synced"),
        ("4", "synced"),
        ("6", "synced"),
        ("8", "skipped"),
        ("9", "skipped"),
    ]
    assert {k: v["subject"] for k, v in server.state.records.items()} == {
        "1": "uno",
        "2": "two",
        "3": "three",
    }
