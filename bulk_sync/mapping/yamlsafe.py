"""Map stage, yamlsafe: a mapping file's YAML composed safely (no tags beyond the standard ones,
alias expansion bounded, so a "billion laughs" file is refused, not expanded), and the `TODO`s a
starter mapping leaves, each with its line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from ..errors import MappingError


def compose(text: str, name: str) -> yaml.Node:
    """The YAML node tree, refused when it is not YAML, is empty or is unsafe (tags, alias bombs)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
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
            total = 1 + sum(size(k) + size(v) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in n.value)
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
            out += todo_lines(v, (*path, k.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out += todo_lines(v, (*path, i))
    return out


def loc_text(loc: Sequence[Any]) -> str:
    """A place in the file as the person reads it: fields.startTime.datetime."""
    return ".".join(str(p) for p in loc) if loc else "(top level)"
