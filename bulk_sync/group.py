"""Row grouping: several input rows -> ONE engagement (``group_by`` in the mapping).

Exports often have one row per attendee (or per phone number): the rows that share the group key
(one or more columns, compared ignoring case and spaces) become one engagement, wherever they are
in the file. Within a group:

* lists (``engagementUsers``, ``account.addresses``, ``phoneNumbers``, ...) collect every distinct
  entry of every row, in row order;
* a scalar field that differs between rows follows ``conflicts``: ``error`` (default: the group is
  invalid, naming both rows and values), ``first`` or ``last``;
* a row with a row error makes the whole group invalid (the message names the row);
* every input row of the group gets the group's final status in the report.

Memory stays bounded on any file size: pass 1 writes each mapped row to a temporary SQLite file
(on disk, deleted after the run); pass 2 reads it back group by group, in the order of each
group's first row, and merges.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from typing import Any

from .errors import RowError
from .mapping import MappedRecord

MemberRow = tuple[str, str | None, int]  # file, sheet, row number


class GroupRecord(MappedRecord):
    """A merged engagement: the rows it came from are in ``members`` (in row order)."""

    __slots__ = ("key", "members")

    def __init__(self, key: str, members: list[MemberRow], values: dict[str, Any], errors: list[RowError],
                 targets: dict[str, str], external_id: str | None) -> None:  # fmt: skip
        file, sheet, row = members[0]
        super().__init__(file, sheet, row, external_id, values, errors, targets)
        self.key = key
        self.members = members


class _Conflict(Exception):
    def __init__(self, path: str, a: Any, b: Any) -> None:
        super().__init__(path)
        self.path, self.a, self.b = path, a, b


def merge(a: Any, b: Any, policy: str, path: str = "") -> Any:
    """Merge row ``b`` into the group so far ``a``: dicts key by key, lists by distinct entries."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(a[k], v, policy, f"{path}.{k}" if path else k) if k in a else v
        return out
    if isinstance(a, list) and isinstance(b, list):
        seen = [json.dumps(x, sort_keys=True) for x in a]
        out_list = list(a)
        for item in b:
            key = json.dumps(item, sort_keys=True)
            if key not in seen:
                seen.append(key)
                out_list.append(item)
        return out_list
    if a == b:
        return a
    if policy == "first":
        return a
    if policy == "last":
        return b
    raise _Conflict(path, a, b)


def group_records(
    records: Iterator[MappedRecord], key_columns: list[str], policy: str
) -> Iterator[MappedRecord]:
    """Yield one GroupRecord per group (skipped rows pass through as they are, first)."""
    fd, path = tempfile.mkstemp(prefix="bulk_sync-groups-", suffix=".sqlite3")
    os.close(fd)
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE r (g TEXT, seq INTEGER, file TEXT, sheet TEXT, row INTEGER, v TEXT, e TEXT)")
        db.execute("CREATE TABLE g (g TEXT PRIMARY KEY, first INTEGER)")
        targets: dict[str, str] = {}
        batch: list[tuple[Any, ...]] = []
        for seq, rec in enumerate(records):
            if rec.skip is not None or type(rec) is not MappedRecord:
                yield rec  # skipped rows and footers are not part of any group
                continue
            targets = rec.targets
            key = _key(rec, key_columns)
            errors = [[e.slug, e.message, e.column] for e in rec.errors]
            batch.append(
                (key, seq, rec.file, rec.sheet, rec.row_number, json.dumps(rec.values), json.dumps(errors))
            )
            if len(batch) >= 5000:
                _flush(db, batch)
                batch = []
        _flush(db, batch)
        db.execute("CREATE INDEX r_g ON r (g, seq)")
        rows = db.execute(
            "SELECT r.g, r.file, r.sheet, r.row, r.v, r.e FROM r JOIN g ON g.g = r.g ORDER BY g.first, r.seq"
        )
        current: str | None = None
        parts: list[tuple[MemberRow, dict[str, Any], list[list[Any]]]] = []
        for g, file, sheet, row, v, e in rows:
            if g != current and current is not None:
                yield _build(current, parts, policy, targets)
                parts = []
            current = g
            parts.append(((file, sheet, row), json.loads(v), json.loads(e)))
        if current is not None:
            yield _build(current, parts, policy, targets)
    finally:
        db.close()
        os.unlink(path)


def _flush(db: sqlite3.Connection, batch: list[tuple[Any, ...]]) -> None:
    if batch:
        db.executemany("INSERT INTO r VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
        db.executemany("INSERT OR IGNORE INTO g VALUES (?, ?)", [(b[0], b[1]) for b in batch])


def _key(rec: MappedRecord, key_columns: list[str]) -> str:
    cells = rec.group_cells or ()
    if not any(c.strip() for c in cells):  # no key: the row is a group of its own
        return f"\x00{rec.file}\x00{rec.sheet}\x00{rec.row_number}"
    return "\x1f".join(" ".join(c.split()).casefold() for c in cells)


def _build(
    key: str,
    parts: list[tuple[MemberRow, dict[str, Any], list[list[Any]]]],
    policy: str,
    targets: dict[str, str],
) -> GroupRecord:
    members = [m for m, _, _ in parts]
    errors: list[RowError] = []
    for (_, _, row), _, errs in parts:
        for slug, message, column in errs:
            errors.append(RowError(slug, f"row {row}: {message}" if len(parts) > 1 else message, column))
    values: dict[str, Any] = {}
    if not errors:
        merged: Any = parts[0][1]
        for (_, _, row), v, _ in parts[1:]:
            try:
                merged = merge(merged, v, policy)
            except _Conflict as c:
                errors.append(
                    RowError(
                        "group-conflict",
                        f"{c.path} differs inside the group: {c.a!r} (an earlier row) vs {c.b!r} "
                        f"(row {row}); make the rows agree, or set `conflicts: first` or `last`",
                        targets.get(c.path),
                    )
                )
                break
        values = merged if not errors else {}
    ext = (values or parts[0][1]).get("externalId")
    return GroupRecord(key, members, values, errors, targets, ext if isinstance(ext, str) else None)
