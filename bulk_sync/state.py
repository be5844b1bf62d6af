"""State: what was synced before, so a run sends only what changed and resumes after a crash.

One SQLite file (stdlib ``sqlite3``, WAL journal). Per *target* (the API base URL + the
resource) and *key* (externalId) it keeps a hash of the payload's JSON as sent, the last status,
when, SIRO's id, and the fingerprint of the source row the payload was made from (its cells, the
mapping and the converting code: see :func:`bulk_sync.mapping.fingerprints`), which lets a rerun
recognise an unchanged row without mapping and encoding it again.

A row is written only after SIRO acknowledged the record (for a batch: after its 200), one
transaction per request, so a ``kill -9`` leaves the file consistent and loses at most the
acknowledgements of the requests in flight (those records are simply sent again; the sync is an
upsert).

The token is never stored. A lock file beside the database keeps two runs from using the same
state at once (an overlapping nightly cron): the second is refused, or waits ``wait_lock`` seconds.
The OS releases the lock when the process dies, however it dies.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import sqlite3
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from .errors import StateError
from .lockfile import LockFile

T = TypeVar("T")
SCHEMA_VERSION = 3
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    target     TEXT NOT NULL,
    key        TEXT NOT NULL,
    hash       BLOB NOT NULL,
    status     TEXT NOT NULL,
    synced_at  REAL NOT NULL,
    siro_id    TEXT,
    source     BLOB,
    start_time TEXT,
    PRIMARY KEY (target, key)
) WITHOUT ROWID;
"""
# each job's last good shape (the drift check), created when missing (older files have no such table)
_JOBS = """
CREATE TABLE IF NOT EXISTS jobs (
    target  TEXT NOT NULL,
    job     TEXT NOT NULL,
    shape   TEXT NOT NULL,
    at      REAL NOT NULL,
    PRIMARY KEY (target, job)
);
"""
# what each older version needs to become this one (run in one transaction)
_UPGRADES = {
    1: "ALTER TABLE records ADD COLUMN source BLOB",
    2: "ALTER TABLE records ADD COLUMN start_time TEXT",  # for the mirror's window (NULL: not known)
}


def _unusable(path: Path, exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc)
    if "full" in reason.lower():
        return f"the disk holding the state file {path} is full ({reason}); free some space and run again"
    return (
        f"cannot use the state file {path} ({reason}): its folder must be writable; fix the permissions "
        "or pass another --state"
    )


def check_path(path: Path) -> None:
    """Refuse, in one line that names what is wrong, a state path that cannot be a state file: a
    folder, a symlink loop, a name with a line break or another control character (shown quoted:
    printed as is, it would break the message and the log in two)."""
    text = str(path)
    if not text.isprintable():
        what = "a line break" if ("\n" in text or "\r" in text) else "a control character"
        raise StateError(f"the state path {text!r} has {what} in it; pass --state a path without one")
    try:
        found = path.stat()
    except FileNotFoundError:
        return  # a new state file: made at the first acknowledgement
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StateError(
                f"the state path {path} is a symlink loop (a link that leads back to itself); remove the "
                "link or pass another --state"
            ) from exc
        if exc.errno == errno.ENOTDIR:
            raise StateError(
                f"the state path {path} goes through a file as if it were a folder; pass another --state"
            ) from exc
        return  # no permission, say: the open says so, with what to do
    if stat.S_ISDIR(found.st_mode):
        raise StateError(
            f"the state path {path} is a folder, not a file; pass --state {path / 'state.sqlite3'}"
        )


def default_state_path(env: Mapping[str, str], platform: str = sys.platform) -> Path:
    """Where state lives unless --state says otherwise (per user, like other tools' state), given
    the environment ``env`` (the caller's to read: the CLI passes ``os.environ``)."""
    if platform == "win32":
        base = Path(env.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(env.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
    return base / "bulk_sync" / "state.sqlite3"


def payload_hash(raw: bytes) -> bytes:
    """The fingerprint of a payload as sent (its JSON bytes are produced in a fixed field order)."""
    return hashlib.blake2b(raw, digest_size=16).digest()


def target_of(base_url: str, resource: str = "engagements") -> str:
    """State is kept per API (base URL, without credentials or query) and resource."""
    return f"{base_url.rstrip('/').split('?')[0]}#{resource}"


class Targeted(Protocol):
    @property
    def base_url(self) -> str: ...
    @property
    def identity(self) -> str | None: ...  # stands for base_url (a kept sandbox's, whose port changes)
    @property
    def resource(self) -> str: ...


def target_for(settings: Targeted) -> str:
    """The target a run's settings name (their base URL, or the identity standing for it)."""
    return target_of(settings.identity or settings.base_url, settings.resource)


class StateLock:
    """An exclusive lock on ``<state>.lock`` (:mod:`bulk_sync.lockfile`), released by the OS if the
    process dies."""

    def __init__(self, path: Path) -> None:
        check_path(path)
        self._lock = LockFile(path.with_name(path.name + ".lock"))
        self.path = self._lock.path

    def acquire(self, wait_seconds: float = 0.0) -> None:
        try:
            holder = self._lock.acquire(wait_seconds)
        except OSError as exc:
            raise StateError(_unusable(self.path.with_suffix(""), exc)) from exc
        if holder is not None:
            raise StateError(
                f"the state file {self.path.with_suffix('')} is in use by another bulk-sync run "
                f"({holder}); wait for it to finish, or pass --wait-lock SECONDS"
            )

    def release(self) -> None:
        self._lock.release()


class StateStore:
    """One connection to the state database. Make one per thread (sqlite3 connections are not shared)."""

    def __init__(self, path: Path, target: str) -> None:
        self.path = path
        self.target = target
        check_path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(_unusable(path, exc)) from exc
        try:
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"the state file {path} was written by a newer bulk_sync (state version {version}; "
                    f"this one reads {SCHEMA_VERSION}); upgrade bulk_sync or use another --state"
                )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process
            if version == 0:
                self._db.executescript(_SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION};")
            elif version < SCHEMA_VERSION:
                self._upgrade()
            self._db.executescript(_JOBS)
            self._db.execute(
                "SELECT target, key, hash, status, synced_at, siro_id, source, start_time "
                "FROM records LIMIT 1"
            )
        except sqlite3.OperationalError as exc:
            raise StateError(_unusable(path, exc)) from exc
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"the state file {path} is not a bulk_sync state database ({exc}); move it away or pass "
                "another --state (without it every record is sent again)"
            ) from exc

    def check(self) -> None:
        """Refuse a damaged file at the start, before anything is sent (a quick integrity check of
        every page: ~0.15 s for a million records)."""
        with self._sqlite():
            found = self._db.execute("PRAGMA quick_check(1)").fetchone()
            if not found or found[0] != "ok":
                raise sqlite3.DatabaseError(found[0] if found else "no answer to the integrity check")

    @contextlib.contextmanager
    def _sqlite(self) -> Iterator[None]:
        """sqlite3's errors, as one line that says what to do (the one place they are translated)."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise StateError(_unusable(self.path, exc)) from exc
        except sqlite3.DatabaseError as exc:
            found = " ".join(str(exc).replace("*** in database main ***", "").split())[:200]
            raise StateError(
                f"the state file {self.path} is damaged ({found}); move it away (or pass another --state) "
                "and run again: without it every record is sent again, which is safe"
            ) from exc

    def _upgrade(self) -> None:
        """Bring an older file to this version in one transaction; the version is read again
        inside it, so a second connection that saw the old version does not upgrade twice."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for v in range(version, SCHEMA_VERSION):
                db.execute(_UPGRADES[v])
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def empty(self) -> bool:
        """True when nothing was ever synced to this target (a first run needs no look-ups)."""
        with self._sqlite():
            return (
                self._db.execute("SELECT 1 FROM records WHERE target = ? LIMIT 1", [self.target]).fetchone()
                is None
            )

    def hashes(self, keys: Sequence[str]) -> dict[str, tuple[bytes, bytes | None]]:
        """The last acknowledged payload hash of each key that has one, with the fingerprint of the
        source row it was made from (None when not known).

        One aggregate row per 500 keys, not a row per key: sqlite3 lets go of the GIL at every
        step, and taking it back while another thread runs Python costs up to the switch interval.
        """
        out: dict[str, tuple[bytes, bytes | None]] = {}
        with self._sqlite():
            self._hashes(keys, out)
        return out

    def _hashes(self, keys: Sequence[str], out: dict[str, tuple[bytes, bytes | None]]) -> None:
        for i in range(0, len(keys), 500):
            part = list(keys[i : i + 500])
            marks = ",".join("?" * len(part))
            (found,) = self._db.execute(
                "SELECT json_group_object(key, hex(hash) || ' ' || hex(source)) FROM records "
                f"WHERE target = ? AND key IN ({marks})",
                [self.target, *part],
            ).fetchone()
            for k, text in json.loads(found).items():
                digest, _, source = text.partition(" ")
                out[k] = (bytes.fromhex(digest), bytes.fromhex(source) if source else None)

    def same_sources(self, pairs: Sequence[tuple[str, bytes]]) -> list[bool]:
        """For each (key, source fingerprint): is it the fingerprint kept with the key's last
        acknowledged payload? Compared inside SQLite, 300 pairs a query, and only the count
        comes back when every pair matches (an unchanged rerun)."""
        out = [False] * len(pairs)
        with self._sqlite():
            self._same_sources(pairs, out)
        return out

    def _same_sources(self, pairs: Sequence[tuple[str, bytes]], out: list[bool]) -> None:
        for start in range(0, len(pairs), 300):
            part = pairs[start : start + 300]
            values = ",".join(["(?, ?, ?)"] * len(part))
            count, hits = self._db.execute(
                f"WITH v(i, k, s) AS (VALUES {values}) SELECT count(*), group_concat(v.i) FROM v "
                "JOIN records ON records.target = ? AND records.key = v.k AND records.source = v.s",
                [*(x for i, (key, source) in enumerate(part) for x in (i, key, source)), self.target],
            ).fetchone()
            if count == len(part):
                out[start : start + len(part)] = [True] * len(part)
            elif count:
                for i in map(int, hits.split(",")):
                    out[start + i] = True

    def record(self, acked: Iterable[tuple[object, ...]]) -> None:
        """Store acknowledged records (key, payload hash, SIRO id, source fingerprint[, startTime:
        "" when the record has none]) in one transaction, 120 rows per INSERT."""
        now = time.time()
        rows = [
            (self.target, key, digest, "synced", now, siro_id, source, rest[0] if rest else None)
            for key, digest, siro_id, source, *rest in acked
        ]

        def insert(part: Sequence[tuple[object, ...]]) -> tuple[str, list[object]]:
            return (
                "INSERT INTO records (target, key, hash, status, synced_at, siro_id, source, start_time) "
                "VALUES "
                + ",".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(part))
                + " ON CONFLICT (target, key) DO UPDATE SET "
                "hash = excluded.hash, status = excluded.status, synced_at = excluded.synced_at, "
                "siro_id = COALESCE(excluded.siro_id, records.siro_id), source = excluded.source, "
                "start_time = COALESCE(excluded.start_time, records.start_time)",
                [v for row in part for v in row],
            )

        self._write_in_parts(rows, 120, insert)

    def in_window(self, low: str, high: str) -> list[tuple[str, str, str | None]]:
        """The records synced to this target whose startTime is in [low, high] (UTC ISO texts with
        a Z, compared as text: their text order is their time order): (key, startTime, SIRO id)."""
        with self._sqlite():
            found = self._db.execute(
                "SELECT key, start_time, siro_id FROM records WHERE target = ? AND start_time != '' "
                "AND start_time >= ? AND start_time <= ? ORDER BY start_time, key",
                [self.target, low, high],
            ).fetchall()
        return [(str(k), str(t), None if i is None else str(i)) for k, t, i in found]

    def unknown_start_times(self) -> int:
        """Records synced by a bulk_sync that did not keep start times (the mirror cannot place them)."""
        with self._sqlite():
            (n,) = self._db.execute(
                "SELECT count(*) FROM records WHERE target = ? AND start_time IS NULL", [self.target]
            ).fetchone()
        return int(n)

    def job_shape(self, job: str) -> dict[str, object] | None:
        """The last good run's shape of ``job`` (the drift check), or None before its first."""
        with self._sqlite():
            found = self._db.execute(
                "SELECT shape FROM jobs WHERE target = ? AND job = ?", [self.target, job]
            ).fetchone()
        return None if found is None else dict(json.loads(found[0]))

    def remember_job(self, job: str, shape: dict[str, object]) -> None:
        """Make ``shape`` the job's new normal."""
        with self._sqlite(), self._db:
            self._db.execute(
                "INSERT INTO jobs (target, job, shape, at) VALUES (?, ?, ?, ?) ON CONFLICT (target, job) "
                "DO UPDATE SET shape = excluded.shape, at = excluded.at",
                [self.target, job, json.dumps(shape), time.time()],
            )

    def forget(self, keys: Sequence[str]) -> None:
        """Drop records SIRO no longer has (soft-deleted by the mirror, or deleted): should they come
        back in a file, they are new and sent."""

        def delete(part: Sequence[str]) -> tuple[str, list[object]]:
            return (
                f"DELETE FROM records WHERE target = ? AND key IN ({','.join('?' * len(part))})",
                [self.target, *part],
            )

        self._write_in_parts(keys, 500, delete)

    def remember_sources(self, found: Sequence[tuple[str, bytes, bytes]]) -> None:
        """Note the source fingerprint of records found unchanged by their payload hash (key,
        payload hash, fingerprint), so that the next run knows them by the fingerprint alone.

        A key's fingerprint is only written while its payload hash is still the one given.
        """

        def update(part: Sequence[tuple[str, bytes, bytes]]) -> tuple[str, list[object]]:
            cases = " ".join(["WHEN ? THEN ?"] * len(part))
            return (
                f"UPDATE records SET source = CASE key {cases} END "
                f"WHERE target = ? AND key IN ({','.join('?' * len(part))}) AND hash = CASE key {cases} END",
                [
                    *(v for key, _, source in part for v in (key, source)),
                    self.target,
                    *(key for key, _, _ in part),
                    *(v for key, digest, _ in part for v in (key, digest)),
                ],
            )

        self._write_in_parts(found, 150, update)

    def _write_in_parts(
        self, items: Sequence[T], size: int, statement: Callable[[Sequence[T]], tuple[str, list[object]]]
    ) -> None:
        """One transaction; one statement per ``size`` items (under SQLite's oldest limit of 999
        parameters), not one statement step per item: see :meth:`hashes` on the GIL."""
        if not items:
            return
        with self._sqlite(), self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for i in range(0, len(items), size):
                self._db.execute(*statement(items[i : i + size]))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
