"""Payload stage, check: a chunk's rows -> valid bodies or row errors: rows grouped by shape, pydantic
validates one row per shape, the rest are checked by their cells' states.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import repeat
from operator import is_not, itemgetter
from typing import Any

import numpy as np

from ..errors import RowError
from ..mapping import OMIT, MappedChunk, TargetKind
from .build import Payload, build
from .encode import fragments, shape_template

# What a field holds for one row, as the shape check sees it.
_ABSENT, _NULL, _GOOD, _ODD = 0, 1, 2, 3  # nothing sent; null; a value of the right type; anything else


class CheckedChunk:
    """Which rows of a :class:`~bulk_sync.mapping.MappedChunk` are valid payloads, decided without
    validating every row.

    Once the mapping has converted a column, each of its values is either absent, null, or of the
    type its target wants (text, an enum member, a finite number, a boolean): a field's validity
    then depends only on *which* fields a row fills. So rows are grouped by that pattern (their
    shape), pydantic validates one row of each shape, and its verdict holds for every row of the
    shape. Anything else (a value of another type, a row with cell errors or extra cells, a skip
    rule) goes through :func:`build` one row at a time. A property test checks that both ways give
    the same verdicts and the same bytes.

    Valid rows are encoded to JSON from the columns, without building dicts or models: the rows
    of one shape share a template (fields in the model's order, as pydantic writes them), and each
    body is one join of the template's texts and the row's values (:meth:`bodies`).
    """

    __slots__ = ("_frags", "_ids", "_slow", "mc", "ok", "shape")

    def __init__(self, mc: MappedChunk) -> None:
        self.mc = mc
        self._slow: dict[int, Payload | list[RowError]] = {}
        self._frags: list[list[str | None]] | None = None
        self._ids: list[str] | None = None
        n = mc.n
        if n == 0:
            self.ok: list[bool] = []
            self.shape: list[int] = []
            return
        fields = mc.bound.spec.fields
        states = np.empty((n, len(fields)), dtype=np.uint8)
        for k, (f, col) in enumerate(zip(fields, mc.cols, strict=True)):
            if f.text_only and f.kind.kind == "string" and f.kind.pattern is None:  # text or nothing
                states[:, k] = np.frombuffer(bytes(map(is_not, col, repeat(OMIT))), dtype=np.uint8) * _GOOD
            else:
                states[:, k] = np.frombuffer(bytes(_states(col, f.kind)), dtype=np.uint8)
        unclean = np.zeros(n, dtype=bool)
        for c in mc.error_cols:
            unclean |= np.fromiter((type(v) is RowError for v in c), dtype=bool, count=n)
        if mc.problems:
            unclean |= np.fromiter((num in mc.problems for num in mc.row_numbers), dtype=bool, count=n)
        if mc.skips is not None:
            unclean |= np.fromiter((s is not None for s in mc.skips), dtype=bool, count=n)
        keys = np.ascontiguousarray(states).view(np.dtype((np.void, max(1, len(fields))))).ravel()
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        verdict = np.zeros(len(uniq), dtype=bool)
        for s, row in enumerate(first.tolist()):
            if (states[row] == _ODD).any():
                continue  # a value of an unexpected type: every such row is checked on its own
            i = _first_clean(inverse, s, unclean, row)
            if i is None:
                continue
            built = build(mc.record(i), mc.bound.spec.resource)
            self._slow[i] = built
            verdict[s] = isinstance(built, Payload)
        self.shape = inverse.tolist()
        self.ok = (verdict[inverse] & ~unclean).tolist()

    def result(self, i: int) -> Payload | list[RowError]:
        """Row ``i`` as a payload or its errors (the one-row path for rows not ``ok``)."""
        if i in self._slow:
            return self._slow[i]
        if self.ok[i]:
            return self.payload(i)
        return build(self.mc.record(i), self.mc.bound.spec.resource)

    def payload(self, i: int) -> Payload:
        """The payload of an ``ok`` row, encoded straight from the columns."""
        return Payload(self._ids_col()[i], None, self.bodies([i])[0])

    def bodies(self, rows: list[int]) -> list[bytes]:
        """The JSON bodies of ``ok`` rows ``rows`` (ascending, each once), encoded from the
        columns a shape at a time.

        Rows that fill the same fields share one template (the literal text between values: keys,
        braces, commas, the "" of empty address parts), so a body is one ``str.join`` of the
        template's pieces and the row's value fragments.
        """
        if self._frags is None:
            fields = self.mc.bound.spec.fields
            self._frags = [fragments(col, f.kind) for f, col in zip(fields, self.mc.cols, strict=True)]
        frags = self._frags
        groups: dict[int, list[int]] = {}
        shape = self.shape
        for k, i in enumerate(rows):
            groups.setdefault(shape[i], []).append(k)
        out: list[bytes] = [b""] * len(rows)
        for where in groups.values():
            picked = [rows[k] for k in where]
            # every row of the chunk (the common case): the columns as they are
            take = None if len(picked) == len(frags[0]) else itemgetter(*picked)
            pieces: list[Iterable[Any]] = []
            for part in shape_template(self.mc, tuple(f[picked[0]] is not None for f in frags)):
                if isinstance(part, str):
                    pieces.append(repeat(part))
                elif take is None:
                    pieces.append(frags[part])
                elif len(picked) == 1:
                    pieces.append((frags[part][picked[0]],))
                else:
                    pieces.append(take(frags[part]))
            for k, text in zip(where, map("".join, zip(*pieces, strict=False)), strict=False):
                out[k] = text.encode()
        return out

    def _ids_col(self) -> list[str]:
        if self._ids is None:
            self._ids = self.mc.column("externalId") or []
        return self._ids


def check_chunk(mc: MappedChunk) -> CheckedChunk:
    return CheckedChunk(mc)


def _first_clean(inverse: Any, shape: int, unclean: Any, row: int) -> int | None:
    if not unclean[row]:
        return row
    rows = np.flatnonzero((inverse == shape) & ~unclean)
    return int(rows[0]) if len(rows) else None


def _states(col: list[Any], kind: TargetKind) -> list[int]:
    """Each value's state for the shape of its row: absent, null, good, or odd (checked alone)."""
    if kind.kind == "people":  # engagement users made from one cell: a tuple of plain dicts
        return [_ABSENT if v is OMIT else _GOOD if type(v) is tuple else _ODD for v in col]
    if kind.kind == "string" and kind.pattern is None:
        return _text_states(col)
    if kind.kind == "enum":
        choices = frozenset(kind.choices)
        return [
            _ABSENT if v is OMIT else _NULL if v is None else _GOOD if v in choices else _ODD for v in col
        ]
    if kind.kind == "number":
        return _number_states(col)
    if kind.kind == "boolean":
        return [
            _ABSENT if v is OMIT else _GOOD if type(v) is bool else _NULL if v is None else _ODD for v in col
        ]
    assert kind.pattern is not None
    return _pattern_states(col, re.compile(kind.pattern))


def _text_states(col: list[Any]) -> list[int]:
    o = OMIT
    return [_ABSENT if v is o else _GOOD if type(v) is str else _NULL if v is None else _many(v) for v in col]


def _number_states(col: list[Any]) -> list[int]:
    o = OMIT
    return [
        _ABSENT if v is o else _GOOD if type(v) is float or type(v) is int else _NULL if v is None else _ODD
        for v in col
    ]


def _pattern_states(col: list[Any], rx: re.Pattern[str]) -> list[int]:
    o = OMIT
    return [
        _ABSENT if v is o else _NULL if v is None else _GOOD if type(v) is str and rx.fullmatch(v) else _ODD
        for v in col
    ]


def _many(v: Any) -> int:
    """A `split` cell: a tuple of texts."""
    return _GOOD if type(v) is tuple and all(type(e) is str for e in v) else _ODD
