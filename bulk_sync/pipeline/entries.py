"""Pipeline, entries: a chunk's results in order, as the reader hands them on: runs of valid rows
(encoded together), runs of unchanged rows (one report block each), and rows of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import mapping, payload
from ..errors import RowError
from ..load import Chunk
from ..notes import UNCHANGED_NOTE, RowNote, RowWarnings, UnknownReps
from ..report import UNCHANGED, ResultBlock
from .results import Block, Entry


class ChunkRun:
    """The entries of one chunk, in order: runs of valid rows (encoded together), runs of
    unchanged rows (one block each), and rows of their own."""

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

    def valid(self, seq: int, k: int) -> None:
        self._close_same()
        if not self._valid:
            self._valid_first = seq
        self._valid.append(k)

    def unchanged(self, seq: int, number: int, external_id: str | None) -> None:
        self._close_valid()
        if not self._same[0]:
            self._same_first = seq
        self._same[0].append(number)
        self._same[1].append(external_id)

    def add(self, entry: Entry) -> None:
        self._close_valid()
        self._close_same()
        self.out.append(entry)

    def close(self) -> list[Entry]:
        self._close_valid()
        self._close_same()
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
