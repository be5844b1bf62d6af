"""Map stage, parse: YAML text -> MappingSpec: a safe loader (no tags, bounded aliases), TODOs refused
with their lines, every problem reported at once with its line in the file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .. import rx
from ..errors import MappingError
from ..load import StopAt
from .spec import (
    INDEX_RE,
    INSTANTS,
    INVALID,
    MAP_DEFAULT,
    PATH_RE,
    DatetimeSpec,
    Field_,
    FieldSpec,
    MappingFile,
    MappingSpec,
    Scalar,
    StopAtRule,
    TargetKind,
    enum_member,
    path_tokens,
    zone_named,
)
from .yamlsafe import compose, construct, loc_text, todo_lines

Catalog = dict[str, TargetKind] | Callable[[str], dict[str, TargetKind]]  # or one by `resource`


def load_mapping(path: str | Path, catalog: Catalog) -> MappingSpec:
    """Read and validate a mapping file. Raises MappingError listing every problem with its line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise MappingError(str(p), ["file not found"]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(str(p), [f"cannot be read: {exc}"]) from exc
    return parse_mapping(text, catalog, str(p))


def parse_mapping(text: str, catalogs: Catalog, name: str = "<mapping>") -> MappingSpec:
    node = compose(text, name)
    places: dict[tuple[Any, ...], str] = {}
    problems: list[str] = []
    _index_places(node, (), places, problems)
    todos = todo_lines(node, ())
    if todos:  # a starter mapping with decisions left: say each one, before anything else
        raise MappingError(name, todos)
    mf = _validated(node, name, places, problems)
    catalog = catalogs(mf.resource) if callable(catalogs) else catalogs
    fields = _check_fields(mf, catalog, places, problems)
    _check_rules(mf, places, problems)
    if not problems:
        problems += _unsourced_requirements(fields, catalog, places)
    if problems:
        raise MappingError(name, problems)
    group_by = (mf.group_by,) if isinstance(mf.group_by, str) else tuple(mf.group_by or ())
    return MappingSpec(
        name,
        tuple(fields),
        mf.description,
        tuple(mf.header_rows) if mf.header_rows else mf.header_row,
        tuple(mf.skip),
        _fills(fields, catalog),
        group_by,
        mf.conflicts,
        mf.sheets if isinstance(mf.sheets, str | None) else tuple(mf.sheets),
        _stop_at(mf.stop_at),
        mf.resource,
    )


def _validated(
    node: yaml.Node, name: str, places: dict[tuple[Any, ...], str], problems: list[str]
) -> MappingFile:
    """The node tree as a MappingFile (the schema's problems raised at once, each with its line)."""
    try:
        data = construct(node)
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
        return MappingFile.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            problems.append(f"{_place(places, loc)}{loc_text(loc)}: {_schema_msg(err)}")
        raise MappingError(name, problems) from exc


def _check_rules(mf: MappingFile, places: dict[tuple[Any, ...], str], problems: list[str]) -> None:
    """`skip` and `stop_at`: one test each, and patterns RE2 takes; `header_rows`: two rows."""
    for i, rule in enumerate(mf.skip):
        where = places.get(("skip", i), "")
        if sum(x is not None for x in (rule.equals, rule.matches, rule.blank)) != 1:
            problems.append(f"{where}skip[{i}]: give exactly one of `equals`, `matches` or `blank`")
        if rule.matches is not None and _regex_problem(rule.matches):
            problems.append(f"{where}skip[{i}].matches: {_regex_problem(rule.matches)}")
    rows = mf.header_rows
    if rows is not None and (len(rows) != 2 or rows[0] < 1 or rows[1] != rows[0] + 1 or mf.header_row):
        problems.append(
            f"{places.get(('header_rows',), '')}header_rows: give the two rows of a header over two, as "
            "Excel numbers them, one after the other (e.g. [7, 8]), and no header_row beside it"
        )
    stop = mf.stop_at
    if stop is not None:
        where = places.get(("stop_at",), "")
        if (stop.equals is None) == (stop.matches is None):
            problems.append(f"{where}stop_at: give exactly one of `equals` or `matches`")
        elif stop.matches is not None and _regex_problem(stop.matches):
            problems.append(f"{where}stop_at.matches: {_regex_problem(stop.matches)}")


def _stop_at(rule: StopAtRule | None) -> StopAt | None:
    if rule is None:
        return None
    equals = (rule.equals,) if isinstance(rule.equals, str) else tuple(rule.equals or ())
    return StopAt(rule.column, equals, rule.matches)


def _regex_problem(pattern: str) -> str | None:
    return rx.problem(pattern)


# tags a mapping file may hold (YAML's core schema; a tag such as !!python/object is refused)
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
        key = INDEX_RE.sub("[]", obj)
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
            key = INDEX_RE.sub("[]", f.target.rsplit(".", 1)[0])
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
                    f"line {key_node.start_mark.line + 1}: {loc_text((*path, key))}: duplicate key"
                )
            seen.add(key)
            if type(value_node) is not yaml.ScalarNode:  # a scalar's place is its key's line
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

        kind = _target_kind(target, catalog, bad)
        if kind is None:
            continue
        key = INDEX_RE.sub("[]", target)
        _check_sources(spec, kind, key, target, bad)
        _check_transforms(spec, kind, key, target, mf, bad)
        _check_constants(spec, kind, bad)
        if spec.datetime is not None:
            _check_datetime(spec.datetime, kind, key, bad)
        if len(problems) == start:
            fields.append(Field_(target, path_tokens(target), kind, spec))
    if "externalId" not in mf.fields:
        problems.append(
            f"{places.get(('fields',), '')}fields: externalId must be mapped (it is SIRO's sync key)"
        )
    return fields


Bad = Callable[..., None]  # bad(message, *where in the field's YAML): one problem, with its line


def _target_kind(target: str, catalog: dict[str, TargetKind], bad: Bad) -> TargetKind | None:
    """What SIRO expects at ``target``; None (and a problem said) for a path SIRO does not have."""
    if not PATH_RE.match(target):
        bad("not a valid target path (use dots for nesting and [0] or [] for lists)")
        return None
    if re.search(r"\[\]\.", target):
        people = (
            "; or, for several people in one cell, map the whole cell to `engagementUsers[]`: "
            '`engagementUsers[]: {column: Participants, split: ";", parse: name_email}` makes one '
            "engagement user per person, with their email "
            '(docs/reference/mapping.md, "Several people in one cell")'
            if target.startswith("engagementUsers[].")
            else ""
        )
        bad(
            "`[]` (append) is for lists of values such as account.phoneNumbers[]; "
            "for lists of objects give the position, e.g. engagementUsers[0].email" + people
        )
        return None
    key = INDEX_RE.sub("[]", target)
    kind = catalog.get(key)
    if kind is None:
        close = difflib.get_close_matches(key, list(catalog), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        bad(f"unknown SIRO field{hint}")
    return kind


def _check_sources(spec: FieldSpec, kind: TargetKind, key: str, target: str, bad: Bad) -> None:
    """Where the value comes from, and the keys that shape the text (template, extract, split, pad,
    blank) against what the target takes."""
    sources = (spec.column is not None) + ("value" in spec.model_fields_set) + (spec.template is not None)
    if sources != 1:
        bad("needs exactly one of `column` (read from the file), `template` (several columns) or `value`")
    if spec.template is not None and not spec.template_columns:
        bad("`template` names no column; write columns in braces, e.g. '{First} {Last}'", "template")
    if spec.extract is not None and _regex_problem(spec.extract):
        bad(f"`extract`: {_regex_problem(spec.extract)}", "extract")
    if spec.split is not None and f"{INDEX_RE.sub('[]', target)}" == key and not target.endswith("[]"):
        bad("`split` makes several entries: the target must be a list of values ending in `[]`", "split")
    if spec.split == "":
        bad("`split` needs a separator such as ';'", "split")
    if spec.pad is not None and kind.kind != "string":
        bad(f"`pad` is for text fields; {key} is a {kind.kind}", "pad")
    if spec.blank == "null" and not kind.nullable:
        bad(f"`blank: null`: SIRO does not accept null for {key}", "blank")
    if spec.blank == "empty" and kind.kind != "string":
        bad(f'`blank: empty` sends "", which is only for text fields; {key} is a {kind.kind}', "blank")


def _check_constants(spec: FieldSpec, kind: TargetKind, bad: Bad) -> None:
    """`value`, `default` and every `map` value are values SIRO takes for the target."""
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


def _check_datetime(dt_spec: DatetimeSpec, kind: TargetKind, key: str, bad: Bad) -> None:
    if kind.kind != "string":
        bad(f"`datetime` applies to text fields; {key} is a {kind.kind}", "datetime")
    tz = dt_spec.timezone
    if tz is None and not kind.local_time and not dt_spec.timezone_column:
        bad(
            "`datetime` needs a `timezone` (the zone the file's times are in, e.g. America/New_York, or UTC)",
            "datetime",
        )
    elif tz is not None and zone_named(tz) is None:
        bad(
            f"unknown time zone {tz!r} (use an IANA name such as Europe/Berlin)",
            "datetime",
            "timezone",
        )
    for f in dt_spec.formats:
        if "%" not in f:
            bad(
                f"datetime format {f!r} has no % directives (e.g. '%m/%d/%Y %H:%M')",
                "datetime",
                "format",
            )


def _check_transforms(
    spec: FieldSpec, kind: TargetKind, key: str, target: str, mf: MappingFile, bad: Bad
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
        if kind.pattern is None and key not in INSTANTS:
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


def _check_constant(v: Scalar, kind: TargetKind) -> str | None:
    if kind.kind == "enum" and (not isinstance(v, str) or enum_member(v, kind) is None):
        return f"{v!r} is not one of {', '.join(kind.choices)}"
    if kind.kind == "number" and (isinstance(v, bool) or not isinstance(v, int | float)):
        return f"{v!r} is not a number"
    if kind.kind == "boolean" and not isinstance(v, bool):
        return f"{v!r} is not true/false"
    return None
