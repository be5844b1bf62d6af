"""Payload stage: a mapped record -> a validated SIRO "Sync an engagement" body, or row errors.

The pydantic v2 models mirror ``EngagementSyncInput`` of the provider's OpenAPI spec
(a copy ships as ``siro-openapi.yaml``): every field, nested object, enum, required and nullable
rule. Fields that were not set are omitted from the JSON (``exclude_unset``); ``null`` is sent
only where the spec allows it and the mapping asked for it.

The only home of pydantic *validation of payloads*; its errors are translated here into
:class:`~bulk_sync.errors.RowError` values naming the spreadsheet column.

The parts, one way: ``models`` (the pydantic models and the target catalog the mapping is checked
against), ``build`` (one record -> Payload), ``encode`` (a body's JSON from columns, a shape at a
time), ``check`` (a chunk's rows -> valid bodies or row errors).
"""

from __future__ import annotations

from .build import Payload, build
from .check import CheckedChunk, check_chunk
from .models import EngagementSyncInput, target_catalog

__all__ = ["CheckedChunk", "EngagementSyncInput", "Payload", "build", "check_chunk", "target_catalog"]
