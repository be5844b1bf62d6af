"""Load stage, snapshot: a file as it was when it was opened. Its size and modification time are
taken at open; every reader of the file reads no byte past that size (:func:`open_upto`), and
:func:`changed_files` tells, before a chunk is sent, whether a file has changed since (grown,
shrunk, or written to): an export still being written is not sent half-read.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FileChanged
from .held import open_bytes, stat_of


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A file's size and modification time when it was opened."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, fd: int) -> Snapshot:
        st = os.fstat(fd)
        return cls(st.st_size, st.st_mtime_ns)

    def change(self, path: Path) -> str | None:
        """How the file at ``path`` differs from the snapshot, or None when it does not."""
        try:
            st = stat_of(path)
        except OSError as exc:
            return f"it cannot be found any more ({exc.strerror or exc})"
        if st.st_size != self.size:
            return f"{self.size:,} bytes when it was opened, {st.st_size:,} now"
        if st.st_mtime_ns != self.mtime_ns:
            return "it was written to since it was opened"
        return None


def changed_files(sources: Iterable[Any]) -> FileChanged | None:
    """The first of ``sources`` (load Sources) whose file changed since it was opened, as the error
    that stops the run; None when every file is as it was (a few microseconds a file)."""
    seen: set[Path] = set()
    for src in sources:
        snap: Snapshot | None = src.snapshot
        if snap is None or src.path in seen:
            continue
        seen.add(src.path)
        how = snap.change(src.path)
        if how is not None:
            return FileChanged(
                f"{src.path}: the file changed while it was read: run again when it is complete ({how}; "
                "nothing past what it held when it was opened was read)"
            )
    return None


class _Upto(io.RawIOBase):
    """The bytes of ``path`` from ``start`` to ``end``, as a file."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        super().__init__()
        self._fh = open_bytes(path)
        self._fh.seek(start)
        self._left = end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._left)
        if n <= 0:
            return 0
        got = self._fh.readinto(memoryview(buffer)[:n]) or 0
        self._left -= got
        return got

    def close(self) -> None:
        self._fh.close()
        super().close()


def open_upto(path: Path, start: int = 0, end: int | None = None) -> io.BufferedReader:
    """The bytes of ``path`` from ``start`` up to ``end`` (None: to its end now), buffered."""
    if end is None:
        return open_bytes(path)
    return io.BufferedReader(_Upto(path, start, end), 1 << 20)


def open_text_upto(path: Path, end: int | None, encoding: str, errors: str = "strict") -> io.TextIOWrapper:
    """:func:`open_upto` from the start, decoded (newlines as they are, as the csv module wants)."""
    return io.TextIOWrapper(open_upto(path, 0, end), encoding=encoding, errors=errors, newline="")
