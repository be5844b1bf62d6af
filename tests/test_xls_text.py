"""Files named .xls that are not the binary workbook format: tab- or comma-separated text (what
many older CRMs export as "Excel", and what Excel opens) is read as the text it is, with a note;
HTML tables and Excel 2003 XML (SpreadsheetML) named .xls are refused, saying what to do."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from helpers import RunCli

from bulk_sync.errors import SourceError
from bulk_sync.load import open_sources

MAPPING = """\
version: 1
fields:
  externalId: {column: Activity ID, required: true}
  subject: Subject
  startTime: {column: Start, datetime: {format: "%d.%m.%Y %H:%M", timezone: Europe/Berlin}}
  endTime: {column: End, datetime: {format: "%d.%m.%Y %H:%M", timezone: Europe/Berlin}}
"""

ROWS = [
    ["Activity ID", "Subject", "Start", "End"],
    ["A-1", "Besuch Müller", "01.10.2026 09:00", "01.10.2026 10:00"],
    ["A-2", "Anruf, Rückruf", "02.10.2026 14:30", "02.10.2026 14:45"],
]


def _text(rows: list[list[str]], sep: str) -> str:
    return "".join(sep.join(f'"{c}"' if sep in c else c for c in r) + "\r\n" for r in rows)


@pytest.mark.parametrize(
    ("sep", "encoding", "kind"),
    [("\t", "utf-16", "tab"), ("\t", "cp1252", "tab"), (",", "utf-8-sig", "comma")],
    ids=["utf16-tsv", "cp1252-tsv", "utf8-csv"],
)
def test_text_xls_is_read_as_text_with_a_note(tmp_path: Path, sep: str, encoding: str, kind: str) -> None:
    p = tmp_path / "export.xls"
    p.write_bytes(_text(ROWS, sep).encode(encoding))
    [src] = open_sources(p)
    rows = [r.cells for c in src.chunks() for r in c.rows()]
    assert [list(r.values()) for r in rows] == ROWS[1:]
    assert list(rows[0]) == ROWS[0]
    assert f"this .xls is text, read as {kind}-separated" in src.warnings[0]


def test_text_xls_validates_through_the_cli_with_the_note(tmp_path: Path, run_cli: RunCli) -> None:
    p = tmp_path / "activities.xls"
    p.write_bytes(codecs.BOM_UTF16_LE + _text(ROWS, "\t").encode("utf-16-le"))
    (tmp_path / "m.yaml").write_text(MAPPING)
    res = run_cli("validate", p, "--mapping", tmp_path / "m.yaml")
    assert res.code == 0, res.stderr
    assert "activities.xls: this .xls is text, read as tab-separated" in res.stdout + res.stderr
    assert [(r["external_id"], r["status"]) for r in res.report] == [("A-1", "valid"), ("A-2", "valid")]


HTML = (
    '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta charset="utf-8"></head>'
    "<body><table><tr><td>Activity ID</td><td>Subject</td></tr><tr><td>A-1</td><td>x</td></tr>"
    "</table></body></html>"
)
SPREADSHEETML = (
    '<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
    '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
    'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="Sheet1"><Table>'
    '<Row><Cell><Data ss:Type="String">Activity ID</Data></Cell></Row></Table></Worksheet></Workbook>'
)


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (HTML.encode(), "is an HTML page"),
        (b"\xef\xbb\xbf<!DOCTYPE html>\n" + HTML.encode(), "is an HTML page"),
        (codecs.BOM_UTF16_LE + HTML.encode("utf-16-le"), "is an HTML page"),
        (SPREADSHEETML.encode(), "is an Excel 2003 XML spreadsheet (SpreadsheetML)"),
    ],
    ids=["html", "html-doctype-bom", "html-utf16", "spreadsheetml"],
)
def test_html_and_xml_xls_are_refused_saying_what_to_do(tmp_path: Path, content: bytes, what: str) -> None:
    p = tmp_path / "export.xls"
    p.write_bytes(content)
    with pytest.raises(SourceError) as info:
        open_sources(p)
    text = str(info.value)
    assert what in text and "open it in Excel and save it as .xlsx or CSV" in text and str(p) in text


def test_html_named_xls_refused_by_the_cli_exit_2(tmp_path: Path, run_cli: RunCli) -> None:
    p = tmp_path / "report.xls"
    p.write_text(HTML)
    (tmp_path / "m.yaml").write_text(MAPPING)
    res = run_cli("validate", p, "--mapping", tmp_path / "m.yaml")
    assert res.code == 2
    assert "open it in Excel and save it as .xlsx or CSV" in res.stderr
    assert "Traceback" not in res.stderr


def test_binary_junk_named_xls_is_still_not_a_workbook(tmp_path: Path) -> None:
    p = tmp_path / "junk.xls"
    p.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(SourceError, match=r"is named like a workbook \(.xls\) but its content is not one"):
        open_sources(p)
