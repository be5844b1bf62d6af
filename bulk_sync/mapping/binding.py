"""Map stage, binding: a spec bound to a file's headers (BoundMapping): which column feeds which field,
and the payload's shape compiled once into a builder of nested dicts.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import rx
from ..errors import RowError, SourceError
from ..load import Chunk
from .columns import DatetimeMemo
from .spec import APPEND, OMIT, MappingSpec, list_order, loose_name, path_text


@dataclass
class Memos:
    """What the stages learn about one bound mapping as they apply it, kept with it for the next
    chunk (not part of its value: a mapping with other memos is the same mapping)."""

    datetimes: dict[str, DatetimeMemo] = field(default_factory=dict)  # a field's texts, by its target
    share: int = 1  # the share of the date-time memos' budget this process has (share_memos)
    fingerprint_key: bytes | None = None  # the key of the rows' fingerprints (mapping.fingerprints)
    # the payload stage's: each row shape's body as literal texts and field indices
    templates: dict[tuple[bool, ...], list[str | int]] = field(default_factory=dict)


@dataclass(frozen=True)
class BoundMapping:
    """A spec whose column names are resolved to one file's actual headers."""

    spec: MappingSpec
    columns: dict[str, str]  # spec column -> header in the file
    plan: _Plan
    memos: Memos = field(default_factory=Memos, compare=False, repr=False)
    absent: frozenset[str] = frozenset()  # `optional` columns this file does not have (read as empty)
    warnings: tuple[str, ...] = ()  # what binding noticed (an optional column missing)

    def complete(self, chunk: Chunk) -> Chunk:
        """``chunk`` with an empty column for each absent optional one (the fields read blank)."""
        if not self.absent:
            return chunk
        frame = chunk.frame.assign(**{c: "" for c in self.absent if c not in chunk.frame.columns})
        return dataclasses.replace(chunk, frame=frame)


def bind(spec: MappingSpec, headers: Sequence[str], label: str) -> BoundMapping:
    """Resolve mapped columns against ``headers`` (exact, then case/space-insensitive).

    Raises SourceError naming every missing column and listing the headers the file has.
    """
    exact = set(headers)
    loose = {loose_name(h): h for h in headers}
    resolved: dict[str, str] = {}
    missing: list[str] = []
    absent: list[str] = []
    optional = spec.optional_columns
    for col in spec.columns:
        if col in exact:
            resolved[col] = col
        elif loose_name(col) in loose:
            resolved[col] = loose[loose_name(col)]
        elif col in optional:
            resolved[col] = col  # read as an empty column
            absent.append(col)
        else:
            missing.append(col)
    if missing:
        raise SourceError(label, _not_found(spec, missing, headers, set(resolved.values())))
    warnings = tuple(
        f"column {col!r} is not in the file: it is optional, so "
        f"{', '.join(f.target for f in spec.fields if f.column == col)} is left out of every row"
        for col in absent
    )
    return BoundMapping(spec, resolved, _compile(spec, resolved), absent=frozenset(absent), warnings=warnings)


SHOWN_UNREAD = 10


def _not_found(spec: MappingSpec, missing: list[str], headers: Sequence[str], read: set[str]) -> str:
    """The columns the mapping names that the file lacks. A renamed column is one of the file's
    columns the mapping does not read (its new ones), so a suggestion is ranked among those by its
    likeness to the name the mapping used: never a column the mapping already reads. Long lists are
    cut short; when most of the mapping is missing, a hint on a line of its own says what is more
    likely wrong (the delimiter, or the mapping)."""
    unread = [h for h in headers if h not in read]
    parts = []
    for col in missing:
        close = _closest(col, unread)
        parts.append(f"{col!r}" + (f" (did you mean {close!r}?)" if close else ""))
    noun = "column" if len(missing) == 1 else "columns"
    out = f"{noun} {_first(parts)} from mapping {spec.path} not found"
    if unread:
        out += "; the file's columns the mapping does not read (new or renamed ones are here): "
        out += _first([_shown(h) for h in unread])
    if len(unread) < len(headers):
        out += f"; the file has {len(headers):,} column{'s' if len(headers) != 1 else ''}: "
        out += _first([_shown(h) for h in headers])
    return out + _hint(spec, missing, headers)


def _shown(header: str, width: int = 40) -> str:
    """A header as a message quotes it: a long one (a data line read as the header) cut short."""
    return repr(header) if len(header) <= width else repr(header[:width]) + "…"


def _first(items: list[str]) -> str:
    """The first SHOWN_UNREAD items, joined, and how many more there are."""
    more = f" and {len(items) - SHOWN_UNREAD:,} more" if len(items) > SHOWN_UNREAD else ""
    return ", ".join(items[:SHOWN_UNREAD]) + more


def _hint(spec: MappingSpec, missing: list[str], headers: Sequence[str]) -> str:
    """When most of what the mapping reads is missing, the likelier cause, on a line of its own."""
    wanted = len({f.column for f in spec.fields if f.column})
    if len(missing) < 3 or len(missing) * 2 < wanted:
        return ""
    inside = [d for d in (",", ";", "\t", "|") if any(d in h for h in headers)]
    if len(headers) <= 2 and inside:
        name = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}[inside[0]]
        flag = "'\\t'" if inside[0] == "\t" else repr(inside[0])
        return (
            f"\nhint: the header reads as {len(headers)} column(s) holding {name}s: the file's delimiter "
            f"is probably the {name} (pass --delimiter {flag})"
        )
    return (
        f"\nhint: {len(missing)} of the {wanted} columns the mapping reads are missing: is it the mapping "
        "for this export? (`bulk-sync init-mapping FILE` writes a starter mapping from the file's headers)"
    )


def _closest(name: str, candidates: list[str]) -> str | None:
    """The candidate most like ``name`` (case-insensitive; one name inside the other counts as
    close: ``Start Date/Time`` and ``Start``), or None when none is close enough."""
    low = name.casefold()

    def likeness(h: str) -> float:
        other = h.casefold()
        ratio = difflib.SequenceMatcher(None, low, other).ratio()
        inside = bool(other) and (other in low or low in other)
        return max(ratio, 0.75) if inside else ratio

    best = max(candidates, key=likeness, default=None)
    return best if best is not None and likeness(best) >= 0.6 else None


def template_cells(template: str, columns: dict[str, str], frame: pd.DataFrame) -> list[str]:
    """'{First} {Last}' for every row; "" when every cell it names is empty (so blanks stay blank)."""
    parts = re.split(r"(\{[^{}]+\})", template)
    pieces: list[list[str] | str] = []
    named: list[list[str]] = []
    for part in parts:
        if part.startswith("{") and part.endswith("}"):
            col = frame[columns[part[1:-1]]].tolist()
            pieces.append(col)
            named.append(col)
        elif part:
            pieces.append(part)
    out = []
    for i in range(len(frame)):
        if not any(c[i].strip() for c in named):
            out.append("")
            continue
        out.append(" ".join("".join(p if isinstance(p, str) else p[i].strip() for p in pieces).split()))
    return out


def fill_paths(
    values: dict[str, Any], fills: tuple[tuple[tuple[str | int, ...], tuple[str, ...]], ...]
) -> None:
    for prefix, parts in fills:
        node: Any = values
        for tok in prefix[:-1]:
            node = node.get(tok) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, list):
            for item in node:
                if isinstance(item, dict):
                    for part in parts:
                        item.setdefault(part, "")


def skip_reasons(bound: BoundMapping, frame: pd.DataFrame) -> list[str | None]:
    out: list[str | None] = [None] * len(frame)
    for k, rule in enumerate(bound.spec.skip):
        cells = frame[bound.columns[rule.column]].tolist()
        why = f"skipped by rule {k + 1} of the mapping: {rule.describe()}"
        if rule.equals is not None:
            wanted = {loose_name(v) for v in ([rule.equals] if isinstance(rule.equals, str) else rule.equals)}
            hit = [loose_name(c) in wanted for c in cells]
        elif rule.matches is not None:
            pattern = rx.compile_pattern(rule.matches)
            hit = [pattern.search(c) is not None for c in cells]
        else:
            hit = [(not c.strip()) == bool(rule.blank) for c in cells]
        for i, h in enumerate(hit):
            if h and out[i] is None:
                out[i] = why
    return out


class _Node:
    """The compiled shape of the payload: how to build one row's nested values from the columns."""

    __slots__ = ("children", "column", "header", "kind", "many")

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "obj" | "list" | "leaf"
        self.children: list[tuple[Any, _Node]] = []
        self.column = -1  # for leaves: index into the converted columns
        self.header: str | None = None
        self.many = False  # a `split` leaf: its value is a tuple of list entries

    def build(self, cols: list[list[Any]], i: int) -> Any:
        if self.kind == "leaf":
            v = cols[self.column][i]
            return OMIT if type(v) is RowError else v
        if self.kind == "obj":
            d = {}
            for key, child in self.children:
                v = child.build(cols, i)
                if v is not OMIT:
                    d[key] = v
            return d or OMIT
        items: list[Any] = []
        for _, child in self.children:
            v = child.build(cols, i)
            if v is not OMIT:
                items.extend(v) if child.many else items.append(v)
        return items or OMIT

    def sources(self, cols: list[list[Any]], i: int, path: tuple[Any, ...], out: dict[str, str]) -> None:
        if self.kind == "leaf":
            if self.header is not None and cols[self.column][i] is not OMIT:
                out[path_text(path)] = self.header
            return
        if self.kind == "obj":
            for key, child in self.children:
                child.sources(cols, i, (*path, key), out)
            return
        pos = 0  # list positions after empty entries are dropped
        for _, child in self.children:
            v = child.build(cols, i)
            if v is not OMIT:
                for _entry in v if child.many else (v,):
                    child.sources(cols, i, (*path, pos), out)
                    pos += 1


@dataclass(frozen=True)
class _Plan:
    root: _Node
    targets: dict[str, str]
    build_all: Callable[[list[list[Any]], int], list[dict[str, Any]]]
    # does a leaf split its cell into list entries? Then rows that fill the same fields can still
    # differ in their list positions; else which fields a row fills settles its sources
    splits: bool = False


def _generate(root: _Node, n_columns: int) -> Callable[[list[list[Any]], int], list[dict[str, Any]]]:
    """Write the row builder as straight-line Python (no per-leaf calls or loops), then compile it.

    The tree is the mapping's fixed shape, so this is the same walk as :meth:`_Node.build`, unrolled;
    a test checks that both give the same rows. Only names we made appear in the code.
    """
    lines = [
        "def build_all(cols, n):",
        f"    {', '.join(f'c{k}' for k in range(n_columns))}{',' if n_columns == 1 else ''} = cols",
        "    out = []",
        "    for i in range(n):",
    ]
    counter = iter(range(1_000_000))

    def emit(node: _Node, indent: str) -> str:
        """Emit code that leaves the node's value (or OMIT) in a fresh variable; return its name."""
        var = f"x{next(counter)}"
        if node.kind == "leaf":
            lines.append(f"{indent}{var} = c{node.column}[i]")
            return var
        lines.append(f"{indent}{var} = {{}}" if node.kind == "obj" else f"{indent}{var} = []")
        for key, child in node.children:
            cv = emit(child, indent)
            test = f"{cv} is not OMIT" if child.kind == "leaf" else cv
            add = "extend" if child.many else "append"
            put = f"{var}[{key!r}] = {cv}" if node.kind == "obj" else f"{var}.{add}({cv})"
            lines.append(f"{indent}if {test}: {put}")
        return var

    top = emit(root, "        ")
    lines.append(f"        out.append({top})")
    lines.append("    return out")
    namespace: dict[str, Any] = {"OMIT": OMIT}
    exec(compile("\n".join(lines), "<bulk_sync mapping>", "exec"), namespace)
    return namespace["build_all"]  # type: ignore[no-any-return]


def _compile(spec: MappingSpec, columns: dict[str, str]) -> _Plan:
    """Arrange the fields into the payload's tree once per file, so each row is one walk."""
    root = _Node("obj")
    for idx, f in enumerate(spec.fields):
        node = root
        toks = f.tokens
        for j, tok in enumerate(toks):
            want = "leaf" if j == len(toks) - 1 else ("list" if isinstance(toks[j + 1], int) else "obj")
            key = ("append", idx) if tok == APPEND else tok
            child = next((c for k, c in node.children if k == key), None)
            if child is None:
                child = _Node(want)
                node.children.append((key, child))
                if node.kind == "list":  # explicit positions first, in order; then appends, in field order
                    node.children.sort(key=lambda kc: list_order(kc[0]))
            node = child
        node.column = idx
        node.many = f.spec.split is not None
        if f.column is not None:
            node.header = columns[f.column]
        elif f.spec.template is not None:
            node.header = ", ".join(columns[c] for c in f.spec.template_columns)
    targets = {f.target: columns[f.column] for f in spec.fields if f.column is not None}
    targets.update(
        {
            f.target: ", ".join(columns[c] for c in f.spec.template_columns)
            for f in spec.fields
            if f.spec.template
        }
    )
    return _Plan(root, targets, _generate(root, len(spec.fields)), _splits(root))


def _splits(node: _Node) -> bool:
    return node.many or any(_splits(child) for _, child in node.children)
