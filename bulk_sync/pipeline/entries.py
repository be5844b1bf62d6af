"""Pipeline, entries: a chunk's results in order, as the reader hands them on: runs of valid rows
(encoded together), runs of unchanged rows (one report block each), runs of invalid rows with the
same kind of error in the same columns (one block each), and rows of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import mapping, payload
from ..errors import RowError
from ..load import Chunk
from ..notes import UNCHANGED_NOTE, RowNote, RowWarnings, UnknownReps
from ..report import INVALID, UNCHANGED, ResultBlock
from .results import Block, Entry


class ChunkRun:
    """The entries of one chunk, in order: runs of valid rows (encoded together), runs of
    unchanged rows (one block each), runs of invalid rows that share their error's kind and
    columns (one block each: a file whose every row is invalid is reported as fast as a valid
    one), and rows of their own."""

    def __init__(
        self,
        mc: mapping.MappedChunk,
        cc: payload.CheckedChunk,
        sources: list[bytes] | None,
        known: dict[str, tuple[bytes, bytes | None]],
        encode: Callable[[ChunkRun, list[int], int], None],
        chunk: Chunk,
    ) -> None:
        self.mc, self.cc, self.sources, self.known = mc, cc, sources, known
        self.warnings: dict[tuple[int, Any], RowWarnings | None] = {}  # shapes are per chunk
        self.rep_memo: dict[tuple[int, tuple[Any, ...]], UnknownReps | None] = {}  # (shape, emails) -> why
        self.unknown_reps: dict[int, RowError] = {}  # --require-known-reps: valid rows without a known rep
        self.may_be_large: bool | None = None  # could a row of this chunk be too large to send
        self.chunk = chunk  # the chunk's cells, as read
        self.found: list[tuple[str, bytes, bytes]] = []  # unchanged by payload hash, new fingerprint
        self.out: list[Entry] = []
        self._encode = encode
        self._valid: list[int] = []  # rows of mc with consecutive sequence numbers from _valid_first
        self._valid_first = 0
        self._same: tuple[list[int], list[str | None]] = ([], [])  # row numbers, ids from _same_first
        self._same_first = 0
        # invalid rows from _bad_first: row numbers, ids, messages; their error's kind and columns
        self._bad: tuple[list[int], list[str | None], list[str | RowNote | None]] = ([], [], [])
        self._bad_kind: tuple[str, str | None] = ("", None)
        self._bad_first = 0

    def valid(self, seq: int, k: int) -> None:
        self._close_same()
        self._close_bad()
        if not self._valid:
            self._valid_first = seq
        self._valid.append(k)

    def unchanged(self, seq: int, number: int, external_id: str | None) -> None:
        self._close_valid()
        self._close_bad()
        if not self._same[0]:
            self._same_first = seq
        self._same[0].append(number)
        self._same[1].append(external_id)

    def invalid(self, seq: int, number: int, external_id: str | None, errors: list[RowError]) -> None:
        """Row ``number`` is invalid for ``errors`` (its result as :func:`~.results.invalid_result`
        makes it: the first error's kind, the columns, the messages joined)."""
        self._close_valid()
        self._close_same()
        kind = (errors[0].slug, "; ".join(dict.fromkeys(e.column for e in errors if e.column)) or None)
        if self._bad[0] and (kind != self._bad_kind or seq != self._bad_first + len(self._bad[0])):
            self._close_bad()
        if not self._bad[0]:
            self._bad_first, self._bad_kind = seq, kind
        self._bad[0].append(number)
        self._bad[1].append(external_id)
        self._bad[2].append("; ".join(e.message for e in errors))

    def add(self, entry: Entry) -> None:
        self._close_valid()
        self._close_same()
        self._close_bad()
        self.out.append(entry)

    def close(self) -> list[Entry]:
        self._close_valid()
        self._close_same()
        self._close_bad()
        return self.out

    def _close_valid(self) -> None:
        if self._valid:
            rows, self._valid = self._valid, []
            self._encode(self, rows, self._valid_first)  # back through unchanged() and add()

    def _close_same(self) -> None:
        if self._same[0]:
            numbers, ids = self._same
            notes: list[str | RowNote | None] = [UNCHANGED_NOTE] * len(numbers)
            block = ResultBlock(self.mc.file, self.mc.sheet, UNCHANGED, numbers, ids, notes)
            self.out.append(Block(self._same_first, block))
            self._same = ([], [])

    def _close_bad(self) -> None:
        if self._bad[0]:
            numbers, ids, messages = self._bad
            kind, column = self._bad_kind
            mc = self.mc
            block = ResultBlock(mc.file, mc.sheet, INVALID, numbers, ids, messages, None, kind, column)
            self.out.append(Block(self._bad_first, block))
            self._bad = ([], [], [])
