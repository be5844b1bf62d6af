"""Map stage: mapping YAML -> validated spec; ``bind`` it to a file's headers; ``apply`` it to rows.

No I/O besides reading the mapping file itself. The spec is checked completely on load and every
problem is reported at once with its line in the YAML (see :class:`~bulk_sync.errors.MappingError`).
Target paths are checked against a *target catalog* supplied by the caller (the payload stage
derives it from its models), so this module does not depend on the payload models.

Mapping language v1 (documented in mappings/README.md)::

    version: 1
    fields:
      externalId: {column: Appointment ID, required: true}
      subject: Subject                                  # shorthand for {column: Subject}
      startTime: {column: Start, datetime: {format: "%m/%d/%Y %I:%M %p", timezone: America/Chicago}}
      engagementType.activityType: {column: Type, map: {Sales Meeting: MEETING}}
      engagementType.name: {value: Sales appointment}  # a constant
      account.addresses[0].city: City
      account.phoneNumbers[0]: Phone
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import importlib.metadata
import math
import re
import warnings
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from hashlib import blake2b
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import rx
from .errors import MappingError, RowError, SourceError
from .load import Chunk, StopAt

MAP_DEFAULT = "default"  # in a `map`: not a cell value but the value for every cell the map does not list
INVALID = "invalid"  # as a map's default: a cell the map does not list makes the row invalid
_UNLISTED: Any = object()
_SEGMENT = r"[A-Za-z_][A-Za-z0-9_]*(?:\[\d*\])?"
_PATH_RE = re.compile(rf"^{_SEGMENT}(?:\.{_SEGMENT})*$")
_INDEX_RE = re.compile(r"\[\d*\]")
_APPEND = -1  # token for `[]`

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class TargetKind:
    """What a leaf of the payload accepts: ``string``, ``number``, ``boolean`` or ``enum``."""

    kind: str
    nullable: bool = False
    required: bool = False
    choices: tuple[str, ...] = ()
    local_time: bool = False  # startTimeLocalized: wall-clock time without zone
    pattern: str | None = None  # a regex the text must match (the spec's date-time fields)
    bounds: tuple[float, float] | None = None  # numbers: the lowest and highest value that makes sense
    email: bool = False  # the text must be a plausible email address


# --------------------------------------------------------------------------- the YAML schema


class DatetimeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    format: str | list[str] | None = None
    timezone: str | None = None
    timezone_column: str | None = None  # a per-row IANA zone; `timezone` is the fallback for blanks
    ambiguous: Literal["earlier", "later", "error"] = "earlier"  # a fall-back hour happens twice

    @property
    def formats(self) -> list[str]:
        if self.format is None:
            return []
        return [self.format] if isinstance(self.format, str) else list(self.format)


class PadSpec(BaseModel):
    """Pad a text on the left to ``width`` characters with ``with`` (a zip whose leading zero a
    spreadsheet dropped: ``2135`` -> ``02135``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    width: int = Field(ge=1, le=1000)
    with_: str = Field("0", alias="with", min_length=1, max_length=1)


class DurationSpec(BaseModel):
    """The field is another date-time plus the cell's elapsed time: ``endTime`` from a start and a
    duration column (``01:30``, ``1:30:00``, ``90`` in ``unit``, ``1h 30m``, ``PT1H30M``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    from_: str = Field(alias="from")  # the target whose instant the duration is added to
    unit: Literal["seconds", "minutes", "hours"] = "minutes"  # of a cell that is a bare number


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    column: str | None = None
    optional: bool = False  # the column may be missing from a file: the field is then left out
    value: Scalar = None
    template: str | None = None  # "{First} {Last}": several columns into one
    required: bool = False
    map: dict[str, Scalar] | None = None
    default: Scalar = None
    datetime: DatetimeSpec | None = None
    extract: str | None = None  # a regex; its first group (or the whole match) is the value
    first_of: str | None = None  # the first item of a list in the cell: first_of: ";"
    last_of: str | None = None  # the last item of a list in the cell
    parse: Literal["name_email"] | None = None  # "Ann Lee (ann@x.com)", "Ann Lee <ann@x.com>", "ann@x.com"
    lower: bool = False
    pad: PadSpec | None = None  # pad the text on the left: {width: 5, with: "0"}
    duration: DurationSpec | None = None  # another date-time field plus the cell's elapsed time
    split: str | None = None  # for lists of values (`x[]`): one cell -> several entries
    decimal: Literal[".", ","] | None = None  # numbers: the decimal mark; None: settled from the column
    blank: Literal["omit", "null", "empty"] = "omit"  # what an empty cell sends

    @property
    def template_columns(self) -> list[str]:
        return re.findall(r"\{([^{}]+)\}", self.template or "")

    @property
    def map_default(self) -> Any:
        """The map's value for cells it does not list (its ``default`` key); ``_UNLISTED`` when none."""
        if self.map is None or MAP_DEFAULT not in self.map:
            return _UNLISTED
        return self.map[MAP_DEFAULT]

    @property
    def plain(self) -> bool:
        """No transform between the cell's text and the value (the fast ways apply)."""
        return (
            self.extract is None
            and not self.lower
            and self.split is None
            and self.pad is None
            and self.first_of is None
            and self.last_of is None
            and self.parse is None
            and self.duration is None
        )

    @field_validator("column")
    @classmethod
    def _column_not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("column name is blank")
        return v


class SkipRule(BaseModel):
    """Rows that are not records: reported `skipped` with the rule, never sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    column: str
    equals: str | list[str] | None = None  # case- and space-insensitive
    matches: str | None = None  # a regex searched in the cell
    blank: bool | None = None  # true: skip when the cell is empty

    def describe(self) -> str:
        if self.equals is not None:
            vals = [self.equals] if isinstance(self.equals, str) else self.equals
            return f"{self.column} is {' or '.join(repr(v) for v in vals)}"
        if self.matches is not None:
            return f"{self.column} matches {self.matches!r}"
        return f"{self.column} is {'empty' if self.blank else 'not empty'}"


class StopAtRule(BaseModel):
    """Where the data ends: the first row whose cell in ``column`` equals (or matches) it; that row
    and every row below it are not records."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    column: str
    equals: str | list[str] | None = None  # case- and space-insensitive
    matches: str | None = None  # a regex searched in the cell


class MappingFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1]
    description: str | None = None
    header_row: int | None = Field(default=None, ge=1)  # as Excel numbers it; default: found
    sheets: str | list[str] | None = None  # workbook sheets to read: a name, position, glob, "*", or a list
    stop_at: StopAtRule | None = None
    skip: list[SkipRule] = []
    group_by: str | list[str] | None = None  # rows sharing these columns become one engagement
    conflicts: Literal["error", "first", "last"] = "error"  # a scalar that differs inside a group
    fields: dict[str, FieldSpec]


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Field_:
    """One compiled field: where its value comes from and how it is converted."""

    target: str
    tokens: tuple[str | int, ...]
    kind: TargetKind
    spec: FieldSpec

    @property
    def column(self) -> str | None:
        return self.spec.column

    @property
    def text_only(self) -> bool:
        """Every converted value of this field is text (or nothing): no `map`, `split`, null blank,
        or constant of another type can put anything else there."""
        spec = self.spec
        return (
            spec.map is None
            and spec.split is None
            and spec.blank != "null"
            and (spec.default is None or isinstance(spec.default, str))
            and ("value" not in spec.model_fields_set or isinstance(spec.value, str))
        )


@dataclass(frozen=True)
class MappingSpec:
    path: str
    fields: tuple[Field_, ...]
    description: str | None = None
    header_row: int | None = None
    skip: tuple[SkipRule, ...] = ()
    fills: tuple[tuple[tuple[str | int, ...], tuple[str, ...]], ...] = ()  # address objects -> parts
    group_by: tuple[str, ...] = ()
    conflicts: str = "error"
    sheets: str | tuple[str, ...] | None = None
    stop_at: StopAt | None = None

    @property
    def optional_columns(self) -> frozenset[str]:
        """Columns only `optional` fields read: a file may leave them out."""
        needed = [c for c in self.columns if c not in {f.column for f in self.fields if f.spec.optional}]
        needed += [f.column for f in self.fields if f.column is not None and not f.spec.optional]
        return frozenset(f.column for f in self.fields if f.spec.optional and f.column) - set(needed)

    @property
    def id_columns(self) -> list[str]:
        """The columns the externalId is read from."""
        f = next(f for f in self.fields if f.target == "externalId")
        return [f.column] if f.column is not None else list(f.spec.template_columns)

    @property
    def columns(self) -> list[str]:
        """Every column the mapping reads (fields, templates, time zone columns, skip rules)."""
        cols: list[str] = []
        for f in self.fields:
            if f.column is not None:
                cols.append(f.column)
            cols += f.spec.template_columns
            if f.spec.datetime is not None and f.spec.datetime.timezone_column:
                cols.append(f.spec.datetime.timezone_column)
        cols += [r.column for r in self.skip]
        cols += list(self.group_by)
        if self.stop_at is not None:
            cols.append(self.stop_at.column)
        return list(dict.fromkeys(cols))


def load_mapping(path: str | Path, catalog: dict[str, TargetKind]) -> MappingSpec:
    """Read and validate a mapping file. Raises MappingError listing every problem with its line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise MappingError(str(p), ["file not found"]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(str(p), [f"cannot be read: {exc}"]) from exc
    return parse_mapping(text, catalog, str(p))


def parse_mapping(text: str, catalog: dict[str, TargetKind], name: str = "<mapping>") -> MappingSpec:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise MappingError(name, [f"{where}not valid YAML: {getattr(exc, 'problem', exc)}"]) from exc
    if node is None:
        raise MappingError(name, ["the file is empty; it needs `version: 1` and `fields:`"])
    _refuse_unsafe_yaml(node, name)
    places: dict[tuple[Any, ...], str] = {}
    problems: list[str] = []
    _index_places(node, (), places, problems)
    todos = _todos(node, ())
    if todos:  # a starter mapping with decisions left: say each one, before anything else
        raise MappingError(name, todos)
    try:
        data = yaml.SafeLoader("").construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise MappingError(name, [f"{where}{getattr(exc, 'problem', exc)}"]) from exc
    if not isinstance(data, dict):
        raise MappingError(name, ["the top level must be a mapping with `version: 1` and `fields:`"])
    fields_raw = data.get("fields")
    if isinstance(fields_raw, dict):  # `target: Column` is shorthand for `target: {column: Column}`
        data["fields"] = {k: ({"column": v} if isinstance(v, str) else v) for k, v in fields_raw.items()}
    try:
        mf = MappingFile.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            problems.append(f"{_place(places, loc)}{_loc_text(loc)}: {_schema_msg(err)}")
        raise MappingError(name, problems) from exc
    fields = _check_fields(mf, catalog, places, problems)
    for i, rule in enumerate(mf.skip):
        where = places.get(("skip", i), "")
        if sum(x is not None for x in (rule.equals, rule.matches, rule.blank)) != 1:
            problems.append(f"{where}skip[{i}]: give exactly one of `equals`, `matches` or `blank`")
        if rule.matches is not None and _regex_problem(rule.matches):
            problems.append(f"{where}skip[{i}].matches: {_regex_problem(rule.matches)}")
    stop = mf.stop_at
    if stop is not None:
        where = places.get(("stop_at",), "")
        if (stop.equals is None) == (stop.matches is None):
            problems.append(f"{where}stop_at: give exactly one of `equals` or `matches`")
        elif stop.matches is not None and _regex_problem(stop.matches):
            problems.append(f"{where}stop_at.matches: {_regex_problem(stop.matches)}")
    if not problems:
        problems += _unsourced_requirements(fields, catalog, places)
    if problems:
        raise MappingError(name, problems)
    group_by = (mf.group_by,) if isinstance(mf.group_by, str) else tuple(mf.group_by or ())
    return MappingSpec(
        name,
        tuple(fields),
        mf.description,
        mf.header_row,
        tuple(mf.skip),
        _fills(fields, catalog),
        group_by,
        mf.conflicts,
        mf.sheets if isinstance(mf.sheets, str | None) else tuple(mf.sheets),
        _stop_at(stop),
    )


def _stop_at(rule: StopAtRule | None) -> StopAt | None:
    if rule is None:
        return None
    equals = (rule.equals,) if isinstance(rule.equals, str) else tuple(rule.equals or ())
    return StopAt(rule.column, equals, rule.matches)


def _regex_problem(pattern: str) -> str | None:
    return rx.problem(pattern)


# tags a mapping file may hold (YAML's core schema; a tag such as !!python/object is refused)
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


def _todos(node: yaml.Node, path: tuple[Any, ...]) -> list[str]:
    """Every `TODO` a starter mapping left (a value, not a comment), with its line and what to put."""
    out: list[str] = []
    if isinstance(node, yaml.ScalarNode):
        if str(node.value).strip().upper().startswith("TODO"):
            key = str(path[-1]) if path else ""
            if len(path) >= 2 and path[-2] == "map":
                hint = f"SIRO's value for the cell {key!r} (or null to leave the field out)"
            else:
                hint = _TODO_HINTS.get(key, "a decision init-mapping could not make")
            out.append(f"line {node.start_mark.line + 1}: {_loc_text(path)}: TODO left: {hint}")
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            out += _todos(v, (*path, k.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out += _todos(v, (*path, i))
    return out


def _unsourced_requirements(
    fields: list[Field_], catalog: dict[str, TargetKind], places: dict[tuple[Any, ...], str]
) -> list[str]:
    """An object the mapping sends, whose part SIRO requires has no source at all: every row would
    be invalid. Said once, here, naming the part and the fix (address parts are filled with "")."""
    mapped = {f.target for f in fields}
    objects: dict[str, str] = {}  # object path -> a target that sends it
    for f in fields:
        if "." in f.target and not f.target.endswith("[]"):
            objects.setdefault(f.target.rsplit(".", 1)[0], f.target)
    out = []
    for obj, example in objects.items():
        key = _INDEX_RE.sub("[]", obj)
        if key.endswith("addresses[]"):
            continue  # SIRO's required address parts are sent as "" when the mapping leaves them out
        for target, kind in catalog.items():
            if not kind.required or not target.startswith(key + ".") or "." in target[len(key) + 1 :]:
                continue
            part = f"{obj}.{target[len(key) + 1 :]}"
            if part not in mapped:
                where = places.get(("fields", example), "")
                out.append(
                    f"{where}fields.{example}: {obj} is sent, but SIRO requires {part} whenever it is, and "
                    f"nothing maps it: every row would be invalid. Map a column (or a `value`) to {part}"
                )
    return out


def _fills(
    fields: list[Field_], catalog: dict[str, TargetKind]
) -> tuple[tuple[tuple[str | int, ...], tuple[str, ...]], ...]:
    """Address objects the mapping fills: SIRO requires all their parts once one is sent, so the
    parts a row leaves empty are sent as "" (the object itself is left out when every part is)."""
    out: dict[tuple[str | int, ...], tuple[str, ...]] = {}
    for f in fields:
        toks = f.tokens
        if len(toks) >= 3 and isinstance(toks[-2], int) and toks[-3] == "addresses":
            prefix = toks[:-1]
            key = _INDEX_RE.sub("[]", f.target.rsplit(".", 1)[0])
            required = tuple(
                k.rsplit(".", 1)[1]
                for k, kind in catalog.items()
                if k.startswith(key + ".") and "." not in k[len(key) + 1 :] and kind.required
            )
            if required:
                out[prefix] = required
    return tuple(out.items())


def _index_places(
    node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], str], problems: list[str]
) -> None:
    out[path] = f"line {node.start_mark.line + 1}: "
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                problems.append(
                    f"line {key_node.start_mark.line + 1}: {_loc_text((*path, key))}: duplicate key"
                )
            seen.add(key)
            out[(*path, key)] = f"line {key_node.start_mark.line + 1}: "
            _index_places(value_node, (*path, key), out, problems)
            out[(*path, key)] = f"line {key_node.start_mark.line + 1}: "
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_places(item, (*path, i), out, problems)


def _place(places: dict[tuple[Any, ...], str], loc: tuple[Any, ...]) -> str:
    while loc:
        if loc in places:
            return places[loc]
        loc = loc[:-1]
    return places.get((), "")


def _loc_text(loc: Sequence[Any]) -> str:
    return ".".join(str(p) for p in loc) if loc else "(top level)"


def _schema_msg(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "literal_error" and err["loc"] == ("version",):
        return f"unsupported mapping version {err.get('input')!r}; this bulk_sync reads version 1"
    return str(err["msg"])


def _check_fields(
    mf: MappingFile, catalog: dict[str, TargetKind], places: dict[tuple[Any, ...], str], problems: list[str]
) -> list[Field_]:
    fields: list[Field_] = []
    for target, spec in mf.fields.items():
        where = places.get(("fields", target), "")
        start = len(problems)

        def bad(msg: str, *sub: str, _where: str = where, _target: str = target) -> None:
            problems.append(f"{places.get(('fields', _target, *sub), _where)}fields.{_target}: {msg}")

        if not _PATH_RE.match(target):
            bad("not a valid target path (use dots for nesting and [0] or [] for lists)")
            continue
        if re.search(r"\[\]\.", target):
            bad(
                "`[]` (append) is for lists of values such as account.phoneNumbers[]; "
                "for lists of objects give the position, e.g. engagementUsers[0].email"
            )
            continue
        key = _INDEX_RE.sub("[]", target)
        kind = catalog.get(key)
        if kind is None:
            close = difflib.get_close_matches(key, list(catalog), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            bad(f"unknown SIRO field{hint}")
            continue
        sources = (spec.column is not None) + ("value" in spec.model_fields_set) + (spec.template is not None)
        if sources != 1:
            bad("needs exactly one of `column` (read from the file), `template` (several columns) or `value`")
        if spec.template is not None and not spec.template_columns:
            bad("`template` names no column; write columns in braces, e.g. '{First} {Last}'", "template")
        if spec.extract is not None and _regex_problem(spec.extract):
            bad(f"`extract`: {_regex_problem(spec.extract)}", "extract")
        if spec.split is not None and f"{_INDEX_RE.sub('[]', target)}" == key and not target.endswith("[]"):
            bad("`split` makes several entries: the target must be a list of values ending in `[]`", "split")
        if spec.split == "":
            bad("`split` needs a separator such as ';'", "split")
        if spec.pad is not None and kind.kind != "string":
            bad(f"`pad` is for text fields; {key} is a {kind.kind}", "pad")
        if spec.blank == "null" and not kind.nullable:
            bad(f"`blank: null`: SIRO does not accept null for {key}", "blank")
        if spec.blank == "empty" and kind.kind != "string":
            bad(f'`blank: empty` sends "", which is only for text fields; {key} is a {kind.kind}', "blank")
        _check_transforms(spec, kind, key, target, mf, bad)
        for sub, v in (("value", spec.value), ("default", spec.default)):
            if sub in spec.model_fields_set and v is not None:
                msg = _check_constant(v, kind)
                if msg:
                    bad(msg, sub)
        if spec.map is not None:
            for src, v in spec.map.items():
                if src == MAP_DEFAULT and v == INVALID:
                    continue  # `default: invalid`: an unlisted cell makes the row invalid
                msg = _check_constant(v, kind) if v is not None else None
                if msg:
                    bad(f"map value for {src!r}: {msg}", "map", src)
        if spec.datetime is not None:
            if kind.kind != "string":
                bad(f"`datetime` applies to text fields; {key} is a {kind.kind}", "datetime")
            tz = spec.datetime.timezone
            if tz is None and not kind.local_time and not spec.datetime.timezone_column:
                bad(
                    "`datetime` needs a `timezone` (the zone the file's times are in, e.g. "
                    "America/New_York, or UTC)",
                    "datetime",
                )
            elif tz is not None and _zone(tz) is None:
                bad(
                    f"unknown time zone {tz!r} (use an IANA name such as Europe/Berlin)",
                    "datetime",
                    "timezone",
                )
            for f in spec.datetime.formats:
                if "%" not in f:
                    bad(
                        f"datetime format {f!r} has no % directives (e.g. '%m/%d/%Y %H:%M')",
                        "datetime",
                        "format",
                    )
        if len(problems) == start:
            fields.append(Field_(target, _tokens(target), kind, spec))
    if "externalId" not in mf.fields:
        problems.append(
            f"{places.get(('fields',), '')}fields: externalId must be mapped (it is SIRO's sync key)"
        )
    return fields


def _check_transforms(
    spec: FieldSpec, kind: TargetKind, key: str, target: str, mf: MappingFile, bad: Callable[..., None]
) -> None:
    """The rules of the newer keys: what they apply to, and what they exclude."""
    if spec.optional and spec.column is None:
        bad("`optional` is for a `column` that an export may leave out", "optional")
    if spec.optional and spec.required:
        bad("a field cannot be both `optional` (its column may be missing) and `required`", "optional")
    if spec.first_of is not None and spec.last_of is not None:
        bad("give `first_of` or `last_of`, not both", "first_of")
    for sub, sep in (("first_of", spec.first_of), ("last_of", spec.last_of)):
        if sep == "":
            bad(f"`{sub}` needs the separator of the list in the cell, such as ';'", sub)
    if kind.kind == "people":
        if spec.split is None or spec.parse != "name_email":
            bad(
                f"{key} is a list of people made from one cell: give `split` (the separator between them, "
                "e.g. ';') and `parse: name_email` (each is 'Name <email>', 'Name (email)' or an email)"
            )
        return
    if spec.parse is not None and kind.kind != "string":
        bad(f"`parse` gives a name or an email; {key} is a {kind.kind}", "parse")
    if spec.duration is not None:
        other = mf.fields.get(spec.duration.from_)
        if kind.pattern is None and key not in _INSTANTS:
            bad(f"`duration` makes a date-time; {key} is not one", "duration")
        elif other is None or other.datetime is None or spec.duration.from_ == target:
            bad(
                f"`duration.from` must name another field of this mapping read with `datetime:` (such as "
                f"startTime), not {spec.duration.from_!r}",
                "duration",
            )
        if spec.datetime is not None:
            bad(
                "`duration` and `datetime` exclude each other: the value is the other field plus the cell",
                "duration",
            )


_INSTANTS = frozenset({"startTime", "endTime", "remoteCreatedAt", "remoteUpdatedAt"})


def _check_constant(v: Scalar, kind: TargetKind) -> str | None:
    if kind.kind == "enum" and (not isinstance(v, str) or _enum_member(v, kind) is None):
        return f"{v!r} is not one of {', '.join(kind.choices)}"
    if kind.kind == "number" and (isinstance(v, bool) or not isinstance(v, int | float)):
        return f"{v!r} is not a number"
    if kind.kind == "boolean" and not isinstance(v, bool):
        return f"{v!r} is not true/false"
    return None


def _tokens(target: str) -> tuple[str | int, ...]:
    out: list[str | int] = []
    for seg in target.split("."):
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d*)\])?$", seg)
        assert m is not None
        out.append(m.group(1))
        if m.group(2) is not None:
            out.append(int(m.group(2)) if m.group(2) else _APPEND)
    return tuple(out)


def _zone(name: str) -> dt.tzinfo | None:
    if name.upper() in {"UTC", "Z"}:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _enum_member(value: str, kind: TargetKind) -> str | None:
    norm = value.strip().casefold()
    return next((c for c in kind.choices if c.casefold() == norm), None)


# --------------------------------------------------------------------------- binding to a file


@dataclass(frozen=True)
class BoundMapping:
    """A spec whose column names are resolved to one file's actual headers."""

    spec: MappingSpec
    columns: dict[str, str]  # spec column -> header in the file
    plan: _Plan
    cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # for later stages
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
    loose = {_loose(h): h for h in headers}
    resolved: dict[str, str] = {}
    missing: list[str] = []
    absent: list[str] = []
    optional = spec.optional_columns
    for col in spec.columns:
        if col in exact:
            resolved[col] = col
        elif _loose(col) in loose:
            resolved[col] = loose[_loose(col)]
        elif col in optional:
            resolved[col] = col  # read as an empty column
            absent.append(col)
        else:
            missing.append(col)
    if missing:
        parts = []
        for col in missing:
            close = difflib.get_close_matches(col, list(headers), n=1, cutoff=0.6)
            parts.append(f"{col!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        noun = "column" if len(missing) == 1 else "columns"
        raise SourceError(
            label,
            f"{noun} {', '.join(parts)} from mapping {spec.path} not found; "
            f"the file has: {', '.join(repr(h) for h in headers)}",
        )
    warnings = tuple(
        f"column {col!r} is not in the file: it is optional, so "
        f"{', '.join(f.target for f in spec.fields if f.column == col)} is left out of every row"
        for col in absent
    )
    return BoundMapping(spec, resolved, _compile(spec, resolved), absent=frozenset(absent), warnings=warnings)


def _loose(name: str) -> str:
    return " ".join(name.split()).casefold()


# --------------------------------------------------------------------------- applying to rows


class MappedRecord:
    """One input row after mapping: nested values, where each leaf came from, and problems.

    ``sources`` (payload path -> spreadsheet column) is worked out only when asked for: it is
    needed for error messages, not for the rows that are fine.
    """

    __slots__ = (
        "_tree",
        "errors",
        "external_id",
        "file",
        "group_cells",
        "row_number",
        "sheet",
        "skip",
        "targets",
        "values",
        "warning",
    )

    def __init__(
        self,
        file: str,
        sheet: str | None,
        row_number: int,
        external_id: str | None,
        values: dict[str, Any],
        errors: list[RowError] | None = None,
        targets: dict[str, str] | None = None,
        tree: Any = None,
    ) -> None:
        self.file, self.sheet, self.row_number, self.external_id = file, sheet, row_number, external_id
        self.values = values
        self.errors = errors if errors is not None else []
        self.targets = targets if targets is not None else {}  # mapping target -> column (shared)
        self._tree = tree
        self.skip: str | None = None  # why this row is not a record (a `skip` rule), if it is not
        self.group_cells: tuple[str, ...] | None = None  # the `group_by` cells, when grouping
        self.warning: str | None = None  # what SIRO will make of it (set once it is built valid)

    @property
    def sources(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self._tree is not None:
            plan, cols, i = self._tree
            plan.root.sources(cols, i, (), out)
        return out


class MappedChunk:
    """One chunk after mapping, kept as columns: every field's converted value for every row.

    Nothing is built per row here: :meth:`record` makes one row's :class:`MappedRecord` when a
    row needs it (to validate it one by one, to send it, to explain its errors); the payload stage
    checks the rest a column at a time. ``cols[k]`` is field ``k``'s column (``OMIT`` where nothing
    is sent, bad cells included); ``errors[k]`` is set when that column holds RowErrors.
    """

    __slots__ = (
        "bound",
        "cols",
        "error_cols",
        "file",
        "keys",
        "n",
        "problems",
        "raw",
        "row_numbers",
        "sheet",
        "skips",
    )

    def __init__(self, bound: BoundMapping, chunk: Chunk) -> None:
        chunk = bound.complete(chunk)
        frame = chunk.frame
        self.bound = bound
        self.file, self.sheet, self.row_numbers = chunk.file, chunk.sheet, chunk.row_numbers
        self.n = n = len(chunk)
        self.problems = chunk.problems
        self.cols: list[list[Any]] = []
        self.error_cols: list[list[Any]] = []
        self.raw: dict[str, list[str]] = {}  # header -> the column's cells as read (made once)
        for f in bound.spec.fields:
            values, maybe_errors = _field_values(f, bound, chunk, self.raw)
            if maybe_errors and any(type(v) is RowError for v in values):
                self.error_cols.append(values)
                values = [_OMIT if type(v) is RowError else v for v in values]
            self.cols.append(values)
        for k, f in enumerate(bound.spec.fields):  # a start plus a duration: once the start is known
            if f.spec.duration is not None:
                starts = next(
                    c
                    for g, c in zip(bound.spec.fields, self.cols, strict=True)
                    if g.target == f.spec.duration.from_
                )
                self.cols[k] = list(map(_after, starts, self.cols[k]))
        self.skips = _skips(bound, frame) if bound.spec.skip and n else None
        self.keys = (
            list(zip(*(frame[bound.columns[c]].tolist() for c in bound.spec.group_by), strict=True))
            if bound.spec.group_by
            else None
        )

    def column(self, target: str) -> list[Any] | None:
        """The converted column of the field that targets ``target`` (None if none does)."""
        for k, f in enumerate(self.bound.spec.fields):
            if f.target == target:
                return self.cols[k]
        return None

    def record(self, i: int, values: dict[str, Any] | None = None) -> MappedRecord:
        """Row ``i`` as a MappedRecord (its nested values built now unless given)."""
        plan = self.bound.plan
        if values is None:
            built = plan.root.build(self.cols, i)
            values = {} if built is _OMIT else built
            if self.bound.spec.fills:
                _fill(values, self.bound.spec.fills)
        errors = [c[i] for c in self.error_cols if type(c[i]) is RowError]
        number = self.row_numbers[i]
        if self.problems and number in self.problems:
            read = self.problems[number]
            if any(e.slug == "bad-encoding" for e in read):  # the loader named the bytes already
                errors = [e for e in errors if e.slug != "bad-encoding"]
            errors[:0] = read
        ext = values.get("externalId")
        rec = MappedRecord(
            self.file,
            self.sheet,
            number,
            ext if isinstance(ext, str) else None,
            values,
            errors,
            plan.targets,
            (plan, self.cols, i),
        )
        if self.skips is not None and self.skips[i] is not None:
            rec.skip = self.skips[i]
        if self.keys is not None:
            rec.group_cells = self.keys[i]
        return rec

    def light_record(self, i: int, external_id: str) -> MappedRecord:
        """Row ``i`` of a valid payload, to be sent: where it is and its id, no nested values."""
        plan = self.bound.plan
        return MappedRecord(
            self.file,
            self.sheet,
            self.row_numbers[i],
            external_id,
            {},
            [],
            plan.targets,
            (plan, self.cols, i),
        )

    def records(self) -> list[MappedRecord]:
        """Every row as a MappedRecord (the nested values of all rows built in one generated loop)."""
        rows = self.bound.plan.build_all(self.cols, self.n)
        if self.bound.spec.fills:
            for values in rows:
                _fill(values, self.bound.spec.fills)
        return [self.record(i, values) for i, values in enumerate(rows)]


def map_chunk(bound: BoundMapping, chunk: Chunk) -> MappedChunk:
    """Map every row of ``chunk``, a column at a time. Bad cells become RowErrors; never raises."""
    return MappedChunk(bound, chunk)


def apply(bound: BoundMapping, chunk: Chunk) -> list[MappedRecord]:
    """Map every row of ``chunk`` into records (see :class:`MappedChunk` for the columnar form)."""
    return MappedChunk(bound, chunk).records()


def _field_values(
    f: Field_, bound: BoundMapping, chunk: Chunk, raw: dict[str, list[str]] | None = None
) -> tuple[list[Any], bool]:
    """One field's converted value for every row (from its column, its template, or its constant),
    and whether any of them may be a RowError. ``raw``: the columns taken out of the frame so far."""
    frame = chunk.frame
    typed = None
    if f.column is not None:
        header = bound.columns[f.column]
        if raw is None:
            cells = frame[header].tolist()
        else:
            cells = raw.get(header) or raw.setdefault(header, frame[header].tolist())
        typed = chunk.typed.get(header) if f.kind.kind == "number" else None
    elif f.spec.template is not None:
        header = ", ".join(bound.columns[c] for c in f.spec.template_columns)
        cells = _template_cells(f.spec.template, bound.columns, frame)
    else:
        return [f.spec.value] * len(frame), False
    dts = f.spec.datetime
    zones = frame[bound.columns[dts.timezone_column]].tolist() if dts and dts.timezone_column else None
    seen = bound.cache.setdefault(f"datetimes {f.target}", _Seen())
    return _convert_column(f, cells, header, zones, seen, typed)


def external_ids(bound: BoundMapping, chunk: Chunk) -> list[str | None]:
    """Only the externalId of each row (None when it has none, or a skip rule drops the row):
    the cheap pre-pass that finds repeated ids before anything is sent."""
    chunk = bound.complete(chunk)
    frame = chunk.frame
    f = next(f for f in bound.spec.fields if f.target == "externalId")
    values, _ = _field_values(f, bound, chunk)
    if not bound.spec.skip:
        return [v if type(v) is str else None for v in values]
    skips = _skips(bound, frame)
    return [v if type(v) is str and skip is None else None for v, skip in zip(values, skips, strict=True)]


def fingerprints(bound: BoundMapping, chunk: Chunk) -> list[bytes]:
    """A 128-bit fingerprint (keyed BLAKE2b) per row of everything its payload is made from: the
    cells the mapping reads, the mapping, and the code that converts them.

    Conversions depend on nothing else (no row number, file name or clock), so two rows with equal
    fingerprints map to the same payload: the state keeps the fingerprint of each synced record,
    and a rerun finds unchanged rows without mapping and encoding them.
    """
    key = bound.cache.get("fingerprint key")
    if key is None:
        key = bound.cache["fingerprint key"] = _fingerprint_key(bound.spec)
    frame = bound.complete(chunk).frame
    cols = [frame[bound.columns[c]].tolist() for c in bound.spec.columns]
    sep, seps = "\x1f", len(cols) - 1
    out: list[bytes] = []
    for cells in zip(*cols, strict=True):
        try:
            text = sep.join(cells)
        except TypeError:  # not text (never from load, which gives str cells): say what it is
            text = repr(cells)
        if text.count(sep) != seps:  # a cell holds the separator: keep cells apart another way
            text = repr(cells)
        out.append(blake2b(text.encode(errors="surrogatepass"), digest_size=16, key=key).digest())
    return out


def _fingerprint_key(spec: MappingSpec) -> bytes:
    """What a row's fingerprint is keyed with: the compiled mapping (not where its file is) and
    the source of the modules that turn cells into payloads (a new bulk_sync makes new keys)."""
    h = blake2b(digest_size=32, person=b"bulk_sync-rows-1")
    h.update(repr((spec.fields, spec.skip, spec.fills, spec.columns)).encode())
    h.update(_zone_data_version().encode())
    here = Path(__file__).parent
    for name in ("mapping.py", "payload.py", "siro-openapi.yaml"):
        try:
            h.update((here / name).read_bytes())
        except OSError:
            from . import __version__

            h.update(__version__.encode())
    return h.digest()


def _zone_data_version() -> str:
    """The version of the time-zone database zoneinfo reads (a new one may move future offsets):
    the OS's (``tzdata.zi`` names it), else the tzdata package's."""
    for base in zoneinfo.TZPATH:
        try:
            with open(Path(base) / "tzdata.zi", encoding="utf-8") as fh:
                return fh.readline().strip()
        except OSError:
            continue
    try:
        return "tzdata " + importlib.metadata.version("tzdata")
    except importlib.metadata.PackageNotFoundError:
        return ""


# A cell that could show which decimal mark its column uses (confirmed by parsing it both ways):
# a mark followed by 1-2 or 4+ digits, both marks, a mark twice, a leading "0" and a mark, or 4+
# digits before a mark. '1,500' and '12.000' (one mark, then 3 digits) are not: they read both ways.
_EVIDENCE = {
    ".": re.compile(r"\.\d{1,2}(?!\d)|\.\d{4}|,\d{3}\.|,\d{3},|(?<![\d.,])0\.\d|(?<![\d.,])\d{4,}\.\d"),
    ",": re.compile(r",\d{1,2}(?!\d)|,\d{4}|\.\d{3},|\.\d{3}\.|(?<![\d.,])0,\d|(?<![\d.,])\d{4,},\d"),
}


class NumberEvidence:
    """Which decimal mark each number column of one file uses, settled from its cells.

    For every number field whose mapping does not say (``decimal`` unset), the earliest cell that
    reads as a number with only one of the marks settles it (``1.234,50`` or ``0,99``: a decimal
    comma; ``1,234.50`` or ``12.5``: a decimal point). A cell written the other way is then
    ``bad-number`` (its message says so); a column showing neither leaves the field unsettled, and
    its cells that read both ways ('1,500') are reported invalid (``ambiguous-number``).
    """

    def __init__(self, bound: BoundMapping) -> None:
        self.bound = bound
        self.fields = [
            f
            for f in bound.spec.fields
            if f.kind.kind == "number" and f.spec.decimal is None and (f.column or f.spec.template)
        ]
        self.found: dict[str, tuple[str, int, str]] = {}  # target -> (mark, row number, cell)

    @property
    def columns(self) -> list[str]:
        """The file's headers the evidence is read from."""
        cols: list[str] = []
        for f in self.fields:
            cols += [f.column] if f.column else f.spec.template_columns
        return [self.bound.columns[c] for c in dict.fromkeys(cols) if c not in self.bound.absent]

    @property
    def settling(self) -> bool:
        """Is a field still waiting for a cell that settles its mark?"""
        return len(self.found) < len(self.fields)

    def add(self, chunk: Chunk) -> None:
        chunk = self.bound.complete(chunk)
        for f in self.fields:
            if f.target in self.found:
                continue
            cells = _field_cells(f, self.bound, chunk.frame)
            typed = chunk.typed.get(self.bound.columns[f.column]) if f.column else None
            if typed is not None:  # workbook number cells: written with a point whatever the locale
                cells = ["" if t else c for c, t in zip(cells, typed, strict=True)]
            joined = "\n".join(cells).replace("\r", " ")
            earliest: tuple[int, str, str] | None = None  # (position in the chunk, mark, cell)
            for mark, evidence in _EVIDENCE.items():
                for m in evidence.finditer(joined):  # a candidate: its whole cell is read both ways
                    start = joined.rfind("\n", 0, m.start()) + 1
                    end = joined.find("\n", m.end())
                    cell = joined[start : end if end >= 0 else len(joined)]
                    if _only_reading(cell.strip(), f.kind.bounds) == mark:
                        at = joined.count("\n", 0, start)
                        if earliest is None or at < earliest[0]:
                            earliest = (at, mark, cell.strip())
                        break
            if earliest is not None:
                at, mark, cell = earliest
                self.found[f.target] = (mark, chunk.row_numbers[at], cell)

    def settled(self) -> BoundMapping:
        """The bound mapping with each number field's decimal mark settled where the cells showed
        one (a field that showed none stays unsettled)."""
        if not self.found:
            return self.bound
        fields = tuple(
            dataclasses.replace(f, spec=f.spec.model_copy(update={"decimal": self.found[f.target][0]}))
            if f.target in self.found
            else f
            for f in self.bound.spec.fields
        )
        spec = dataclasses.replace(self.bound.spec, fields=fields)
        return dataclasses.replace(self.bound, spec=spec, cache={})


def _only_reading(text: str, bounds: tuple[float, float] | None = None) -> str | None:
    """The one decimal mark ``text`` reads as a number with (None: both, or neither)."""
    readings = []
    for mark in (".", ","):
        try:
            _any_number(text, mark, bounds)
            readings.append(mark)
        except _CellError:
            pass
    return readings[0] if len(readings) == 1 else None


def _field_cells(f: Field_, bound: BoundMapping, frame: pd.DataFrame) -> list[str]:
    if f.column is not None:
        cells: list[str] = frame[bound.columns[f.column]].tolist()
        return cells
    assert f.spec.template is not None
    return _template_cells(f.spec.template, bound.columns, frame)


_ID_KEYS = ("bulk_sync-ids-k1", "bulk_sync-ids-k2")  # two 16-byte SipHash keys: 128 bits an id


def id_digests(ids: Sequence[str | None]) -> Any:
    """A 128-bit digest per id (two 64-bit keyed SipHashes, a column at a time), as an (n, 2)
    uint64 array: for finding repeated ids among millions without keeping the ids."""
    values = np.array(ids, dtype=object)
    return np.stack([pd.util.hash_array(values, hash_key=k, categorize=False) for k in _ID_KEYS], axis=1)


def id_columns(bound: BoundMapping) -> list[str]:
    """The file's headers that :func:`external_ids` reads."""
    f = next(f for f in bound.spec.fields if f.target == "externalId")
    cols = [f.column] if f.column is not None else list(f.spec.template_columns)
    dts = f.spec.datetime
    if dts is not None and dts.timezone_column:
        cols.append(dts.timezone_column)
    cols += [r.column for r in bound.spec.skip]
    return [
        bound.columns[c] for c in dict.fromkeys(c for c in cols if c is not None) if c not in bound.absent
    ]


def _template_cells(template: str, columns: dict[str, str], frame: pd.DataFrame) -> list[str]:
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


def _fill(values: dict[str, Any], fills: tuple[tuple[tuple[str | int, ...], tuple[str, ...]], ...]) -> None:
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


def _skips(bound: BoundMapping, frame: pd.DataFrame) -> list[str | None]:
    out: list[str | None] = [None] * len(frame)
    for k, rule in enumerate(bound.spec.skip):
        cells = frame[bound.columns[rule.column]].tolist()
        why = f"skipped by rule {k + 1} of the mapping: {rule.describe()}"
        if rule.equals is not None:
            wanted = {_loose(v) for v in ([rule.equals] if isinstance(rule.equals, str) else rule.equals)}
            hit = [_loose(c) in wanted for c in cells]
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
            return _OMIT if type(v) is RowError else v
        if self.kind == "obj":
            d = {}
            for key, child in self.children:
                v = child.build(cols, i)
                if v is not _OMIT:
                    d[key] = v
            return d or _OMIT
        items: list[Any] = []
        for _, child in self.children:
            v = child.build(cols, i)
            if v is not _OMIT:
                items.extend(v) if child.many else items.append(v)
        return items or _OMIT

    def sources(self, cols: list[list[Any]], i: int, path: tuple[Any, ...], out: dict[str, str]) -> None:
        if self.kind == "leaf":
            if self.header is not None and cols[self.column][i] is not _OMIT:
                out[path_text(path)] = self.header
            return
        if self.kind == "obj":
            for key, child in self.children:
                child.sources(cols, i, (*path, key), out)
            return
        pos = 0  # list positions after empty entries are dropped
        for _, child in self.children:
            v = child.build(cols, i)
            if v is not _OMIT:
                for _entry in v if child.many else (v,):
                    child.sources(cols, i, (*path, pos), out)
                    pos += 1


@dataclass(frozen=True)
class _Plan:
    root: _Node
    targets: dict[str, str]
    build_all: Callable[[list[list[Any]], int], list[dict[str, Any]]]


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
    namespace: dict[str, Any] = {"OMIT": _OMIT}
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
            key = ("append", idx) if tok == _APPEND else tok
            child = next((c for k, c in node.children if k == key), None)
            if child is None:
                child = _Node(want)
                node.children.append((key, child))
                if node.kind == "list":  # explicit positions first, in order; then appends, in field order
                    node.children.sort(key=lambda kc: _list_order(kc[0]))
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
    return _Plan(root, targets, _generate(root, len(spec.fields)))


_OMIT = object()
OMIT = _OMIT  # a field with nothing to send for a row (its cell was blank, or bad)


def _convert_column(
    f: Field_,
    cells: list[str],
    header: str,
    zones: list[str] | None = None,
    seen: _Seen | None = None,
    typed: list[bool] | None = None,
) -> tuple[list[Any], bool]:
    """Convert one column: vectorised for datetimes, memoised per distinct value for the rest.
    Also says whether any value may be a RowError (False is a promise; True is a maybe).
    ``typed``: which cells were numbers in a workbook (read with a decimal point, always)."""
    spec = f.spec
    plain_text = spec.plain and f.kind.kind != "people"
    if spec.datetime is not None and spec.map is None and plain_text and zones is None:
        return _datetime_column(f, cells, header, seen if seen is not None else _Seen())
    if (
        spec.map is None
        and f.kind.kind == "string"
        and plain_text
        and spec.datetime is None
        and not f.kind.email
        and "\ufffd" not in "".join(cells)
    ):
        if spec.default is None and not spec.required and spec.blank == "omit":
            return [t if (t := c.strip()) else _OMIT for c in cells], False
        # text as it is; an empty cell takes the scalar way (required, default, blank policy)
        return [t if (t := c.strip()) else _convert(f, c, header) for c in cells], spec.required
    if f.kind.kind == "number" and spec.map is None and plain_text and zones is None:
        if typed is not None and spec.decimal != "." and any(typed):
            point = dataclasses.replace(f, spec=spec.model_copy(update={"decimal": "."}))
            pairs = list(zip(cells, typed, strict=True))
            done2 = {k: _number_cell(point if k[1] else f, k[0], header) for k in dict.fromkeys(pairs)}
            return list(map(done2.__getitem__, pairs)), any(type(v) is RowError for v in done2.values())
        done = {c: _number_cell(f, c, header) for c in dict.fromkeys(cells)}
        return list(map(done.__getitem__, cells)), any(type(v) is RowError for v in done.values())
    # the rest: each distinct cell (with its zone) converted once
    if zones is not None:
        keys: list[Any] = list(zip(cells, zones, strict=True))
        done = {k: _convert(f, k[0], header, k[1]) for k in dict.fromkeys(keys)}
    else:
        keys = cells
        done = {c: _convert(f, c, header) for c in dict.fromkeys(cells)}
    return list(map(done.__getitem__, keys)), any(type(v) is RowError for v in done.values())


def _number_cell(f: Field_, cell: str, header: str) -> Any:
    """:func:`_convert` for a plain number field, without its general steps for a filled cell."""
    text = cell.strip()
    if text:
        try:
            return _number(text, f.spec.decimal, f.kind.bounds)
        except _CellError:
            pass
    return _convert(f, cell, header)  # blank (default, required, blank policy), or the error


class _Seen:
    """The date-time texts of one field converted so far (across chunks, bounded by bytes), and
    which of them were errors."""

    MAX_BYTES = 4 * 1024 * 1024  # what the remembered texts and values may take; then it starts over
    ENTRY_BYTES = 240  # a dict slot, the value (a 20-character text) and the key's own overhead

    __slots__ = ("bad", "bytes", "values")

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.bad: set[str] = set()
        self.bytes = 0


def _datetime_column(f: Field_, cells: list[str], header: str, seen: _Seen) -> tuple[list[Any], bool]:
    """Convert a column of date-times; texts seen before (in this chunk, or an earlier one) are not
    parsed again: exports repeat times a lot (meetings start on the hour). Also says whether any
    value is a RowError."""
    values = seen.values
    out = list(map(values.get, cells))  # one look-up a cell; None: not seen yet (or a null value)
    if None not in out:
        return out, bool(seen.bad) and not seen.bad.isdisjoint(cells)
    todo = [
        c for c in dict.fromkeys(c for c, v in zip(cells, out, strict=True) if v is None) if c not in values
    ]
    if todo:
        size = sum(map(len, todo)) + _Seen.ENTRY_BYTES * len(todo)
        if seen.bytes + size > _Seen.MAX_BYTES:  # start over (with every text of this chunk)
            values.clear()
            seen.bad.clear()
            todo = list(dict.fromkeys(cells))
            size = sum(map(len, todo)) + _Seen.ENTRY_BYTES * len(todo)
            seen.bytes = 0
        seen.bytes += size
        # pandas costs a few ms a call whatever the size: a handful of new texts go the scalar way
        parsed = (
            _parse_datetimes(f, todo, header) if len(todo) > 64 else [_convert(f, c, header) for c in todo]
        )
        for c, v in zip(todo, parsed, strict=True):
            values[c] = v
            if type(v) is RowError:
                seen.bad.add(c)
    return list(map(values.__getitem__, cells)), bool(seen.bad) and not seen.bad.isdisjoint(cells)


def _parse_datetimes(f: Field_, cells: list[str], header: str) -> list[Any]:
    """Parse a column of local date-times with pandas; any cell it cannot do goes the scalar way.

    The scalar :func:`_datetime` is the reference: it handles offsets, ISO variants and gives the
    error messages; a test checks that both ways agree.
    """
    spec = f.spec
    dts = spec.datetime
    assert dts is not None
    s = pd.Series(cells, dtype=object).str.strip()
    blank = (s == "").to_numpy()
    parsed = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    for fmt in dts.formats:
        todo = parsed.isna().to_numpy() & ~blank
        if not todo.any():
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed[todo] = pd.to_datetime(s[todo], format=fmt, errors="coerce").to_numpy()
    tz = _zone(dts.timezone) if dts.timezone else None
    wall = parsed
    if tz is not None:
        try:
            policy = dts.ambiguous
            amb: Any = (
                np.ones(len(parsed), dtype=bool) if policy == "earlier"
                else np.zeros(len(parsed), dtype=bool) if policy == "later" else "NaT"
            )  # fmt: skip
            local = parsed.dt.tz_localize(tz, ambiguous=amb, nonexistent="NaT")
        except Exception:
            local = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
        ok = local.notna().to_numpy()
        if f.kind.local_time:
            text = np.datetime_as_string(wall.to_numpy(), unit="s")
        else:
            utc = local.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
            text = np.char.add(np.datetime_as_string(utc, unit="s"), "Z")
    else:
        ok = wall.notna().to_numpy()
        text = np.datetime_as_string(wall.to_numpy(), unit="s")
    out: list[Any] = []
    for i, c in enumerate(cells):
        if ok[i]:
            out.append(str(text[i]))
        else:  # blank, unparsed, or nonexistent local time: the scalar path knows what to say
            out.append(_convert(f, c, header))
    return out


def _convert(f: Field_, cell: str | None, header: str | None, zone: str | None = None) -> Any:
    spec, kind = f.spec, f.kind
    if cell is None:  # a constant
        return spec.value
    text = cell.strip()
    if text and (spec.first_of is not None or spec.last_of is not None):
        parts = [p.strip() for p in text.split(spec.first_of or spec.last_of or "") if p.strip()]
        text = (parts[0] if spec.first_of is not None else parts[-1]) if parts else ""
    if text and spec.parse == "name_email" and kind.kind == "string":
        name, email = _name_email(text)
        text = email if _wants_email(f.target) else name
    if text and spec.extract is not None:
        m = rx.compile_pattern(spec.extract).search(text)
        if m is None:
            return RowError("no-match", f"{f.target}: {text!r} does not contain {spec.extract!r}", header)
        text = (m.group(1) if m.groups() else m.group(0) or "").strip()
    if spec.lower and kind.kind != "people":  # a list of people lowers the emails, not the names
        text = text.lower()
    if spec.pad is not None and text:
        text = text.rjust(spec.pad.width, spec.pad.with_)
    if not text:
        if spec.default is not None:
            return spec.default
        if spec.required:
            return RowError("missing-value", f"{f.target} is required but the cell is empty", header)
        return None if spec.blank == "null" else "" if spec.blank == "empty" else _OMIT
    if "\ufffd" in text:
        return RowError(
            "bad-encoding",
            f"{f.target}: the cell holds the character \ufffd, which stands for bytes that could not be "
            f"read as text ({text[:60]!r}); type the text again",
            header,
        )
    if kind.kind == "people":
        return _people(f, text, header)
    if spec.duration is not None:
        try:
            return _duration(text, spec.duration.unit)
        except _CellError as exc:
            return RowError(exc.slug, f"{f.target}: {exc}", header)
    if spec.split is not None:
        entries = [e.strip() for e in text.split(spec.split)]
        entries = list(dict.fromkeys(e.lower() if spec.lower else e for e in entries if e))
        if kind.email:
            wrong = next((e for e in entries if not _EMAIL.fullmatch(e)), None)
            if wrong is not None:
                return _bad_email(f, wrong, header)
        return tuple(entries) if entries else _OMIT
    if spec.map is not None:
        norm = _loose(text)
        for k, v in spec.map.items():
            if k != MAP_DEFAULT and _loose(str(k)) == norm:
                return _OMIT if v is None else v
        fallback = spec.map_default
        siro_value = kind.kind == "enum" and _enum_member(text, kind) is not None
        if fallback is not _UNLISTED and not siro_value:
            if fallback == INVALID:
                return RowError(
                    "invalid-enum" if kind.kind == "enum" else "unmapped-value",
                    f"{text!r} is not in the map of {f.target} (its `default: invalid` says such a cell "
                    f"makes the row invalid): the map lists {_listed(spec.map)}",
                    header,
                )
            return _OMIT if fallback is None else fallback
        if kind.kind == "enum" and not siro_value:
            return RowError(
                "invalid-enum",
                f"{text!r} is not a known value for {f.target}: the mapping "
                f"maps {_listed(spec.map)}; SIRO also accepts {', '.join(kind.choices)}",
                header,
            )
    try:
        if spec.datetime is not None:
            return _datetime(text, spec.datetime, kind.local_time, zone)
        if kind.kind == "enum":
            member = _enum_member(text, kind)
            if member is None:
                return RowError(
                    "invalid-enum",
                    f"{text!r} is not one of {', '.join(kind.choices)} "
                    f"(add a `map:` to the mapping to translate it)",
                    header,
                )
            return member
        if kind.kind == "number":
            return _number(text, spec.decimal, kind.bounds)
        if kind.kind == "boolean":
            return _boolean(text)
    except _CellError as exc:
        return RowError(exc.slug, f"{f.target}: {exc}", header)
    if kind.email and not _EMAIL.fullmatch(text):
        return _bad_email(f, text, header)
    return text


def _listed(mapped: dict[str, Any]) -> str:
    return ", ".join(repr(str(k)) for k in mapped if k != MAP_DEFAULT)


# "Ann Lee <ann@x.com>", "Ann Lee (ann@x.com)", '"Lee, Ann" <ann@x.com>', "ann@x.com", "Ann Lee"
_NAME_EMAIL = re.compile(r"^(?P<name>.*?)\s*[<(]\s*(?P<email>[^<>()\s]+@[^<>()\s]+)\s*[>)]$")


def _name_email(text: str) -> tuple[str, str]:
    """(name, email) of one person as CRMs write them; either may be ""."""
    m = _NAME_EMAIL.match(text)
    if m is not None:
        return m["name"].strip().strip("\"'").strip(), m["email"]
    if "@" in text and not any(ch.isspace() for ch in text):
        return "", text
    return text, ""


def _wants_email(target: str) -> bool:
    """`parse: name_email` gives these targets the email, and every other target the name."""
    last = target.rsplit(".", 1)[-1]
    return last in ("email", "externalId") or last.startswith("emailAddresses")


def _people(f: Field_, text: str, header: str | None) -> Any:
    """One cell of several people -> engagement users, in the cell's order, one per email."""
    people: dict[str, dict[str, str]] = {}
    for part in (p.strip() for p in text.split(f.spec.split or ";")):
        if not part:
            continue
        name, email = _name_email(part)
        if f.spec.lower:
            email = email.lower()
        if not email or not _EMAIL.fullmatch(email):
            return RowError(
                "bad-email",
                f"{f.target}: {part!r} has no email address; SIRO needs one for each engagement user "
                "(it links them to its own users by email)",
                header,
            )
        person = {"externalId": email, "email": email}
        if name:
            person["name"] = name
        people.setdefault(email.casefold(), person)
    return tuple(people.values()) if people else _OMIT


_CLOCK = re.compile(r"(?P<h>\d+):(?P<m>[0-5]?\d)(?::(?P<s>[0-5]?\d(?:\.\d+)?))?")
_WORDS = re.compile(
    r"(?:(?P<h>\d+(?:\.\d+)?)\s*h(?:ours?|rs?)?\s*)?(?:(?P<m>\d+(?:\.\d+)?)\s*m(?:in(?:utes?|s)?)?\s*)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)\s*s(?:ec(?:onds?|s)?)?)?",
    re.IGNORECASE,
)
_ISO_DURATION = re.compile(
    r"PT(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?"
)
_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600}


def _duration(text: str, unit: str) -> dt.timedelta:
    """An elapsed time: '01:30' and '1:30:00' (hours:minutes[:seconds]), '90' (in ``unit``),
    '1h 30m', '90 min', 'PT1H30M'."""
    t = text.strip()
    for rx_ in (_CLOCK, _ISO_DURATION, _WORDS):
        m = rx_.fullmatch(t)
        if m is not None and any(m.groupdict().values()):
            seconds = sum(float(m[g] or 0) * k for g, k in (("h", 3600), ("m", 60), ("s", 1)))
            return dt.timedelta(seconds=seconds)
    try:
        number = float(t)
    except ValueError:
        raise _CellError(
            "bad-duration",
            f"{text!r} is not a duration (write 01:30, 1:30:00, 90 for {unit}, 1h 30m or PT1H30M)",
        ) from None
    if not math.isfinite(number) or number < 0:
        raise _CellError("bad-duration", f"{text!r} is not a duration")
    return dt.timedelta(seconds=number * _UNITS[unit])


def _after(start: Any, elapsed: Any) -> Any:
    """The instant ``elapsed`` after the instant ``start`` (UTC text): elapsed time, so a meeting
    across a daylight-saving change ends when the clock on the wall says it does."""
    if type(start) is not str or type(elapsed) is not dt.timedelta:
        return _OMIT
    try:
        at = dt.datetime.fromisoformat(start)
    except ValueError:
        return _OMIT
    if at.tzinfo is None:
        return _OMIT
    return (at + elapsed).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# A plausible address: a dot-atom local part, an @, a domain of two or more labels ending in a
# top-level domain (letters, or punycode). Not RFC 5322 in full (no quoted local parts, no IP
# literals): what CRMs hold for people. Letters of any script are allowed (internationalised mail).
_EMAIL = re.compile(
    r"(?=.{3,254}$)[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
    r"@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})"
)


def _bad_email(f: Field_, text: str, header: str | None) -> RowError:
    return RowError(
        "bad-email",
        f"{f.target}: {text!r} is not an email address; SIRO links people by email, so a wrong one "
        "loses the match with its recordings",
        header,
    )


class _CellError(ValueError):
    def __init__(self, slug: str, message: str) -> None:
        super().__init__(message)
        self.slug = slug


_CURRENCY = re.compile(r"^(?:[A-Z]{3}|[$€£¥₹₩₽₺₪₫]|R\$|CHF|kr)\s*|\s*(?:[A-Z]{3}|[$€£¥₹₩₽₺₪₫]|CHF|kr)$")

# The common money shape with a decimal point (12345.67, 12,345.67, $12,345.67), the short way.
_PLAIN_NUMBER = re.compile(r"\$?(?:[1-9]\d{0,2}(?:,\d{3})+|\d+)(?:\.\d+)?")


def _strict_pattern(mark: str) -> re.Pattern[str]:
    """A number written with decimal mark ``mark``: digits grouped by three with one kind of
    thousands separator (the other mark, a space or an apostrophe), or not grouped at all."""
    other = {".": ",", ",": "."}[mark]
    sep = f"[{re.escape(other)} ']"
    return re.compile(
        rf"(?P<int>[1-9]\d{{0,2}}(?P<sep>{sep})\d{{3}}(?:(?P=sep)\d{{3}})*|\d*)"
        rf"(?:{re.escape(mark)}(?P<frac>\d+))?(?:[eE](?P<exp>[+-]?\d+))?"
    )


_STRICT = {mark: _strict_pattern(mark) for mark in (".", ",")}
_MARK_NAMES = {".": "a decimal point", ",": "a decimal comma"}


def _number(text: str, decimal: str | None = ".", bounds: tuple[float, float] | None = None) -> float | int:
    """'12,345.67', '$12,345.67', '1.234,56 €' (decimal ','), '(1,200)', '50%' (-> 0.5), exactly.

    ``decimal`` None: the column's decimal mark is not known, and a cell that reads as two
    different numbers ('1,500', '12.000') is an error, never a guess."""
    if decimal == "." and _PLAIN_NUMBER.fullmatch(text):  # the common shapes, the short way
        t = text.lstrip("$").replace(",", "")
        if len(t) - ("." in t) <= 15:  # a double holds 15 digits exactly: its shortest text is t's
            value = float(t)
            if bounds is None or bounds[0] <= value <= bounds[1]:
                return value if "." in t else int(value)
    return _any_number(text, decimal, bounds)


def _any_number(
    text: str, decimal: str | None = ".", bounds: tuple[float, float] | None = None
) -> float | int:
    """:func:`_number` for every shape it accepts (the reference; a test checks the short way).

    The arithmetic is decimal (``33.34%`` is 0.3334, not 0.33340000000000003); the value sent is
    the double whose shortest text is exactly the cell's number, or the cell is an error."""
    t = text.replace("\u00a0", " ").replace("\u202f", " ").strip()
    negative = t.startswith("(") and t.endswith(")")
    if negative:
        t = t[1:-1].strip()
    t = _CURRENCY.sub("", t).strip()
    if t.startswith("-") or t.startswith("+"):
        negative ^= t[0] == "-"
        t = _CURRENCY.sub("", t[1:]).strip()
    percent = t.endswith("%")
    if percent:
        t = t[:-1].strip()
    readings = {}
    for mark in (decimal,) if decimal else (".", ","):
        m = _STRICT[mark].fullmatch(t)
        if m is not None and (m["int"] or m["frac"]):
            digits = m["int"].replace(m["sep"], "") if m["sep"] else m["int"]
            number = Decimal(f"{digits or '0'}.{m['frac'] or '0'}e{m['exp'] or '0'}")
            readings[mark] = (number, bool(m["frac"] or m["exp"]))
    if not readings:
        raise _CellError("bad-number", f"{text!r} is not a number{_other_mark_hint(t, decimal)}")
    if bounds is not None:
        low, high = bounds
        sign = -1 if negative else 1
        scale = Decimal("0.01") if percent else Decimal(1)
        fit = {k: v for k, v in readings.items() if low <= sign * v[0] * scale <= high}
        if not fit:
            shown = _plain(sign * next(iter(readings.values()))[0] * scale)
            raise _CellError("bad-number", f"{text!r} is {shown}, outside {_range_text(bounds)}")
        readings = fit
    if len({n for n, _ in readings.values()}) > 1:
        point, comma = readings["."][0], readings[","][0]
        raise _CellError(
            "ambiguous-number",
            f"{text!r} reads as {_plain(point)} with a decimal point and as {_plain(comma)} with a "
            "decimal comma, "
            'and nothing in the column says which: set `decimal: "."` or `decimal: ","` for this field '
            "in the mapping",
        )
    value, fraction = next(iter(readings.values()))
    if negative:
        value = -value
    if percent:
        value, fraction = value.scaleb(-2), True
    return _exact(value, fraction, text)


def _range_text(bounds: tuple[float, float]) -> str:
    if bounds == (0.0, 1.0):
        return "0 to 1 (a share is a fraction: 0.5 or 50% is half)"
    return f"{bounds[0]:g} to {bounds[1]:g}"


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _other_mark_hint(core: str, decimal: str | None) -> str:
    if decimal is None:
        return ""
    other = "," if decimal == "." else "."
    m = _STRICT[other].fullmatch(core)
    if m is None or not (m["int"] or m["frac"]):
        return ""
    return (
        f" with {_MARK_NAMES[decimal]} (the mark this column uses); it reads as a number with "
        f"{_MARK_NAMES[other]}: check the cell, or the field's `decimal:` in the mapping"
    )


def _exact(value: Decimal, fraction: bool, text: str) -> float | int:
    """``value`` as the JSON number sent, which must be exactly ``value`` (SIRO keeps doubles)."""
    as_float = float(value)
    if not math.isfinite(as_float):
        raise _CellError("bad-number", f"{text!r} is not a finite number")
    if Decimal(repr(as_float)) != value:
        raise _CellError(
            "bad-number",
            f"{text!r} has more digits than SIRO keeps (numbers are 64-bit floating point, about 15 "
            f"significant digits): it would arrive as {as_float!r}; round it in the file",
        )
    return as_float if fraction or not as_float.is_integer() else int(value)


_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}


def _boolean(text: str) -> bool:
    low = text.casefold()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise _CellError("bad-boolean", f"{text!r} is not true/false (or yes/no, 1/0)")


_EXCEL_EPOCH = dt.datetime(1899, 12, 30)  # Excel's day 0 (1900 date system, with its leap-year bug)
_SERIAL = re.compile(r"^\d{1,6}(\.\d+)?$")


def _datetime(text: str, spec: DatetimeSpec, local: bool, zone: str | None = None) -> str:
    parsed: dt.datetime | None = None
    for fmt in spec.formats:
        try:
            parsed = dt.datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    if parsed is None and _SERIAL.match(text) and 1 <= float(text) < 2958466:  # an Excel serial number
        parsed = _EXCEL_EPOCH + dt.timedelta(days=float(text))
        parsed = parsed.replace(microsecond=0) + dt.timedelta(seconds=round(parsed.microsecond / 1e6))
    if parsed is None:
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            want = " or ".join(repr(f) for f in spec.formats) or "ISO 8601"
            raise _CellError("bad-datetime", f"{text!r} does not match {want}") from None
    zone_name = (zone or "").strip() or spec.timezone
    tz = _zone(zone_name) if zone_name else None
    if zone_name and tz is None:
        raise _CellError(
            "bad-timezone", f"unknown time zone {zone_name!r} (use an IANA name such as Europe/Berlin)"
        )
    if parsed.tzinfo is None:
        if tz is None:  # only startTimeLocalized may omit the zone: wall-clock in, wall-clock out
            return parsed.strftime("%Y-%m-%dT%H:%M:%S")
        early = parsed.replace(tzinfo=tz, fold=0)
        late = parsed.replace(tzinfo=tz, fold=1)
        if early.utcoffset() != late.utcoffset() and _exists(early, parsed, tz):
            if spec.ambiguous == "error":
                raise _CellError(
                    "bad-datetime",
                    f"{text!r} happens twice in {zone_name} (clocks go back an hour); the mapping says "
                    "`ambiguous: error`: give the time with its offset, or choose earlier/later",
                )
            aware = late if spec.ambiguous == "later" else early
        else:
            aware = early
        if not _exists(aware, parsed, tz):
            raise _CellError(
                "bad-datetime",
                f"{text!r} does not exist in {zone_name} "
                "(clocks skip that hour when daylight saving time starts)",
            )
    else:
        aware = parsed.astimezone(tz) if tz is not None else parsed
    if local:
        return aware.strftime("%Y-%m-%dT%H:%M:%S")
    return aware.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _exists(aware: dt.datetime, wall: dt.datetime, tz: dt.tzinfo) -> bool:
    """False for a wall-clock time in a spring-forward gap (it comes back as another time)."""
    return aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) == wall


def _list_order(k: Any) -> tuple[int, int]:
    return (1, k[1]) if isinstance(k, tuple) else (0, k)


def path_text(loc: Iterable[Any]) -> str:
    """('account', 'addresses', 0, 'zip') -> 'account.addresses[0].zip'."""
    out = ""
    for p in loc:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out
