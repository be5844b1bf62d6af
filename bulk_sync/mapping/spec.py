"""Map stage, spec: the mapping file's schema (pydantic models of the YAML), a field as the rest of the
stage sees it (Field_), the whole spec (MappingSpec), target paths and their tokens, and OMIT (a
field with nothing to send).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..load import StopAt

MAP_DEFAULT = "default"  # in a `map`: not a cell value but the value for every cell the map does not list


INVALID = "invalid"  # as a map's default: a cell the map does not list makes the row invalid


UNLISTED: Any = object()


_SEGMENT = r"[A-Za-z_][A-Za-z0-9_]*(?:\[\d*\])?"


PATH_RE = re.compile(rf"^{_SEGMENT}(?:\.{_SEGMENT})*$")


INDEX_RE = re.compile(r"\[\d*\]")


APPEND = -1  # token for `[]`


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


class DatetimeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    format: str | list[str] | None = None
    timezone: str | None = None
    timezone_column: str | None = None  # a per-row IANA zone; `timezone` is the fallback for blanks
    # a local time in the hour repeated when clocks go back: by default the row is invalid
    # (`ambiguous-datetime`); `earlier` or `later` sends that instant
    ambiguous: Literal["earlier", "later", "error"] = "error"

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
        """The map's value for cells it does not list (its ``default`` key); ``UNLISTED`` when none."""
        if self.map is None or MAP_DEFAULT not in self.map:
            return UNLISTED
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
    header_rows: list[int] | None = None  # a header over two rows, e.g. [7, 8]: one name per column
    sheets: str | list[str] | None = None  # workbook sheets to read: a name, position, glob, "*", or a list
    stop_at: StopAtRule | None = None
    skip: list[SkipRule] = []
    group_by: str | list[str] | None = None  # rows sharing these columns become one engagement
    conflicts: Literal["error", "first", "last"] = "error"  # a scalar that differs inside a group
    resource: Literal["engagements", "opportunities"] = "engagements"  # what each row becomes in SIRO
    fields: dict[str, FieldSpec]


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
    header_row: int | tuple[int, ...] | None = None  # a pair: the rows of a header over two
    skip: tuple[SkipRule, ...] = ()
    fills: tuple[tuple[tuple[str | int, ...], tuple[str, ...]], ...] = ()  # address objects -> parts
    group_by: tuple[str, ...] = ()
    conflicts: str = "error"
    sheets: str | tuple[str, ...] | None = None
    stop_at: StopAt | None = None
    resource: str = "engagements"

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


INSTANTS = frozenset({"startTime", "endTime", "remoteCreatedAt", "remoteUpdatedAt"})


def path_tokens(target: str) -> tuple[str | int, ...]:
    out: list[str | int] = []
    for seg in target.split("."):
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d*)\])?$", seg)
        assert m is not None
        out.append(m.group(1))
        if m.group(2) is not None:
            out.append(int(m.group(2)) if m.group(2) else APPEND)
    return tuple(out)


def zone_named(name: str) -> dt.tzinfo | None:
    if name.upper() in {"UTC", "Z"}:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def enum_member(value: str, kind: TargetKind) -> str | None:
    norm = value.strip().casefold()
    return next((c for c in kind.choices if c.casefold() == norm), None)


def loose_name(name: str) -> str:
    return " ".join(name.split()).casefold()


OMIT = object()


# OMIT: a field with nothing to send for a row (its cell was blank, or bad)


def list_order(k: Any) -> tuple[int, int]:
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
