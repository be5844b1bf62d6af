"""Pipeline, superseded: the id pass before the run: the externalIds of every file read a column at a
time (hashed), so a row that a later row of the same externalId supersedes is known before it is
sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import mapping
from ..notes import Place
from .halves import read_in_halves
from .idtable import IdTable, add_ids
from .memory import give_back
from .plan import Plan


def scan_columns(
    plan: Plan,
    *,
    limit: int | None = None,
    helper: bool = False,
    stopping: Callable[[], bool] = lambda: False,
) -> Plan:
    """Part of preparing: one pass over the columns that must be known before anything is sent.

    * the ids: rows whose externalId appears again later in the run (the last row of an id wins;
      not with `group_by`, where the rows of an id are merged, nor with ``limit``);
    * the number columns whose decimal mark the mapping leaves open: each is settled from its cells
      (:class:`~bulk_sync.mapping.NumberEvidence`; with ``limit``, from the rows that are read).

    ``helper``: a large CSV may be read in two halves at once, one by a forked helper process
    (:mod:`~bulk_sync.pipeline.halves`; the result is the same). ``stopping``: asked before each
    chunk; True ends the pass there (the run is stopping: no row will be sent, none superseded).

    Raises SourceError (nothing sent) when a file breaks in this pass.
    """
    supersede = not plan.spec.group_by and limit is None
    evidence = [mapping.NumberEvidence(bound) for _, bound in plan.jobs]
    if not supersede and not any(e.fields for e in evidence):
        return plan
    splits: dict[int, tuple[int, int]] = {}
    superseded = _column_pass(plan, evidence, supersede, limit, helper, splits, stopping)
    if stopping():
        return plan
    give_back()  # what the pass freed, before the run reads the files again
    jobs = tuple((src, e.settled()) for (src, _), e in zip(plan.jobs, evidence, strict=True))
    return dataclasses.replace(
        plan, jobs=jobs, superseded=superseded if supersede else plan.superseded, splits=splits
    )


def _column_pass(
    plan: Plan,
    evidence: list[mapping.NumberEvidence],
    supersede: bool,
    limit: int | None,
    helper: bool,
    splits: dict[int, tuple[int, int]],
    stopping: Callable[[], bool],
) -> dict[Place, Place]:
    """Read the id and number columns of every file once; feed the number evidence; return the rows
    whose externalId appears again later in the run (-> where the later row is), when asked.

    Ids are kept as 128-bit digests in numpy arrays (32 bytes a row with where it is, not a dict of
    strings), in memory up to SPILL_BYTES and past that in parts on disk (:class:`IdTable`); each
    part is sorted on its own: the last row of an id wins.

    Reading only some columns cannot tell where a sheet's data ends (a report footer, a totals row
    and what is below it, the mapping's ``stop_at``). So when a file has repeated ids, it is read
    once more in full and the rows that are not records are left out: they never supersede one.
    """
    table = IdTable()
    try:
        return _superseded(plan, evidence, supersede, limit, helper, table, splits, stopping)
    finally:
        table.close()


def _superseded(
    plan: Plan,
    evidence: list[mapping.NumberEvidence],
    supersede: bool,
    limit: int | None,
    helper: bool,
    table: IdTable,
    splits: dict[int, tuple[int, int]],
    stopping: Callable[[], bool],
) -> dict[Place, Place]:
    """(see _column_pass) ``splits``: each file read in two halves -> where the second starts."""
    sources = [(str(src.path), src.sheet) for src, _ in plan.jobs]
    seen = 0
    for j, (src, bound) in enumerate(plan.jobs):
        only = None if plan.only_rows is None else plan.only_rows.get(sources[j], frozenset())
        numbers_of = evidence[j]
        if not supersede and not numbers_of.settling:
            continue
        columns = list(dict.fromkeys((mapping.id_columns(bound) if supersede else []) + numbers_of.columns))
        halves = helper and supersede and only is None and limit is None
        if halves and (split := read_in_halves(src, bound, columns, numbers_of, j, table, stopping)):
            splits[j] = split
            continue
        for chunk in src.chunks(columns=columns):
            if stopping():
                return {}
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
            if supersede:
                add_ids(table, bound, chunk, only, j)
    return _later(plan, table, sources)


def _later(plan: Plan, table: IdTable, sources: list[tuple[str, str | None]]) -> dict[Place, Place]:
    """Every row whose id comes again later -> where the later row is; rows that are not records (a
    report footer) never supersede one, so the files whose ids repeat are read in full for them."""
    out = _winners(table, sources, {})
    if not out:
        return {}
    involved = {sources.index(w[:2]) for w in out.values()}  # files whose ids repeat: read in full
    footers = {j: {n for chunk in plan.jobs[j][0].chunks() for n, _ in chunk.skipped} for j in involved}
    footers = {j: rows for j, rows in footers.items() if rows}
    if footers:
        out = _winners(table, sources, footers)
    return out


def _winners(
    table: IdTable, sources: list[tuple[str, str | None]], footers: dict[int, set[int]]
) -> dict[Place, Place]:
    """Every row whose id comes again later -> the later row, leaving out ``footers`` (file ->
    row numbers that are not records). An id's rows are all in one part, in the order read."""
    out = {}
    for part in table.parts():
        if footers:
            drop = np.zeros(len(part), dtype=bool)
            for j, rows in footers.items():
                drop |= (part[:, 3] == j) & np.isin(part[:, 2], np.fromiter(rows, dtype=np.uint64))
            part = part[~drop]
        out.update(_later_rows(part, sources))
    return out


def _later_rows(table: Any, sources: list[tuple[str, str | None]]) -> dict[Place, Place]:
    """Each row whose id comes again later -> the last row with that id (the one that is sent)."""
    keys, rows, jobs = table[:, :2], table[:, 2], table[:, 3]

    def places(i: int) -> Place:
        return (*sources[int(jobs[i])], int(rows[i]))

    if len(rows) < 2:
        return {}
    order = np.lexsort((np.arange(len(keys)), keys[:, 1], keys[:, 0]))
    ranked = keys[order]
    same_as_next = (ranked[:-1] == ranked[1:]).all(axis=1)
    if not same_as_next.any():
        return {}
    out: dict[Place, Place] = {}
    winner = int(order[-1])
    for pos in range(len(order) - 2, -1, -1):  # walk back: each run of one id ends with its winner
        if same_as_next[pos]:
            out[places(int(order[pos]))] = places(winner)
        else:
            winner = int(order[pos])
    return out
