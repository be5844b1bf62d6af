"""Payload stage: a mapped record -> a validated SIRO "Sync an engagement" body, or row errors.

The pydantic v2 models mirror ``EngagementSyncInput`` of the provider's OpenAPI spec
(a copy ships as ``siro-openapi.yaml``): every field, nested object, enum, required and nullable
rule. Fields that were not set are omitted from the JSON (``exclude_unset``); ``null`` is sent
only where the spec allows it and the mapping asked for it.

The only home of pydantic *validation of payloads*; its errors are translated here into
:class:`~bulk_sync.errors.RowError` values naming the spreadsheet column.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Iterable
from itertools import cycle, repeat
from json.encoder import encode_basestring  # the C one, when present
from operator import is_not, itemgetter
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import to_json

from .errors import RowError
from .mapping import OMIT, MappedChunk, MappedRecord, TargetKind, path_text

# Optional-but-not-nullable fields default to this (None, never validated, never dumped because
# exclude_unset drops it). Sending an explicit null for such a field is a validation error.
_UNSET: Any = None

Direction = Literal["INBOUND", "OUTBOUND"]
ActivityType = Literal[
    "MEETING", "CALL", "APPOINTMENT", "EMAIL", "TEXT", "EVENT", "SIRO_EVENT", "SIRO_BOT_RECORDING"
]
Disposition = Literal["OPEN", "LOST", "WON"]
# The spec's `format: date-time` (RFC 3339), as Zod's .datetime() checks it.
DateTime = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")]

# Numbers with a range: a latitude of 41,947 or a share of sale of 50 (= 5,000 %) is a wrong value,
# and the range also settles a cell such as "41.947" that could be read with either decimal mark.
NUMBER_RANGES = {"latitude": (-90.0, 90.0), "longitude": (-180.0, 180.0), "shareOfSale": (0.0, 1.0)}

# Fields that hold an email address: SIRO links engagement users to its own users by email, so a
# malformed one silently loses the recording match (checked as `bad-email`).
EMAIL_TARGETS = frozenset({"email", "emailAddresses"})

# Fields whose text is an instant; a mapping's `datetime:` on them yields UTC `...Z`.
# startTimeLocalized is the exception: local wall-clock time without a zone.
LOCAL_DATETIME_TARGETS = frozenset({"startTimeLocalized"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Address(_Model):
    country: str
    street: str
    city: str
    state: str
    zip: str


class RecordOwnerRef(_Model):
    externalId: str


class _PartyCommon(_Model):
    latitude: float = _UNSET
    longitude: float = _UNSET
    addresses: list[Address] = _UNSET
    phoneNumbers: list[str] = _UNSET
    emailAddresses: list[str] = _UNSET
    lastActivityAt: str = _UNSET
    deletedAt: DateTime | None = _UNSET
    owner: RecordOwnerRef | None = _UNSET
    mergedToExternalId: str = _UNSET
    mergedFromExternalIds: list[str] = _UNSET


class AccountInput(_PartyCommon):
    externalId: str = _UNSET
    name: str = _UNSET


class LeadInput(_PartyCommon):
    externalId: str
    firstName: str = _UNSET
    lastName: str = _UNSET


class ContactInput(_PartyCommon):
    externalId: str
    name: str = _UNSET
    account: AccountInput | None = _UNSET


class EngagementTypeInput(_Model):
    externalId: str = _UNSET
    name: str
    activityType: ActivityType


class SyncUserInput(_Model):
    externalId: str
    email: str = _UNSET
    shareOfSale: float = _UNSET
    name: str = _UNSET
    deletedAt: DateTime | None = _UNSET


class EngagementOpportunityInput(_Model):
    externalId: str
    name: str = _UNSET
    amount: float = _UNSET
    closedAt: str = _UNSET
    remoteCreatedAt: str = _UNSET
    lastActivityAt: str = _UNSET
    disposition: Disposition = _UNSET
    copyEngagementRelationships: bool = _UNSET


class EngagementSyncInput(_Model):
    externalId: str
    direction: Direction | None = _UNSET
    content: str | None = _UNSET
    subject: str | None = _UNSET
    startTime: str | None = _UNSET
    startTimeLocalized: str | None = _UNSET
    endTime: str | None = _UNSET
    remoteCreatedAt: str | None = _UNSET
    remoteUpdatedAt: str | None = _UNSET
    deletedAt: DateTime | None = _UNSET
    engagementTypeId: str | None = _UNSET
    engagementType: EngagementTypeInput | None = _UNSET
    account: AccountInput | None = _UNSET
    engagementUsers: list[SyncUserInput] = _UNSET
    opportunity: EngagementOpportunityInput | None = _UNSET
    lead: LeadInput | None = _UNSET
    contact: ContactInput | None = _UNSET


class Payload:
    """A validated body ready to send: ``raw`` is its compact UTF-8 JSON, made once by pydantic-core."""

    __slots__ = ("_body", "external_id", "raw")

    def __init__(self, external_id: str, body: dict[str, Any] | None, raw: bytes) -> None:
        self.external_id = external_id
        self._body = body
        self.raw = raw

    @property
    def body(self) -> dict[str, Any]:
        """The body as a dict (parsed from ``raw`` on first use: most payloads never need it)."""
        if self._body is None:
            self._body = json.loads(self.raw)
        return self._body


_VALIDATE = EngagementSyncInput.__pydantic_validator__.validate_python
_TO_JSON = EngagementSyncInput.__pydantic_serializer__.to_json


def build(record: MappedRecord) -> Payload | list[RowError]:
    """Validate a mapped record; return the payload, or every problem as a row error."""
    if record.errors:
        return list(record.errors)
    try:
        model = _VALIDATE(record.values)
    except ValidationError as exc:
        return [_row_error(e, record) for e in exc.errors(include_url=False)]
    return Payload(model.externalId, None, _TO_JSON(model, exclude_unset=True))


def _row_error(err: Any, record: MappedRecord) -> RowError:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
    where = path_text(loc)
    column = record.sources.get(where) or record.targets.get(where)
    kind = err["type"]
    if kind == "missing":
        slug = "missing-value"
        parent = where.rsplit(".", 1)[0] if "." in where else "the record"
        msg = f"{where} is required when {parent} is sent"
        msg += ", but this cell is empty" if column else "; the mapping gives no value for it"
    elif kind == "literal_error":
        slug = "invalid-enum"
        msg = f"{where}: {err['msg']}, got {err.get('input')!r}"
    elif kind == "string_pattern_mismatch":
        slug = "bad-datetime"
        msg = (
            f"{where}: expected an ISO 8601 date-time such as 2024-06-13T15:00:00Z, got {err.get('input')!r}"
        )
    else:
        slug = "invalid-field"
        msg = f"{where}: {err['msg']}"
    return RowError(slug, msg, column)


# --------------------------------------------------------------------------- target catalog


def target_catalog() -> dict[str, TargetKind]:
    """Every leaf path a mapping may target, with its kind, derived from the models above.

    List positions are written ``[]``: ``account.addresses[].city``, ``account.phoneNumbers[]``.
    ``engagementUsers[]`` is also a target of its own: a list of people made from one cell
    (``Ann Lee <ann@x.com>; Bo Chen <bo@x.com>``), each becoming ``{externalId, email, name}``.
    """
    out: dict[str, TargetKind] = {}
    _walk(EngagementSyncInput, "", out)
    out["engagementUsers[]"] = TargetKind("people")
    return out


def _walk(model: type[BaseModel], prefix: str, out: dict[str, TargetKind]) -> None:
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        _add(info.annotation, path, info.is_required(), out, name)


def _add(ann: Any, path: str, required: bool, out: dict[str, TargetKind], name: str) -> None:
    nullable = False
    args = typing.get_args(ann)
    if typing.get_origin(ann) in (typing.Union, types.UnionType) and type(None) in args:
        nullable = True
        ann = next(a for a in args if a is not type(None))
    pattern = None
    if typing.get_origin(ann) is Annotated:
        pattern = next((m.pattern for m in ann.__metadata__ if getattr(m, "pattern", None)), None)
        if pattern is None:
            pattern = next(
                (
                    x.pattern
                    for m in ann.__metadata__
                    for x in getattr(m, "metadata", ())
                    if getattr(x, "pattern", None)
                ),
                None,
            )
        ann = typing.get_args(ann)[0]
    if typing.get_origin(ann) is list:
        (item,) = typing.get_args(ann)
        _add(item, f"{path}[]", False, out, name)
        return
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        _walk(ann, f"{path}.", out)
        return
    if typing.get_origin(ann) is Literal:
        out[path] = TargetKind("enum", nullable, required, tuple(typing.get_args(ann)))
    elif ann is float:
        out[path] = TargetKind("number", nullable, required, bounds=NUMBER_RANGES.get(name))
    elif ann is bool:
        out[path] = TargetKind("boolean", nullable, required)
    else:
        out[path] = TargetKind(
            "string",
            nullable,
            required,
            local_time=name in LOCAL_DATETIME_TARGETS,
            pattern=pattern,
            email=name in EMAIL_TARGETS,
        )


# --------------------------------------------------------------------------- a chunk at a time

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
            built = build(mc.record(i))
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
        return build(self.mc.record(i))

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
            self._frags = [_fragments(col, f.kind) for f, col in zip(fields, self.mc.cols, strict=True)]
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
            for part in _template(self.mc, tuple(f[picked[0]] is not None for f in frags)):
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
    o = OMIT
    if kind.kind == "people":  # engagement users made from one cell: a tuple of plain dicts
        return [_ABSENT if v is o else _GOOD if type(v) is tuple else _ODD for v in col]
    if kind.kind == "string" and kind.pattern is None:
        return [
            _ABSENT if v is o else _GOOD if type(v) is str else _NULL if v is None else _many(v) for v in col
        ]
    if kind.kind == "enum":
        choices = frozenset(kind.choices)
        return [_ABSENT if v is o else _NULL if v is None else _GOOD if v in choices else _ODD for v in col]
    if kind.kind == "number":
        return [
            _ABSENT
            if v is o
            else _GOOD
            if type(v) is float or type(v) is int
            else _NULL
            if v is None
            else _ODD
            for v in col
        ]
    if kind.kind == "boolean":
        return [
            _ABSENT if v is o else _GOOD if type(v) is bool else _NULL if v is None else _ODD for v in col
        ]
    assert kind.pattern is not None
    rx = re.compile(kind.pattern)
    return [
        _ABSENT if v is o else _NULL if v is None else _GOOD if type(v) is str and rx.fullmatch(v) else _ODD
        for v in col
    ]


def _many(v: Any) -> int:
    """A `split` cell: a tuple of texts."""
    return _GOOD if type(v) is tuple and all(type(e) is str for e in v) else _ODD


def _fragments(col: list[Any], kind: TargetKind) -> list[str | None]:
    """Each value's JSON text (None where nothing is sent), as pydantic-core writes it."""
    o = OMIT
    if kind.kind == "people":  # the users' objects, joined: the list's brackets are the template's
        return [None if v is o else ",".join(_person_json(p) for p in v) for v in col]
    if kind.kind in ("string", "enum"):
        esc = encode_basestring
        return [
            None if v is o else esc(v) if type(v) is str else "null" if v is None
            else ",".join(esc(e) for e in v) if type(v) is tuple else _scalar_json(v)
            for v in col
        ]  # fmt: skip
    memo: dict[Any, str | None] = {}
    out: list[str | None] = []
    for v in col:
        if v is o:
            out.append(None)
            continue
        key = (type(v), v)
        text = memo.get(key)
        if text is None:
            text = memo[key] = _scalar_json(float(v) if kind.kind == "number" and v is not None else v)
        out.append(text)
    return out


_PERSON_KEYS = [k for k in SyncUserInput.model_fields if k in ("externalId", "email", "name")]


def _person_json(person: dict[str, str]) -> str:
    """One engagement user as pydantic writes it: the model's field order."""
    return "{" + ",".join(f'"{k}":{encode_basestring(person[k])}' for k in _PERSON_KEYS if k in person) + "}"


def _scalar_json(v: Any) -> str:
    return to_json(v).decode()


_MARK = re.compile("\x00([0-9]+)\x01")


MAX_TEMPLATES = 4096  # shapes remembered (a template is a few hundred bytes to a few kB)


def _template(mc: MappedChunk, present: tuple[bool, ...]) -> list[str | int]:
    """The body of a row that fills the fields ``present``, as literal texts and field indices.

    Made once per shape: the body is written with a marker where each field's value goes, then cut
    at the markers.
    """
    cache = mc.bound.cache.setdefault("json_templates", {})
    found: list[str | int] | None = cache.get(present)
    if found is None:
        if len(cache) >= MAX_TEMPLATES:  # every shape its own: start over (bounds memory)
            cache.clear()
        filled = {tuple(prefix[:-1]): parts for prefix, parts in mc.bound.spec.fills}
        marked = _marked(mc.bound.plan.root, EngagementSyncInput, (), (), present, filled) or "{}"
        parts = _MARK.split(marked)  # text, index, text, index, ..., text
        found = cache[present] = [
            int(part) if odd else part for odd, part in zip(cycle((False, True)), parts) if odd or part
        ]
    return found


def _marked(
    node: Any,
    model: Any,
    path: tuple[Any, ...],
    fill: tuple[str, ...],
    present: tuple[bool, ...],
    filled: dict[tuple[Any, ...], tuple[str, ...]],
) -> str | None:
    """The JSON of ``node`` with a marker for each present field (None when nothing is sent): keys
    in the models' field order, empty objects and lists left out, address parts filled with ""
    (as :func:`~bulk_sync.mapping` does for the dict it validates)."""
    if node.kind == "leaf":
        return f"\x00{node.column}\x01" if present[node.column] else None
    if node.kind == "list":
        entries = [
            _marked(child, model, path, filled.get(path, ()) if child.kind == "obj" else (), present, filled)
            for _, child in node.children
        ]
        sent = [e for e in entries if e is not None]
        return "[" + ",".join(sent) + "]" if sent else None
    order = list(model.model_fields)
    kids = sorted(node.children, key=lambda kc: order.index(kc[0]))
    values = {
        key: _marked(child, _child_model(model, key), (*path, key), (), present, filled)
        for key, child in kids
    }
    if fill:  # an address: once any part has a value, every required part is sent ("" if empty)
        keys = order if any(v is not None for v in values.values()) else []
        texts = [values.get(key) or ('""' if key in fill else None) for key in keys]
    else:
        keys = [key for key, _ in kids]
        texts = [values[key] for key in keys]
    parts = [json.dumps(key) + ":" + text for key, text in zip(keys, texts, strict=True) if text is not None]
    return "{" + ",".join(parts) + "}" if parts else None


def _child_model(model: Any, key: str) -> Any:
    """The model (or list item model) behind ``key`` of ``model``; None for scalars."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    ann = model.model_fields[key].annotation
    while True:
        args = typing.get_args(ann)
        if typing.get_origin(ann) in (typing.Union, types.UnionType):
            ann = next(a for a in args if a is not type(None))
        elif typing.get_origin(ann) in (list, Annotated):
            ann = args[0]
        else:
            return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
