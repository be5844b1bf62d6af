"""Pipeline, sizes: the batch size learned per SIRO (its base URL), kept in the state file's own
small table, so that the next run with ``--batch-size auto`` starts where this one ended.

A hint, not a record of what SIRO acknowledged: a state file that cannot be read or written here
costs a slower start (logged), never the run.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("bulk_sync.state")

_TABLE = """
CREATE TABLE IF NOT EXISTS batch_sizes (
    base_url TEXT PRIMARY KEY,
    size     INTEGER NOT NULL,
    at       REAL NOT NULL
);
"""


def _key(base_url: str) -> str:
    return base_url.rstrip("/")


@contextlib.contextmanager
def _table(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.executescript(_TABLE)
        yield db
    finally:
        db.close()


def learned_size(path: Path | None, base_url: str) -> int | None:
    """The batch size the last run to ``base_url`` learned, or None (none yet, or no state)."""
    if path is None or not path.is_file():
        return None
    try:
        with _table(path) as db:
            found = db.execute("SELECT size FROM batch_sizes WHERE base_url = ?", [_key(base_url)]).fetchone()
    except sqlite3.Error as exc:
        log.warning("the learned batch size could not be read from %s (%s); starting at 100", path, exc)
        return None
    return int(found[0]) if found and int(found[0]) > 0 else None


def remember_size(path: Path | None, base_url: str, size: int) -> None:
    """Keep ``size`` as the one to start at next time for ``base_url``."""
    if path is None:
        return
    try:
        with _table(path) as db:
            db.execute(
                "INSERT INTO batch_sizes (base_url, size, at) VALUES (?, ?, ?) ON CONFLICT (base_url) "
                "DO UPDATE SET size = excluded.size, at = excluded.at",
                [_key(base_url), size, time.time()],
            )
    except sqlite3.Error as exc:
        log.warning("the learned batch size could not be kept in %s (%s)", path, exc)
