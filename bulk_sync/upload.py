"""Upload stage: validated payloads -> SIRO's External API -> one :class:`Outcome` per record.

The only home of httpx (and of the aiohttp transport under it). Responsibilities:

* one shared ``httpx.AsyncClient`` with the bearer token, timeouts and a connection pool sized to
  the run's concurrency, on the ``httpx-aiohttp`` transport (httpx's own pool degrades sharply
  above ~16 concurrent connections; see README "HTTP transport");
* retries on named conditions only (408, 429, 5xx, timeouts, dropped connections), bounded by
  attempts and elapsed time, capped exponential backoff with full jitter, ``Retry-After`` honoured
  (a 429's Retry-After pauses *every* request, not just the one that got it);
* :func:`classify` turns a response into a verdict, in one small table;
* 401/403 raise :class:`~bulk_sync.errors.AuthError` at once: the run must stop.

Messages name the URL path only, never headers or query strings.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import aiohttp
import httpx

from .errors import AuthError, RetryableError
from .payload import Payload
from .settings import IDENTITY_PATH, SINGLE_PATH, RunSettings


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


def error_details(body: bytes) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The server's message from an error body, plus Zod issues as (path, message) pairs.

    Bodies are ``{"error": msg}``, a ZodError ``{"name": "ZodError", "issues": [...]}``, or plain text.
    """
    text = body.decode("utf-8", "replace").strip()
    try:
        data: Any = json.loads(text)
    except ValueError:
        return (text[:500] or "(empty response body)"), ()
    if isinstance(data, dict) and isinstance(data.get("issues"), list):
        issues = []
        for issue in data["issues"]:
            if isinstance(issue, dict):
                path = _path_text(issue.get("path") or [])
                issues.append((path, str(issue.get("message", ""))))
        msg = "; ".join(f"{p or '(body)'}: {m}" for p, m in issues) or "validation failed"
        return msg[:1000], tuple(issues)
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            if isinstance(data.get(key), str):
                return data[key][:1000], ()
    return text[:500], ()


def _path_text(path: list[Any]) -> str:
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


_TRANSIENT = (httpx.TransportError, aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


class Uploader:
    """Sends payloads with retries. Use as ``async with Uploader(settings) as up: await up.send(p)``."""

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
        self._transport = transport
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._paused_until = 0.0
        self.requests_sent = 0
        self.stopping = False  # set when the run is stopping: finish the current attempt, retry no more

    async def __aenter__(self) -> Uploader:
        s = self.settings
        limits = httpx.Limits(max_connections=s.concurrency, max_keepalive_connections=s.concurrency)
        transport = self._transport
        if transport is None:
            from httpx_aiohttp import AiohttpTransport

            transport = AiohttpTransport(limits=limits, trust_env=True)
        self._client = httpx.AsyncClient(
            base_url=s.base_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {s.token.get_secret_value()}",
                "Content-Type": "application/json",
                "User-Agent": "bulk-sync/0.1",
            },
            timeout=httpx.Timeout(s.timeouts.read, connect=s.timeouts.connect, pool=None),
            limits=limits,
            transport=transport,
            follow_redirects=False,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def check_identity(self) -> None:
        """Pre-flight: fail fast (AuthError) when the token is refused; other answers are ignored."""
        assert self._client is not None
        try:
            resp = await self._client.get(IDENTITY_PATH)
        except _TRANSIENT:
            return  # the uploads will retry and report connection problems per row
        if classify(resp.status_code) is Verdict.FATAL:
            raise AuthError(_auth_message(resp.status_code, resp.content, IDENTITY_PATH))

    async def send(self, payload: Payload) -> Outcome:
        """PUT one record, retrying transient failures. Raises AuthError on 401/403."""
        assert self._client is not None
        policy = self.settings.retry
        started = self._clock()
        body = payload.json_bytes()
        last: RetryableError | None = None
        attempt = 0
        while attempt < policy.max_attempts:
            attempt += 1
            await self._wait_for_pause()
            try:
                self.requests_sent += 1
                resp = await self._client.put(SINGLE_PATH, content=body)
            except _TRANSIENT as exc:
                last = RetryableError(_transport_message(exc))
            else:
                verdict = classify(resp.status_code)
                if verdict is Verdict.OK:
                    return Outcome("synced", attempt, resp.status_code, siro_id=_siro_id(resp.content))
                if verdict is Verdict.FATAL:
                    raise AuthError(_auth_message(resp.status_code, resp.content, SINGLE_PATH))
                message, issues = error_details(resp.content)
                if verdict is Verdict.REJECT:
                    slug = "api-invalid" if resp.status_code == 422 else "api-rejected"
                    return Outcome("rejected", attempt, resp.status_code, slug, message, issues=issues)
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
                last = RetryableError(
                    f"HTTP {resp.status_code}: {message}",
                    http_status=resp.status_code,
                    retry_after=retry_after,
                )
            if attempt >= policy.max_attempts or self.stopping:
                break
            delay = backoff_delay(attempt, policy.backoff_base, policy.backoff_cap, self._rng)
            if last.retry_after is not None:
                wait = min(last.retry_after, policy.retry_after_cap)
                if self._clock() - started + wait > policy.max_elapsed:
                    break
                if last.http_status == 429:
                    self._pause_all(wait)  # the server asked everyone to slow down
                else:
                    delay = max(delay, wait)
            if self._clock() - started + delay > policy.max_elapsed:
                break
            await self._sleep(delay)
        assert last is not None
        why = "the run was stopping" if self.stopping else "retries exhausted"
        return Outcome(
            "failed",
            attempt,
            last.http_status,
            "retries-exhausted",
            f"gave up after {attempt} attempt(s) in {self._clock() - started:.1f}s ({why}); "
            f"last error: {last}",
        )

    def _pause_all(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def _wait_for_pause(self) -> None:
        while (wait := self._paused_until - self._clock()) > 0:
            await self._sleep(wait)


def _siro_id(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    inner = data.get("data") if isinstance(data, dict) else None
    value = inner.get("id") if isinstance(inner, dict) else None
    return str(value) if value is not None else None


def _auth_message(status: int, body: bytes, path: str) -> str:
    message, _ = error_details(body)
    return (
        f"SIRO refused the API token (HTTP {status} on {path}: {message}). Check {'SIRO_API_TOKEN'} "
        "or --token-file, and that the token belongs to this organization; nothing more was sent"
    )


def _transport_message(exc: BaseException) -> str:
    # the aiohttp transport re-raises aiohttp errors as httpx ones; the original says more
    root = exc.__cause__ if isinstance(exc, httpx.HTTPError) and exc.__cause__ is not None else exc
    if isinstance(root, httpx.TimeoutException | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return "timed out waiting for SIRO"
    if isinstance(root, aiohttp.ServerDisconnectedError | httpx.RemoteProtocolError):
        return "the connection was closed before SIRO answered"
    detail = str(root).split("\n")[0][:200]
    return f"connection problem: {type(root).__name__}" + (f": {detail}" if detail else "")
