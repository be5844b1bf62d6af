"""Lock files: an exclusive lock on a small file, held for as long as one process needs it (a run's
state file, a watcher's inbox) and released by the OS when that process dies, however it dies
(``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows). The file holds who holds it
("pid 4242, started 2026-12-07 21:03:00"), for the message of whoever is refused.
"""

from __future__ import annotations

import contextlib
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
        deadline = time.monotonic() + wait_seconds
        while True:
            fh = self.path.open("a+", encoding="utf-8")
            if _try_lock(fh):
                if _still_there(fh, self.path):
                    break
                fh.close()  # removed by its holder as it let go: lock the file now at the path
                continue
            if time.monotonic() >= deadline:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                fh.close()
                return holder
            fh.close()
            time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        fh.flush()
        self._fh = fh
        return None

    def release(self, remove: bool = False) -> None:
        """Let go; with ``remove``, delete the file first, while still holding it (a process that
        opened it meanwhile sees it gone once it gets the lock, and opens the path again)."""
        if self._fh is not None:
            if remove and sys.platform != "win32":
                self.path.unlink(missing_ok=True)
            _unlock(self._fh)
            self._fh.close()
            self._fh = None
            if remove and sys.platform == "win32":  # pragma: no cover - an open file cannot go there
                with contextlib.suppress(OSError):
                    self.path.unlink()


def _still_there(fh: IO[str], path: Path) -> bool:
    """Is the locked file still the one at ``path`` (not removed, or replaced, by its last holder)?"""
    if sys.platform == "win32":  # pragma: no cover - an open file cannot be removed there
        return True
    try:
        now = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fh.fileno())
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


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
