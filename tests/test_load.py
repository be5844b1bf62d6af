"""Loader: files -> text rows with the row numbers a person sees; clear errors for bad files.

Every fixture file is written by the test itself: CSV bytes by hand, workbooks with openpyxl
(.xlsx), xlwt (.xls), a hand-built zip (.ods), msoffcrypto (a real password-protected .xlsx).
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import os
import re
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from helpers import examples, write_ods
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from bulk_sync.errors import RowError, SourceError
from bulk_sync.load import cell_text, clean_headers, find_header, open_source, open_sources, sniff_delimiter


def rows_of(path: Path, **kw: Any) -> list[tuple[int, dict[str, str]]]:
    src = open_source(path, **kw)
    return [(r.row_number, r.cells) for chunk in src.chunks() for r in chunk.rows()]


def skipped_of(path: Path, **kw: Any) -> list[tuple[int, str]]:
    src = open_source(path, **kw)
    return [s for chunk in src.chunks() for s in chunk.skipped]


def problems_of(path: Path, **kw: Any) -> dict[int, list[RowError]]:
    src = open_source(path, **kw)
    return {n: m for chunk in src.chunks() for n, m in chunk.problems.items()}


# --------------------------------------------------------------------------- CSV: text


def test_csv_keeps_text_exactly_and_numbers_rows_like_excel(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_bytes(b'Id,Zip,Note\r\n00017,02134,"two\r\nlines"\r\n\r\n1e5,  ,"say ""hi"""\r\n')
    assert rows_of(p) == [
        (2, {"Id": "00017", "Zip": "02134", "Note": "two\r\nlines"}),
        # row 3 is blank: skipped, its number is not reused
        (4, {"Id": "1e5", "Zip": "  ", "Note": 'say "hi"'}),
    ]


ACCENTED = "Name,City,Note\nJosé Peña,Zürich,Café – “quoted”\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (ACCENTED.encode(), "utf-8-sig"),
        (codecs.BOM_UTF8 + ACCENTED.encode(), "utf-8-sig"),
        (
            codecs.BOM_UTF16_LE + ACCENTED.replace(",", "\t").encode("utf-16-le"),
            "utf-16",
        ),  # Excel "Unicode Text"
        (codecs.BOM_UTF16_BE + ACCENTED.encode("utf-16-be"), "utf-16"),
    ],
    ids=["utf8", "utf8-bom", "utf16le-bom-tab", "utf16be-bom"],
)
def test_encodings_are_detected(tmp_path: Path, data: bytes, encoding: str) -> None:
    p = tmp_path / "a.csv"
    p.write_bytes(data)
    src = open_source(p)
    assert (src.encoding, src.headers) == (encoding, ["Name", "City", "Note"])
    assert rows_of(p) == [(2, {"Name": "José Peña", "City": "Zürich", "Note": "Café – “quoted”"})]
    assert not [w for w in src.warnings if "not UTF-8" in w]


def test_a_code_page_guess_that_changes_the_text_is_refused_with_the_choices(tmp_path: Path) -> None:
    """Excel's "CSV (Comma delimited)" on Western Windows is cp1252, but 'ñ' is 'ń' in cp1250:
    which one the person meant only they can say. Refused, showing how the word reads in each."""
    p = tmp_path / "a.csv"
    p.write_bytes(ACCENTED.encode("cp1252"))
    with pytest.raises(SourceError) as info:
        open_source(p)
    message = str(info.value)
    assert "'José Peña' as cp1252" in message and "'José Peńa' as cp1250" in message
    assert "--encoding" in message and "CSV UTF-8" in message
    src = open_source(p, encoding="cp1252")
    assert rows_of(p, encoding="cp1252") == [
        (2, {"Name": "José Peña", "City": "Zürich", "Note": "Café – “quoted”"})
    ]
    assert not [w for w in src.warnings if "not UTF-8" in w]  # the person said so: nothing guessed


def test_a_code_page_every_plausible_reading_agrees_on_is_read_with_a_warning(tmp_path: Path) -> None:
    """German text: 'ß', 'ö', 'ü' are the same characters in every Western code page that fits."""
    p = tmp_path / "de.csv"
    p.write_bytes("Name,Ort\nJürgen Müller,Köln\nGrete Strauß,Düsseldorf\n".encode("cp1252"))
    src = open_source(p)
    assert src.encoding == "cp1252"
    assert any("not UTF-8" in w and "cp1252" in w for w in src.warnings)
    assert rows_of(p)[1] == (3, {"Name": "Grete Strauß", "Ort": "Düsseldorf"})


def test_cyrillic_code_page_is_recognised(tmp_path: Path) -> None:
    """Every other code page turns these bytes into garbled Latin: cp1251 is the only plausible one."""
    p = tmp_path / "ru.csv"
    p.write_bytes("Id;Имя;Город\n1;Иван Петров;Москва\n2;Пётр Сидоров;Санкт-Петербург\n".encode("cp1251"))
    src = open_source(p)
    assert (src.encoding, src.delimiter) == ("cp1251", ";")
    assert rows_of(p)[1] == (3, {"Id": "2", "Имя": "Пётр Сидоров", "Город": "Санкт-Петербург"})


def test_utf8_with_a_few_bad_bytes_is_utf8_and_only_those_rows_are_flagged(tmp_path: Path) -> None:
    """A UTF-8 file with two damaged bytes in one row is not a cp1252 file: every other accent is
    read right, and the damaged row is flagged with its column and the bytes."""
    lines = ["Id,Name,City"] + [f"{i},Café {i},Zürich" for i in range(2000)]
    data = ("\n".join(lines) + "\n").encode()
    data = data.replace(b"1500,Caf\xc3\xa9 1500", b"1500,Caf\xe9\x20 1500")  # cp1252 bytes typed in
    p = tmp_path / "damaged.csv"
    p.write_bytes(data)
    src = open_source(p)
    assert src.encoding == "utf-8-sig" and src.damaged
    assert any("not valid UTF-8" in w and "bad-encoding" in w for w in src.warnings)
    rows = dict(rows_of(p))
    assert rows[2]["Name"] == "Café 0" and rows[2001]["City"] == "Zürich"
    assert rows[1502]["Name"] == "Caf\ufffd  1500"
    problems = problems_of(p)
    assert list(problems) == [1502]
    (err,) = problems[1502]
    assert (err.slug, err.column) == ("bad-encoding", "Name")
    assert "0xE9" in err.message and "not valid UTF-8" in err.message


def test_utf8_bom_file_with_bad_bytes_flags_the_rows(tmp_path: Path) -> None:
    p = tmp_path / "bom.csv"
    p.write_bytes(codecs.BOM_UTF8 + b"Id,Name\n1,Jos\xe9\n2,Ann\n")
    assert list(problems_of(p)) == [2]
    assert rows_of(p)[1] == (3, {"Id": "2", "Name": "Ann"})


def test_encoding_flag_overrides_and_a_bad_byte_is_named(tmp_path: Path) -> None:
    p = tmp_path / "latin.csv"
    p.write_bytes("Name\nJosé\n".encode("cp1252"))
    with pytest.raises(SourceError, match=r"not valid utf-8 text \(byte 0xe9 at offset 8\).*--encoding"):
        open_source(p, encoding="utf-8")
    assert rows_of(p, encoding="latin-1") == [(2, {"Name": "José"})]
    with pytest.raises(SourceError, match="unknown encoding 'klingon'"):
        open_source(p, encoding="klingon")


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_whole_file_check_across_megabyte_blocks(tmp_path: Path, encoding: str) -> None:
    """The check reads 1 MiB blocks and skips decoding the ASCII ones: a character split across a
    block boundary still decodes, a bad byte after megabytes of ASCII is still found (where it is),
    and a quote opened in one block and closed in another is not an unclosed quote."""
    row = b"1,plain ascii text\n"
    pad = row * ((1 << 20) // len(row) - 1)  # just under one block of ASCII
    e_acute = "é".encode(encoding)
    split = b"Id,Name\n" + pad + b"x" * ((1 << 20) - len(pad) - 14) + b"2,Jos" + e_acute + b"\n"
    assert split.index(e_acute) == (1 << 20) - 1  # UTF-8: its first byte ends the first block
    p = tmp_path / "split.csv"
    p.write_bytes(split + pad * 2)
    src = open_source(p, encoding=encoding)
    assert sum(len(c) for c in src.chunks()) == 1 + len(pad) // len(row) * 3
    p.write_bytes(b"Id,Name\n" + pad * 3 + b"9,Jos\xe9\n")
    bad_at = 8 + len(pad) * 3 + 5
    if encoding == "utf-8":
        with pytest.raises(SourceError, match=rf"not valid utf-8 text \(byte 0xe9 at offset {bad_at}\)"):
            open_source(p, encoding="utf-8")
        cut = split[: (1 << 20) - 1] + e_acute[:1]  # a character's first byte ends the block ...
        p.write_bytes(cut + b"\n" + pad)  # ... and the next block is ASCII
        with pytest.raises(SourceError, match=r"not valid utf-8 text \(byte 0xc3 at offset 104857[56]\)"):
            open_source(p, encoding="utf-8")
    quoted = b"Id,Note\n" + pad + b'2,"a note\n' + pad + b'across blocks"\n' + pad
    p.write_bytes(quoted)
    src = open_source(p, encoding=encoding)
    notes = [r.cells["Note"] for c in src.chunks() for r in c.rows() if r.cells["Id"] == "2"]
    assert notes == ["a note\n" + pad.decode() + "across blocks"]


# --------------------------------------------------------------------------- CSV: delimiters


@pytest.mark.parametrize("delim", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path: Path, delim: str) -> None:
    p = tmp_path / "d.csv"
    others = "".join(d for d in ",;|" if d != delim)  # the other delimiters appear inside cells
    lines = [delim.join(["Id", "Name", "Amount"])]
    lines += [delim.join([str(i), f'"Lee{others}, Ann"', f"1{others}5"]) for i in range(5)]
    p.write_text("\r\n".join(lines) + "\r\n")
    src = open_source(p)
    assert src.delimiter == delim
    assert rows_of(p)[0] == (2, {"Id": "0", "Name": f"Lee{others}, Ann", "Amount": f"1{others}5"})


def test_excel_sep_line_and_delimiter_flag(tmp_path: Path) -> None:
    p = tmp_path / "sep.csv"
    p.write_text("sep=;\nId;Name\n1;Ann, Lee\n")
    assert rows_of(p) == [(2, {"Id": "1", "Name": "Ann, Lee"})]  # Excel hides the sep= line
    q = tmp_path / "forced.csv"
    q.write_text("Id|Name,x\n1|Ann,y\n")
    assert open_source(q, delimiter="|").headers == ["Id", "Name,x"]


def test_sniffer_ignores_title_lines() -> None:
    sample = "Report: Meetings\nAs of 2026-11-01\n\nId;Name;When\n1;a;b\n2;c;d\n3;e;f\n"
    assert sniff_delimiter(sample) == ";"


# --------------------------------------------------------------------------- CSV: structure


SALESFORCE_LIKE = (
    '"Activities with Accounts"\n'
    '"Filtered By: Date equals THIS MONTH"\n'
    "\n"
    '"Assigned","Subject","Start","Account Name"\n'
    '"Ann Lee","Demo","11/3/2026 9:00 AM","Acme"\n'
    '"Bo Chen","Call","11/4/2026 10:30 AM","Globex"\n'
    "\n"
    '"Grand Totals (2 records)"\n'
    "\n"
    '"Generated By:  Ann Lee  11/24/2026 4:10 PM"\n'
    '"Acme Inc."\n'
    '"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."\n'
)


def test_title_lines_above_the_header_and_a_report_footer(tmp_path: Path) -> None:
    p = tmp_path / "report.csv"
    p.write_text(SALESFORCE_LIKE)
    src = open_source(p)
    assert src.headers == ["Assigned", "Subject", "Start", "Account Name"]
    assert src.header_row == 4
    assert any("header is on row 4" in w for w in src.warnings)
    assert rows_of(p) == [
        (5, {"Assigned": "Ann Lee", "Subject": "Demo", "Start": "11/3/2026 9:00 AM", "Account Name": "Acme"}),
        (
            6,
            {
                "Assigned": "Bo Chen",
                "Subject": "Call",
                "Start": "11/4/2026 10:30 AM",
                "Account Name": "Globex",
            },
        ),
    ]
    skipped = skipped_of(p)
    assert [n for n, _ in skipped] == [8, 10, 11, 12]
    assert all("report footer" in why for _, why in skipped)


def test_footer_detection_holds_across_chunks(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    body = "".join(f"{i},x,y\n" for i in range(7))
    p.write_text("A,B,C\n" + body + "\nGenerated By: me\nCopyright\n")
    assert [n for n, _ in skipped_of(p, chunk_rows=7)] == [10, 11]
    assert [n for n, _ in rows_of(p, chunk_rows=3)] == list(range(2, 9))


def test_blank_rows_inside_the_data_are_not_a_footer(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text("A,B,C\n1,x,y\n\n2,,\n3,x,y\n\n4,,\n5,z,\n")
    assert [n for n, _ in rows_of(p)] == [2, 4, 5, 7, 8]
    assert skipped_of(p) == []


def test_mapping_columns_pick_the_header_and_header_row_overrides(tmp_path: Path) -> None:
    rows = [["Export", "v2", ""], ["When", "Who", "Id"], ["a", "b", "c"]]
    assert find_header(rows, None, ()) == 0  # first row that fills 2+ cells
    assert find_header(rows, None, ["Id", "who"]) == 1  # the row holding the mapped columns
    assert find_header(rows, 3, ["Id"]) == 2
    p = tmp_path / "h.csv"
    p.write_text("Export,v2\nWhen,Who,Id\n2026-01-01,Ann,7\n")
    assert open_source(p, expected=["Id"]).header_row == 2
    assert rows_of(p, header_row=2) == [(3, {"When": "2026-01-01", "Who": "Ann", "Id": "7"})]


def test_headers_are_trimmed_and_made_unique() -> None:
    headers, warnings = clean_headers([" Name ", "Name", "", "Email\n Address", ""])
    assert headers == ["Name", "Name (2)", "column_3", "Email Address"]
    assert len(warnings) == 2


def test_extra_cells_flag_the_row_and_short_rows_are_padded(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text("Id,Name,City\n1,Lee, Ann,Paris\n2,Bo\n3,Cy,Rome,,\n")
    assert rows_of(p)[1:] == [
        (3, {"Id": "2", "Name": "Bo", "City": ""}),
        (4, {"Id": "3", "Name": "Cy", "City": "Rome"}),
    ]
    problems = problems_of(p)
    assert list(problems) == [2]
    (err,) = problems[2]
    assert err.slug == "extra-cells"
    assert "more cells than the header has columns (3)" in err.message and "'Paris'" in err.message


def test_unclosed_quote_is_refused_up_front_with_its_line(tmp_path: Path) -> None:
    p = tmp_path / "q.csv"
    p.write_text('Id,Note\n1,fine\n2,"never closed\n3,x\n4,y\n')
    with pytest.raises(SourceError, match=r"never closed, in the record that starts on line 3"):
        open_source(p)


def test_a_lone_quote_inside_a_cell_is_text(tmp_path: Path) -> None:
    p = tmp_path / "q.csv"
    p.write_text('Id,Screen\n1,15" monitor\n')
    assert rows_of(p) == [(2, {"Id": "1", "Screen": '15" monitor'})]


def test_csv_streams_in_chunks(tmp_path: Path) -> None:
    p = tmp_path / "big.csv"
    p.write_text("A,B\n" + "".join(f"{i},x\n" for i in range(25)))
    src = open_source(p, chunk_rows=10)
    assert [len(c) for c in src.chunks()] == [10, 10, 5]
    assert [r.row_number for c in src.chunks() for r in c.rows()][-1] == 26


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    p = tmp_path / "h.csv"
    p.write_text("A,B\n")
    assert rows_of(p) == []


# --------------------------------------------------------------------------- workbooks


def _xlsx(path: Path, rows: list[list[object]], title: str = "Sheet1", **extra: list[list[object]]) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = title
    for r in rows:
        ws.append(r)
    for name, more in extra.items():
        other = wb.create_sheet(name.replace("_", " "))
        for r in more:
            other.append(r)
    wb.save(path)
    return path


def test_xlsx_cells_become_the_text_a_person_sees(tmp_path: Path) -> None:
    p = _xlsx(
        tmp_path / "t.xlsx",
        [
            ["Id", "Zip", "When", "Day", "Amount", "Flag", "Big", "At", "Precise"],
            [17, "02134", dt.datetime(2026, 6, 13, 10, 30), dt.date(2026, 6, 13), 12345.67, True,
             123456789012, dt.time(9, 5), dt.datetime(2026, 6, 13, 10, 30, 15, 250000)],
            [None] * 9,
            [18.0, "00501", dt.datetime(2026, 6, 14, 0, 0), None, 0.1 + 0.2, False, None, None, None],
        ],
    )  # fmt: skip
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
                "At": "09:05:00",
                "Precise": "2026-06-13 10:30:15.250",
            },
        ),
        (
            4,
            {
                "Id": "18",
                "Zip": "00501",
                "When": "2026-06-14",  # calamine gives a midnight date-time as the date
                "Day": "",
                "Amount": "0.3",  # Excel shows 0.3, not 0.30000000000000004
                "Flag": "FALSE",
                "Big": "",
                "At": "",
                "Precise": "",
            },
        ),
    ]


def test_cell_text_has_no_float_artefacts() -> None:
    assert cell_text(3.0) == "3"
    assert cell_text(0.1 + 0.2) == "0.3"
    assert cell_text(1234.5678) == "1234.5678"
    assert cell_text(dt.time(9, 5)) == "09:05:00"
    assert (
        cell_text(dt.datetime(2026, 1, 2, 10, 29, 59, 999_999)) == "2026-01-02 10:30:00"
    )  # day fraction noise
    assert cell_text(dt.timedelta(hours=26, minutes=5)) == "26:05:00"


def test_formula_cells_give_their_cached_values(tmp_path: Path) -> None:
    p = _xlsx(tmp_path / "f.xlsx", [["Id", "Double"], [21, "=A2*2"]])
    _patch_zip(
        p,
        "xl/worksheets/sheet1.xml",
        lambda xml: re.sub(r"(<f>A2\*2</f>)<v\s*/?>(</v>)?", r"\1<v>42</v>", xml),
    )
    assert rows_of(p) == [(2, {"Id": "21", "Double": "42"})]


def test_merged_cells_give_the_top_left_value(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["Account", "Attendee"])
    ws.append(["Acme", "ann@acme.com"])
    ws.append([None, "bo@acme.com"])
    ws.append([None, "cy@acme.com"])
    ws.append(["Globex", "di@globex.com"])
    ws.merge_cells("A2:A4")
    wb.save(p := tmp_path / "m.xlsx")
    assert [(n, c["Account"]) for n, c in rows_of(p)] == [
        (2, "Acme"),
        (3, "Acme"),
        (4, "Acme"),
        (5, "Globex"),
    ]


def test_columns_a_run_does_not_read_are_made_text_only_when_asked(tmp_path: Path) -> None:
    """A run makes text of the columns its mapping reads; the others stay cell values until a
    row's cells are asked for (the error file's), and then read exactly as a full read gives them;
    where the data ends (a footer in an unread column) is found the same."""
    body: list[list[object]] = [
        [f"A{i}", "x" if i % 3 else " ", dt.datetime(2026, 6, 13, 10, i % 60, 0, 250000 * (i % 2)),
         dt.date(2026, 6, 1 + i % 28), i * 1.25, i % 2 == 0, None if i % 4 else 7, dt.time(9, i % 60)]
        for i in range(40)
    ]  # fmt: skip
    p = _xlsx(
        tmp_path / "t.xlsx",
        [
            ["Id", "Note", "When", "Day", "Amount", "Flag", "Big", "At"],
            *body,
            [],
            [None, None, None, "printed by X"],
        ],
    )
    src = open_source(p)
    full = list(src.chunks())
    lazy = list(src.chunks(text=["Id"]))
    assert lazy[0].raw and "Id" not in lazy[0].raw and "Amount" in lazy[0].raw
    assert [c.row_numbers for c in lazy] == [c.row_numbers for c in full]
    assert [c.skipped for c in lazy] == [c.skipped for c in full] and full[-1].skipped  # the footer
    for a, b in zip(full, lazy, strict=True):
        every = list(range(len(a)))
        assert a.row_cells(every, src.headers) == b.row_cells(every, src.headers)
        assert [a.cells(h) for h in src.headers] == [b.cells(h) for h in src.headers]
        assert list(a.rows()) == list(b.rows())
        assert a.take(every[::2]).row_cells(every[: len(every[::2])], src.headers) == b.take(
            every[::2]
        ).row_cells(every[: len(every[::2])], src.headers)


def test_xlsx_title_rows_and_data_starting_at_column_c(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws["C1"] = "Meetings export"
    ws["C3"], ws["D3"], ws["E3"] = "Id", "Subject", "Owner"
    ws["C4"], ws["D4"], ws["E4"] = 1, "Demo", "Ann"
    ws["C6"], ws["D6"], ws["E6"] = 2, "Call", "Bo"
    wb.save(p := tmp_path / "t.xlsx")
    src = open_source(p)
    assert (src.headers, src.header_row) == (["Id", "Subject", "Owner"], 3)
    assert rows_of(p) == [
        (4, {"Id": "1", "Subject": "Demo", "Owner": "Ann"}),
        (6, {"Id": "2", "Subject": "Call", "Owner": "Bo"}),
    ]


def test_sheets_by_name_position_glob_and_hidden(tmp_path: Path) -> None:
    p = tmp_path / "book.xlsm"  # .xlsm: the same content; the format is read from the bytes
    wb = Workbook()
    wb.active.title = "Summary"
    wb.active.append(["Total"])
    for name in ("Q1 Events", "Hidden Q", "Q2 Events"):
        ws = wb.create_sheet(name)
        ws.append(["Id", "Name"])
        ws.append([name, "x"])
    wb["Hidden Q"].sheet_state = "hidden"
    wb.save(p)
    assert [s.sheet for s in open_sources(p)] == ["Summary"]
    assert [s.sheet for s in open_sources(p, sheet="2")] == ["Q1 Events"]  # 1-based, hidden ones not counted
    assert [s.sheet for s in open_sources(p, sheet="3")] == ["Q2 Events"]
    assert [s.sheet for s in open_sources(p, sheet="q* events")] == ["Q1 Events", "Q2 Events"]
    assert [s.sheet for s in open_sources(p, sheet="*")] == ["Summary", "Q1 Events", "Q2 Events"]
    assert [s.sheet for s in open_sources(p, sheet="Hidden Q")] == ["Hidden Q"]  # named: read
    with pytest.raises(
        SourceError, match=r"has no sheet 'Nope'; its sheets are: 'Summary', .* \(hidden: 'Hidden Q'\)"
    ):
        open_sources(p, sheet="Nope")
    with pytest.raises(SourceError, match="2 sheets match; name one"):
        open_source(p, sheet="Q*")


def test_xls_and_ods_are_read_by_content(tmp_path: Path) -> None:
    import xlwt

    book = xlwt.Workbook()
    ws = book.add_sheet("Old")
    for c, v in enumerate(["Id", "When", "Zip"]):
        ws.write(0, c, v)
    ws.write(1, 0, 17)
    ws.write(1, 1, dt.datetime(2026, 3, 10, 14, 30), xlwt.easyxf(num_format_str="YYYY-MM-DD HH:MM"))
    ws.write(1, 2, "02134")
    book.save(str(xls := tmp_path / "export.dat"))  # the name says nothing
    assert rows_of(xls) == [(2, {"Id": "17", "When": "2026-03-10 14:30:00", "Zip": "02134"})]
    assert open_source(xls).kind == "xls"

    ods = tmp_path / "calls.ods"
    _write_ods(ods, "Calls", [["Id", "When"], [("float", "7"), ("date", "2026-03-10T14:30:00")]])
    assert open_source(ods).kind == "ods"
    assert rows_of(ods) == [(2, {"Id": "7", "When": "2026-03-10 14:30:00"})]


def test_header_only_workbook_has_no_rows(tmp_path: Path) -> None:
    assert rows_of(_xlsx(tmp_path / "h.xlsx", [["Id", "Name"]])) == []


# --------------------------------------------------------------------------- bad files


def _encrypted_xlsx(path: Path, tmp: Path) -> bytes:
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = _xlsx(tmp / "plain.xlsx", [["Id"], [1]])
    out = io.BytesIO()
    with plain.open("rb") as fh:
        OOXMLFile(fh).encrypt("secret", out)
    return out.getvalue()


def _entity_bomb(tmp: Path) -> bytes:
    plain = _xlsx(tmp / "plain.xlsx", [["Id", "Name"], [1, "x"]])
    dtd = '<!DOCTYPE lolz [<!ENTITY lol "lollollollollollollollollollol">' + "".join(
        f'<!ENTITY lol{i} "' + f"&lol{i - 1 if i > 1 else ''};" * 10 + '">' for i in range(1, 10)
    ) + "]>"  # fmt: skip
    _patch_zip(
        plain, "xl/worksheets/sheet1.xml", lambda x: dtd + x.split("?>", 1)[-1].replace(">x<", ">&lol9;<")
    )
    return plain.read_bytes()


def _zip_bomb(tmp: Path) -> bytes:
    plain = _xlsx(tmp / "plain.xlsx", [["Id"], [1]])
    buf = io.BytesIO()
    with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            zout.writestr(item.filename, zin.read(item.filename))
        zout.writestr("xl/media/padding.bin", b"\0" * (200 * 1024 * 1024))  # 200 MB of zeros: ~200 KB packed
    return buf.getvalue()


BAD_FILES = [
    ("empty.csv", lambda t: b"", "the file is empty"),
    ("blank.csv", lambda t: b"\n\n \n", "no header row"),
    (
        "renamed.xlsx",
        lambda t: b"Id,Name\n1,x\n",
        "is named like a workbook (.xlsx) but its content is not one",
    ),
    ("junk.csv", lambda t: bytes(range(256)) * 40, "is not a text file (binary content)"),
    ("truncated.xlsx", lambda t: _xlsx(t / "g.xlsx", [["A"], [1]]).read_bytes()[:1500], "is not a readable"),
    ("zip.xlsx", lambda t: _zip_of({"readme.txt": b"hi"}), "is a zip archive but not a workbook"),
    ("locked.xlsx", lambda t: _encrypted_xlsx(t / "e.xlsx", t), "is password-protected"),
    (
        "ole-junk.xls",
        lambda t: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600,
        "is not a readable .xls workbook",
    ),
    ("bomb.xlsx", _entity_bomb, "is not a readable .xlsx workbook"),
    ("zipbomb.xlsx", _zip_bomb, "refused as a zip bomb"),
    ("quote.csv", lambda t: b'Id,Note\n1,"open\n2,x\n', "never closed"),
]


@pytest.mark.parametrize(("name", "make", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_give_one_clear_error(tmp_path: Path, name: str, make: Any, message: str) -> None:
    p = tmp_path / name
    p.write_bytes(make(tmp_path))
    with pytest.raises(SourceError) as info:
        for src in open_sources(p):
            for _ in src.chunks():
                pass
    text = str(info.value)
    assert message in text and str(p) in text
    assert "\n" not in text and "Traceback" not in text


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file not found"):
        open_source(tmp_path / "nope.csv")
    with pytest.raises(SourceError, match="is a folder"):
        open_source(tmp_path)


def test_csv_has_no_sheets(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text("A\n1\n")
    with pytest.raises(SourceError, match="has no sheets"):
        open_source(p, sheet="Events")


# --------------------------------------------------------------------------- helpers


def _patch_zip(path: Path, member: str, edit: Any) -> None:
    with zipfile.ZipFile(path) as zin:
        items = [(i, zin.read(i.filename)) for i in zin.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for info, data in items:
            if info.filename == member:
                data = edit(data.decode()).encode()
            zout.writestr(info, data)


def _zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _write_ods(path: Path, sheet: str, rows: list[list[Any]]) -> None:
    """An .ods of typed cells: a value is a string cell, a (kind, value) tuple a cell of that type."""

    def cell(v: Any) -> str:
        if isinstance(v, tuple):
            kind, value = v
            attr = "office:date-value" if kind == "date" else "office:value"
            return (
                f'<table:table-cell office:value-type="{kind}" {attr}="{value}">'
                f"<text:p>{value}</text:p></table:table-cell>"
            )
        return f"<text:p>{v}</text:p>"

    write_ods(path, [[cell(v) for v in r] for r in rows], sheet)


# --------------------------------------------------------------------------- fuzz

CSVISH = st.text(alphabet=st.sampled_from(list("ab1 ,;\t|\"\r\n'=é€\x00")), max_size=400)
PREFIXES = st.sampled_from(
    [b"", b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", codecs.BOM_UTF8, codecs.BOM_UTF16_LE]
)


@given(
    data=st.one_of(st.binary(max_size=1500), CSVISH.map(str.encode)),
    prefix=PREFIXES,
    suffix=st.sampled_from([".csv", ".xlsx", ".txt"]),
)
@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", examples(300))),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
def test_any_bytes_give_rows_or_a_clear_error(data: bytes, prefix: bytes, suffix: str) -> None:
    """Never another exception, never a hang: each file is decided in well under a second."""
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / f"fuzz{suffix}"
        p.write_bytes(prefix + data)
        started = time.monotonic()
        try:
            for src in open_sources(p):
                for chunk in src.chunks():
                    assert len(chunk.frame.columns) == len(src.headers)
                    assert all(isinstance(v, str) for row in chunk.frame.itertuples(index=False) for v in row)
        except SourceError as exc:
            assert "\n" not in str(exc) and str(p) in str(exc)
        assert time.monotonic() - started < 5


@given(
    st.lists(
        st.lists(
            st.one_of(
                st.floats(allow_nan=False, allow_infinity=False, min_value=-1e17, max_value=1e17),
                st.integers(min_value=-(10**12), max_value=10**12).map(float),
                st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)),
                st.dates(min_value=dt.date(1900, 1, 1)),
                st.booleans(),
                st.text(max_size=5),
            ),
            min_size=3,
            max_size=3,
        ),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from(["float", "datetime", "date", "mixed"]),
)
@settings(max_examples=examples(200), deadline=None)
def test_column_at_a_time_text_equals_cell_text(rows: list[list[Any]], shape: str) -> None:
    """Workbook cells become text a column at a time (numpy for numbers): the same text as cell_text."""
    from bulk_sync.load import Source
    from bulk_sync.load.sheetrows import text_chunk

    if shape != "mixed":  # one type per column, as real sheets mostly are: the fast paths
        want = {"float": float, "datetime": dt.datetime, "date": dt.date}[shape]
        rows = [[v if type(v) is want else _SAMPLE[shape] for v in r] for r in rows]
    src = Source(Path("x.xlsx"), "xlsx", "S", ["a", "b", "c"])
    frame = text_chunk(src, rows, list(range(2, 2 + len(rows)))).frame
    assert frame.to_numpy(dtype=object).tolist() == [[cell_text(v) for v in r] for r in rows]


_SAMPLE = {"float": 2.5, "datetime": dt.datetime(2026, 1, 2, 3, 4, 5, 678901), "date": dt.date(2026, 1, 2)}


# --------------------------------------------------------------------------- wide files


def test_a_file_wider_than_a_spreadsheet_is_refused_with_its_width(tmp_path: Path) -> None:
    """100,000 columns: not a spreadsheet export. One clear error, not `extra-cells` on every row."""
    p = tmp_path / "wide.csv"
    header = ",".join(f"col{i}" for i in range(100_000))
    row = ",".join("x" for _ in range(100_000))
    p.write_text(f"Id,{header}\n1,{row}\n2,{row}\n")
    with pytest.raises(
        SourceError, match=r"has 100,001 columns, more than a spreadsheet can hold \(16,384\)"
    ):
        open_source(p)


@pytest.mark.slow
def test_a_wide_file_whose_header_is_longer_than_the_sample_is_read_right(tmp_path: Path) -> None:
    """12,000 columns of 25-character names: the header line alone is ~300 KB, more than the first
    sample; the sample grows to whole lines, so the header is complete and no row is `extra-cells`."""
    p = tmp_path / "wide.csv"
    names = [f"Custom field number {i:05d}" for i in range(12_000)]
    cells = [f"v{i}" for i in range(12_000)]
    p.write_text("Id," + ",".join(names) + "\n" + "".join(f"{r}," + ",".join(cells) + "\n" for r in range(3)))
    src = open_source(p, expected=["Id", names[11_999]])
    assert len(src.headers) == 12_001 and src.headers[-1] == names[-1]
    chunks = list(src.chunks())
    assert sum(len(c) for c in chunks) == 3 and not any(c.problems for c in chunks)
    last = [r.cells[names[-1]] for c in chunks for r in c.rows()]
    assert last == ["v11999"] * 3
