"""Sandbox, app: the emulator itself: the token check, schema validation with SIRO-style 422s, upserts
by externalId, injected faults (5xx, 429, dropped connections, latency) and the limiter kinds (token
bucket, sliding and fixed windows).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import gc
import json
import math
import random
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from .gateway import Gateway
from .more import Extras
from .schema import load_validators, validator_for, zod_issues


@dataclass
class Faults:
    """What the sandbox does wrong, on purpose. Probabilities are per request (0..1)."""

    latency: float = 0.0  # seconds added to every sync answer
    preflight_latency: float = 0.0  # seconds before answering the token check (caller-identity)
    delete_latency: float = 0.0  # seconds between deleting a record (DELETE by id) and answering
    error_5xx: float = 0.0
    throttle: float = 0.0  # 429 with Retry-After
    throttle_bare: float = 0.0  # 429 without Retry-After
    retry_after: float = 1.0  # the Retry-After value, seconds
    drop_before: float = 0.0  # close the connection before storing anything
    drop_after: float = 0.0  # store the record(s), then close without answering
    slow: float = 0.0  # store, then answer only after `slow_seconds`
    slow_seconds: float = 5.0
    rate_per_min: int | None = None  # a real rate limit, like SIRO's 1000/min/token
    # how the limit is kept (SIRO documents none of this):
    #   sliding: at most rate_per_min * window/60 requests in any `rate_window` seconds
    #   fixed:   the same count per window, the windows starting on the clock (each minute at :00)
    #   bucket:  a token bucket of `rate_burst` tokens, refilled at rate_per_min/60 per second,
    #            starting full (burst 1 is the strictest: requests must come at least 60/rate s apart)
    limiter: Literal["sliding", "fixed", "bucket"] = "sliding"
    rate_window: float = 60.0  # sliding and fixed: the window, seconds
    rate_burst: int = 1  # bucket: its size
    rate_retry_after: bool = False  # whether the limit's 429s carry Retry-After (whole seconds, rounded up)
    max_body_bytes: int = 10 * 1024 * 1024
    max_batch: int | None = None  # longer batches get 413
    work_per_record: float = 0.0  # seconds of work a record takes (requests run side by side)
    gateway_timeout: float | None = None  # 504 after this many seconds; the records are stored anyway
    reject_pattern: str | None = None  # externalIds matching this regex are refused (a server-side rule)
    reject_status: int = 422  # 422 with indexed Zod issues, or 400 {"error"} with no index
    shuffle: bool = False  # answer batch results in another order than sent
    validate: bool = True
    seed: int | None = None
    users_page: int = 100  # GET /v1/core/users: users per page (the rest behind `cursor`)


@dataclass
class SandboxState:
    """What the sandbox holds and has seen. Read it after a run (or via /_sandbox/stats)."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # externalId -> last payload
    opportunities: dict[str, dict[str, Any]] = field(default_factory=dict)  # the same, for opportunities
    writes: Counter[str] = field(default_factory=Counter)  # externalId -> times stored
    responses: Counter[int] = field(default_factory=Counter)  # HTTP status -> count
    requests: int = 0  # sync requests
    identity_requests: int = 0  # GET caller-identity (the pre-flight)
    dropped: int = 0
    rate_limited: int = 0  # 429s from the rate limit (not from fault injection)
    gateway_timeouts: int = 0  # 504s of the gateway (their records were stored all the same)
    batch_lengths: list[int] = field(default_factory=list)  # records in each batch request, in order
    first_write: float | None = None  # monotonic time of the first and last stored record
    last_write: float | None = None
    ids: dict[str, str] = field(default_factory=dict)  # externalId -> sandbox id
    calls: Counter[str] = field(default_factory=Counter)  # users / soft-delete-removed / delete -> count
    soft_deleted: dict[str, str] = field(default_factory=dict)  # externalId -> when (soft-delete-removed)
    soft_delete_calls: list[dict[str, Any]] = field(default_factory=list)  # their bodies
    deleted: list[str] = field(default_factory=list)  # externalIds deleted by DELETE

    def stats(self) -> dict[str, Any]:
        return {
            "records": len(self.records),
            "writes": sum(self.writes.values()),
            "requests": self.requests,
            "identity_requests": self.identity_requests,
            "dropped": self.dropped,
            "rate_limited": self.rate_limited,
            "write_span": (self.last_write - self.first_write)
            if self.first_write and self.last_write
            else 0.0,
            "responses": {str(k): v for k, v in sorted(self.responses.items())},
            "calls": dict(self.calls),
            "soft_deleted": len(self.soft_deleted),
            "deleted": len(self.deleted),
            "gateway_timeouts": self.gateway_timeouts,
            "rewritten": sum(1 for n in self.writes.values() if n > 1),  # records stored more than once
        }


class Sandbox:
    """The aiohttp application and its state."""

    def __init__(
        self, token: str, faults: Faults | None = None, users: list[dict[str, Any]] | None = None
    ) -> None:
        self.token = token
        self.users = users  # SIRO's users (GET /v1/core/users); None: the endpoint answers 404
        self.faults = faults or Faults()
        self.state = SandboxState()
        self._rng = random.Random(self.faults.seed)
        self._window: deque[float] = deque()  # sliding: arrival times in the window
        self._tokens = 0.0  # bucket: its tokens ...
        self._bucket_at: float | None = None  # ... when they were counted (None: not yet, it starts full)
        self._fixed_index, self._fixed_count = -1, 0  # fixed: the current window, requests in it
        self._one, self._many = load_validators()
        self._opportunity = (
            validator_for("OpportunitySyncInput"),
            validator_for("OpportunitySyncInput", array=True),
        )
        self._lock = threading.Lock()
        self.gateway = Gateway(self.faults.work_per_record, self.faults.gateway_timeout)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.faults.max_body_bytes + 1024)
        app.router.add_put("/v1/integrations/sync/engagements", self._sync_one)
        app.router.add_put("/v1/integrations/sync/batch/engagements", self._sync_batch)
        app.router.add_get("/v1/core/auth/caller-identity", self._identity)
        app.router.add_get("/v1/integrations/engagements", self._list)
        app.router.add_put("/v1/integrations/sync/opportunities", self._sync_opportunity)
        app.router.add_put("/v1/integrations/sync/batch/opportunities", self._sync_opportunities)
        app.router.add_get("/_sandbox/stats", self._stats)
        Extras(self).routes(app)
        return app

    # -- handlers ------------------------------------------------------------------

    async def _identity(self, request: web.Request) -> web.StreamResponse:
        self.state.identity_requests += 1
        if self.faults.preflight_latency:
            await asyncio.sleep(self.faults.preflight_latency)
        if (denied := self._auth(request)) is not None:
            return denied
        return web.json_response(
            {
                "data": {
                    "organizationId": "org_sandbox",
                    "type": "organization-api-token",
                    "name": "bulk_sync sandbox",
                }
            }
        )

    async def _list(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._auth(request)) is not None:
            return denied
        ext = request.query.get("externalId")
        items = [self._engagement(e) for e in self.state.records if ext is None or e == ext]
        return web.json_response({"data": items[:100], "hasNextPage": len(items) > 100, "total": len(items)})

    async def _stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.state.stats())

    async def _sync_one(self, request: web.Request) -> web.StreamResponse:
        return await self._sync(request, batch=False)

    async def _sync_batch(self, request: web.Request) -> web.StreamResponse:
        return await self._sync(request, batch=True)

    async def _sync_opportunity(self, request: web.Request) -> web.StreamResponse:
        return await self._sync(request, batch=False, opportunities=True)

    async def _sync_opportunities(self, request: web.Request) -> web.StreamResponse:
        return await self._sync(request, batch=True, opportunities=True)

    async def _sync(
        self, request: web.Request, *, batch: bool, opportunities: bool = False
    ) -> web.StreamResponse:
        self.state.requests += 1
        resp = await self._answer(request, batch=batch, opportunities=opportunities)
        if resp is not None:
            self.state.responses[resp.status] += 1
        return resp if resp is not None else web.Response(status=499)

    async def _answer(
        self, request: web.Request, *, batch: bool, opportunities: bool = False
    ) -> web.StreamResponse | None:
        f = self.faults
        if (denied := self._auth(request)) is not None:
            return denied
        if (limited := self._limited()) is not None:
            return limited
        kind = self._pick_fault()
        if f.latency:
            await asyncio.sleep(f.latency)
        if (injected := self._injected(kind)) is not None:
            return injected
        if request.content_length is not None and request.content_length > f.max_body_bytes:
            return web.json_response({"error": "Request body too large"}, status=413)
        raw = await request.read()
        if kind == "drop":
            return self._drop(request)
        items = self._items(raw, batch, opportunities)
        if isinstance(items, web.StreamResponse):
            return items
        upsert = self._upsert_opportunity if opportunities else self._upsert
        found = await self.gateway.run(len(items), lambda: [upsert(i) for i in items])
        if found is None:  # the gateway gave up; the function behind it stores the records later
            self.state.gateway_timeouts += 1
            return web.json_response({"message": "Gateway Timeout"}, status=504)
        stored = found
        # what is stored lives on: keep it out of the cyclic GC, whose full passes over millions of
        # stored objects would stall the event loop for tens of ms (and stamp the next request late)
        gc.freeze()
        if f.shuffle:
            self._rng.shuffle(stored)
        roll = self._rng.random()
        if roll < f.drop_after:
            return self._drop(request)
        if roll < f.drop_after + f.slow:
            await asyncio.sleep(f.slow_seconds)
        return web.json_response({"data": stored if batch else stored[0]})

    def _limited(self) -> web.StreamResponse | None:
        """The rate limit's 429 (with Retry-After when asked), or None: the request may go on."""
        f = self.faults
        if f.rate_per_min is None:
            return None
        wait = self._limit(time.monotonic())
        if wait is None:
            return None
        self.state.rate_limited += 1
        headers = {"Retry-After": str(max(1, math.ceil(wait)))} if f.rate_retry_after else None
        return web.json_response({"error": "Too many requests"}, status=429, headers=headers)

    def _injected(self, kind: str | None) -> web.StreamResponse | None:
        """The answer of an injected fault that needs no body (5xx, 429), or None."""
        if kind == "5xx":
            return web.json_response(
                {"error": "Internal Server Error"}, status=self._rng.choice((500, 502, 503))
            )
        if kind == "429":
            return web.json_response(
                {"error": "Too many requests"},
                status=429,
                headers={"Retry-After": f"{self.faults.retry_after:g}"},
            )
        if kind == "429-bare":
            return web.json_response({"error": "Too many requests"}, status=429)
        return None

    def _items(self, raw: bytes, batch: bool, opportunities: bool = False) -> list[Any] | web.StreamResponse:
        """The records of a body, or the 400/413/422 SIRO would answer it with."""
        f = self.faults
        try:
            body = json.loads(raw)
        except ValueError:
            return web.json_response({"error": "Invalid JSON body"}, status=400)
        if batch and not isinstance(body, list):
            return web.json_response({"error": "Expected an array of engagements"}, status=400)
        if batch:
            self.state.batch_lengths.append(len(body))
        if batch and f.max_batch is not None and len(body) > f.max_batch:
            return web.json_response({"error": "Request Entity Too Large"}, status=413)
        if f.validate:
            one, many = self._opportunity if opportunities else (self._one, self._many)
            validator = many if batch else one
            errors = sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
            if errors:
                return web.json_response({"name": "ZodError", "issues": zod_issues(errors)}, status=422)
        items: list[Any] = body if batch else [body]
        if f.reject_pattern is not None:
            bad = [i for i, item in enumerate(items) if re.search(f.reject_pattern, str(item["externalId"]))]
            if bad and f.reject_status == 422:
                issues = [
                    {
                        "code": "custom",
                        "path": [i, "externalId"] if batch else ["externalId"],
                        "message": "externalId is reserved (sandbox rule)",
                    }
                    for i in bad
                ]
                return web.json_response({"name": "ZodError", "issues": issues}, status=422)
            if bad:
                return web.json_response({"error": "Bad request"}, status=f.reject_status)
        return items

    # -- helpers -------------------------------------------------------------------

    def _pick_fault(self, rng: random.Random | None = None) -> str:
        f = self.faults
        roll = (rng or self._rng).random()
        for chance, kind in (
            (f.error_5xx, "5xx"),
            (f.throttle, "429"),
            (f.throttle_bare, "429-bare"),
            (f.drop_before, "drop"),
        ):
            if roll < chance:
                return kind
            roll -= chance
        return ""

    def _auth(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            self.state.responses[401] += 1
            return web.json_response({"error": "Unauthorized"}, status=401)
        return None

    def _limit(self, now: float) -> float | None:
        """None when the rate limit admits a request arriving ``now`` (and counts it), else the
        seconds until it would (what Retry-After says)."""
        f = self.faults
        assert f.rate_per_min is not None
        if f.limiter == "bucket":
            per_second = f.rate_per_min / 60.0
            if self._bucket_at is None:
                self._tokens, self._bucket_at = float(f.rate_burst), now  # starts full
            self._tokens = min(float(f.rate_burst), self._tokens + (now - self._bucket_at) * per_second)
            self._bucket_at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            return (1.0 - self._tokens) / per_second
        limit = f.rate_per_min * f.rate_window / 60.0
        if f.limiter == "fixed":  # windows start on the wall clock: each minute at :00 for 60 s
            wall = time.time()
            index = math.floor(wall / f.rate_window)
            if index != self._fixed_index:
                self._fixed_index, self._fixed_count = index, 0
            if self._fixed_count < limit:
                self._fixed_count += 1
                return None
            return (index + 1) * f.rate_window - wall
        while self._window and now - self._window[0] >= f.rate_window:
            self._window.popleft()
        if len(self._window) < limit:
            self._window.append(now)
            return None
        return f.rate_window - (now - self._window[0])

    def _drop(self, request: web.Request) -> web.StreamResponse | None:
        """Close the connection without answering; the client sees a dropped connection."""
        self.state.dropped += 1
        if request.transport is not None:
            request.transport.close()
        return None

    def _upsert_opportunity(self, item: dict[str, Any]) -> dict[str, Any]:
        ext = str(item["externalId"])
        with self._lock:
            self.state.opportunities[ext] = copy.deepcopy(item)
            self.state.writes["opportunity:" + ext] += 1
            sid = self.state.ids.setdefault("opportunity:" + ext, f"opp_{len(self.state.ids) + 1:08d}")
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return {
            "id": sid,
            "externalId": ext,
            "createdAt": now,
            "updatedAt": now,
            "organizationId": "org_sandbox",
        }

    def _upsert(self, item: dict[str, Any]) -> dict[str, Any]:
        ext = str(item["externalId"])
        with self._lock:
            now = time.monotonic()
            self.state.first_write = self.state.first_write or now
            self.state.last_write = now
            self.state.records[ext] = item  # parsed from this request's body: nobody else holds it
            self.state.writes[ext] += 1
            self.state.ids.setdefault(ext, f"eng_{len(self.state.ids) + 1:08d}")
        return self._engagement(ext)

    def _engagement(self, ext: str) -> dict[str, Any]:
        item = self.state.records[ext]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        et = item.get("engagementType") or {}
        out = {
            "id": self.state.ids[ext],
            "externalId": ext,
            "engagementType": et.get("name", ""),
            "createdAt": now,
            "updatedAt": now,
            "organizationId": "org_sandbox",
        }
        for key in ("direction", "subject", "content", "startTime", "startTimeLocalized", "endTime"):
            if item.get(key) is not None:
                out[key] = item[key]
        return out
