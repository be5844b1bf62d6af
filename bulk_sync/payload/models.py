"""Payload stage, models: the pydantic v2 models of SIRO's EngagementSyncInput and
OpportunitySyncInput (every field, enum, required and nullable rule of the spec), and the catalog of
target paths the mapping is checked against.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..mapping import TargetKind

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


class OpportunityContactInput(ContactInput):
    isPrimary: bool = _UNSET


class OpportunitySyncInput(_Model):
    externalId: str
    name: str = _UNSET
    amount: float = _UNSET
    closedAt: str = _UNSET
    remoteCreatedAt: str = _UNSET
    lastActivityAt: str = _UNSET
    deletedAt: DateTime | None = _UNSET
    disposition: Disposition = _UNSET
    accountId: str | None = _UNSET
    account: AccountInput | None = _UNSET
    contact: ContactInput | None = _UNSET
    opportunityContacts: list[OpportunityContactInput] = _UNSET
    opportunityUsers: list[SyncUserInput] = _UNSET


# what a mapping's `resource:` may name: its body's model, and its list of people (one cell each)
MODELS: dict[str, type[_Model]] = {"engagements": EngagementSyncInput, "opportunities": OpportunitySyncInput}
PEOPLE = {"engagements": "engagementUsers", "opportunities": "opportunityUsers"}


def target_catalog(resource: str = "engagements") -> dict[str, TargetKind]:
    """Every leaf path a mapping of ``resource`` may target, with its kind, from the models above.

    List positions are written ``[]``: ``account.addresses[].city``, ``account.phoneNumbers[]``.
    ``engagementUsers[]`` (``opportunityUsers[]``) is also a target of its own: a list of people
    made from one cell (``Ann Lee <ann@x.com>; Bo Chen <bo@x.com>``), each becoming
    ``{externalId, email, name}``.
    """
    out: dict[str, TargetKind] = {}
    _walk(MODELS[resource], "", out)
    out[PEOPLE[resource] + "[]"] = TargetKind("people")
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


def child_model(model: Any, key: str) -> Any:
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
