"""Map stage, evidence: a number column's decimal mark, settled from the values of the whole column
(NumberEvidence); a column that reads both ways makes its rows invalid.
"""

from __future__ import annotations

import dataclasses
import re

from ..load import Chunk
from .binding import BoundMapping, Memos
from .numbers import CellError, any_number
from .records import field_cells

# A cell that could show which decimal mark its column uses (confirmed by parsing it both ways):
# a mark followed by 1-2 or 4+ digits, both marks, a mark twice, a leading "0" and a mark, or 4+
# digits before a mark. '1,500' and '12.000' (one mark, then 3 digits) are not: they read both ways.
_EVIDENCE = {
    ".": re.compile(r"\.\d{1,2}(?!\d)|\.\d{4}|,\d{3}\.|,\d{3},|(?<![\d.,])0\.\d|(?<![\d.,])\d{4,}\.\d"),
    ",": re.compile(r",\d{1,2}(?!\d)|,\d{4}|\.\d{3},|\.\d{3}\.|(?<![\d.,])0,\d|(?<![\d.,])\d{4,},\d"),
}


class NumberEvidence:
    """Which decimal mark each number column of one file uses, settled from its cells.

    For every number field whose mapping does not say (``decimal`` unset), the earliest cell that
    reads as a number with only one of the marks settles it (``1.234,50`` or ``0,99``: a decimal
    comma; ``1,234.50`` or ``12.5``: a decimal point). A cell written the other way is then
    ``bad-number`` (its message says so); a column showing neither leaves the field unsettled, and
    its cells that read both ways ('1,500') are reported invalid (``ambiguous-number``).
    """

    def __init__(self, bound: BoundMapping) -> None:
        self.bound = bound
        self.fields = [
            f
            for f in bound.spec.fields
            if f.kind.kind == "number" and f.spec.decimal is None and (f.column or f.spec.template)
        ]
        self.found: dict[str, tuple[str, int, str]] = {}  # target -> (mark, row number, cell)

    @property
    def columns(self) -> list[str]:
        """The file's headers the evidence is read from."""
        cols: list[str] = []
        for f in self.fields:
            cols += [f.column] if f.column else f.spec.template_columns
        return [self.bound.columns[c] for c in dict.fromkeys(cols) if c not in self.bound.absent]

    @property
    def settling(self) -> bool:
        """Is a field still waiting for a cell that settles its mark?"""
        return len(self.found) < len(self.fields)

    def add(self, chunk: Chunk) -> None:
        chunk = self.bound.complete(chunk)
        for f in self.fields:
            if f.target in self.found:
                continue
            cells = field_cells(f, self.bound, chunk.frame)
            typed = chunk.typed.get(self.bound.columns[f.column]) if f.column else None
            if typed is not None:  # workbook number cells: written with a point whatever the locale
                cells = ["" if t else c for c, t in zip(cells, typed, strict=True)]
            joined = "\n".join(cells).replace("\r", " ")
            if "." not in joined and "," not in joined:
                continue  # no decimal mark at all ('40%', '12'): nothing to settle in this chunk
            earliest: tuple[int, str, str] | None = None  # (position in the chunk, mark, cell)
            for mark, evidence in _EVIDENCE.items():
                for m in evidence.finditer(joined):  # a candidate: its whole cell is read both ways
                    start = joined.rfind("\n", 0, m.start()) + 1
                    end = joined.find("\n", m.end())
                    cell = joined[start : end if end >= 0 else len(joined)]
                    if _only_reading(cell.strip(), f.kind.bounds) == mark:
                        at = joined.count("\n", 0, start)
                        if earliest is None or at < earliest[0]:
                            earliest = (at, mark, cell.strip())
                        break
            if earliest is not None:
                at, mark, cell = earliest
                self.found[f.target] = (mark, chunk.row_numbers[at], cell)

    def settled(self) -> BoundMapping:
        """The bound mapping with each number field's decimal mark settled where the cells showed
        one (a field that showed none stays unsettled)."""
        if not self.found:
            return self.bound
        fields = tuple(
            dataclasses.replace(f, spec=f.spec.model_copy(update={"decimal": self.found[f.target][0]}))
            if f.target in self.found
            else f
            for f in self.bound.spec.fields
        )
        spec = dataclasses.replace(self.bound.spec, fields=fields)
        return dataclasses.replace(self.bound, spec=spec, memos=Memos())


def _only_reading(text: str, bounds: tuple[float, float] | None = None) -> str | None:
    """The one decimal mark ``text`` reads as a number with (None: both, or neither)."""
    readings = []
    for mark in (".", ","):
        try:
            any_number(text, mark, bounds)
            readings.append(mark)
        except CellError:
            pass
    return readings[0] if len(readings) == 1 else None
