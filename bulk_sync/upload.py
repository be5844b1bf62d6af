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
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import functools
import json
import logging
import os
import random
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import aiohttp
import httpx
import yarl

from .errors import AuthError, ServerUnavailable, TokenRefused, Unreachable
from .pace import CircuitBreaker, Pacer
from .payload import Payload
from .settings import BATCH_PATH, IDENTITY_PATH, SINGLE_PATH, RunSettings

Transport = (
    httpx.AsyncBaseTransport
)  # what tests inject (httpx.MockTransport), so others need not import httpx


class Verdict(Enum):
    OK = "ok"
    RETRY = "retry"
    REJECT = "reject"
    FATAL = "fatal"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one record. ``status`` is ``synced``, ``rejected`` or ``failed``."""

    status: str
    attempts: int
    http_status: int | None = None
    error_type: str | None = None
    message: str | None = None
    siro_id: str | None = None
    issues: tuple[tuple[str, str], ...] = ()  # (payload path, message) from a 422


# status -> verdict; ranges are checked after exact codes.
_EXACT: dict[int, Verdict] = {401: Verdict.FATAL, 403: Verdict.FATAL, 408: Verdict.RETRY, 429: Verdict.RETRY}


def classify(status: int) -> Verdict:
    """The one place that decides what an HTTP status means for a record."""
    if status in _EXACT:
        return _EXACT[status]
    if 200 <= status < 300:
        return Verdict.OK
    if 500 <= status < 600:
        return Verdict.RETRY
    return Verdict.REJECT  # other 4xx, and anything unexpected (1xx/3xx)


Issue = tuple[list[Any], str]  # (path as the server gave it, message)


def _parse(body: bytes) -> tuple[str, list[Issue]]:
    text = body.decode("utf-8", "replace").strip()
    try:
        data: Any = json.loads(text)
    except ValueError:
        return (text[:500] or "(empty response body)"), []
    if isinstance(data, dict) and isinstance(data.get("issues"), list):
        issues = [
            (list(i.get("path") or []), str(i.get("message", "")))
            for i in data["issues"]
            if isinstance(i, dict)
        ]
        msg = "; ".join(f"{_path_text(p) or '(body)'}: {m}" for p, m in issues) or "validation failed"
        return msg[:1000], issues
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            if isinstance(data.get(key), str):
                return data[key][:1000], []
    return text[:500], []


def error_details(body: bytes) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The server's message from an error body, plus Zod issues as (path, message) pairs.

    Bodies are ``{"error": msg}``, a ZodError ``{"name": "ZodError", "issues": [...]}``, or plain text.
    """
    message, issues = _parse(body)
    return message, tuple((_path_text(p), m) for p, m in issues)


def _path_text(path: Sequence[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + str(p)
    return out


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**(attempt-1)))."""
    return rng.uniform(0, min(cap, base * 2 ** (attempt - 1)))


# --------------------------------------------------------------------------- transport


class AiohttpTransport(httpx.AsyncBaseTransport):
    """A lean httpx transport on one aiohttp session; bodies are read whole (they are small JSON)."""

    def __init__(self, max_connections: int, *, report_sent: bool = False) -> None:
        self._limit = max_connections
        self._report_sent = report_sent  # call request.extensions[SENT] when the request's headers leave
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, tuple[yarl.URL, str | None]] = {}
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _target(self, url: str) -> tuple[yarl.URL, str | None]:
        """The parsed URL and the proxy for it (HTTPS_PROXY/HTTP_PROXY/NO_PROXY), worked out once per URL.

        aiohttp's own ``trust_env`` would look both up in a thread for every request.
        """
        hit = self._urls.get(url)
        if hit is None:
            parsed = yarl.URL(url)
            proxy = None
            if not urllib.request.proxy_bypass(parsed.host or ""):
                proxy = urllib.request.getproxies().get(parsed.scheme)
            hit = self._urls[url] = (parsed, proxy)
        return hit

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit, ttl_dns_cache=300)
            traces = []
            if (
                self._report_sent
            ):  # aiohttp says when it writes the body (with the headers): the request leaves
                trace = aiohttp.TraceConfig()
                trace.on_request_chunk_sent.append(_body_sent)
                traces.append(trace)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=True, trust_env=False, trace_configs=traces
            )
        t = request.extensions.get("timeout", {})
        key = (t.get("connect"), t.get("read"), t.get("total"))
        timeout = self._timeouts.get(key)
        if timeout is None:  # "total" is bulk_sync's own key: one whole request, first byte to last
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                total=key[2], sock_connect=key[0], sock_read=key[1]
            )
        url, proxy = self._target(str(request.url))
        try:
            async with self._session.request(
                request.method,
                url,
                headers=request.headers,
                data=request.content,
                timeout=timeout,
                allow_redirects=False,
                proxy=proxy,
                trace_request_ctx=request.extensions.get(SENT),
            ) as resp:
                content = await resp.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(_connect_reason(exc), request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise httpx.RemoteProtocolError(str(exc) or "server disconnected", request=request) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise httpx.NetworkError(str(exc) or type(exc).__name__, request=request) from exc
        return httpx.Response(resp.status, headers=resp.raw_headers, content=content, request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


SENT = "bulk_sync.sent"  # a request extension: called with no arguments when the request leaves


async def _body_sent(session: object, ctx: Any, params: object) -> None:
    # aiohttp writes the bytes right after this returns, in the same step of its task
    if ctx.trace_request_ctx is not None:
        ctx.trace_request_ctx()


def _connect_reason(exc: aiohttp.ClientConnectorError) -> str:
    """Why a connection could not be made, as the OS says it: "no-such.example:443: Name or service
    not known", "127.0.0.1:9: Connection refused"."""
    os_error = exc.os_error
    reason = ""
    if isinstance(os_error, socket.gaierror) or type(os_error).__name__ == "gaierror":
        reason = os_error.strerror or str(os_error)
    elif os_error.errno:
        reason = os.strerror(os_error.errno)
    return f"{exc.host}:{exc.port}: {reason or os_error.strerror or os_error}"


# --------------------------------------------------------------------------- uploader


@dataclass(slots=True)
class _Exchange:
    """The final answer to one request after retries: a response, or the last transient error."""

    response: httpx.Response | None
    attempts: int
    error: str = ""
    http_status: int | None = None
    elapsed: float = 0.0


log = logging.getLogger(__name__)


def _debug() -> bool:
    return log.isEnabledFor(logging.DEBUG)


class Uploader:
    """Sends payloads. Use as ``async with Uploader(settings) as up: await up.send(p)``."""

    def __init__(
        self,
        settings: RunSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        # paced: the pacer spaces requests from when each one really left (a request held up after
        # its slot, say by the reader thread's hold on the GIL, pushes the next one back)
        self._transport = transport or AiohttpTransport(
            settings.concurrency, report_sent=settings.rate_per_min is not None
        )
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        self._base = settings.base_url.rstrip("/")
        self._headers = httpx.Headers(
            {
                "Authorization": f"Bearer {settings.token.get_secret_value()}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": "bulk-sync/0.1",
            }
        )
        self._urls: dict[str, httpx.URL] = {}  # parsed once per path
        t = settings.timeouts
        self._timeout = {
            "connect": t.connect,
            "read": t.read,
            "write": t.read,
            "pool": None,
            "total": t.total,
        }
        self.pacer = Pacer(settings.rate_per_min, clock=clock, sleep=sleep)
        self.breaker = CircuitBreaker(settings.breaker)
        self.batch_limit = settings.batch_size  # lowered for the rest of the run by a 413
        self.requests_sent = 0
        self.stopping = False  # set when the run is stopping: finish the current attempt, retry no more

    async def __aenter__(self) -> Uploader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._transport.aclose()

    async def check_identity(self) -> None:
        """Pre-flight, before anything is sent: the token works, and SIRO can be reached at all.

        Raises TokenRefused on 401/403, and Unreachable when no answer comes after a few tries a
        second or two apart (connection refused, no such host, timeouts). Any other answer, even a
        5xx, means SIRO is there: the uploads retry what needs retrying."""
        last = ""
        for attempt in range(PREFLIGHT_TRIES):
            if attempt:
                await self._sleep(0.5 * attempt)
            try:
                resp = await self._request("GET", IDENTITY_PATH, None)
            except (httpx.TransportError, TimeoutError) as exc:
                last = _transport_message(exc)
                continue
            if classify(resp.status_code) is Verdict.FATAL:
                message, _ = error_details(resp.content)
                raise TokenRefused(
                    f"SIRO refused the API token from {self.settings.token_source} (HTTP {resp.status_code} "
                    f"on {IDENTITY_PATH}: {message}): check it, or make a new one (an admin makes tokens "
                    "in SIRO: Person icon -> API Tokens). Nothing was sent"
                )
            return
        raise Unreachable(
            f"cannot reach SIRO at {_shown(self._base)}: {last}. Check --base-url and the network; "
            "nothing was sent"
        )

    # -- one record --------------------------------------------------------------

    async def send(self, payload: Payload) -> Outcome:
        """PUT one record to the single-record endpoint."""
        ex = await self._exchange(SINGLE_PATH, payload.raw)
        if ex.response is None:
            return _failed(ex)
        status = ex.response.status_code
        if classify(status) is Verdict.OK:
            return Outcome("synced", ex.attempts, status, siro_id=_siro_ids(ex.response.content).get(None))
        message, issues = error_details(ex.response.content)
        return Outcome("rejected", ex.attempts, status, _reject_slug(status), message, issues=issues)

    # -- a batch -----------------------------------------------------------------

    async def send_batch(self, payloads: Sequence[Payload]) -> list[Outcome]:
        """PUT records to the batch endpoint; one Outcome per payload, in the same order."""
        if not payloads:
            return []
        body = b"[" + b",".join(p.raw for p in payloads) + b"]"
        ex = await self._exchange(BATCH_PATH, body)
        if ex.response is None:
            return [_failed(ex)] * len(payloads)
        status = ex.response.status_code
        if classify(status) is Verdict.OK:
            ids = _siro_ids(ex.response.content)
            return [Outcome("synced", ex.attempts, status, siro_id=ids.get(p.external_id)) for p in payloads]
        message, issues = _parse(ex.response.content)
        if len(payloads) == 1:
            rel = tuple((_path_text(p[1:] if p and p[0] == 0 else p), m) for p, m in issues)
            msg = "; ".join(f"{p or '(body)'}: {m}" for p, m in rel) if rel else message
            return [Outcome("rejected", ex.attempts, status, _reject_slug(status), msg, issues=rel)]
        if status == 413:  # too big: learn a smaller size for the run, resend in pieces of that size
            self.batch_limit = max(1, min(self.batch_limit, len(payloads) // 2))
            pieces: list[Outcome] = []
            while len(pieces) < len(payloads):
                pieces += await self.send_batch(payloads[len(pieces) : len(pieces) + self.batch_limit])
            return [dataclasses.replace(o, attempts=o.attempts + ex.attempts) for o in pieces]
        by_index: dict[int, list[tuple[str, str]]] = {}
        if status == 422:
            for path, msg in issues:
                if path and isinstance(path[0], int) and 0 <= path[0] < len(payloads):
                    by_index.setdefault(path[0], []).append((_path_text(path[1:]), msg))
        if by_index:  # the server named the bad records: reject them, resend the rest
            rest = [p for i, p in enumerate(payloads) if i not in by_index]
            rest_out = iter(await self.send_batch(rest))
            out: list[Outcome] = []
            for i in range(len(payloads)):
                if i in by_index:
                    rel = tuple(by_index[i])
                    msg = "; ".join(f"{p or '(body)'}: {m}" for p, m in rel)
                    out.append(Outcome("rejected", ex.attempts, status, "api-invalid", msg, issues=rel))
                else:
                    o = next(rest_out)
                    out.append(dataclasses.replace(o, attempts=o.attempts + ex.attempts))
            return out
        # no usable index (400, 413, an unindexed 422): bisect until the bad records are alone
        mid = len(payloads) // 2
        halves = [*await self.send_batch(payloads[:mid]), *await self.send_batch(payloads[mid:])]
        return [dataclasses.replace(o, attempts=o.attempts + ex.attempts) for o in halves]

    # -- the retry loop ----------------------------------------------------------

    async def _exchange(self, path: str, body: bytes) -> _Exchange:
        """Send until a final answer (2xx/4xx), retrying transient failures within the budget."""
        policy = self.settings.retry
        started = self._clock()
        attempts = failures = throttles = 0
        error, last_status = "", None
        while True:
            sent_at = self._clock() if self.pacer.free() else await self.pacer.acquire()
            attempts += 1
            retry_after = None
            try:
                resp = await self._request("PUT", path, body, paced=sent_at)
            except (httpx.TransportError, TimeoutError) as exc:
                error, last_status = _transport_message(exc), None
                failures += 1
                self.breaker.failure(error)
            else:
                verdict = classify(resp.status_code)
                if verdict is Verdict.FATAL:
                    raise AuthError(_auth_message(resp.status_code, resp.content, path))
                if verdict is not Verdict.RETRY:
                    self.breaker.success()
                    if verdict is Verdict.OK:
                        self.pacer.on_success()
                    return _Exchange(resp, attempts, elapsed=self._clock() - started)
                last_status = resp.status_code
                error = f"HTTP {resp.status_code} on {path}: {error_details(resp.content)[0]}"
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
                if resp.status_code == 429:  # flow control: steer the pace; bounded by time, not attempts
                    throttles += 1
                    self.breaker.success()
                    wait = None if retry_after is None else min(retry_after, policy.retry_after_cap)
                    self.pacer.on_throttled(sent_at, wait)
                else:
                    failures += 1
                    self.breaker.failure(error)
            if self.breaker.tripped:
                raise ServerUnavailable(
                    f"{self.breaker.consecutive} requests in a row failed (last: {self.breaker.last_error}); "
                    "SIRO or the network looks down. Run the same command again later: rows not synced "
                    "are in the report"
                )
            if (policy.max_attempts is not None and failures >= policy.max_attempts) or self.stopping:
                break
            wait = min(retry_after, policy.retry_after_cap) if retry_after is not None else 0.0
            if last_status == 429:  # this request waits its Retry-After (the pacer may hold everyone
                # back too); without one, a short jitter
                delay = (
                    wait
                    if retry_after is not None
                    else backoff_delay(min(throttles, 4), 0.25, 2.0, self._rng)
                )
            else:
                delay = max(wait, backoff_delay(failures, policy.backoff_base, policy.backoff_cap, self._rng))
            if self._clock() - started + max(delay, wait) > policy.max_elapsed:
                break
            if _debug():
                log.debug("retrying %s in %.2f s (attempt %d failed): %s", path, delay, attempts, error)
            if delay:
                await self._sleep(delay)
        why = "the run was stopping" if self.stopping else "retries exhausted"
        return _Exchange(None, attempts, f"{error} ({why})", last_status, self._clock() - started)

    async def _request(
        self, method: str, path: str, body: bytes | None, paced: float | None = None
    ) -> httpx.Response:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self._base + path)
        extensions: dict[str, Any] = {"timeout": self._timeout}
        if paced is not None and self.pacer.rate is not None:
            extensions[SENT] = functools.partial(self.pacer.departed, paced)
        request = httpx.Request(method, url, headers=self._headers, content=body, extensions=extensions)
        self.requests_sent += 1
        resp = await self._transport.handle_async_request(request)
        await resp.aread()
        return resp


PREFLIGHT_TRIES = 3


def _shown(url: str) -> str:
    """A URL as it may be printed: without user, password, query or fragment."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _failed(ex: _Exchange) -> Outcome:
    return Outcome(
        "failed",
        ex.attempts,
        ex.http_status,
        "retries-exhausted",
        f"gave up after {ex.attempts} attempt(s) in {ex.elapsed:.1f}s; last error: {ex.error}",
    )


def _reject_slug(status: int) -> str:
    return {422: "api-invalid", 413: "too-large"}.get(status, "api-rejected")


def _siro_ids(body: bytes) -> dict[str | None, str]:
    """externalId -> SIRO id from a sync answer; key None holds a single record's id."""
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        return {}
    items = data if isinstance(data, list) else [data]
    out: dict[str | None, str] = {}
    for item in items:
        if isinstance(item, dict) and item.get("id") is not None:
            out[str(item.get("externalId"))] = str(item["id"])
            out[None] = str(item["id"])
    return out


def _auth_message(status: int, body: bytes, path: str) -> str:
    message, _ = error_details(body)
    return (
        f"SIRO refused the API token (HTTP {status} on {path}: {message}). Check SIRO_API_TOKEN "
        "or --token-file, and that the token belongs to this organization; nothing more was sent"
    )


def _transport_message(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timed out waiting for SIRO"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection was closed before SIRO answered"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {str(exc)[:200]}"
    detail = str(exc).split("\n")[0][:200]
    return f"connection problem: {type(exc).__name__}" + (f": {detail}" if detail else "")
