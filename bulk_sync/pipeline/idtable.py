"""Pipeline, idtable: the id pass's table of rows: each row's externalId digest and where the row is,
in memory up to SPILL_BYTES and then in parts on disk.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .. import mapping
from ..load import Chunk

# The id table kept in memory; past that it goes to temporary files. Small on purpose: glibc
# raises its mmap threshold to the size of a large block once it is freed, and blocks under the
# threshold stay in the heap: with 4 MB, a 1M-row dry run's peak was 10 MB higher than with 1 MB.
SPILL_BYTES = 1024 * 1024
READ_BYTES = 64 * 1024  # a RowsFile read back a block at a time (small: see rows_of)
SPILL_PARTS = 64  # ... split by the digests' top 6 bits, so that each part is sorted on its own


class IdTable:
    """The rows' id digests and where the rows are, as (n, 4) uint64 arrays (digest hi, digest lo,
    row, job): 32 bytes a row. Up to SPILL_BYTES they stay in memory (one part). Past that they are
    appended to SPILL_PARTS temporary files by the digest's top bits, so repeats are found one part
    at a time and the memory this pass takes does not grow with the file."""

    def __init__(self) -> None:
        self._held: list[Any] = []
        self._bytes = 0
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._files: list[Any] = []

    def add(self, rows: Any) -> None:
        self._held.append(rows)
        self._bytes += rows.nbytes
        if self._bytes > SPILL_BYTES:
            self._spill()

    def _spill(self) -> None:
        if not self._held:
            return
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="bulk_sync-ids-")
            self._files = [open(Path(self._dir.name) / f"{i}.u64", "wb") for i in range(SPILL_PARTS)]  # noqa: SIM115
        rows = np.concatenate(self._held)
        self._held, self._bytes = [], 0
        which = (rows[:, 0] >> np.uint64(64 - (SPILL_PARTS - 1).bit_length())).astype(np.intp)
        order = np.argsort(which, kind="stable")  # stable: each part keeps the order rows were read
        rows, which = rows[order], which[order]
        bounds = np.searchsorted(which, np.arange(SPILL_PARTS + 1))
        for i, f in enumerate(self._files):
            if bounds[i] < bounds[i + 1]:
                f.write(rows[bounds[i] : bounds[i + 1]].tobytes())

    def parts(self) -> Iterator[Any]:
        """Every row, a part at a time; the rows of one digest are all in one part, in the order
        they were added. May be called again (the spilled parts are read from their files)."""
        if self._dir is None:
            if self._held:
                yield np.concatenate(self._held)
            return
        self._spill()
        for f in self._files:
            f.flush()
        for i in range(SPILL_PARTS):
            rows = np.fromfile(Path(self._dir.name) / f"{i}.u64", dtype=np.uint64).reshape(-1, 4)
            if len(rows):
                yield rows

    def close(self) -> None:
        for f in self._files:
            f.close()
        if self._dir is not None:
            self._dir.cleanup()
        self._held, self._files, self._dir = [], [], None


class RowsFile:
    """Rows as IdTable takes them, appended to a file as they come (a helper process's, read back
    by the process that holds the table)."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh

    def add(self, rows: Any) -> None:
        self._fh.write(rows.tobytes())


def rows_of(path: Path, shift: int) -> Iterator[Any]:
    """The rows a RowsFile wrote to ``path``, SPILL_BYTES at a time, their row numbers ``shift`` on."""
    with path.open("rb") as fh:
        while block := fh.read(READ_BYTES):
            rows = np.frombuffer(block, dtype=np.uint64).reshape(-1, 4).copy()
            rows[:, 2] += np.uint64(shift)
            yield rows


def add_ids(
    table: IdTable | RowsFile, bound: mapping.BoundMapping, chunk: Chunk, only: frozenset[int] | None, j: int
) -> None:
    """The externalIds of ``chunk`` (file ``j`` of the plan) into ``table``, with their row numbers."""
    ids, numbers = mapping.external_ids(bound, chunk), chunk.row_numbers
    if only is not None or None in ids:
        kept = [
            k
            for k, (n, e) in enumerate(zip(numbers, ids, strict=True))
            if e is not None and (only is None or n in only)
        ]
        ids, numbers = [ids[k] for k in kept], [numbers[k] for k in kept]
    if ids:
        part = np.empty((len(ids), 4), dtype=np.uint64)
        part[:, :2] = mapping.id_digests(ids)
        part[:, 2] = numbers
        part[:, 3] = j
        table.add(part)
