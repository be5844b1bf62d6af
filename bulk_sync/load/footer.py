"""Load stage, footer: where the data of a sheet ends: a report footer (a blank row, then single-cell
rows), a totals row, or the mapping's ``stop_at`` row; those rows come back ``skipped`` with the
reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import pandas as pd

from .. import rx
from .headers import loose
from .model import Chunk, Ends, NotAlone, Source

FOOTER_MAX_ROWS = 50  # a "footer" longer than this is data


TOTAL_SCAN_COLUMNS = 3  # a totals row's label is its first filled cell, among the first columns


_TOTAL_LABELS = frozenset(
    {
        "total",
        "totals",
        "grand total",
        "grandtotal",
        "grand totals",
        "subtotal",
        "sub total",
        "sub-total",
        "sum",
    }
)


# a cell (after the separator) that is empty, blank, or starts like a totals label
_MAYBE_TOTAL = re.compile("\x1f(?=\x1f|$|[\\s\u00a0]|[tTgGsS])")


def _is_total_label(cell: str) -> bool:
    return len(cell) < 24 and " ".join(cell.replace(":", " ").split()).casefold() in _TOTAL_LABELS


def stop_rows(src: Source, chunks: Iterable[Chunk], ends: Ends | None = None) -> Iterator[Chunk]:
    """End the data at a totals row (or the mapping's ``stop_at`` row): it and every row below it
    are reported ``skipped``, never sent (a hand-made sheet's "Total" row is not an engagement).
    ``ends.stopped`` tells that it happened."""
    stopped: str | None = None
    for chunk in chunks:
        if stopped is not None:
            below = [(n, stopped) for n in chunk.row_numbers]
            yield Chunk(
                chunk.file,
                chunk.sheet,
                [],
                chunk.frame.iloc[0:0],
                {},
                sorted(below + chunk.skipped),
                raw=chunk.raw,
            )
            continue
        found = _stop_row(src, chunk)
        if found is None:
            yield chunk
            continue
        at, why = found
        head, tail = _split(chunk, at)
        number = tail.row_numbers[0]
        if ends is not None:
            ends.stopped = True
        stopped = f"below the row where the data ends (row {number}: {why}): not a record"
        head.skipped = sorted(
            [(number, f"{why}: not a record; the rows below it are not records either")]
            + [(n, stopped) for n in tail.row_numbers[1:]]
            + chunk.skipped
        )
        yield head


def _stop_row(src: Source, chunk: Chunk) -> tuple[int, str] | None:
    """The position of the row where the data ends in ``chunk``, and why; None if it goes on."""
    frame = chunk.frame
    if not len(frame):
        return None
    rule = src.stop_at
    if rule is not None:
        cells = frame[rule.column].tolist()
        wanted = {loose(v) for v in rule.equals}
        pattern = rx.compile_pattern(rule.matches) if rule.matches is not None else None
        for i, c in enumerate(cells):
            if (wanted and loose(c) in wanted) or (pattern is not None and pattern.search(c)):
                return i, f"the mapping's stop_at: {rule.describe()}"
    first = [h for h in src.headers[:TOTAL_SCAN_COLUMNS] if h in frame.columns]
    if not first:
        return None
    lead = frame[first[0]].tolist()
    # rows whose first cell is a totals label, or empty (then the next cells decide): few; found
    # with one search in C over the column, the rows counted by their separators
    joined = "\x1f" + "\x1f".join(lead)
    hits = [m.start() for m in _MAYBE_TOTAL.finditer(joined)]
    if not hits:
        return None
    maybe, row, last = [], 0, 0
    for pos in hits:
        row += joined.count("\x1f", last, pos)
        last = pos
        maybe.append(row)
    ids = [frame[h].tolist() for h in src.id_columns if h in frame.columns]
    cols = [lead] + [frame[h].tolist() for h in first[1:]]
    for i in maybe:
        if lead[i].strip() and not _is_total_label(lead[i]):
            continue
        at = next((k for k, col in enumerate(cols) if col[i].strip()), None)
        if at is None or not _is_total_label(cols[at][i]):
            continue
        if first[at] in src.id_columns or not any(col[i].strip() for col in ids):
            return i, f"a totals row ({cols[at][i].strip()!r} in column {first[at]!r})"
    return None


def strip_footer(
    src: Source, chunks: Iterable[Chunk], ends: Ends | None = None, after: int | None = None
) -> Iterator[Chunk]:
    """Hold back a possible footer at the end of each chunk until the next chunk shows whether more
    data follows. A footer: after a gap (blank rows), only rows with one filled cell, to the end.
    ``ends.held`` tells whether rows are held back after each chunk. ``after``: the chunks are a
    part of the file read on its own, from the row after ``after``; until a row of it is handed on
    as data, the last data row before it is not known (NotAlone when it would decide)."""
    held: Chunk | None = None
    last: int | None = src.header_row if after is None else None  # the last row handed on as data
    for chunk in chunks:
        if held is not None:
            chunk = _concat(held, chunk)
            held = None
        cut = _footer_start(chunk, last, len(src.headers))
        if cut is None:
            head = chunk
        else:
            head, held = _split(chunk, cut)
        if ends is not None:
            ends.held = held is not None
        if len(head) or head.skipped:
            yield head
        if head.row_numbers:
            last = head.row_numbers[-1]
    if held is not None:
        reason = "report footer (after the data, a blank row then only single-cell lines): not a record"
        empty = held.frame.iloc[0:0]
        yield Chunk(
            held.file, held.sheet, [], empty, {}, [(n, reason) for n in held.row_numbers], raw=held.raw
        )


def _footer_start(chunk: Chunk, before: int | None, width: int) -> int | None:
    """Where a possible footer starts in ``chunk``: the first gap (blank rows) inside the run of
    single-cell rows that ends the chunk. None when the chunk does not end like a footer.
    ``before``: the last data row before the chunk (None: not known; NotAlone if it decides)."""
    numbers = chunk.row_numbers
    if width < 3 or not numbers:
        return None
    tail = chunk.frame.iloc[-FOOTER_MAX_ROWS - 1 :].to_numpy(dtype=object).tolist()
    start = len(numbers)
    for row in reversed(tail):
        if sum(1 for c in row if (c.strip() if type(c) is str else c is not None)) > 1:  # raw: a value
            break
        start -= 1
    if len(numbers) - start > FOOTER_MAX_ROWS:
        return None
    for i in range(start, len(numbers)):
        prev = numbers[i - 1] if i else before
        if prev is None:
            raise NotAlone(f"rows {numbers[0]}-{numbers[-1]} may be a report footer")
        if numbers[i] > prev + 1:
            return i
    return None


def _split(chunk: Chunk, at: int) -> tuple[Chunk, Chunk]:
    head_numbers, tail_numbers = chunk.row_numbers[:at], chunk.row_numbers[at:]
    head_problems = {n: m for n, m in chunk.problems.items() if n in set(head_numbers)}
    tail_problems = {n: m for n, m in chunk.problems.items() if n not in set(head_numbers)}
    head = Chunk(
        chunk.file,
        chunk.sheet,
        head_numbers,
        chunk.frame.iloc[:at].reset_index(drop=True),
        head_problems,
        typed={h: mask[:at] for h, mask in chunk.typed.items()},
        raw=chunk.raw,
    )
    tail = Chunk(
        chunk.file,
        chunk.sheet,
        tail_numbers,
        chunk.frame.iloc[at:].reset_index(drop=True),
        tail_problems,
        typed={h: mask[at:] for h, mask in chunk.typed.items()},
        raw=chunk.raw,
    )
    return head, tail


def _concat(a: Chunk, b: Chunk) -> Chunk:
    frame = pd.concat([a.frame, b.frame], ignore_index=True)
    typed = {
        h: a.typed.get(h, [False] * len(a)) + b.typed.get(h, [False] * len(b)) for h in {*a.typed, *b.typed}
    }
    return Chunk(
        b.file,
        b.sheet,
        a.row_numbers + b.row_numbers,
        frame,
        {**a.problems, **b.problems},
        b.skipped,
        typed,
        a.raw | b.raw,
    )
