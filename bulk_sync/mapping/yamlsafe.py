"""Map stage, yamlsafe: a mapping file's YAML composed safely (no tags beyond the standard ones,
alias expansion bounded, so a "billion laughs" file is refused, not expanded), and the `TODO`s a
starter mapping leaves, each with its line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from ..errors import MappingError

# libyaml's parser (C) when PyYAML was built with it: a `map:` of 100,000 entries composes in a
# fraction of a second instead of ~20 s. It makes the same node tree (aliases stay shared nodes, so
# the checks below count what the file holds, not what it would expand to) with the same marks
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def compose(text: str, name: str) -> yaml.Node:
    """The YAML node tree, refused when it is not YAML, is empty or is unsafe (tags, alias bombs)."""
    try:
        node = yaml.compose(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise MappingError(name, [f"{where}not valid YAML: {getattr(exc, 'problem', exc)}"]) from exc
    if node is None:
        raise MappingError(name, ["the file is empty; it needs `version: 1` and `fields:`"])
    _refuse_unsafe_yaml(node, name)
    return node


_SAFE_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
)


MAX_EXPANDED_NODES = 20_000  # what a mapping file may grow to through its aliases (&anchor / *alias)


def _refuse_unsafe_yaml(node: yaml.Node, name: str) -> None:
    """No tags beyond plain data, and aliases that do not multiply the file ('billion laughs': a few
    lines that expand to billions of nodes). Counted on the composed nodes, where an alias is a
    shared reference, so counting costs what the file holds, not what it expands to."""
    sizes: dict[int, int] = {}
    distinct = 0

    def scalar(n: yaml.Node) -> int:
        """1 for a plain scalar (counted in place: the entries of a long `map:`), else 0."""
        nonlocal distinct
        if type(n) is yaml.ScalarNode and n.tag in _SAFE_TAGS:
            distinct += 1
            return 1
        return 0

    def size(n: yaml.Node) -> int:
        nonlocal distinct
        known = sizes.get(id(n))
        if known is not None:
            return known
        distinct += 1
        sizes[id(n)] = 1  # a node that refers to itself counts once
        if n.tag not in _SAFE_TAGS:
            raise MappingError(
                name,
                [
                    f"line {n.start_mark.line + 1}: the tag {n.tag.replace('tag:yaml.org,2002:', '!!')} is "
                    "not allowed in a mapping file (only plain text, numbers, lists and mappings)"
                ],
            )
        if isinstance(n, yaml.MappingNode):
            total = (
                1
                + sum(scalar(k) or size(k) for k, _ in n.value)
                + sum(scalar(v) or size(v) for _, v in n.value)
            )
        elif isinstance(n, yaml.SequenceNode):
            total = 1 + sum(scalar(v) or size(v) for v in n.value)
        else:
            total = 1
        sizes[id(n)] = min(total, 1 << 62)
        return sizes[id(n)]

    expanded = size(node)
    if expanded > max(MAX_EXPANDED_NODES, 50 * distinct):
        raise MappingError(
            name,
            [
                f"the file expands to {expanded:,} values through its aliases (&anchor / *alias), from "
                f"{distinct:,} written: refused (a mapping needs no such thing; write the fields out)"
            ],
        )


_TODO_HINTS = {
    "timezone": "the IANA time zone the export's times are in, e.g. America/Chicago or Europe/Berlin",
    "format": "the column's date format, e.g. '%m/%d/%Y %H:%M' (its day and month could not be told apart)",
    "column": "the column that holds this field",
}


def todo_lines(node: yaml.Node, path: tuple[Any, ...]) -> list[str]:
    """Every `TODO` a starter mapping left (a value, not a comment), with its line and what to put."""
    out: list[str] = []
    if isinstance(node, yaml.ScalarNode):
        if str(node.value).strip().upper().startswith("TODO"):
            key = str(path[-1]) if path else ""
            if len(path) >= 2 and path[-2] == "map":
                hint = f"SIRO's value for the cell {key!r} (or null to leave the field out)"
            else:
                hint = _TODO_HINTS.get(key, "a decision init-mapping could not make")
            out.append(f"line {node.start_mark.line + 1}: {loc_text(path)}: TODO left: {hint}")
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if type(v) is yaml.ScalarNode and "TODO" not in str(v.value)[:20].upper():
                continue  # most values (a long `map:`): no TODO, no need to go in
            out += todo_lines(v, (*path, k.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out += todo_lines(v, (*path, i))
    return out


def loc_text(loc: Sequence[Any]) -> str:
    """A place in the file as the person reads it: fields.startTime.datetime."""
    return ".".join(str(p) for p in loc) if loc else "(top level)"


_STR = "tag:yaml.org,2002:str"


class _Slow(Exception):
    """The node tree needs PyYAML's own construction (a recursive structure, an unhashable key)."""


def construct(node: yaml.Node) -> Any:
    """The data of a composed (and checked) node tree, as PyYAML's safe constructor makes it: text
    scalars, mappings and lists built in a tight loop (a `map:` of 100,000 entries in a fraction of
    the time), every other scalar (numbers, dates, null) and anything unusual by PyYAML itself."""
    constructor = yaml.SafeLoader("")
    building: set[int] = set()

    def build(n: yaml.Node) -> Any:
        if type(n) is yaml.ScalarNode:
            return n.value if n.tag == _STR else constructor.construct_object(n, deep=True)
        if id(n) in building:
            raise _Slow  # a structure that holds itself
        building.add(id(n))
        try:
            if type(n) is yaml.MappingNode:
                return {build(k): build(v) for k, v in n.value}
            if type(n) is yaml.SequenceNode:
                return [build(v) for v in n.value]
            return constructor.construct_object(n, deep=True)
        finally:
            building.discard(id(n))

    try:
        return build(node)
    except (_Slow, TypeError):  # TypeError: an unhashable key, which PyYAML reports with its line
        return yaml.SafeLoader("").construct_document(node)
