"""Upload stage: validated payloads -> SIRO's External API -> one :class:`Outcome` per record.

The only home of httpx and of the aiohttp client under it. Responsibilities:

* :class:`AiohttpTransport`, a lean ``httpx.AsyncBaseTransport`` on one aiohttp session. httpx
  stays the client API (``httpx.Request``/``Response``/exceptions, ``MockTransport`` in tests);
  aiohttp does the connection pooling, which httpx's own pool does badly above ~16 connections.
  aiohttp's exceptions are translated to httpx's here and nowhere else.
* retries on named conditions only (408, 429, 5xx, timeouts, dropped connections), capped
  exponential backoff with full jitter, bounded by attempts and elapsed time per request; 429s are
  flow control, bounded by time only, and steer the shared :class:`~bulk_sync.pace.Pacer`;
* :func:`classify` turns a status into a verdict, in one small table;
* batches: a 422 whose issues carry array indexes rejects those records and resends the rest; a
  400/413 without usable indexes is bisected until the bad records are isolated; a 413 lowers the
  batch size for the rest of the run; results are matched back by externalId, not by order;
* 401/403 raise :class:`~bulk_sync.errors.AuthError`; a tripped circuit breaker raises
  :class:`~bulk_sync.errors.ServerUnavailable`.

Messages name the URL path only, never headers or query strings.

The parts, one way: ``answers`` (what an answer means: classify, SIRO's error shapes,
Retry-After, backoff, the outcome of a record), ``retries`` (one request's retries, counted and
timed alike for the sync and SIRO's other calls), ``transport`` (the aiohttp transport under
httpx's API, and the moment a body leaves), ``uploader`` (requests, retries, batches, 422 indexes,
bisecting, 413, the pre-flight), ``calls`` (SIRO's users, the mirror's soft-delete, deletes).
"""

from __future__ import annotations

from .answers import Outcome, Verdict, backoff_delay, classify, error_details, parse_retry_after
from .transport import SENT, AiohttpTransport, Transport
from .uploader import PREFLIGHT_TRIES, Uploader

__all__ = [
    "PREFLIGHT_TRIES",
    "SENT",
    "AiohttpTransport",
    "Outcome",
    "Transport",
    "Uploader",
    "Verdict",
    "backoff_delay",
    "classify",
    "error_details",
    "parse_retry_after",
]
