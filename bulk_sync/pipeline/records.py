"""Pipeline, records: the rows of a plan one by one, as MappedRecords (merged by `group_by`), for the
paths that need a record per row (grouping, --show, the docs' samples).
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import mapping
from ..group import group_records
from ..mapping import MappedRecord
from .plan import Plan
from .results import Skipped


def mapped_records(plan: Plan, limit: int | None) -> Iterator[MappedRecord]:
    rows = _rows(plan, limit)
    if plan.spec.group_by:
        return group_records(rows, list(plan.spec.group_by), plan.spec.conflicts)
    return rows


def _rows(plan: Plan, limit: int | None) -> Iterator[MappedRecord]:
    n = 0
    for src, bound in plan.jobs:
        only = None if plan.only_rows is None else plan.only_rows.get((str(src.path), src.sheet), frozenset())
        for chunk in src.chunks():
            recs: list[MappedRecord] = mapping.apply(bound, chunk) if len(chunk) else []
            recs += [Skipped(chunk.file, chunk.sheet, num, "footer", why) for num, why in chunk.skipped]
            for rec in recs:
                if only is not None and rec.row_number not in only:
                    continue
                if limit is not None and n >= limit:
                    return
                n += 1
                yield rec
