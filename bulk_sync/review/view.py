"""Review, view: what one page of a run's grid shows: the rows (as edited, when they were) of the
filter chosen (error type, column), a page of them, and the columns in the order a person needs
them (the columns with problems first, most problems first; the rest as in the file).

A cell is shown as text, in a cell a person can focus (Tab, a click): the page's script puts an
input in it then (a page of 100 rows holds 4,000 cells or more: as inputs, a browser takes twice
as long to show them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from .bulk import columns_with_problems, matching
from .runs import Grid
from .store import Store

PAGE_ROWS = 100
# a grid's columns with problems and its error types, worked out once (a grid is read once)
_SEEN: dict[int, tuple[list[dict[str, str]], list[tuple[str, int]], list[str]]] = {}


@dataclass
class View:
    """One page of the grid, filtered."""

    rows: list[dict[str, Any]]
    page: int  # 0-based
    pages: int
    total: int  # rows in the filter
    order: list[tuple[int, str]]  # (index in the file's columns, name), in the order shown
    error: str = ""
    column: str = ""
    errors: list[str] = field(default_factory=list)  # error types present
    columns: list[tuple[str, int]] = field(default_factory=list)  # columns with problems
    cells: list[tuple[int, str, Markup]] = field(default_factory=list)  # each with its cell's start tag


def view(grid: Grid, store: Store, page: int, error: str = "", column: str = "") -> View:
    chosen = matching(grid, error or None, column or None)
    pages = max(1, -(-len(chosen) // PAGE_ROWS))
    page = min(pages - 1, max(0, page))
    shown = chosen[page * PAGE_ROWS : (page + 1) * PAGE_ROWS]
    if shown:
        grid.wait(shown[-1] + 1)  # (a grid still being read: its rows up to the last one shown)
    edits = store.rows(shown[0], shown[-1] + 1) if shown else {}
    bad_columns, errors = _seen(grid)
    first = [grid.headers.index(c) for c, _ in bad_columns if c in grid.headers]
    order = [(i, grid.headers[i]) for i in first + [i for i in range(len(grid.headers)) if i not in first]]
    rows = []
    for i in shown:
        edit = edits.get(i)
        problem = grid.problems[i]
        status = edit.status if edit else problem.get("status", "")
        bad = {c.strip() for c in problem.get("column", "").split(";")} if status != "valid" else set()
        rows.append(
            {
                "index": i,
                "cells": edit.cells if edit else grid.rows[i],
                "bad": bad,
                "problem": problem,
                "status": status,
                "skip": bool(edit and edit.skip),
                "version": edit.version if edit else 0,
                "sent_in": edit.sent_in if edit else None,
            }
        )
    cells = [(i, h, Markup('<td data-col="{}" data-i="{}"').format(h, i)) for i, h in order]
    return View(rows, page, pages, len(chosen), order, error, column, errors, bad_columns, cells)


def _seen(grid: Grid) -> tuple[list[tuple[str, int]], list[str]]:
    found = _SEEN.get(id(grid.problems))
    if found is None or found[0] is not grid.problems:
        if len(_SEEN) > 16:
            _SEEN.clear()
        errors = sorted({p.get("error", "") for p in grid.problems} - {""})
        found = _SEEN[id(grid.problems)] = (grid.problems, columns_with_problems(grid), errors)
    return found[1], found[2]
