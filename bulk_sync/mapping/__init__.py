"""Map stage: mapping YAML -> validated spec; ``bind`` it to a file's headers; ``apply`` it to rows.

No I/O besides reading the mapping file itself. The spec is checked completely on load and every
problem is reported at once with its line in the YAML (see :class:`~bulk_sync.errors.MappingError`).
Target paths are checked against a *target catalog* supplied by the caller (the payload stage
derives it from its models), so this module does not depend on the payload models.

Mapping language v1 (documented in docs/reference/mapping.md)::

    version: 1
    fields:
      externalId: {column: Appointment ID, required: true}
      subject: Subject                                  # shorthand for {column: Subject}
      startTime: {column: Start, datetime: {format: "%m/%d/%Y %I:%M %p", timezone: America/Chicago}}
      engagementType.activityType: {column: Type, map: {Sales Meeting: MEETING}}
      engagementType.name: {value: Sales appointment}  # a constant
      account.addresses[0].city: City
      account.phoneNumbers[0]: Phone

The parts, one way (each imports only those listed before it):

    spec       the YAML schema (pydantic), Field_, MappingSpec, target paths, OMIT
    numbers    one number cell -> exact value (decimal marks, grouping, currency, percents)
    convert    ONE cell -> value | RowError: the reference semantics of every transform
    clock      date-time texts read by their day and time parts, each parsed once
    columns    a chunk's column at a time; must agree with convert (a property test holds it)
    yamlsafe   the YAML composed safely (no tags, bounded aliases); the TODOs a starter leaves
    parse      YAML text -> MappingSpec, every problem at once with its line
    binding    spec + headers -> BoundMapping, the payload's shape compiled once
    records    map_chunk / apply: a chunk -> MappedChunk (columns) and MappedRecords
    identity   externalIds, their digests, source fingerprints
    evidence   a number column's decimal mark, settled from its values
"""

from __future__ import annotations

from .binding import BoundMapping, bind
from .evidence import NumberEvidence
from .identity import external_ids, fingerprints, id_columns, id_digests
from .parse import load_mapping, parse_mapping
from .records import MappedChunk, MappedRecord, apply, field_values, map_chunk, share_memos
from .spec import OMIT, Field_, MappingSpec, TargetKind, path_text

__all__ = [
    "OMIT",
    "BoundMapping",
    "Field_",
    "MappedChunk",
    "MappedRecord",
    "MappingSpec",
    "NumberEvidence",
    "TargetKind",
    "apply",
    "bind",
    "external_ids",
    "field_values",
    "fingerprints",
    "id_columns",
    "id_digests",
    "load_mapping",
    "map_chunk",
    "parse_mapping",
    "path_text",
    "share_memos",
]
