"""Pipeline, superseded: the id pass before the run: the externalIds of every file read a column at a
time (hashed), so a row that a later row of the same externalId supersedes is known before it is
sent.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .. import mapping
from .plan import Plan


def scan_columns(plan: Plan, *, limit: int | None = None) -> Plan:
    """Part of preparing: one pass over the columns that must be known before anything is sent.

    * the ids: rows whose externalId appears again later in the run (the last row of an id wins;
      not with `group_by`, where the rows of an id are merged, nor with ``limit``);
    * the number columns whose decimal mark the mapping leaves open: each is settled from its cells
      (:class:`~bulk_sync.mapping.NumberEvidence`; with ``limit``, from the rows that are read).

    Raises SourceError (nothing sent) when a file breaks in this pass.
    """
    supersede = not plan.spec.group_by and limit is None
    evidence = [mapping.NumberEvidence(bound) for _, bound in plan.jobs]
    if not supersede and not any(e.fields for e in evidence):
        return plan
    superseded = _column_pass(plan, evidence, supersede, limit)
    jobs = tuple((src, e.settled()) for (src, _), e in zip(plan.jobs, evidence, strict=True))
    return dataclasses.replace(plan, jobs=jobs, superseded=superseded if supersede else plan.superseded)


def _column_pass(
    plan: Plan, evidence: list[mapping.NumberEvidence], supersede: bool, limit: int | None
) -> dict[tuple[str, str | None, int], str]:
    """Read the id and number columns of every file once; feed the number evidence; return the rows
    whose externalId appears again later in the run (-> where the later row is), when asked.

    Ids are kept as 128-bit digests in numpy arrays (32 bytes a row with where it is, not a dict of
    strings), sorted once at the end: the last row of an id wins.

    Reading only some columns cannot tell where a sheet's data ends (a report footer, a totals row
    and what is below it, the mapping's ``stop_at``). So when a file has repeated ids, it is read
    once more in full and the rows that are not records are left out: they never supersede one.
    """
    parts: list[Any] = []  # per chunk: (n, 4) int arrays of digest hi, digest lo, row, job
    sources: list[tuple[str, str | None]] = []
    seen = 0
    for j, (src, bound) in enumerate(plan.jobs):
        only = None if plan.only_rows is None else plan.only_rows.get((str(src.path), src.sheet), frozenset())
        sources.append((str(src.path), src.sheet))
        numbers_of = evidence[j]
        if not supersede and not numbers_of.settling:
            continue
        columns = (mapping.id_columns(bound) if supersede else []) + numbers_of.columns
        for chunk in src.chunks(columns=list(dict.fromkeys(columns))):
            if limit is not None:
                if seen >= limit:
                    break
                if seen + len(chunk) > limit:
                    chunk = chunk.take(list(range(limit - seen)))
                seen += len(chunk)
            if numbers_of.settling:
                numbers_of.add(chunk)
            elif not supersede:
                break  # every number column is settled, and no id needs reading
            if not supersede:
                continue
            ids, numbers = mapping.external_ids(bound, chunk), chunk.row_numbers
            if only is not None or None in ids:
                kept = [
                    k
                    for k, (n, e) in enumerate(zip(numbers, ids, strict=True))
                    if e is not None and (only is None or n in only)
                ]
                ids, numbers = [ids[k] for k in kept], [numbers[k] for k in kept]
            if ids:
                part = np.empty((len(ids), 4), dtype=np.uint64)
                part[:, :2] = mapping.id_digests(ids)
                part[:, 2] = numbers
                part[:, 3] = j
                parts.append(part)
    if not parts:
        return {}
    table = np.concatenate(parts)
    del parts
    out = _later_rows(table, sources)
    involved = {sources.index(w[:2]) for w in out.values()}  # files whose ids repeat: read in full
    footers = {j: {n for chunk in plan.jobs[j][0].chunks() for n, _ in chunk.skipped} for j in involved}
    footers = {j: rows for j, rows in footers.items() if rows}
    if not footers:
        return {place: _where(place, winner) for place, winner in out.items()}
    drop = np.zeros(len(table), dtype=bool)
    for j, rows in footers.items():
        drop |= (table[:, 3] == j) & np.isin(table[:, 2], np.fromiter(rows, dtype=np.uint64))
    out = _later_rows(table[~drop], sources)
    return {place: _where(place, winner) for place, winner in out.items()}


def _later_rows(
    table: Any, sources: list[tuple[str, str | None]]
) -> dict[tuple[str, str | None, int], tuple[str, str | None, int]]:
    """Each row whose id comes again later -> the last row with that id (the one that is sent)."""
    keys, rows, jobs = table[:, :2], table[:, 2], table[:, 3]

    def places(i: int) -> tuple[str, str | None, int]:
        return (*sources[int(jobs[i])], int(rows[i]))

    if len(rows) < 2:
        return {}
    order = np.lexsort((np.arange(len(keys)), keys[:, 1], keys[:, 0]))
    ranked = keys[order]
    same_as_next = (ranked[:-1] == ranked[1:]).all(axis=1)
    if not same_as_next.any():
        return {}
    out: dict[tuple[str, str | None, int], tuple[str, str | None, int]] = {}
    winner = int(order[-1])
    for pos in range(len(order) - 2, -1, -1):  # walk back: each run of one id ends with its winner
        if same_as_next[pos]:
            out[places(int(order[pos]))] = places(winner)
        else:
            winner = int(order[pos])
    return out


def _where(row: tuple[str, str | None, int], winner: tuple[str, str | None, int]) -> str:
    return (
        f"row {winner[2]}"
        + (f" of {winner[0]}" if winner[0] != row[0] else "")
        + (f" [{winner[1]}]" if winner[1] and winner[1] != row[1] else "")
    )
