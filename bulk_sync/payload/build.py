"""Payload stage, build: one mapped record -> a validated Payload (its body, its JSON), or the row
errors pydantic's errors translate to, naming the spreadsheet column.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from ..errors import RowError
from ..mapping import MappedRecord, path_text
from .models import MODELS


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


# per resource: its model's validator and JSON serializer (pydantic-core's, called directly)
_CODECS = {
    resource: (model.__pydantic_validator__.validate_python, model.__pydantic_serializer__.to_json)
    for resource, model in MODELS.items()
}


def build(record: MappedRecord, resource: str = "engagements") -> Payload | list[RowError]:
    """Validate a mapped record as a ``resource`` body; return the payload, or every problem as a
    row error."""
    if record.errors:
        return list(record.errors)
    validate, to_json = _CODECS[resource]
    try:
        model = validate(record.values)
    except ValidationError as exc:
        return [_row_error(e, record) for e in exc.errors(include_url=False)]
    return Payload(model.externalId, None, to_json(model, exclude_unset=True))


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
