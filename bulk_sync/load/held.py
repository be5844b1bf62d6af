"""Load stage, held: a file read through a descriptor its caller opened, not through its name.

A caller that checked a file before it is read (the review page: no symbolic link, under its root)
opens it once and hands the open file over as :func:`held` ``(path, fd)``: a path that carries the
descriptor. Every read of the load stage goes through :func:`open_bytes` and :func:`stat_of`: a held
path is read through its descriptor (each reader at its own offset, ``pread``), so what was checked
is what is read, even when the name is made to point elsewhere in between; any other path by its
name. Paths made from a held one (its parent, another suffix) are plain paths. The caller keeps the
descriptor open while the file is read, and closes it.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

if sys.platform == "win32":
    from pathlib import WindowsPath as _Concrete
else:
    from pathlib import PosixPath as _Concrete


class HeldPath(_Concrete):
    """A path whose bytes are read through ``fd`` (see :func:`held`)."""

    fd: int | None = None  # (a path made from this one gets no descriptor: read by its name)


def held(path: Path, fd: int) -> Path:
    """``path``, read through the open descriptor ``fd`` by the load stage."""
    out = HeldPath(str(path))
    out.fd = fd
    return out


def _fd(path: Path) -> int | None:
    return path.fd if isinstance(path, HeldPath) else None


def stat_of(path: Path) -> os.stat_result:
    """``path``'s status: of its descriptor when held, else of its name (links followed)."""
    fd = _fd(path)
    return os.fstat(fd) if fd is not None else path.stat()


def open_bytes(path: Path) -> io.BufferedReader:
    """``path``'s bytes from its start, buffered: through its descriptor when held (the descriptor
    stays open when this file is closed), else by its name."""
    fd = _fd(path)
    if fd is None:
        return path.open("rb")
    return io.BufferedReader(_Pread(fd), 1 << 20)


class _Pread(io.RawIOBase):
    """An open descriptor's bytes, read at an offset of this reader's own (``os.pread``): several
    readers of one descriptor do not move each other's offsets."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd, self._at = fd, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: os.fstat(self._fd).st_size}[whence]
        if base + offset < 0:
            raise OSError(f"negative seek position {base + offset}")
        self._at = base + offset
        return self._at

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        got = os.pread(self._fd, len(view), self._at)
        view[: len(got)] = got
        self._at += len(got)
        return len(got)
