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
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import gc
import json
import logging
import math
import random
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import yaml
from aiohttp import web
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

SCHEMA_RESOURCE = "siro-openapi.yaml"
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@dataclass
class Faults:
    """What the sandbox does wrong, on purpose. Probabilities are per request (0..1)."""

    latency: float = 0.0  # seconds added to every sync answer
    preflight_latency: float = 0.0  # seconds before answering the token check (caller-identity)
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
    reject_pattern: str | None = None  # externalIds matching this regex are refused (a server-side rule)
    reject_status: int = 422  # 422 with indexed Zod issues, or 400 {"error"} with no index
    shuffle: bool = False  # answer batch results in another order than sent
    validate: bool = True
    seed: int | None = None


@dataclass
class SandboxState:
    """What the sandbox holds and has seen. Read it after a run (or via /_sandbox/stats)."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # externalId -> last payload
    writes: Counter[str] = field(default_factory=Counter)  # externalId -> times stored
    responses: Counter[int] = field(default_factory=Counter)  # HTTP status -> count
    requests: int = 0  # sync requests
    identity_requests: int = 0  # GET caller-identity (the pre-flight)
    dropped: int = 0
    rate_limited: int = 0  # 429s from the rate limit (not from fault injection)
    first_write: float | None = None  # monotonic time of the first and last stored record
    last_write: float | None = None
    ids: dict[str, str] = field(default_factory=dict)  # externalId -> sandbox id

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
        }


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` -> JSON Schema `anyOf [null, ...]`, recursively."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if k not in {"nullable", "description"}}
    if node.get("nullable"):
        return {"anyOf": [{"type": "null"}, out]}
    return out


def load_validators() -> tuple[Draft202012Validator, Draft202012Validator]:
    """Validators for one engagement body and for a batch array, from the shipped OpenAPI file."""
    text = resources.files("bulk_sync").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    components = _openapi_to_jsonschema(yaml.safe_load(text)["components"])
    checker = FormatChecker(formats=())
    checker.checks("date-time")(lambda v: not isinstance(v, str) or bool(_DATE_TIME.match(v)))
    one = {"$ref": "#/components/schemas/EngagementSyncInput", "components": components}
    many = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/EngagementSyncInput"},
        "components": components,
    }
    return (
        Draft202012Validator(one, format_checker=checker),
        Draft202012Validator(many, format_checker=checker),
    )


def zod_issues(errors: list[ValidationError]) -> list[dict[str, Any]]:
    """jsonschema errors -> Zod-style issues ({code, path, message, ...}) as SIRO answers them."""
    issues = []
    for err in errors:
        err = _innermost(err)
        path = list(err.absolute_path)
        if err.validator == "required":
            missing = [k for k in err.validator_value if k not in (err.instance or {})]
            for key in missing:
                issues.append(
                    {
                        "code": "invalid_type",
                        "expected": "string",
                        "received": "undefined",
                        "path": [*path, key],
                        "message": "Required",
                    }
                )
            continue
        if err.validator == "enum":
            options = " | ".join(f"'{v}'" for v in err.validator_value)
            issues.append(
                {
                    "code": "invalid_enum_value",
                    "path": path,
                    "message": f"Invalid enum value. Expected {options}, received '{err.instance}'",
                }
            )
        elif err.validator == "type":
            got = "null" if err.instance is None else type(err.instance).__name__
            issues.append(
                {
                    "code": "invalid_type",
                    "expected": str(err.validator_value),
                    "received": got,
                    "path": path,
                    "message": f"Expected {err.validator_value}, received {got}",
                }
            )
        elif err.validator == "format":
            issues.append(
                {
                    "code": "invalid_string",
                    "validation": "datetime",
                    "path": path,
                    "message": "Invalid datetime",
                }
            )
        else:
            issues.append({"code": "custom", "path": path, "message": err.message})
    return issues


def _innermost(err: ValidationError) -> ValidationError:
    """For `anyOf [null, X]`, the error of the X branch (what Zod would report)."""
    while err.validator == "anyOf" and err.context:
        branches = [e for e in err.context if e.schema != {"type": "null"}]
        if not branches:
            break
        err = min(branches, key=lambda e: len(e.relative_schema_path))
    return err


class Sandbox:
    """The aiohttp application and its state."""

    def __init__(self, token: str, faults: Faults | None = None) -> None:
        self.token = token
        self.faults = faults or Faults()
        self.state = SandboxState()
        self._rng = random.Random(self.faults.seed)
        self._window: deque[float] = deque()  # sliding: arrival times in the window
        self._tokens = 0.0  # bucket: its tokens ...
        self._bucket_at: float | None = None  # ... when they were counted (None: not yet, it starts full)
        self._fixed_index, self._fixed_count = -1, 0  # fixed: the current window, requests in it
        self._one, self._many = load_validators()
        self._lock = threading.Lock()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.faults.max_body_bytes + 1024)
        app.router.add_put("/v1/integrations/sync/engagements", self._sync_one)
        app.router.add_put("/v1/integrations/sync/batch/engagements", self._sync_batch)
        app.router.add_get("/v1/core/auth/caller-identity", self._identity)
        app.router.add_get("/v1/integrations/engagements", self._list)
        app.router.add_get("/_sandbox/stats", self._stats)
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

    async def _sync(self, request: web.Request, *, batch: bool) -> web.StreamResponse:
        self.state.requests += 1
        resp = await self._answer(request, batch=batch)
        if resp is not None:
            self.state.responses[resp.status] += 1
        return resp if resp is not None else web.Response(status=499)

    async def _answer(self, request: web.Request, *, batch: bool) -> web.StreamResponse | None:
        f = self.faults
        if (denied := self._auth(request)) is not None:
            return denied
        if f.rate_per_min is not None:
            wait = self._limit(time.monotonic())
            if wait is not None:
                self.state.rate_limited += 1
                headers = {"Retry-After": str(max(1, math.ceil(wait)))} if f.rate_retry_after else None
                return web.json_response({"error": "Too many requests"}, status=429, headers=headers)
        kind = self._pick_fault()
        if f.latency:
            await asyncio.sleep(f.latency)
        if kind == "5xx":
            return web.json_response(
                {"error": "Internal Server Error"}, status=self._rng.choice((500, 502, 503))
            )
        if kind == "429":
            return web.json_response(
                {"error": "Too many requests"}, status=429, headers={"Retry-After": f"{f.retry_after:g}"}
            )
        if kind == "429-bare":
            return web.json_response({"error": "Too many requests"}, status=429)
        if request.content_length is not None and request.content_length > f.max_body_bytes:
            return web.json_response({"error": "Request body too large"}, status=413)
        raw = await request.read()
        if kind == "drop":
            return self._drop(request)
        try:
            body = json.loads(raw)
        except ValueError:
            return web.json_response({"error": "Invalid JSON body"}, status=400)
        if batch and not isinstance(body, list):
            return web.json_response({"error": "Expected an array of engagements"}, status=400)
        if f.validate:
            validator = self._many if batch else self._one
            errors = sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
            if errors:
                return web.json_response({"name": "ZodError", "issues": zod_issues(errors)}, status=422)
        items = body if batch else [body]
        if f.max_batch is not None and len(items) > f.max_batch:
            return web.json_response({"error": f"Batch too large (max {f.max_batch})"}, status=413)
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
        stored = [self._upsert(item) for item in items]
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

    # -- helpers -------------------------------------------------------------------

    def _pick_fault(self) -> str:
        f = self.faults
        roll = self._rng.random()
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

    def _upsert(self, item: dict[str, Any]) -> dict[str, Any]:
        ext = str(item["externalId"])
        with self._lock:
            now = time.monotonic()
            self.state.first_write = self.state.first_write or now
            self.state.last_write = now
            self.state.records[ext] = copy.deepcopy(item)
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


class SandboxServer:
    """Runs a :class:`Sandbox` on 127.0.0.1 in a background thread (for tests and ``run --sandbox``)."""

    def __init__(self, token: str, faults: Faults | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self.sandbox = Sandbox(token, faults)
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def state(self) -> SandboxState:
        return self.sandbox.state

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
        self._thread = threading.Thread(target=self._serve, name="siro-sandbox", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            try:
                loop.run_until_complete(self._startup())
            except BaseException as exc:  # reported to the starting thread
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            loop.run_forever()
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
        except Exception as exc:  # a client that dropped mid-answer must not kill the thread: keep it
            self.shutdown_error = exc
        finally:
            loop.close()

    shutdown_error: Exception | None = None

    async def _startup(self) -> None:
        self._runner = web.AppRunner(self.sandbox.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):  # already closed
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(token: str, faults: Faults, host: str, port: int, announce: Any = print) -> None:
    """`bulk-sync sandbox`: run in the foreground until Ctrl-C."""
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    sandbox = Sandbox(token, faults)

    async def main() -> None:
        runner = web.AppRunner(sandbox.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
        real_port = runner.addresses[0][1]
        announce(f"SIRO sandbox listening on http://{host}:{real_port} (Ctrl-C to stop)")
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(main())
    except KeyboardInterrupt:
        announce(f"sandbox stopped: {json.dumps(sandbox.state.stats())}")
