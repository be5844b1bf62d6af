"""CLI, scratch: each run's own temporary folder, so that a killed run leaves nothing the next one
cannot clean.

Every temporary file of a run (the rows to fix past 20,000, the id pass's parts, a dry run's
worker spool, a grouping's SQLite file, XlsxWriter's ``tmp*`` files of an .xlsx report) goes into
``TMPDIR/bulk_sync-run-<random>/``: the entry point points :data:`tempfile.tempdir` (and, for the
run's helper processes, ``TMPDIR``/``TEMP``/``TMP``) there for the run. The folder holds a lock
file, locked for the run's life (:mod:`bulk_sync.lockfile`, released by the OS however the run
ends). A run removes its folder when it ends; a run that was killed cannot, so each run's start
removes every such folder whose lock is free: its run is gone. A folder whose lock is held is a
live run's and is left alone.

A folder is made under another name (``bulk_sync-new-``), locked, then renamed: a folder that
bears the run name is locked from the moment it appears, so a sweep never takes a run's folder
between its making and its locking.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ..lockfile import LockFile
from .progress import log

PREFIX = "bulk_sync-run-"
MAKING = "bulk_sync-new-"  # a folder being made: swept only when older than STALE_MAKING seconds
STALE_MAKING = 3600.0
LOCK = ".run.lock"
ENV = ("TMPDIR", "TEMP", "TMP")


@contextmanager
def run_folder() -> Iterator[Path]:
    """This run's temporary folder, made (after the folders of dead runs are removed), set as the
    process's temporary folder, and removed at the end."""
    base = Path(tempfile.gettempdir())
    removed = sweep(base)
    if removed:
        log.info("removed %d temporary folder(s) of earlier runs that were killed", removed)
    making = Path(tempfile.mkdtemp(prefix=MAKING, dir=base))
    lock = LockFile(making / LOCK)
    lock.acquire()
    folder = base / (PREFIX + making.name[len(MAKING) :])
    try:
        making.rename(folder)
    except OSError:  # Windows renames no folder holding an open file: the sweep reads its lock too
        folder = making
    before = tempfile.tempdir, {k: os.environ.get(k) for k in ENV}
    tempfile.tempdir = str(folder)
    os.environ.update(dict.fromkeys(ENV, str(folder)))
    try:
        yield folder
    finally:
        tempfile.tempdir = before[0]
        for k, v in before[1].items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        lock.release()
        shutil.rmtree(folder, ignore_errors=True)


def sweep(base: Path) -> int:
    """Remove the temporary folders of runs that are gone (their lock is free); how many."""
    removed = 0
    for folder in sorted(base.glob(PREFIX + "*")) + sorted(base.glob(MAKING + "*")):
        if folder.is_symlink() or not folder.is_dir():
            continue
        if folder.name.startswith(MAKING) and time.time() - _mtime(folder) < STALE_MAKING:
            continue  # being made by a run starting now
        if not (folder / LOCK).is_file() and folder.name.startswith(PREFIX):
            continue  # not one of ours
        lock = LockFile(folder / LOCK)
        try:
            holder = lock.acquire()
        except OSError:  # another user's, say
            continue
        if holder is not None:
            continue  # a live run's
        shutil.rmtree(folder, ignore_errors=True)
        lock.release()
        removed += 1
    return removed


def _mtime(path: Path) -> float:
    with suppress(OSError):
        return path.stat().st_mtime
    return time.time()
