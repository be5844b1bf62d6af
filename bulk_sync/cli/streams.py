"""CLI, streams: standard input (``-``) and pipes (a named FIFO, ``<(zcat export.csv.gz)``) are read
once, into a temporary file of the run, which is then read as any file (its size taken at open, its
format by content). Up to STREAM_MAX_BYTES; a bigger stream is refused, saying to save it to a file.
A device (``/dev/zero``) is refused by the load stage at once; a terminal as standard input here.

While it waits for a writer or for bytes, a Ctrl-C or SIGTERM stops it (exit 2, nothing read).
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import ConfigError, SourceError
from .progress import err

STREAM_MAX_BYTES = 1 << 30  # 1 GB kept from a pipe; a file of any size is read in place
_WAIT_NOTE_SECONDS = 1.0  # waiting this long for a writer, it says so once


class Streams:
    """The run's temporary folder for streams: removed when the run ends."""

    def __init__(self, stopped: Callable[[], str | None]) -> None:
        self._stopped = stopped
        self._folder: Path | None = None

    def paths(self, files: list[str]) -> list[str | Path]:
        """``files`` with ``-`` and every pipe replaced by a temporary file holding what it gave."""
        return [self._spooled(f) if _is_stream(f) else f for f in map(str, files)]

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _spooled(self, name: str) -> Path:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="bulk_sync-stream-"))
        label = "standard input" if name == "-" else name
        target = self._folder / ("stdin" if name == "-" else (Path(name).name or "pipe"))
        if name == "-":
            mode = os.fstat(sys.stdin.fileno()).st_mode
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                raise SourceError(
                    "-",
                    "standard input is a terminal or a device: pipe the file in "
                    "(bulk-sync run - -m MAPPING < export.csv), or pass the file's name",
                )
            self._copy(sys.stdin.fileno(), label, target)
        else:
            fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO with no writer yet: not stuck here
            try:
                self._copy(fd, label, target)
            finally:
                os.close(fd)
        return target

    def _copy(self, fd: int, label: str, target: Path) -> None:
        """What ``fd`` gives up to its end into ``target``: waits for bytes a fifth of a second at a
        time, so that a signal (held by the CLI) stops it."""
        poll = select.poll()
        poll.register(fd, select.POLLIN | select.POLLHUP)
        started, told, size = time.monotonic(), False, 0
        with target.open("wb") as out:
            while True:
                name = self._stopped()
                if name is not None:
                    raise ConfigError(f"stopped by {name} before any row was read: nothing was sent")
                if not poll.poll(200):
                    if not told and time.monotonic() - started > _WAIT_NOTE_SECONDS and not size:
                        err(f"waiting for {label} to be written (Ctrl-C stops)")
                        told = True
                    continue
                try:
                    block = os.read(fd, 1 << 20)
                except BlockingIOError:
                    continue
                if not block:
                    return
                size += len(block)
                if size > STREAM_MAX_BYTES:
                    raise SourceError(
                        label,
                        f"more than {_size(STREAM_MAX_BYTES)} came through the pipe; bulk_sync keeps "
                        "a stream in a temporary file up to that size: save it to a file and pass the "
                        "file's name (a file is read in place, of any size)",
                    )
                out.write(block)


def _size(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / 2**30:,.0f} GB"
    return f"{n / 2**20:,.0f} MB" if n >= 1 << 20 else f"{n:,} bytes"


def _is_stream(name: str) -> bool:
    if name == "-":
        return True
    try:
        mode = os.stat(name).st_mode
    except OSError:
        return False  # not there: the load stage says so
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@contextlib.contextmanager
def streams(stopped: Callable[[], str | None]) -> Iterator[Streams]:
    s = Streams(stopped)
    try:
        yield s
    finally:
        s.close()
