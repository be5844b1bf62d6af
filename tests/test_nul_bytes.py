"""A NUL byte is handled the same way wherever it is (issue 33): the row holding it is invalid
(bad-encoding) with its column named, never the whole file called "binary" when the NUL is near
the start and the NUL sent as \\u0000 when it is further on. A NUL in the header row refuses the
file with one line naming the column. The real CLI, the sandbox, real .xlsx files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest
from helpers import CliResult, RunCli

from bulk_sync.sandbox import SandboxServer

MAPPING = "version: 1\nfields:\n  externalId: Id\n  subject: Subject\n  startTime: Start\n"
ROWS = [f"E-{i:04d},Visit {i},2024-03-05T10:00:00Z" for i in range(3000)]  # ~130 KB: past the 64 KB sample


@pytest.fixture
def mapping_file(tmp_path: Path) -> Path:
    m = tmp_path / "m.yaml"
    m.write_text(MAPPING)
    return m


def _with_nul(where: str) -> tuple[bytes, int, str]:
    """A CSV with one NUL: (its bytes, the row number holding it, the column)."""
    rows = list(ROWS)
    if where == "start":  # the first cell of the first data row (byte 17 of the file)
        rows[0], number, column = "\x00" + rows[0], 2, "Id"
    elif where == "middle":
        rows[1500], number, column = rows[1500].replace("Visit", "Vi\x00sit"), 1502, "Subject"
    else:  # the file's last byte, with no newline after it
        rows[-1], number, column = rows[-1] + "\x00", len(rows) + 1, "Start"
    text = "Id,Subject,Start\n" + "\n".join(rows) + ("" if where == "end" else "\n")
    return text.encode(), number, column


def _check_report(res: CliResult, number: int, column: str) -> None:
    bad = [r for r in res.report if r["status"] == "invalid"]
    assert [(int(r["row_number"]), r["error_type"], r["column"]) for r in bad] == [
        (number, "bad-encoding", column)
    ]
    assert "NUL byte" in bad[0]["message"] and "␀" in bad[0]["message"]
    assert len(res.report) == len(ROWS)


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_a_nul_makes_its_row_invalid_wherever_it_is(
    where: str, run_cli: RunCli, tmp_path: Path, mapping_file: Path
) -> None:
    data, number, column = _with_nul(where)
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    res = run_cli("validate", path, "-m", mapping_file)
    assert res.code == 1, res.stderr
    assert "binary" not in res.stderr
    _check_report(res, number, column)


def test_a_run_never_sends_a_nul(
    siro: SandboxServer, run_cli: RunCli, tmp_path: Path, mapping_file: Path
) -> None:
    data, number, column = _with_nul("middle")
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    res = run_cli("run", path, "-m", mapping_file, "--base-url", siro.base_url, "--no-state")
    assert res.code == 1, res.stderr
    _check_report(res, number, column)
    assert len(siro.state.records) == len(ROWS) - 1
    assert not any("\x00" in str(rec) for rec in siro.state.records.values())


def test_a_nul_in_the_header_row_refuses_the_file_naming_the_column(
    run_cli: RunCli, tmp_path: Path, mapping_file: Path
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(b"Id,Sub\x00ject,Start\n" + "\n".join(ROWS[:3]).encode())
    res = run_cli("validate", path, "-m", mapping_file)
    assert res.code == 2
    assert res.stderr.strip().splitlines()[-1] == (
        f"error: {path}: the header row holds a NUL byte (character 0) in its column 2 ('Subject'): "
        "remove it, or export the file again"
    )


def test_a_nul_in_an_xlsx_cell_makes_its_row_invalid(
    run_cli: RunCli, tmp_path: Path, mapping_file: Path
) -> None:
    """Excel writes a control character in a cell as _x0000_ (calamine reads it back as NUL)."""
    plain = tmp_path / "plain.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Id", "Subject", "Start"])
    for i in range(20):
        ws.append([f"E-{i}", "Vi@NUL@sit" if i == 7 else f"Visit {i}", "2024-03-05T10:00:00Z"])
    wb.save(plain)
    path = tmp_path / "export.xlsx"
    with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info.filename).replace(b"@NUL@", b"_x0000_"))
    res = run_cli("validate", path, "-m", mapping_file)
    assert res.code == 1, res.stderr
    bad = [r for r in res.report if r["status"] == "invalid"]
    assert [(int(r["row_number"]), r["error_type"], r["column"]) for r in bad] == [
        (9, "bad-encoding", "Subject")
    ]
    assert "'Vi␀sit'" in bad[0]["message"]


def test_a_binary_file_is_still_refused(run_cli: RunCli, tmp_path: Path, mapping_file: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes("Id,Subject,Start\n".encode("utf-16-le") * 50)  # UTF-16 without a byte-order mark
    res = run_cli("validate", path, "-m", mapping_file)
    assert res.code == 2
    assert "is not a text file (binary content)" in res.stderr
