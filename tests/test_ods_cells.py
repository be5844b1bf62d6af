"""`.ods` cells keep their line breaks and tabs, as `.xlsx` cells do (issue 34): LibreOffice writes
a cell's lines as paragraphs (`<text:p>`), a Shift+Enter as `<text:line-break/>` and a tab as
`<text:tab/>`; calamine drops the last two, so those cells are read again from the sheet's XML. A
cell whose text cannot be matched is refused, never sent changed. The .ods files are real zips
built by hand (content.xml as LibreOffice writes it); read through the real loader and CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import RunCli, outcomes, write_ods

from bulk_sync.errors import SourceError
from bulk_sync.load import open_sources
from bulk_sync.load.ods import patched


def _p(text: str) -> str:
    return f"<text:p>{text}</text:p>"


TAB, BREAK = "<text:tab/>", "<text:line-break/>"
REPEATED = '<table:table-cell table:number-columns-repeated="2" office:value-type="string">'
ROWS = [
    [_p("Visit ID"), _p("Subject"), _p("Street"), _p("Notes")],
    [_p("V-1"), _p("Roof"), _p("Hauptstr. 4711") + _p("2. OG"), _p(f"gate{TAB}1004{BREAK}dog")],
    [
        _p("V-2"),
        _p("Call"),
        _p(f"Ring{BREAK}twice"),
        _p("a <text:span>bold</text:span><text:s text:c='2'/>b"),
    ],
    [_p("V-3"), _p("Quote"), REPEATED + _p(f"x{TAB}y") + "</table:table-cell>"],
]


def test_ods_cells_keep_their_line_breaks_and_tabs(tmp_path: Path) -> None:
    [src] = open_sources(write_ods(tmp_path / "visits.ods", ROWS))
    rows = {r.cells["Visit ID"]: r.cells for c in src.chunks() for r in c.rows()}
    assert rows["V-1"]["Street"] == "Hauptstr. 4711\n2. OG"  # two paragraphs: two lines
    assert rows["V-1"]["Notes"] == "gate\t1004\ndog"
    assert rows["V-2"]["Street"] == "Ring\ntwice"
    assert rows["V-2"]["Notes"] == "a bold  b"  # spans and runs of spaces as they were
    assert rows["V-3"]["Street"] == rows["V-3"]["Notes"] == "x\ty"  # a repeated cell, each copy


MAPPING = """\
version: 1
fields:
  externalId: {column: Visit ID, required: true}
  subject: Subject
  content: Notes
  account.externalId: Visit ID
  account.addresses[0].street: Street
"""


def test_the_payload_carries_the_line_breaks(tmp_path: Path, run_cli: RunCli) -> None:
    data = write_ods(tmp_path / "visits.ods", ROWS[:3])
    (tmp_path / "m.yaml").write_text(MAPPING)
    res = run_cli("validate", data, "-m", tmp_path / "m.yaml")
    assert res.code == 0, res.stderr
    sent = {o["payload"]["externalId"]: o["payload"] for o in outcomes(data, tmp_path / "m.yaml")}
    assert sent["V-1"]["account"]["addresses"][0]["street"] == "Hauptstr. 4711\n2. OG"
    assert sent["V-1"]["content"] == "gate\t1004\ndog"


def test_a_cell_that_cannot_be_matched_is_refused_not_sent_changed() -> None:
    # calamine read something else than the XML says it should have: the text is not sure
    rows = iter([(1, ["Id", "Note"]), (2, ["1", "something else"])])
    with pytest.raises(SourceError, match=r"could not be read exactly; save the file as \.xlsx"):
        list(patched(rows, {(1, 1): ("ab", "a\tb")}, 0, "x.ods"))
