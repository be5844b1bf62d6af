"""Loader: files -> text rows with the row numbers a person sees; clear errors for bad files."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from openpyxl import Workbook

from bulk_sync.errors import SourceError
from bulk_sync.load import cell_text, clean_headers, open_source


def rows_of(path: Path, **kw: object) -> list[tuple[int, dict[str, str]]]:
    src = open_source(path, **kw)  # type: ignore[arg-type]
    return [(r.row_number, r.cells) for chunk in src.chunks() for r in chunk.rows()]


def test_csv_keeps_text_exactly_and_numbers_rows_like_excel(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_bytes(b'Id,Zip,Note\r\n00017,02134,"two\r\nlines"\r\n\r\n1e5,  ,"say ""hi"""\r\n')
    assert rows_of(p) == [
        (2, {"Id": "00017", "Zip": "02134", "Note": "two\r\nlines"}),
        # row 3 is blank: skipped, its number is not reused
        (4, {"Id": "1e5", "Zip": "  ", "Note": 'say "hi"'}),
    ]


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_csv_utf8_with_or_without_bom(tmp_path: Path, bom: bytes) -> None:
    p = tmp_path / "a.csv"
    p.write_bytes(bom + "Name,City\nJosé,Zürich\n".encode())
    src = open_source(p)
    assert src.headers == ["Name", "City"]
    assert rows_of(p) == [(2, {"Name": "José", "City": "Zürich"})]


def test_csv_streams_in_chunks(tmp_path: Path) -> None:
    p = tmp_path / "big.csv"
    p.write_text("A,B\n" + "".join(f"{i},x\n" for i in range(25)))
    src = open_source(p, chunk_rows=10)
    sizes = [len(c) for c in src.chunks()]
    assert sizes == [10, 10, 5]
    assert [r.row_number for c in src.chunks() for r in c.rows()][-1] == 26


def test_not_utf8_names_the_byte_and_suggests_encoding(tmp_path: Path) -> None:
    p = tmp_path / "latin.csv"
    p.write_bytes("Name\nJosé\n".encode("cp1252"))
    with pytest.raises(SourceError, match=r"not valid utf-8 text \(byte 0xe9 at offset 8\).*--encoding"):
        open_source(p)
    assert rows_of(p, encoding="cp1252") == [(2, {"Name": "José"})]


def test_headers_are_trimmed_and_made_unique() -> None:
    headers, warnings = clean_headers([" Name ", "Name", "", "Email", ""])
    assert headers == ["Name", "Name (2)", "column_3", "Email"]
    assert len(warnings) == 2


def _xlsx(path: Path, rows: list[list[object]], title: str = "Sheet1", extra: str | None = None) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = title
    for r in rows:
        ws.append(r)
    if extra:
        wb.create_sheet(extra).append(["Other"])
    wb.save(path)
    return path


def test_xlsx_cells_become_the_text_a_person_sees(tmp_path: Path) -> None:
    p = _xlsx(
        tmp_path / "t.xlsx",
        [
            ["Id", "Zip", "When", "Day", "Amount", "Flag", "Big"],
            [
                17,
                "02134",
                dt.datetime(2026, 6, 13, 10, 30),
                dt.date(2026, 6, 13),
                12345.67,
                True,
                123456789012,
            ],
            [None, None, None, None, None, None, None],
            [18.0, "00501", dt.datetime(2026, 6, 14, 9, 0), None, 0.1, False, None],
        ],
    )
    assert rows_of(p) == [
        (
            2,
            {
                "Id": "17",
                "Zip": "02134",
                "When": "2026-06-13 10:30:00",
                "Day": "2026-06-13",
                "Amount": "12345.67",
                "Flag": "TRUE",
                "Big": "123456789012",
            },
        ),
        (
            4,
            {
                "Id": "18",
                "Zip": "00501",
                "When": "2026-06-14 09:00:00",
                "Day": "",
                "Amount": "0.1",
                "Flag": "FALSE",
                "Big": "",
            },
        ),
    ]


def test_xlsx_sheet_by_name_and_missing_sheet(tmp_path: Path) -> None:
    p = _xlsx(tmp_path / "t.xlsx", [["A"], ["1"]], title="Events", extra="Notes")
    assert open_source(p).sheet == "Events"
    assert open_source(p, sheet="Notes").headers == ["Other"]
    with pytest.raises(SourceError, match=r"has no sheet 'Nope'; its sheets are: Events, Notes"):
        open_source(p, sheet="Nope")


def test_cell_text_has_no_float_artefacts() -> None:
    assert cell_text(3.0) == "3"
    assert cell_text(0.1 + 0.2) == "0.30000000000000004"  # the value Excel stores, shortest repr
    assert cell_text(dt.time(9, 5)) == "09:05:00"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("renamed.xlsx", b"Id,Name\n1,x\n", "named like an Excel workbook but is not one"),
        ("junk.csv", bytes(range(256)) * 4, "not valid utf-8"),
        ("broken.xlsx", b"PK\x03\x04" + b"\x00" * 100, "not a readable .xlsx workbook"),
        ("locked.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "password-protected"),
        ("blank.csv", b"\n\n", "no header row"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(SourceError, match=re.escape(message)) as info:
        open_source(p)
    assert str(p) in str(info.value)
    assert "\n" not in str(info.value)


def test_truncated_xlsx(tmp_path: Path) -> None:
    good = _xlsx(tmp_path / "good.xlsx", [["A"], ["1"]])
    bad = tmp_path / "cut.xlsx"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(SourceError, match=r"not a readable \.xlsx workbook"):
        open_source(bad)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file not found"):
        open_source(tmp_path / "nope.csv")
    with pytest.raises(SourceError, match="is a folder"):
        open_source(tmp_path)


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    p = tmp_path / "h.csv"
    p.write_text("A,B\n")
    assert rows_of(p) == []


def test_ragged_csv_row_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text("A,B\n1,2\n3,4,5\n")
    with pytest.raises(SourceError, match="cannot be read"):
        rows_of(p)
