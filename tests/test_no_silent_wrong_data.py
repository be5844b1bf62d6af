"""Issue 14: a value reaches SIRO only when bulk_sync is sure what it means.

One test (or more) per way a run used to say "synced" while SIRO got a value nobody meant. Every
file is real: CSV bytes written here, workbooks written by openpyxl; runs are the real CLI against
the sandbox over HTTP.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import CliResult, RunCli, Sandbox
from openpyxl import Workbook


def write_mapping(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def by_row(res: CliResult) -> dict[int, dict[str, str]]:
    return {int(r["row_number"]): r for r in res.report}


# --------------------------------------------------------------------------- 1. encoding


@pytest.mark.slow
def test_utf8_with_two_bad_bytes_sends_every_other_row_right(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    """Was: the whole file decoded as Windows-1252 (every accent garbled, `CafÃ©`), exit 0."""
    lines = ["Id,Subject"] + [f"E-{i},Café Zürich {i}" for i in range(2000)]
    data = ("\n".join(lines) + "\n").encode().replace(b"E-700,Caf\xc3\xa9", b"E-700,Caf\xe9\x80")
    (tmp_path / "f.csv").write_bytes(data)
    m = write_mapping(tmp_path, "version: 1\nfields:\n  externalId: Id\n  subject: Subject\n")
    server = sandbox()
    res = run_cli("run", tmp_path / "f.csv", "-m", m, "--base-url", server.base_url, "--no-state")
    assert res.code == 1, res.stderr
    rows = by_row(res)
    bad = rows[702]
    assert (bad["status"], bad["error_type"], bad["column"]) == ("invalid", "bad-encoding", "Subject")
    assert "0xE9 0x80" in bad["message"]
    assert sum(r["status"] == "synced" for r in res.report) == 1999
    assert server.state.records["E-0"]["subject"] == "Café Zürich 0"
    assert server.state.records["E-1999"]["subject"] == "Café Zürich 1999"
    assert "E-700" not in server.state.records


@pytest.mark.slow
def test_a_code_page_guess_that_changes_cells_refuses_the_file(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    (tmp_path / "f.csv").write_bytes("Id,Subject\nE-1,Visite à Genève\n".encode("cp1252"))
    m = write_mapping(tmp_path, "version: 1\nfields:\n  externalId: Id\n  subject: Subject\n")
    server = sandbox()
    res = run_cli("run", tmp_path / "f.csv", "-m", m, "--base-url", server.base_url, "--no-state")
    assert res.code == 2 and server.state.requests == 0
    assert "'Visite à Genève' as cp1252" in res.stderr and "'Visite ŕ Genčve' as cp1250" in res.stderr
    res = run_cli(
        "run",
        tmp_path / "f.csv",
        "-m",
        m,
        "--base-url",
        server.base_url,
        "--no-state",
        "--encoding",
        "cp1252",
    )
    assert res.code == 0 and server.state.records["E-1"]["subject"] == "Visite à Genève"


# --------------------------------------------------------------------------- 2. exact numbers


@pytest.mark.slow
def test_percents_and_decimals_arrive_exactly_as_written(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    """Was: `33.34%` sent as 0.33340000000000003."""
    (tmp_path / "f.csv").write_text(
        "Id,Share,Amount\nE-1,33.34%,1.005\nE-2,57.85%,0.07\nE-3,14.35%,1234.56\n"
    )
    m = write_mapping(
        tmp_path,
        "version: 1\nfields:\n  externalId: Id\n  engagementUsers[0].externalId: {value: U-1}\n"
        "  engagementUsers[0].shareOfSale: Share\n  opportunity.externalId: {value: O-1}\n"
        "  opportunity.amount: Amount\n",
    )
    server = sandbox()
    res = run_cli("run", tmp_path / "f.csv", "-m", m, "--base-url", server.base_url, "--no-state")
    assert res.code == 0, res.stderr
    shares = {k: v["engagementUsers"][0]["shareOfSale"] for k, v in server.state.records.items()}
    amounts = {k: v["opportunity"]["amount"] for k, v in server.state.records.items()}
    assert shares == {"E-1": 0.3334, "E-2": 0.5785, "E-3": 0.1435}
    assert amounts == {"E-1": 1.005, "E-2": 0.07, "E-3": 1234.56}
    res = run_cli("validate", tmp_path / "f.csv", "-m", m, "--show", "3")
    shown = res.stdout
    assert '"shareOfSale": 0.3334' in shown and "0.33340000000000003" not in shown
    assert '"shareOfSale": 0.5785' in shown and '"shareOfSale": 0.1435' in shown


# --------------------------------------------------------------------------- 3. number locale


GERMAN_MAPPING = """\
version: 1
fields:
  externalId: Id
  opportunity.externalId: {value: O-1}
  opportunity.amount: Betrag
"""


def test_a_decimal_comma_column_is_read_as_one(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    """Was, without `decimal: ","`: 1.234,50 -> 1.2345, 12.000 -> 12, 0,99 -> 99, every row valid."""
    (tmp_path / "f.csv").write_text("Id;Betrag\nE-1;1.234,50\nE-2;12.000\nE-3;0,99\nE-4;750\n")
    m = write_mapping(tmp_path, GERMAN_MAPPING)
    server = sandbox()
    res = run_cli("run", tmp_path / "f.csv", "-m", m, "--base-url", server.base_url, "--no-state")
    assert res.code == 0, res.stderr
    amounts = {k: v["opportunity"]["amount"] for k, v in server.state.records.items()}
    assert amounts == {"E-1": 1234.5, "E-2": 12000, "E-3": 0.99, "E-4": 750}


@pytest.mark.slow
def test_a_column_that_reads_both_ways_makes_those_rows_invalid(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    (tmp_path / "f.csv").write_text("Id;Betrag\nE-1;12.000\nE-2;1,500\nE-3;750\n")
    m = write_mapping(tmp_path, GERMAN_MAPPING)
    server = sandbox()
    res = run_cli("run", tmp_path / "f.csv", "-m", m, "--base-url", server.base_url, "--no-state")
    assert res.code == 1
    rows = by_row(res)
    assert rows[2]["error_type"] == rows[3]["error_type"] == "ambiguous-number"
    assert 'set `decimal: "."` or `decimal: ","`' in rows[2]["message"] and rows[2]["column"] == "Betrag"
    assert rows[4]["status"] == "synced" and set(server.state.records) == {"E-3"}
    fixed = write_mapping(
        tmp_path, GERMAN_MAPPING.replace("amount: Betrag", 'amount: {column: Betrag, decimal: ","}')
    )
    res = run_cli("run", tmp_path / "f.csv", "-m", fixed, "--base-url", server.base_url, "--no-state")
    assert res.code == 0
    assert server.state.records["E-1"]["opportunity"]["amount"] == 12000
    assert server.state.records["E-2"]["opportunity"]["amount"] == 1.5


def test_a_cell_written_with_the_other_mark_than_its_column_is_invalid(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    """The earliest cell that shows a mark settles the column; a cell written the other way is
    reported, never read with the wrong mark."""
    (tmp_path / "f.csv").write_text("Id;Betrag\nE-1;1.234,50\nE-2;1,234.50\nE-3;99,90\n")
    m = write_mapping(tmp_path, GERMAN_MAPPING)
    server = sandbox()
    res = run_cli("run", tmp_path / "f.csv", "-m", m, "--base-url", server.base_url, "--no-state")
    assert res.code == 1
    rows = by_row(res)
    assert (rows[3]["status"], rows[3]["error_type"], rows[3]["column"]) == (
        "invalid",
        "bad-number",
        "Betrag",
    )
    assert "with a decimal comma (the mark this column uses)" in rows[3]["message"]
    amounts = {k: v["opportunity"]["amount"] for k, v in server.state.records.items()}
    assert amounts == {"E-1": 1234.5, "E-3": 99.9}


# --------------------------------------------------------------------------- 4. Excel number formats

ZIP_MAPPING = """\
version: 1
fields:
  externalId: Id
  account.externalId: Account
  account.addresses[0].zip: Zip
  account.phoneNumbers[0]: Phone
  engagementUsers[0].externalId: {value: U-1}
  engagementUsers[0].shareOfSale: Share
"""


def test_number_cells_read_as_excel_shows_them(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    """Was: a zip typed 02135 (the number 2135 with format 00000) sent as "2135"."""
    wb = Workbook()
    ws = wb.active
    ws.append(["Id", "Account", "Zip", "Phone", "Share"])
    ws.append(["E-1", "A-1", 2135, 6175550123, 0.3334])
    ws.append(["E-2", "A-2", 90210, 3125550000, 0.5])
    for row in ws.iter_rows(min_row=2):
        row[2].number_format = "00000"
        row[3].number_format = "(000) 000-0000"
        row[4].number_format = "0.00%"
    wb.save(tmp_path / "ops.xlsx")
    m = write_mapping(tmp_path, ZIP_MAPPING)
    server = sandbox()
    res = run_cli("run", tmp_path / "ops.xlsx", "-m", m, "--base-url", server.base_url, "--no-state")
    assert res.code == 0, res.stderr
    first = server.state.records["E-1"]
    assert first["account"]["addresses"][0]["zip"] == "02135"
    assert first["account"]["phoneNumbers"] == ["(617) 555-0123"]
    assert first["engagementUsers"][0]["shareOfSale"] == 0.3334  # the value, not a rounded display
    assert server.state.records["E-2"]["account"]["addresses"][0]["zip"] == "90210"


def test_pad_restores_leading_zeros_a_csv_lost(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_text("Id,Account,Zip,Phone,Share\nE-1,A-1,2135,,\nE-2,A-2,90210,,\n")
    m = write_mapping(
        tmp_path, ZIP_MAPPING.replace("zip: Zip", 'zip: {column: Zip, pad: {width: 5, with: "0"}}')
    )
    server = sandbox()
    res = run_cli("run", tmp_path / "f.csv", "-m", m, "--base-url", server.base_url, "--no-state")
    assert res.code == 0, res.stderr
    assert server.state.records["E-1"]["account"]["addresses"][0]["zip"] == "02135"
    assert server.state.records["E-2"]["account"]["addresses"][0]["zip"] == "90210"


# --------------------------------------------------------------------------- 5. sheets


def three_rep_workbook(path: Path) -> None:
    """One sheet per rep, same layout: 9 + 8 + 8 rows."""
    wb = Workbook()
    wb.remove(wb.active)
    n = 0
    for rep, rows in (("Ann", 9), ("Bo", 8), ("Cy", 8)):
        ws = wb.create_sheet(rep)
        ws.append(["Id", "Subject"])
        for _ in range(rows):
            n += 1
            ws.append([f"E-{n}", f"Visit {n} ({rep})"])
    wb.save(path)


@pytest.mark.slow
def test_sheets_with_the_same_header_are_named_in_a_warning(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    """Was: the first sheet only (9 of 25 rows), exit 0, no hint."""
    three_rep_workbook(tmp_path / "reps.xlsx")
    m = write_mapping(tmp_path, "version: 1\nfields:\n  externalId: Id\n  subject: Subject\n")
    res = run_cli("validate", tmp_path / "reps.xlsx", "-m", m)
    assert len(res.report) == 9
    assert "sheet(s) 'Bo', 'Cy' have the same header" in res.stderr and "--sheet '*'" in res.stderr
    every = write_mapping(
        tmp_path, 'version: 1\nsheets: "*"\nfields:\n  externalId: Id\n  subject: Subject\n', "all.yaml"
    )
    server = sandbox()
    res = run_cli("run", tmp_path / "reps.xlsx", "-m", every, "--base-url", server.base_url, "--no-state")
    assert res.code == 0 and len(res.report) == 25 and len(server.state.records) == 25
    assert "same header" not in res.stderr
    listed = write_mapping(tmp_path, "version: 1\nsheets: [Bo, Cy]\nfields:\n  externalId: Id\n", "two.yaml")
    res = run_cli("validate", tmp_path / "reps.xlsx", "-m", listed)
    assert {r["sheet"] for r in res.report} == {"Bo", "Cy"} and len(res.report) == 16


# --------------------------------------------------------------------------- 6. totals and notes


def test_a_totals_row_and_what_is_below_it_are_not_records(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    """Was: the Total row became an engagement named "Total", and a note below it with a real row's
    id superseded that row."""
    wb = Workbook()
    ws = wb.active
    ws.append(["Label", "Id", "Subject", "Amount"])
    ws.append(["", "E-1", "Visit", 100])
    ws.append(["", "E-2", "Call", 250])
    ws.append(["Total", "", "", 350])
    ws.append(["", "E-1", "copied for the review, ignore", 0])
    wb.save(tmp_path / "hand.xlsx")
    m = write_mapping(tmp_path, "version: 1\nfields:\n  externalId: Id\n  subject: Subject\n")
    server = sandbox()
    res = run_cli("run", tmp_path / "hand.xlsx", "-m", m, "--base-url", server.base_url, "--no-state")
    assert res.code == 0, res.stderr
    rows = by_row(res)
    assert [rows[n]["status"] for n in (2, 3, 4, 5)] == ["synced", "synced", "skipped", "skipped"]
    assert "totals row ('Total' in column 'Label')" in rows[4]["message"]
    assert server.state.records["E-1"]["subject"] == "Visit"
    assert len(server.state.records) == 2


def test_stop_at_ends_the_data_where_the_mapping_says(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_text("Id,Subject\nE-1,a\nE-2,b\n--- archive ---,\nE-3,old\n")
    m = write_mapping(
        tmp_path,
        "version: 1\nstop_at: {column: Id, matches: '^---'}\nfields:\n  externalId: Id\n  subject: Subject\n",
    )
    res = run_cli("validate", tmp_path / "f.csv", "-m", m)
    assert res.code == 0
    assert [r["status"] for r in res.report] == ["valid", "valid", "skipped", "skipped"]
    assert "stop_at" in res.report[2]["message"]


# --------------------------------------------------------------------------- 7. emails


def test_a_malformed_rep_email_is_invalid(sandbox: Sandbox, run_cli: RunCli, tmp_path: Path) -> None:
    """Was: dana.lee@@example.com sent as the rep's email (the recording match silently lost)."""
    (tmp_path / "f.csv").write_text(
        "Id,Rep,Rep Email,Contact Email\nE-1,U-1,dana.lee@@example.com,\nE-2,U-2,bo@example.com,"
        "ann@x.com; ann@x\n"
    )
    m = write_mapping(
        tmp_path,
        "version: 1\nfields:\n  externalId: Id\n  engagementUsers[0].externalId: Rep\n"
        "  engagementUsers[0].email: Rep Email\n  contact.externalId: {value: C-1}\n"
        "  contact.emailAddresses[]: {column: Contact Email, split: ';'}\n",
    )
    server = sandbox()
    res = run_cli("run", tmp_path / "f.csv", "-m", m, "--base-url", server.base_url, "--no-state")
    assert res.code == 1
    rows = by_row(res)
    assert (rows[2]["error_type"], rows[2]["column"]) == ("bad-email", "Rep Email")
    assert "'dana.lee@@example.com' is not an email address" in rows[2]["message"]
    assert (rows[3]["error_type"], rows[3]["column"]) == ("bad-email", "Contact Email")
    assert server.state.requests <= 1 and not server.state.records


# --------------------------------------------------------------------------- 8. contradictions


@pytest.mark.slow
def test_end_before_start_is_a_warning_in_run_and_validate(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    (tmp_path / "f.csv").write_text(
        "Id,Start,End,Rep\nE-1,2026-03-02 10:00,2026-03-02 09:00,U-1\nE-2,2026-03-02 10:00,2026-03-02 11:00,\n"
    )
    m = write_mapping(
        tmp_path,
        "version: 1\nfields:\n  externalId: Id\n"
        "  startTime: {column: Start, datetime: {format: '%Y-%m-%d %H:%M', timezone: UTC}}\n"
        "  endTime: {column: End, datetime: {format: '%Y-%m-%d %H:%M', timezone: UTC}}\n"
        "  engagementUsers[0].externalId: Rep\n"
        "  engagementType.name: {value: Visit}\n  engagementType.activityType: {value: APPOINTMENT}\n",
    )
    res = run_cli("validate", tmp_path / "f.csv", "-m", m, "--warnings")
    assert res.code == 0
    rows = by_row(res)
    assert rows[2]["status"] == "valid" and rows[2]["warning"].startswith("end-before-start: endTime")
    assert "row 2: warning end-before-start" in res.stderr
    assert rows[3]["warning"] == "matching-warning: SIRO cannot match recordings to it: no engagement user"
    server = sandbox()
    res = run_cli("run", tmp_path / "f.csv", "-m", m, "--base-url", server.base_url, "--no-state")
    assert res.code == 0
    rows = by_row(res)
    assert rows[2]["status"] == "synced" and rows[2]["warning"].startswith("end-before-start")
    assert rows[3]["status"] == "synced" and rows[3]["warning"].startswith("matching-warning")
    assert "warnings: end-before-start 1, matching-warning 1" in res.stdout


# --------------------------------------------------------------------------- 9. too big to send


@pytest.mark.slow
def test_a_record_larger_than_a_request_is_invalid_before_sending(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    """Was: sent, and refused by the server with 413."""
    notes = "x" * 30_000
    (tmp_path / "f.csv").write_text(f"Id,Notes\nE-1,short\nE-2,{notes}\nE-3,short too\n")
    m = write_mapping(tmp_path, "version: 1\nfields:\n  externalId: Id\n  content: Notes\n")
    server = sandbox()
    args = ["-m", m, "--max-body-bytes", "20000"]
    res = run_cli("run", tmp_path / "f.csv", *args, "--base-url", server.base_url, "--no-state")
    assert res.code == 1
    rows = by_row(res)
    assert (rows[3]["status"], rows[3]["error_type"]) == ("invalid", "too-large")
    assert "30,0" in rows[3]["message"] and "20,000" in rows[3]["message"]
    assert set(server.state.records) == {"E-1", "E-3"} and 413 not in server.state.responses
    res = run_cli("validate", tmp_path / "f.csv", *args)
    assert [r["error_type"] for r in res.report] == ["", "too-large", ""]


# --------------------------------------------------------------------------- 10. wide files


def test_a_file_wider_than_any_spreadsheet_is_refused_not_misdiagnosed(
    sandbox: Sandbox, run_cli: RunCli, tmp_path: Path
) -> None:
    """Was: every row reported `extra-cells`."""
    width = 100_000
    header = "Id," + ",".join(f"c{i}" for i in range(width))
    rows = "".join(f"E-{r}," + ",".join("v" for _ in range(width)) + "\n" for r in range(3))
    (tmp_path / "wide.csv").write_text(header + "\n" + rows)
    m = write_mapping(tmp_path, "version: 1\nfields:\n  externalId: Id\n")
    server = sandbox()
    res = run_cli("run", tmp_path / "wide.csv", "-m", m, "--base-url", server.base_url, "--no-state")
    assert res.code == 2 and server.state.requests == 0
    assert "has 100,001 columns, more than a spreadsheet can hold" in res.stderr


def test_a_summary_json_counts_warnings(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_text("Id\nE-1\n")
    m = write_mapping(tmp_path, "version: 1\nfields:\n  externalId: Id\n")
    res = run_cli("validate", tmp_path / "f.csv", "-m", m, "--summary-json", tmp_path / "s.json")
    assert res.code == 0
    assert json.loads((tmp_path / "s.json").read_text())["warnings"] == {"matching-warning": 1}
