"""Load stage, model: what the load stage delivers: Chunk (rows of text cells that remember their file,
sheet and row numbers), Source (an opened CSV file or sheet, read lazily), StopAt; and the one place
a reader's foreign exceptions become SourceError.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..csvfields import long_fields
from ..errors import RowError, SourceError
from .cells import cell_text
from .formats import SheetFormats
from .held import open_bytes, stat_of
from .snapshot import Snapshot, open_text_upto

DEFAULT_CHUNK_ROWS = 5_000


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One input row: where it is (as the user sees it) and its cells by header."""

    file: str
    sheet: str | None
    row_number: int
    cells: dict[str, str]


@dataclass(slots=True)
class Chunk:
    """Consecutive rows of one sheet; ``frame`` has one str column per header.

    ``problems``: row number -> what is wrong with that row as read (it must not be sent): extra
    cells, bytes that are not valid text.
    ``skipped``: (row number, reason) of rows that are not records (a report footer).
    ``typed``: for workbook columns holding number cells, which of the column's cells were numbers
    (their text is the number with a decimal point and no grouping, whatever the file's locale).
    ``raw``: workbook columns the run does not read, kept as the cell values until a row's cells
    are asked for (the error file's): :meth:`cells`, :meth:`row_cells` and :meth:`rows` give text.
    """

    file: str
    sheet: str | None
    row_numbers: list[int]
    frame: pd.DataFrame
    problems: dict[int, list[RowError]] = field(default_factory=dict)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    typed: dict[str, list[bool]] = field(default_factory=dict)
    raw: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self.row_numbers)

    def take(self, rows: list[int]) -> Chunk:
        """The rows at positions ``rows`` (ascending), with their problems; no footer."""
        numbers = [self.row_numbers[i] for i in rows]
        problems = {n: self.problems[n] for n in numbers if n in self.problems} if self.problems else {}
        frame = self.frame.iloc[rows].reset_index(drop=True)
        typed = {h: [mask[i] for i in rows] for h, mask in self.typed.items()}
        return Chunk(self.file, self.sheet, numbers, frame, problems, typed=typed, raw=self.raw)

    def narrow(self, headers: Iterable[str]) -> Chunk:
        """The same rows with only the columns ``headers`` (footers and problems as they are)."""
        wanted = set(headers)
        cols = [h for h in self.frame.columns if h in wanted]
        if len(cols) == len(self.frame.columns):
            return self
        typed = {h: mask for h, mask in self.typed.items() if h in wanted}
        return Chunk(
            self.file, self.sheet, self.row_numbers, self.frame[cols], self.problems, self.skipped, typed,
            self.raw & frozenset(cols),
        )  # fmt: skip

    def widen(self, other: Chunk) -> Chunk:
        """The same rows with ``other``'s columns besides (``other``: these rows, other columns)."""
        frame = pd.concat([self.frame, other.frame], axis=1)
        typed = {**self.typed, **other.typed}
        return Chunk(
            self.file,
            self.sheet,
            self.row_numbers,
            frame,
            self.problems,
            self.skipped,
            typed,
            self.raw | other.raw,
        )

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)

    def cells(self, header: str) -> list[str]:
        """One column's cells, as text (the rest of the pipeline never touches ``frame``)."""
        cells: list[str] = self.frame[header].tolist()
        return [_text(c) for c in cells] if header in self.raw else cells

    def row_cells(self, rows: list[int], headers: list[str]) -> list[list[str]]:
        """The cells of rows at positions ``rows``, in the order of ``headers``."""
        out: list[list[str]] = self.frame.iloc[rows][headers].to_numpy(dtype=object).tolist()
        if self.raw and not self.raw.isdisjoint(headers):
            out = [[_text(c) for c in row] for row in out]
        return out

    def rows(self) -> Iterator[SourceRow]:
        headers = list(self.frame.columns)
        for number, values in zip(
            self.row_numbers, self.frame.itertuples(index=False, name=None), strict=True
        ):
            cells = [_text(c) for c in values] if self.raw else values
            yield SourceRow(self.file, self.sheet, number, dict(zip(headers, cells, strict=True)))


def _text(value: Any) -> str:
    """A cell of a ``raw`` column as text, as the reader would have made it (a str is as it is)."""
    return value if type(value) is str else cell_text(value)


@dataclass(frozen=True)
class StopAt:
    """Where the data of a sheet ends: the first row whose ``column`` equals one of ``equals``
    (case- and space-insensitive) or matches ``matches``; it and every row below are not records."""

    column: str
    equals: tuple[str, ...] = ()
    matches: str | None = None

    def describe(self) -> str:
        if self.equals:
            return f"{self.column} is {' or '.join(repr(v) for v in self.equals)}"
        return f"{self.column} matches {self.matches!r}"


@dataclass
class Source:
    """An opened input (a CSV file or one sheet): headers known, rows read lazily by :meth:`chunks`."""

    path: Path
    kind: str  # "csv" | "xlsx" | "xls" | "ods"
    sheet: str | None
    headers: list[str]
    warnings: list[str] = field(default_factory=list)
    encoding: str = "utf-8-sig"
    delimiter: str = ","
    header_row: int = 1  # as Excel numbers it (of a header over two rows: the second)
    header_span: int = 1  # the rows the header spans: 2 for `Start` merged over `Date | Time`
    skip_lines: int = 0  # CSV: records before the header row (a `sep=` line included)
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    stream: bool = False  # xlsx: read row by row with openpyxl (huge sheets)
    damaged: bool = False  # CSV: UTF-8 with bytes that are not; the rows holding them are flagged
    formats: SheetFormats | None = field(default=None, repr=False)  # xlsx: cells whose format shows
    id_columns: tuple[str, ...] = ()  # the headers the externalId is read from (to tell a totals row)
    error_file: bool = False  # a bulk_sync error file (CSV): its escaped cells are read back as typed
    nul: bool = False  # CSV: a NUL byte is in it: the rows holding one are flagged (see cells.flag_nul)
    stop_at: StopAt | None = None  # the mapping's `stop_at`: the data ends at that row
    # .ods: (row, column) 0-based -> (the text calamine reads, the text with its tabs and line breaks)
    cell_fixes: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict, repr=False)
    snapshot: Snapshot | None = None  # the file's size and mtime at open: nothing past that size is read
    _loaded: Any = field(default=None, repr=False)  # the calamine sheet parsed at open, read by every pass

    @property
    def size(self) -> int:
        """The file's size when it was opened (a CSV is read up to there, never further)."""
        return self.snapshot.size if self.snapshot is not None else stat_of(self.path).st_size

    @property
    def label(self) -> str:
        return str(self.path) if self.sheet is None else f"{self.path} [sheet {self.sheet!r}]"

    def estimated_rows(self) -> int:
        """About how many data rows there are (for a progress bar's ETA; never exact for CSV)."""
        if self._loaded is not None:
            return max(0, int(self._loaded.height) - self.header_row)
        if self.kind != "csv":
            return 0
        try:
            size = self.size
            with open_bytes(self.path) as fh:
                sample = fh.read(min(size, 1 << 20))
        except OSError:
            return 0
        lines = sample.count(b"\n") or 1
        return max(0, int(size / (len(sample) / lines)) - self.skip_lines)

    def row_numbers(self, after: int = 0, size: int = 50_000) -> Iterator[list[int]]:
        """The numbers of the data rows after row ``after``, a list at a time, reading only (no
        cells kept, no footer rule): to account for rows a stopping run will not process. A CSV is
        counted with the csv module (several times faster than parsing it into chunks)."""
        if self.kind != "csv":
            for chunk in self.chunks():
                numbers = [n for n in chunk.row_numbers if n > after]
                numbers += [n for n, _ in chunk.skipped if n > after]
                if numbers:
                    yield sorted(numbers)
            return
        with long_fields(), open_text_upto(self.path, self.size, self.encoding, "surrogateescape") as fh:
            reader = csv.reader(fh, delimiter=self.delimiter)
            for _ in range(self.skip_lines):
                next(reader, None)
            out: list[int] = []
            number = self.header_row
            for record in reader:
                number += 1
                if record and number > after and (record[0].strip() or "".join(record).strip()):
                    out.append(number)
                    if len(out) >= size:
                        yield out
                        out = []
            if out:
                yield out

    def chunks(
        self,
        columns: Sequence[str] | None = None,
        text: Iterable[str] | None = None,
        span: Span | None = None,
        split: Split | None = None,
    ) -> Generator[Chunk, None, None]:
        """The data rows, a chunk at a time. ``columns``: read only these (a CSV is then parsed
        without building the other cells, a workbook's other cells are not made text; footers,
        totals rows and ``stop_at`` are not looked for, and a row counts as blank when these cells
        are): for a quick pass over a few columns. ``text``: the columns a run reads; a workbook's
        others stay cell values (``Chunk.raw``) until a row's cells are asked for. ``span``: only
        that part of a CSV (see :func:`~bulk_sync.load.csv.halfway`); without ``columns``, the part
        from a record past the first is read on its own (raises :class:`NotAlone` when where the
        data ends cannot be told without the rows before it). ``split``: a CSV read up to where
        its second part starts, then on only if that part is not read elsewhere (:class:`Split`)."""
        # the readers build Sources and Chunks: they import this module, so it imports them late
        from .csv import csv_chunks
        from .footer import stop_rows, strip_footer
        from .workbook import calamine_chunks, openpyxl_chunks

        try:
            if columns is not None and not self.stream:  # where the data ends is not looked for
                wanted = list(dict.fromkeys(columns))
                is_csv = self.kind == "csv"
                yield from csv_chunks(self, wanted, span) if is_csv else calamine_chunks(self, wanted)
                return
            ends, after = Ends(), None
            if self.kind == "csv" and split is not None:
                raw: Iterable[Chunk] = self._in_parts(split, ends)
            elif self.kind == "csv":
                raw = csv_chunks(self, span=span)
                after = None if span is None or span.start == 0 else span.first - 1
            elif self.stream:
                raw = openpyxl_chunks(self)
            else:
                raw = calamine_chunks(self, text=None if text is None else self._text_columns(text))
            yield from stop_rows(self, strip_footer(self, raw, ends, after), ends)
        except (SourceError, NotAlone):
            raise
        except UnicodeDecodeError as exc:
            raise SourceError(str(self.path), decode_hint(exc, self.encoding)) from exc
        except Exception as exc:  # parsers raise many types for broken content
            raise SourceError(str(self.path), f"cannot be read: {one_line(exc)}") from exc

    def _in_parts(self, split: Split, ends: Ends) -> Iterator[Chunk]:
        """The chunks up to ``split.at``; then, unless the rest is read elsewhere, the rest."""
        from .csv import csv_chunks

        first = Span(0, split.at, self.header_row + 1)
        yield from csv_chunks(self, span=first)
        number = first.first + first.records  # the number of the first record past split.at
        if number == split.first and not ends.held and not ends.stopped and split.elsewhere():
            return
        yield from csv_chunks(self, span=Span(split.at, self.size, number))

    def halfway(self) -> int | None:
        """Where a large CSV can be split in two parts read at once (see :func:`~.csv.halfway`)."""
        from .csv import halfway

        return halfway(self)

    def _text_columns(self, wanted: Iterable[str]) -> frozenset[str]:
        """``wanted``, and the columns the load stage reads itself to tell where the data ends."""
        from .footer import TOTAL_SCAN_COLUMNS

        own = [*self.headers[:TOTAL_SCAN_COLUMNS], *self.id_columns]
        if self.stop_at is not None:
            own.append(self.stop_at.column)
        return frozenset([*wanted, *own])


@dataclass
class Span:
    """A part of a CSV file read on its own: the bytes from ``start`` (the start of a record, past
    the header; 0: the file's start, its header skipped) to ``end``. ``first``: the number its
    first record gets (as the row numbers of a whole read would go, or 0 when not known yet: they
    are then shifted later). ``records``: how many records it held (blank ones too), once read."""

    start: int
    end: int
    first: int
    records: int = 0


@dataclass(frozen=True)
class Split:
    """A large CSV read in two parts at once: the part from byte ``at`` (a record's start, found by
    the id pass, which numbered that record ``first``) read elsewhere (a dry run's worker process).
    Reading with a split reads up to ``at``; there ``elsewhere()`` is asked, only when the rows
    past ``at`` can be read on their own (the data did not end before, no report footer is open
    at ``at``, the record numbers agree): True, the read ends; otherwise it goes on past ``at``
    here, exactly as one read of the whole file would."""

    at: int
    first: int
    elsewhere: Callable[[], bool]


@dataclass
class Ends:
    """How far a read has told where the data ends: ``held``: the last rows read may be a report
    footer (what follows decides); ``stopped``: the data ended (a totals or ``stop_at`` row)."""

    held: bool = False
    stopped: bool = False


class NotAlone(Exception):
    """A part of a CSV cannot be read on its own: whether its first rows are a report footer
    depends on the rows before it."""


@dataclass(frozen=True)
class Options:
    header_row: int | tuple[int, ...] | None  # a pair: a header over two rows (`header_rows`)
    expected: tuple[str, ...]
    chunk_rows: int


def make_chunk(
    src: Source, frame: pd.DataFrame, numbers: list[int], problems: dict[int, list[RowError]] | None = None
) -> Chunk:
    """Drop blank rows (every cell empty or whitespace); keep the numbers of the others."""
    frame = frame.reset_index(drop=True)
    if len(frame.columns) and len(frame):
        # only a row whose first cell is empty can be blank: look at the others of those rows only
        maybe = [i for i, c in enumerate(frame.iloc[:, 0].tolist()) if not c.strip()]
        rows = frame.iloc[maybe].to_numpy(dtype=object).tolist() if maybe else []
        blank = {i for i, r in zip(maybe, rows, strict=True) if not "".join(r).strip()}
        if blank:
            keep = [i not in blank for i in range(len(frame))]
            numbers = [n for n, k in zip(numbers, keep, strict=True) if k]
            frame = frame[keep].reset_index(drop=True)
    return Chunk(str(src.path), src.sheet, numbers, frame, problems or {})


def decode_hint(exc: UnicodeDecodeError, encoding: str) -> str:
    notes = getattr(exc, "__notes__", None)
    where = f" at offset {notes[-1]}" if notes else ""
    return (
        f"is not valid {encoding.replace('-sig', '')} text (byte 0x{exc.object[exc.start]:02x}{where}); "
        "save it as 'CSV UTF-8' or pass --encoding (e.g. --encoding cp1252)"
    )


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
