"""Load stage, csv: CSV/text files: delimiter sniffing, opening (encoding, header row, width), and
reading in chunks with pandas' C parser (plain object columns; extra cells and bad bytes flagged on
their rows; bulk_sync error files' escaped cells read back).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from ..csvfields import long_fields
from ..errors import RowError, SourceError
from .cells import NUL, flag_nul
from .encoding import (
    NEWLINE,
    QUOTE,
    SURROGATES,
    check_whole_file,
    choose_encoding,
    has_nul,
    reads_ascii_as_is,
    refuse_binary,
    sample_text,
)
from .headers import SNIFF_ROWS, read_header
from .held import open_bytes
from .model import Chunk, Options, Source, Span, make_chunk
from .snapshot import open_upto

SPARE_COLUMNS = 10  # CSV cells read past the last header column, to flag shifted rows


_DELIMITERS = (",", ";", "\t", "|")


_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def open_csv(
    p: Path, encoding: str | None, delimiter: str | None, opts: Options, size: int | None = None
) -> Source:
    """Open a CSV file: its encoding, delimiter and header row, from its first ``size`` bytes (the
    size it had when opened: see snapshot)."""
    warnings: list[str] = []
    enc = choose_encoding(p, encoding, warnings, size)
    sample = sample_text(p, enc.name, size)
    refuse_binary(p, sample)
    check_whole_file(p, enc.name, enc.quotes, size)
    skip = 0
    first_line = sample.split("\n", 1)[0].strip().strip('"')
    if first_line.lower().startswith("sep=") and len(first_line) == 5:  # Excel's "sep=;" hint
        delimiter = delimiter or first_line[4]
        sample = sample.split("\n", 1)[1] if "\n" in sample else ""
        skip = 1
    if delimiter is None:
        delimiter = sniff_delimiter(sample)
    elif len(delimiter) != 1:
        raise SourceError(str(p), f"--delimiter must be one character, got {delimiter!r}")
    rows = _sample_rows(sample, delimiter)
    found = read_header(rows, opts.header_row, opts.expected)
    if found is None:
        where = f"row {opts.header_row}" if opts.header_row else "the first rows"
        raise SourceError(str(p), f"the file has no header row ({where} are empty)")
    h, span, headers, more = found
    for header in rows[h : h + span]:  # a header over two rows: each of them
        _check_header(p, header)
    _refuse_too_wide(p, len(headers), max((len(r) for r in rows), default=0))
    warnings += more
    if len(headers) == 1 and any(d in headers[0] for d in _DELIMITERS if d != delimiter):
        warnings.append(
            f"only one column was found using the {_DELIMITER_NAMES.get(delimiter, repr(delimiter))} "
            "delimiter; pass --delimiter if the columns are separated by something else"
        )
    if enc.damaged:
        warnings.append(
            f"{enc.damaged:,} byte(s) of the file are not valid UTF-8 (the rest is): the rows holding them "
            "are reported invalid (bad-encoding), with the column and the bytes; every other row is read as "
            "UTF-8"
        )
    return Source(
        p,
        "csv",
        None,
        headers,
        warnings,
        encoding=enc.name,
        delimiter=delimiter,
        header_row=h + span,
        header_span=span,
        skip_lines=skip + h + span,
        chunk_rows=_chunk_rows(opts.chunk_rows, len(headers)),
        damaged=enc.damaged > 0,
        error_file=set(ERROR_FILE_MARKS) <= set(headers),
        nul=has_nul(p, enc.name, size),
    )


def _check_header(p: Path, header: list[str]) -> None:
    """A header cell that is not text refuses the file (every row is read by its headers)."""
    if any(SURROGATES.search(c) for c in header):
        raise SourceError(
            str(p), "the header row holds bytes that are not valid UTF-8; fix it and save as CSV UTF-8"
        )
    if (nul := next((i for i, c in enumerate(header) if NUL in c), None)) is not None:
        raise SourceError(
            str(p),
            f"the header row holds a NUL byte (character 0) in its column {nul + 1} "
            f"({header[nul].replace(NUL, '')!r}): remove it, or export the file again",
        )


MAX_COLUMNS = 16_384  # Excel's widest sheet (XFD); a wider "CSV" is no spreadsheet export


CHUNK_CELLS = 200_000  # a wide file is read in fewer rows a chunk, so a chunk's size stays bounded


def _chunk_rows(wanted: int, width: int) -> int:
    return min(wanted, max(50, CHUNK_CELLS // max(1, width)))


def _refuse_too_wide(p: Path, header_width: int, widest: int) -> None:
    width = max(header_width, widest)
    if width > MAX_COLUMNS:
        raise SourceError(
            str(p),
            f"has {width:,} columns, more than a spreadsheet can hold ({MAX_COLUMNS:,}): it is not a "
            "CSV export bulk_sync can read. Export only the columns the mapping needs, or check the "
            "delimiter (--delimiter)",
        )


def sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the most rows into the same number (2+) of cells; title and footer
    lines (one cell) do not count against it. Comma when nothing splits."""
    best, best_score = ",", (0.0, 0)
    for d in _DELIMITERS:
        widths = [len(r) for r in _sample_rows(sample, d) if any(c.strip() for c in r)]
        multi = [w for w in widths if w >= 2]
        if not multi:
            continue
        mode = max(set(multi), key=lambda w: (multi.count(w), w))
        score = (multi.count(mode) / len(widths), mode)
        if score > best_score:
            best, best_score = d, score
    return best


def _sample_rows(sample: str, delimiter: str) -> list[list[str]]:
    rows: list[list[str]] = []
    with long_fields():
        for row in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter):
            rows.append(row)
            if len(rows) >= SNIFF_ROWS:
                break
    return rows


SPLIT_MIN_BYTES = 32 * 1024 * 1024  # a CSV smaller than this is read in one go (see halfway)
SPLIT_SEARCH_BYTES = 8 * 1024 * 1024  # how far past the middle a record start is looked for
# where the "middle" is: the share of the file's bytes before it. A little under half: in a dry run
# the process that reads the first part also writes the report and hands on the second part's
# results (bench_validate.py, 1M rows: 0.46 about 5 % faster than 0.5 and than 0.43)
FIRST_SHARE = 0.46


def halfway(src: Source) -> int | None:
    """A byte offset near the middle of a large CSV (FIRST_SHARE of its bytes) where a record
    probably starts: just past a line break with an even number of quotes before it (not inside a
    quoted cell, in a well-formed file). None when the file is small, its encoding is not read
    byte by byte as ASCII (UTF-16), or no such line break is near the middle.

    "Probably": a quote inside an unquoted cell (``5" screen``) makes the count lie. So the first
    part must be read to its end without the parser finding a quoted cell left open there (it
    raises): only then does a record start at the offset, and the parts read as the whole would.
    """
    if src.kind != "csv" or not reads_ascii_as_is(src.encoding.replace("-sig", "")):
        return None
    try:
        size = src.size
        if size < SPLIT_MIN_BYTES:
            return None
        middle, quotes = int(size * FIRST_SHARE), 0
        with open_bytes(src.path) as fh:
            while fh.tell() < middle:
                block = np.frombuffer(fh.read(min(1 << 20, middle - fh.tell())), dtype=np.uint8)
                quotes += int(np.count_nonzero(block == QUOTE))
            while fh.tell() < min(middle + SPLIT_SEARCH_BYTES, size):
                at = fh.tell()
                block = np.frombuffer(fh.read(min(1 << 16, size - at)), dtype=np.uint8)
                if not len(block):
                    return None
                breaks = np.flatnonzero(block == NEWLINE)
                before = np.cumsum(block == QUOTE, dtype=np.int32)[breaks] + quotes  # quotes up to each
                even = breaks[before % 2 == 0]
                if len(even):
                    return at + int(even[0]) + 1
                quotes += int(np.count_nonzero(block == QUOTE))
    except OSError:
        return None
    return None


def csv_chunks(src: Source, columns: list[str] | None = None, span: Span | None = None) -> Iterator[Chunk]:
    """The chunks of ``src`` (of only ``columns``, when given), or of the part ``span`` of it."""
    # read up to the size the file had when it was opened, never further (see snapshot)
    fh = open_upto(src.path, 0, src.size) if span is None else open_upto(src.path, span.start, span.end)
    try:
        yield from _parsed(src, fh, columns, span)
    finally:
        fh.close()


def _parsed(src: Source, fh: IO[bytes], columns: list[str] | None, span: Span | None) -> Iterator[Chunk]:
    width = len(src.headers)
    spare = [f"\x00extra{i}" for i in range(SPARE_COLUMNS)]
    reader = pd.read_csv(
        fh,
        usecols=[src.headers.index(c) for c in columns] if columns else None,
        sep=src.delimiter,
        dtype=object,  # plain Python strings (no string-array conversion: faster, same cells)
        low_memory=False,  # a chunk parsed in one go, not in pieces concatenated per column
        header=None,
        names=src.headers if columns else src.headers + spare,
        skiprows=src.skip_lines if span is None or span.start == 0 else 0,
        keep_default_na=False,
        na_filter=False,
        skip_blank_lines=False,
        encoding=src.encoding,
        encoding_errors="surrogateescape" if src.damaged else "strict",
        chunksize=src.chunk_rows,
        engine="c",
        quotechar='"',
        doublequote=True,
        index_col=False,
    )
    first = src.header_row + 1 if span is None else span.first
    with reader:
        for frame in reader:
            numbers = (frame.index.to_numpy() + first).tolist()
            if span is not None:
                span.records += len(frame)
            problems: dict[int, list[RowError]] = {}
            if src.damaged:
                frame = _flag_bad_bytes(frame, numbers, problems)
            if src.nul:  # (a cell past the last column is flagged as extra-cells)
                flag_nul(((n, frame[n].tolist()) for n in frame.columns if n not in spare), numbers, problems)
            if src.error_file:
                frame = _unescape(frame)
            if columns:
                yield make_chunk(src, frame, numbers, problems)
                continue
            extra = frame[spare]
            filled: list[bool] = (extra.to_numpy(dtype=object) != "").any(axis=1).tolist()
            if any(filled):
                for pos in (i for i, f in enumerate(filled) if f):
                    cells = [c for c in extra.iloc[pos].tolist() if c]
                    problems.setdefault(numbers[pos], []).insert(
                        0,
                        RowError(
                            "extra-cells",
                            f"this row has more cells than the header has columns ({width}); extra: "
                            f"{', '.join(repr(c[:40]) for c in cells)}. A value probably contains an "
                            f"unquoted {_DELIMITER_NAMES.get(src.delimiter, repr(src.delimiter))}, "
                            "which shifts the cells after it",
                        ),
                    )
            yield make_chunk(src, frame.drop(columns=spare), numbers, problems)


# A CSV error file (errorfile.py) escapes a cell a spreadsheet would run as a formula with a leading
# apostrophe ('=SUM(A1) for =SUM(A1)), and a cell that starts with an apostrophe with one more; read
# back, one apostrophe is taken off, so what is sent is exactly what the person typed.
ERROR_FILE_MARKS = ("bulk_sync_row", "bulk_sync_status")


FORMULA_STARTS = "=+-@\t\r"


_ESCAPED = re.compile("^'(?=[" + re.escape(FORMULA_STARTS + "'") + "])")


_PLAIN_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")  # -87.6877 is a number to a spreadsheet, not a formula


def escape_cell(text: str) -> str:
    """A cell as an error file writes it (see ERROR_FILE_MARKS)."""
    if text and text[0] in FORMULA_STARTS + "'" and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _unescape(frame: pd.DataFrame) -> pd.DataFrame:
    for name in frame.columns:
        cells = frame[name].tolist()
        if "'" in "".join(c[:1] for c in cells):
            frame[name] = [_ESCAPED.sub("", c) for c in cells]
    return frame


def _flag_bad_bytes(
    frame: pd.DataFrame, numbers: list[int], problems: dict[int, list[RowError]]
) -> pd.DataFrame:
    """Cells holding bytes that are not valid UTF-8 (decoded as lone surrogates): the row gets a
    ``bad-encoding`` problem naming the column and the bytes, and the cell shows U+FFFD instead."""
    search = SURROGATES.search
    for name in frame.columns:
        cells = frame[name].tolist()
        if not search("\x1f".join(cells)):
            continue
        fixed = list(cells)
        for i, cell in enumerate(cells):
            if search(cell):
                bad = "".join(SURROGATES.findall(cell))
                shown = " ".join(f"0x{ord(ch) - 0xDC00:02X}" for ch in bad[:8]) + (
                    " ..." if len(bad) > 8 else ""
                )
                text = SURROGATES.sub("\ufffd", cell)
                fixed[i] = text
                column = None if name.startswith("\x00extra") else name
                where = f"column {name!r}" if column else "a cell past the last column"
                problems.setdefault(numbers[i], []).append(
                    RowError(
                        "bad-encoding",
                        f"{where} holds bytes that are not valid UTF-8 ({shown}), read as {text[:60]!r}: "
                        "the rest of the file is UTF-8, so these were damaged; type the text again",
                        column,
                    )
                )
        frame[name] = fixed
    return frame
