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
import types
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import RowError
from .mapping import MappedRecord, TargetKind, path_text

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
    """
    out: dict[str, TargetKind] = {}
    _walk(EngagementSyncInput, "", out)
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
    if typing.get_origin(ann) is Annotated:
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
        out[path] = TargetKind("number", nullable, required)
    elif ann is bool:
        out[path] = TargetKind("boolean", nullable, required)
    else:
        out[path] = TargetKind("string", nullable, required, local_time=name in LOCAL_DATETIME_TARGETS)
