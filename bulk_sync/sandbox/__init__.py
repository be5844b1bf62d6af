"""Sandbox: a SIRO-compatible emulator of the sync endpoints, on 127.0.0.1, with fault injection.

It behaves like the External API as far as bulk_sync can tell: bearer-token check (401 with
``{"error": ...}``), the request body validated against the provider's OpenAPI schema (shipped as
``siro-openapi.yaml``) with SIRO-style ``422 {"name": "ZodError", "issues": [...]}`` answers, upsert
by externalId, ``GET /v1/core/auth/caller-identity``, ``GET /v1/integrations/engagements?externalId=``,
and both the single and the batch sync endpoints. A batch is validated whole and stored
all-or-nothing (the real API does not document this; it is the strictest reading).

Fault injection (:class:`Faults`) makes it misbehave on purpose: latency, 5xx, 429 with and
without Retry-After, connections dropped before or after the record is stored, slow answers,
and a real per-minute rate limit. ``GET /_sandbox/stats`` tells what it received.

Not part of the pipeline; nothing in the stages imports it. ``run --sandbox`` starts it in a thread.

The parts, one way: ``schema`` (the shipped OpenAPI file as JSON Schema validators, and SIRO's
422 issue shapes), ``app`` (the emulator: faults, limiter kinds, upserts by externalId),
``kept`` (what it holds, in a JSON file between a rehearsal's runs), ``server`` (on a thread for
tests and --sandbox, or in the foreground for `bulk-sync sandbox`).
"""

from __future__ import annotations

from .app import Faults, Sandbox, SandboxState
from .kept import KeptError
from .more import user_record
from .schema import load_validators, zod_issues
from .server import SandboxServer, serve_forever

__all__ = [
    "Faults",
    "KeptError",
    "Sandbox",
    "SandboxServer",
    "SandboxState",
    "load_validators",
    "serve_forever",
    "user_record",
    "zod_issues",
]
