"""Invalid rows as blocks (issue 38: an all-invalid file at least half as fast as a valid one): the
rows of a chunk that are invalid for their cells, one after another, with the same kind of error in
the same columns, travel as one ResultBlock (their messages one a row) instead of a RowResult each.
What a person gets must not change: the report's lines, the error file's rows, `validate`'s listing
(its first 1,000 problems, then a count) and the summary are what the rows one by one gave.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import subprocess
from pathlib import Path

import pytest
from helpers import EXAMPLE_CSV, EXAMPLE_MAPPING, cli_argv, cli_env
from hypothesis import given, settings
from hypothesis import strategies as st

import bulk_sync as bs
from bulk_sync.cli import outputs
from bulk_sync.errorfile import Failures
from bulk_sync.report import CsvReport, ResultBlock, RowResult, Summary

TEXTS = st.one_of(st.text(max_size=12), st.sampled_from(["=1+1", 'a"b', "x,y", "-3", "\r\n", "'q", "@x"]))


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=8),
    st.one_of(st.none(), st.text(max_size=6)),
    TEXTS,
    st.one_of(st.none(), TEXTS),
    st.lists(st.tuples(st.one_of(st.none(), TEXTS), TEXTS), min_size=1, max_size=8),
)
def test_an_invalid_block_is_written_as_its_rows_would_be(
    file: str, sheet: str | None, kind: str, column: str | None, rows: list[tuple[str | None, str]]
) -> None:
    import tempfile

    numbers = list(range(2, 2 + len(rows)))
    block = ResultBlock(
        file, sheet, "invalid", numbers, [r[0] for r in rows], [r[1] for r in rows], None, kind, column
    )
    one_by_one = [
        RowResult(file, sheet, n, ext, "invalid", error_type=kind, column=column, message=text)
        for n, (ext, text) in zip(numbers, rows, strict=True)
    ]
    assert list(block) == one_by_one
    with tempfile.TemporaryDirectory() as d:
        a, b = CsvReport(Path(d) / "a.csv"), CsvReport(Path(d) / "b.csv")
        a.write_block(block)
        for r in one_by_one:
            b.write(r)
        a.close()
        b.close()
        assert (Path(d) / "a.csv").read_bytes() == (Path(d) / "b.csv").read_bytes()
    by_block, by_row = Summary(), Summary()
    by_block.add_block(block)
    for r in one_by_one:
        by_row.add(r)
    assert (by_block.counts, by_block.error_types) == (by_row.counts, by_row.error_types)


def _block(first: int, n: int, file: str = "f.csv") -> ResultBlock:
    numbers = list(range(first, first + n))
    return ResultBlock(
        file, None, "invalid", numbers, [f"E-{k}" if k % 3 else None for k in numbers],
        [f"startTime: '{k}' does not match '%m/%d/%Y'" for k in numbers], None, "bad-datetime", "Start",
    )  # fmt: skip


@pytest.mark.parametrize("memory_rows", [1_000, 10])  # in memory; past it, the temporary SQLite file
def test_the_rows_to_fix_of_a_block_are_kept_as_its_rows_would_be(memory_rows: int) -> None:
    blocks = [_block(2, 7), _block(9, 30), _block(2, 4, "g.csv")]
    by_block, by_row = Failures(), Failures()
    by_block.MEMORY_ROWS = by_row.MEMORY_ROWS = memory_rows
    try:
        for block in blocks:
            by_block.add_block(block)
            for r in block:
                by_row.add(r)
        for key in (("f.csv", None), ("g.csv", None)):
            got, want = by_block.get(key), by_row.get(key)
            assert got is not None and want is not None
            assert list(got) == list(want) and len(got) == len(want) == len(list(want))
            assert got.between(5, 12) == want.between(5, 12)
    finally:
        by_block.close()
        by_row.close()


@pytest.mark.parametrize("limit", [3, 5, 40])  # within a block, at its end, past every row
def test_validate_lists_a_blocks_rows_as_it_lists_rows(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    monkeypatch.setattr(outputs, "LIST_LIMIT", limit)
    blocks = [_block(2, 5), _block(7, 1), _block(8, 20)]
    lines: dict[str, list[str]] = {"block": [], "row": []}
    events = {}
    for how in lines:
        events[how] = outputs.CliEvents(argparse.Namespace(command="validate", quiet=False, warnings=False))
        events[how].note = lines[how].append
        for block in blocks:
            for result in [block] if how == "block" else list(block):
                events[how].row(result)
        events[how].finished_rows(None)
    assert lines["block"] == lines["row"]
    last = f"... and {26 - limit:,} more row problems: every one is in the report"
    assert lines["row"][-1] == last if limit < 26 else len(lines["row"]) == 26
    first = "f.csv row 2 [Start]: invalid bad-datetime: startTime: '2' does not match '%m/%d/%Y'"
    assert lines["row"][0] == first


def _all_invalid(path: Path, n: int) -> Path:
    """``n`` example-shaped rows, every Start day-first (a date format the mapping does not read);
    every 7th also an unknown Direction (another kind of error: a block ends there)."""
    with EXAMPLE_CSV.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    header, good = rows[0], [r for r in rows[1:] if r[0] and not r[2].startswith("INVALID")]
    start, direction = header.index("Start"), header.index("Direction")
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    for i in range(n):
        row = [f"A-{i:06d}", *good[i % len(good)][1:]]
        row[start] = f"{1 + i % 28:02d}.03.2026 10:00"
        if i % 7 == 6:
            row[direction] = "Sideways"
        w.writerow(row)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


class _Rows(bs.Events):
    def __init__(self) -> None:
        self.results: list[RowResult | ResultBlock] = []

    def row(self, result: RowResult | ResultBlock) -> None:
        self.results.append(result)


def test_an_all_invalid_file_travels_in_blocks_with_every_row_accounted(tmp_path: Path) -> None:
    data = _all_invalid(tmp_path / "bad.csv", 700)
    events = _Rows()
    result = bs.Sync(EXAMPLE_MAPPING).validate(
        [data], outputs=bs.Outputs(report=tmp_path / "r.csv"), events=events, handle_signals=False
    )
    assert result.counts["invalid"] == 700
    blocks = [r for r in events.results if isinstance(r, ResultBlock)]
    assert len(events.results) < 700 // 3 and len(blocks) == len(events.results)  # not a result a row
    rows = [r for block in blocks for r in block]
    assert [r.row_number for r in rows] == list(range(2, 702))
    assert rows[0].column == "Start" and rows[0].message.startswith("startTime: '01.03.2026 10:00' does not")
    assert rows[6].column == "Direction; Start" and rows[6].error_type == "invalid-enum"
    with (tmp_path / "r-errors.csv").open(encoding="utf-8-sig", newline="") as fh:
        fixes = list(csv.DictReader(fh))
    assert [f["bulk_sync_row"] for f in fixes] == [str(n) for n in range(2, 702)]
    assert [f["bulk_sync_message"] for f in fixes] == [r.message for r in rows]


def test_with_a_worker_or_alone_the_outputs_are_the_same(tmp_path: Path) -> None:
    """30,000 all-invalid rows (past the 20,000 rows to fix kept in memory, and a worker's size):
    the report, the error file and the listing with the default worker and in one process."""
    data = _all_invalid(tmp_path / "bad.csv", 30_000)
    got = {}
    for workers in ("0", "1"):
        report = tmp_path / f"r{workers}.csv"
        argv = cli_argv("validate", data, "-m", EXAMPLE_MAPPING, "--no-rep-check", "--report", report)
        env = {**cli_env(None), "BULK_SYNC_WORKERS": workers}
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
        assert proc.returncode == 1, proc.stderr[-2000:]
        listing = proc.stderr.replace(f"r{workers}", "r")
        errors = report.with_name(report.stem + "-errors.csv").read_bytes()
        got[workers] = (report.read_bytes(), errors, listing)
    assert got["0"] == got["1"]
    lines = got["0"][2].splitlines()
    assert lines[0].startswith("bad.csv row 2 [Start]: invalid bad-datetime: startTime: '01.03.2026 10:00'")
    assert "... and 29,000 more row problems: every one is in the report" in lines


FORMATS = ["%m/%d/%Y %I:%M %p", "%d.%m.%Y %H:%M", "%Y-%m-%dT%H:%M:%S%z", "%d/%m/%y", "%b %d, %Y"]
FORMATS += ["%H:%M:%S.%f", "%Y%m%d"]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(FORMATS),
    st.sampled_from(FORMATS),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.text(alphabet="0123456789/.:-, TAPMapmJanDec+", max_size=24),
)
def test_a_date_without_a_formats_punctuation_is_not_tried_in_it(
    fmt: str, written: str, when: dt.datetime, text: str
) -> None:
    """A cell whose text lacks a character the format holds as itself is skipped for that format:
    strptime would have refused it (so the cell's result and its message are the same)."""
    from bulk_sync.mapping.convert import _literals

    for cell in (when.strftime(written), text):
        try:
            dt.datetime.strptime(cell, fmt)
        except ValueError:
            continue
        assert all(c in cell for c in _literals(fmt)), (cell, fmt)
