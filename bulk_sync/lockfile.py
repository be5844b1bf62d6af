"""Lock files: an exclusive lock on a small file, held for as long as one process needs it (a run's
state file, a watcher's inbox) and released by the OS when that process dies, however it dies
(``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows). The file holds who holds it
("pid 4242, started 2026-12-07 21:03:00"), for the message of whoever is refused.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import IO


class LockFile:
    """An exclusive lock on ``path``. ``acquire`` returns None when it holds the lock, else the
    text the holder wrote ("pid ..., started ..."); ``OSError`` if the file cannot be opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def acquire(self, wait_seconds: float = 0.0) -> str | None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+", encoding="utf-8")
        deadline = time.monotonic() + wait_seconds
        while not _try_lock(fh):
            if time.monotonic() >= deadline:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                fh.close()
                return holder
            time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        fh.flush()
        self._fh = fh
        return None

    def release(self) -> None:
        if self._fh is not None:
            _unlock(self._fh)
            self._fh.close()
            self._fh = None


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fh: IO[str]) -> bool:
        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fh: IO[str]) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fh: IO[str]) -> bool:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def _unlock(fh: IO[str]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
