"""The id pass over a large CSV in two halves at once (issue 17: the dry run within 4x a bare
csv.reader pass). The halves must find exactly what one pass finds: the superseded rows, their
row numbers, the number columns' decimal marks; and when the middle is not a record's start (a
stray quote made the count lie) or the helper fails, the file is read whole."""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path
from typing import Any

import pytest
from helpers import SIX_COLUMNS_MAPPING, cli_argv, cli_env, cli_run

from bulk_sync import mapping
from bulk_sync.load import csv as load_csv
from bulk_sync.pipeline import halves, idtable, prepare, scan_columns

HEADER = ["ID", "Subject", "Notes", "Start", "Deal", "Amount"]


def _rows(n: int, seed: int = 3, amounts: Any = None) -> list[list[str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        ident = f"E-{i:06d}" if i < 10 or rng.random() > 0.05 else f"E-{rng.randrange(i):06d}"  # 5 % repeat
        notes = "line one\nline two, with a comma" if i % 7 == 0 else f"note {i}"
        amount = amounts(i) if amounts else f"{rng.randrange(1, 9999)}"
        rows.append([ident, f"Visit {i}", notes, f"2026-0{1 + i % 9}-1{i % 10} 09:00", f"D-{i}", amount])
    return rows


def _write(path: Path, rows: list[list[str]], *, crlf: bool = False, bom: bool = False) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        w = csv.writer(f, lineterminator="\r\n" if crlf else "\n")
        w.writerow(HEADER)
        for k, row in enumerate(rows):
            w.writerow(row)
            if k % 97 == 0:
                w.writerow([])  # a blank record: it has a row number, and no id
    return path


@pytest.fixture
def split_any(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every CSV is split (not only large ones); returns what each split attempt answered."""
    monkeypatch.setattr(load_csv, "SPLIT_MIN_BYTES", 0)
    answers: list[bool] = []
    real = halves.read_in_halves

    def spied(*args: Any) -> tuple[int, int] | None:
        split = real(*args)
        answers.append(split is not None)
        return split

    monkeypatch.setattr("bulk_sync.pipeline.superseded.read_in_halves", spied)
    return answers


def _scan(data: Path, mapping_file: Path, helper: bool, encoding: str | None = None) -> tuple[Any, list[Any]]:
    plan = scan_columns(prepare([data], mapping_file, encoding=encoding), helper=helper)
    return plan.superseded, [(f.target, f.spec.decimal) for _, b in plan.jobs for f in b.spec.fields]


@pytest.mark.parametrize(("crlf", "bom"), [(False, False), (True, True)])
def test_the_halves_find_what_one_pass_finds(
    tmp_path: Path, split_any: list[bool], crlf: bool, bom: bool
) -> None:
    m = tmp_path / "m.yaml"
    m.write_text(SIX_COLUMNS_MAPPING)
    data = _write(tmp_path / "a.csv", _rows(6_000), crlf=crlf, bom=bom)
    one = _scan(data, m, helper=False)
    both = _scan(data, m, helper=True)
    assert split_any == [True]  # the halves were read, and kept
    assert both == one
    assert len(one[0]) > 200  # repeats on both sides of the middle, and across it
    rows = sorted(r for _, _, r in one[0])
    assert rows[0] < 3_000 < rows[-1]


def test_the_halves_of_a_file_with_title_lines_and_semicolons(tmp_path: Path, split_any: list[bool]) -> None:
    """Excel's ``sep=;`` line and title lines above the header: the first half skips them, the
    second starts past them; the row numbers are the same as one pass gives."""
    m = tmp_path / "m.yaml"
    m.write_text(SIX_COLUMNS_MAPPING)
    data = tmp_path / "a.csv"
    with data.open("w", newline="", encoding="cp1252") as f:
        f.write("sep=;\nAppointments export\n\n")
        w = csv.writer(f, delimiter=";", lineterminator="\r\n")
        w.writerow(HEADER)
        w.writerows([[*row[:1], f"Café {row[1]}", *row[2:]] for row in _rows(6_000)])
    one = _scan(data, m, helper=False, encoding="cp1252")  # (said: a code page is not guessed)
    both = _scan(data, m, helper=True, encoding="cp1252")
    assert split_any == [True] and both == one and len(one[0]) > 200
    assert min(r for _, _, r in one[0]) == 4  # Excel hides `sep=`: the header is its row 3


def test_the_halves_give_the_same_rows_and_number_evidence(tmp_path: Path, split_any: list[bool]) -> None:
    """The first cell that settles a decimal mark is in the second half: it is found there, with
    the row number one pass gives it; the id table holds the same rows in the same order per id."""
    m = tmp_path / "m.yaml"
    m.write_text(SIX_COLUMNS_MAPPING)
    data = _write(tmp_path / "a.csv", _rows(6_000, amounts=lambda i: "1.234,50" if i == 4_000 else "12"))
    plan = prepare([data], m)
    src, bound = plan.jobs[0]
    columns = list(dict.fromkeys(mapping.id_columns(bound) + mapping.NumberEvidence(bound).columns))

    one_ev, one_table = mapping.NumberEvidence(bound), idtable.IdTable()
    for chunk in src.chunks(columns=columns):
        if one_ev.settling:
            one_ev.add(chunk)
        idtable.add_ids(one_table, bound, chunk, None, 0)
    two_ev, two_table = mapping.NumberEvidence(bound), idtable.IdTable()
    assert halves.read_in_halves(src, bound, columns, two_ev, 0, two_table)

    assert two_ev.found == one_ev.found
    assert next(iter(two_ev.found.values()))[:2] == (",", 4_000 + 2 + 4_000 // 97 + 1)  # header, blanks
    one_rows = [p for part in one_table.parts() for p in part.tolist()]
    two_rows = [p for part in two_table.parts() for p in part.tolist()]
    assert two_rows == one_rows and len(one_rows) == 6_000


def test_a_middle_inside_a_quoted_cell_is_read_whole(tmp_path: Path, split_any: list[bool]) -> None:
    """A quote inside an unquoted cell (5" screen) makes the count of quotes lie: the line break it
    picks is inside a quoted cell. The first half then ends inside that cell, the parser refuses,
    and the file is read in one pass: the same result."""
    m = tmp_path / "m.yaml"
    m.write_text(SIX_COLUMNS_MAPPING)
    rows = _rows(6_000)
    for row in rows:
        row[2] = row[2].replace("\n", " ")  # no line break in a cell but the one below
    rows[10][1] = '5" screen'  # a stray quote, early
    past = int(6_000 * load_csv.FIRST_SHARE) + 100  # just past the middle: a line break in a quoted cell
    rows[past][2] = "first line\nsecond line"
    data = tmp_path / "a.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        f.write(",".join(HEADER) + "\n")
        for row in rows:  # quoted only where csv must quote; the stray quote is written as is
            f.write(",".join(f'"{c}"' if "\n" in c or "," in c else c for c in row) + "\n")
    src = prepare([data], m).jobs[0][0]
    at = src.halfway()
    text = data.read_bytes()
    assert at is not None and text[:at].decode().endswith("first line\n")  # the count lied
    one = _scan(data, m, helper=False)
    both = _scan(data, m, helper=True)
    assert split_any == [False] and both == one and len(one[0]) > 200


def test_a_helper_that_dies_leaves_the_file_read_whole(
    tmp_path: Path, split_any: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    m = tmp_path / "m.yaml"
    m.write_text(SIX_COLUMNS_MAPPING)
    data = _write(tmp_path / "a.csv", _rows(6_000))
    one = _scan(data, m, helper=False)
    monkeypatch.setattr(halves, "_second_half", lambda *a: os._exit(9))  # as if killed
    both = _scan(data, m, helper=True)
    assert split_any == [False] and both == one


@pytest.mark.slow  # two dry runs of a 36 MB file through the real CLI
def test_a_large_dry_run_reads_its_ids_in_halves_and_reports_the_same(tmp_path: Path) -> None:
    """The real CLI, a file past SPLIT_MIN_BYTES with repeated ids on both sides of the middle: the
    report with the helper (the default) equals the report in one process, byte for byte."""
    m = tmp_path / "m.yaml"
    m.write_text(SIX_COLUMNS_MAPPING)
    rows = _rows(70_000)
    for row in rows:
        row[2] = row[2] + " " + "lorem ipsum " * 40  # ~36 MB
    data = _write(tmp_path / "big.csv", rows)
    assert data.stat().st_size > load_csv.SPLIT_MIN_BYTES
    reports = []
    for workers in (None, "0"):
        env = {k: v for k, v in cli_env().items() if k != "BULK_SYNC_WORKERS"}
        if workers is not None:
            env["BULK_SYNC_WORKERS"] = workers
        report = tmp_path / f"report-{workers}.csv"
        logged = tmp_path / f"log-{workers}.txt"
        argv = cli_argv(
            "validate",
            data,
            "--mapping",
            m,
            "--no-rep-check",
            "--report",
            report,
            "--quiet",
            "--log-file",
            logged,
        )
        proc = cli_run(argv, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        reports.append(report.read_bytes())
        halved = "ids read in two halves at once" in logged.read_text()
        assert halved == (workers is None)  # BULK_SYNC_WORKERS=0: one process, no helper
    assert reports[0] == reports[1]
    text = reports[0].decode()
    assert text.count(",superseded,") > 3_000
