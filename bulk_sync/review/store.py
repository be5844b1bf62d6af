"""Review, store: a person's edits of one run, in a small SQLite file beside the run
(``<run>-fixes.sqlite``): each row's cells as last checked, its status, "don't send", a version,
and the file it was sent in; the sends; the audit log (who changed which cell from what to what,
who sent which rows when).

Every change is one transaction, and an edit names the version it was made on: an edit made on an
older version than the stored one (another window changed the row since) is refused, never
written over (``Stale``). A send takes the rows ready to go and marks them sent in the same
transaction that names their file, so two sends never send a row twice.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .safefs import NEW, OutsideRoot, is_plain_file

SCHEMA = """
CREATE TABLE IF NOT EXISTS edits (
  idx INTEGER PRIMARY KEY, cells TEXT NOT NULL, status TEXT NOT NULL,
  skip INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL, sent_in TEXT
);
CREATE TABLE IF NOT EXISTS sends (
  file TEXT PRIMARY KEY, send_id TEXT UNIQUE, rows INTEGER NOT NULL, at TEXT NOT NULL, who TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS undo (
  batch TEXT NOT NULL, idx INTEGER NOT NULL, cells TEXT NOT NULL, status TEXT NOT NULL,
  skip INTEGER NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (batch, idx)
);
CREATE TABLE IF NOT EXISTS audit (
  n INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, who TEXT NOT NULL, what TEXT NOT NULL
);
"""
STALE = "this row was changed in another window: reload it"
# one connection per store file and process, kept open (closing a WAL database checkpoints and
# syncs it: 40 ms an edit), reopened when the file is replaced; used by one thread at a time
_OPEN: dict[str, tuple[sqlite3.Connection, tuple[int, int], threading.Lock]] = {}
_OPENING = threading.Lock()


class Stale(Exception):
    """The row's stored version is not the one the edit was made on."""

    def __init__(self, index: int, version: int, message: str = STALE) -> None:
        super().__init__(message)
        self.index, self.version = index, version


@dataclass(frozen=True)
class Edit:
    """One row as the store holds it."""

    index: int
    cells: list[str]
    status: str
    skip: bool
    version: int
    sent_in: str | None


@dataclass(frozen=True)
class Sent:
    """What one send did: its file (relative to the inbox) and how many rows went in it."""

    file: str
    rows: int
    again: bool = False  # the same send asked twice (a retried click): its first answer


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class Store:
    """The edits of one run (its SQLite file need not exist until the first edit)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _db(self, write: bool) -> Iterator[sqlite3.Connection]:
        try:
            with self._open(write) as db:
                yield db
        except sqlite3.Error as exc:  # translated here, once: the page says it in words
            raise OSError(f"the run's edits file {self.path.name} cannot be used ({exc})") from exc

    @contextmanager
    def _open(self, write: bool) -> Iterator[sqlite3.Connection]:
        if write and not os.path.lexists(self.path):
            with suppress(FileExistsError):  # created new, never through a link planted there
                os.close(os.open(self.path, NEW, 0o600))
        if not is_plain_file(self.path):
            raise OutsideRoot(f"{self.path.name} is not a plain file (a symbolic link?): not opened")
        db, lock = _connection(self.path)
        with lock:
            if write:
                db.execute("BEGIN IMMEDIATE")  # one writer at a time, across windows and processes
            try:
                yield db
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            if db.in_transaction:
                db.execute("COMMIT")

    def exists(self) -> bool:
        return is_plain_file(self.path)

    # -- reading -------------------------------------------------------------------

    def rows(self, lo: int = 0, hi: int = 2**62) -> dict[int, Edit]:
        """The stored rows with ``lo <= index < hi``."""
        if not self.exists():
            return {}
        with self._db(False) as db:
            found = db.execute(
                "SELECT idx, cells, status, skip, version, sent_in FROM edits WHERE idx >= ? AND idx < ?",
                (lo, hi),
            ).fetchall()
        return {r[0]: Edit(r[0], json.loads(r[1]), r[2], bool(r[3]), r[4], r[5]) for r in found}

    def counts(self) -> dict[str, int]:
        """fixed (valid, to send), skipped, sent: rows of each."""
        if not self.exists():
            return {"fixed": 0, "skipped": 0, "sent": 0}
        with self._db(False) as db:
            return _counts(db)

    def sends(self) -> list[dict[str, Any]]:
        if not self.exists():
            return []
        with self._db(False) as db:
            found = db.execute("SELECT file, rows, at, who FROM sends ORDER BY at").fetchall()
        return [{"file": f, "rows": n, "at": at, "who": who} for f, n, at, who in found]

    def audit(self, last: int = 200) -> list[dict[str, str]]:
        if not self.exists():
            return []
        with self._db(False) as db:
            found = db.execute("SELECT at, who, what FROM audit ORDER BY n DESC LIMIT ?", (last,)).fetchall()
        return [{"at": at, "who": who, "what": what} for at, who, what in found]

    # -- writing -------------------------------------------------------------------

    def save(
        self, index: int, version: int, cells: list[str], status: str, skip: bool, who: str, what: list[str]
    ) -> tuple[int, dict[str, int]]:
        """The row as checked, if ``version`` is still the stored one; returns its new version and
        the run's counts (fixed, skipped, sent) after it."""
        with self._db(True) as db:
            row = db.execute("SELECT version, sent_in FROM edits WHERE idx = ?", (index,)).fetchone()
            stored, sent_in = (row[0], row[1]) if row else (0, None)
            if sent_in:
                raise Stale(index, stored, f"this row was already sent in {sent_in}: it is not offered again")
            if stored != version:
                raise Stale(index, stored)
            db.execute(
                "INSERT INTO edits (idx, cells, status, skip, version) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(idx) DO UPDATE SET cells = excluded.cells, status = excluded.status,"
                " skip = excluded.skip, version = excluded.version",
                (index, json.dumps(cells, ensure_ascii=False), status, int(skip), stored + 1),
            )
            db.executemany(
                "INSERT INTO audit (at, who, what) VALUES (?, ?, ?)", [(now(), who, w) for w in what]
            )
            counts = _counts(db)
        return stored + 1, counts

    def save_many(
        self, batch: str, rows: list[tuple[Edit, list[str], str]], who: str, what: str
    ) -> tuple[int, int]:
        """Many rows changed at once (``rows``: each as it was, with its version, then its new cells
        and status), undoable as ``batch``. A row changed or sent since it was read is left as it is.
        Returns (rows changed, rows left)."""
        done = 0
        with self._db(True) as db:
            current = dict(db.execute("SELECT idx, version FROM edits").fetchall())
            sent = {i for (i,) in db.execute("SELECT idx FROM edits WHERE sent_in IS NOT NULL")}
            for was, cells, status in rows:
                if current.get(was.index, 0) != was.version or was.index in sent:
                    continue
                db.execute(
                    "INSERT INTO undo (batch, idx, cells, status, skip, version) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        batch,
                        was.index,
                        json.dumps(was.cells, ensure_ascii=False),
                        was.status,
                        int(was.skip),
                        was.version + 1,
                    ),
                )
                db.execute(
                    "INSERT INTO edits (idx, cells, status, skip, version) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT(idx) DO UPDATE SET cells = excluded.cells, status = excluded.status,"
                    " skip = excluded.skip, version = excluded.version",
                    (
                        was.index,
                        json.dumps(cells, ensure_ascii=False),
                        status,
                        int(was.skip),
                        was.version + 1,
                    ),
                )
                done += 1
            db.execute(
                "INSERT INTO audit (at, who, what) VALUES (?, ?, ?)",
                (now(), who, f"{what} ({done} row(s), undo {batch})"),
            )
        return done, len(rows) - done

    def undo(self, batch: str, who: str) -> tuple[int, int]:
        """The rows of ``batch`` put back as they were, unless changed or sent since. Returns
        (rows put back, rows left)."""
        back = 0
        with self._db(True) as db:
            found = db.execute(
                "SELECT u.idx, u.cells, u.status, u.skip, u.version, e.version, e.sent_in FROM undo u"
                " JOIN edits e ON e.idx = u.idx WHERE u.batch = ?",
                (batch,),
            ).fetchall()
            for idx, cells, status, skip, after, version, sent_in in found:
                if version != after or sent_in:
                    continue
                db.execute(
                    "UPDATE edits SET cells = ?, status = ?, skip = ?, version = ? WHERE idx = ?",
                    (cells, status, skip, version + 1, idx),
                )
                back += 1
            db.execute("DELETE FROM undo WHERE batch = ?", (batch,))
            db.execute(
                "INSERT INTO audit (at, who, what) VALUES (?, ?, ?)",
                (now(), who, f"undid {batch}: {back} row(s) put back"),
            )
        return back, len(found) - back

    def send(
        self,
        send_id: str,
        shown: dict[int, int],
        who: str,
        drop: Callable[[list[Edit]], tuple[str, Path, str]],
    ) -> Sent:
        """The rows ready (checked valid, not "don't send", not sent) handed to ``drop`` (which
        writes their file and returns its name, its path and the rows as the audit log says them),
        then marked sent in it: all in one transaction. A row the page shows at another version
        than the stored one refuses the send (``Stale``)."""
        with self._db(True) as db:
            before = db.execute("SELECT file, rows FROM sends WHERE send_id = ?", (send_id,)).fetchone()
            if before:
                return Sent(before[0], before[1], again=True)
            found = db.execute(
                "SELECT idx, cells, status, skip, version, sent_in FROM edits"
                " WHERE status = 'valid' AND skip = 0 AND sent_in IS NULL ORDER BY idx"
            ).fetchall()
            ready = [Edit(r[0], json.loads(r[1]), r[2], False, r[4], None) for r in found]
            versions = dict(db.execute("SELECT idx, version FROM edits").fetchall())
            for index, version in shown.items():
                if versions.get(index, 0) != version:
                    raise Stale(index, versions.get(index, 0))
            if not ready:
                return Sent("", 0)
            name, path, said = drop(ready)
            try:
                db.executemany("UPDATE edits SET sent_in = ? WHERE idx = ?", [(name, e.index) for e in ready])
                db.execute(
                    "INSERT INTO sends (file, send_id, rows, at, who) VALUES (?, ?, ?, ?, ?)",
                    (name, send_id, len(ready), now(), who),
                )
                db.execute(
                    "INSERT INTO audit (at, who, what) VALUES (?, ?, ?)",
                    (now(), who, f"sent {len(ready)} row(s) in {name}: {said}"),
                )
            except BaseException:
                path.unlink(missing_ok=True)  # not recorded as sent: not left to be sent either
                raise
        return Sent(name, len(ready))


def _counts(db: sqlite3.Connection) -> dict[str, int]:
    (fixed, skipped, sent) = db.execute(
        "SELECT COALESCE(SUM(status = 'valid' AND skip = 0 AND sent_in IS NULL), 0),"
        " COALESCE(SUM(skip = 1 AND sent_in IS NULL), 0), COALESCE(SUM(sent_in IS NOT NULL), 0)"
        " FROM edits"
    ).fetchone()
    return {"fixed": int(fixed), "skipped": int(skipped), "sent": int(sent)}


def _connection(path: Path) -> tuple[sqlite3.Connection, threading.Lock]:
    """The process's connection to the store at ``path`` (a plain file, checked by the caller)."""
    info = os.lstat(path)
    with _OPENING:
        found = _OPEN.get(str(path))
        if found is None or found[1] != (info.st_dev, info.st_ino):
            if found is not None:
                found[0].close()
            db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode = WAL")  # readers never wait for a writer
            db.execute("PRAGMA synchronous = NORMAL")  # WAL: each commit atomic, synced at checkpoints
            db.executescript(SCHEMA)
            if len(_OPEN) > 32:  # runs looked at long ago
                for old, _, _ in _OPEN.values():
                    old.close()
                _OPEN.clear()
            found = _OPEN[str(path)] = (db, (info.st_dev, info.st_ino), threading.Lock())
    return found[0], found[2]
