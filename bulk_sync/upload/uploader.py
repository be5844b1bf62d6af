"""Upload stage, uploader: a request's life: the pace, retries bounded by time, batches (422 indexes,
bisecting 400s, 413s lowering the batch), the pre-flight token check, the outcome of each record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from ..errors import AuthError, ServerUnavailable, TokenRefused, Unreachable
from ..pace import CircuitBreaker, Pacer
from ..payload import Payload
from ..settings import IDENTITY_PATH, SYNC_PATHS, RunSettings
from .answers import (
    Exchange,
    Outcome,
    Verdict,
    _parse,
    auth_message,
    backoff_delay,
    classify,
    error_details,
    failed_outcome,
    parse_retry_after,
    path_text,
    reject_slug,
    shown,
    siro_ids,
    transport_message,
)
from .sizing import BatchSizer
from .transport import SENT, AiohttpTransport

log = logging.getLogger("bulk_sync.upload")


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
        self.sizer = BatchSizer(
            settings.batch_size,
            auto=settings.batch_auto,
            upper=settings.max_batch_size if settings.batch_auto else settings.batch_size,
            budget=min(t.read, t.total) / 3,
        )
        self.requests_sent = 0
        self.stopping = False  # set when the run is stopping: finish the current attempt, retry no more

    @property
    def batch_limit(self) -> int:
        """The most records a batch request holds now: ``--batch-size``, lowered for the rest of the
        run when SIRO answers 413; with ``--batch-size auto`` what :class:`BatchSizer` has learned
        (only the uploader changes it)."""
        return self.sizer.limit

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
                last = transport_message(exc)
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
            f"cannot reach SIRO at {shown(self._base)}: {last}. Check --base-url and the network; "
            "nothing was sent"
        )

    # -- one record --------------------------------------------------------------

    async def send(self, payload: Payload) -> Outcome:
        """PUT one record to the single-record endpoint."""
        ex = await self._exchange(SYNC_PATHS[self.settings.resource][0], payload.raw)
        if ex.response is None:
            return failed_outcome(ex)
        status = ex.response.status_code
        if classify(status) is Verdict.OK:
            return Outcome("synced", ex.attempts, status, siro_id=siro_ids(ex.response.content).get(None))
        message, issues = error_details(ex.response.content)
        return Outcome("rejected", ex.attempts, status, reject_slug(status), message, issues=issues)

    # -- a batch -----------------------------------------------------------------

    async def send_batch(self, payloads: Sequence[Payload]) -> list[Outcome]:
        """PUT records to the batch endpoint; one Outcome per payload, in the same order."""
        if not payloads:
            return []
        trial = self.sizer.sending(len(payloads))  # a larger size, tried on this batch alone
        try:
            return await self._send_batch(payloads)
        finally:
            if trial:
                self.sizer.settled(trial)

    async def _send_batch(self, payloads: Sequence[Payload]) -> list[Outcome]:
        body = b"[" + b",".join(p.raw for p in payloads) + b"]"
        try:
            ex = await self._exchange(SYNC_PATHS[self.settings.resource][1], body, len(payloads))
        except _Smaller as smaller:  # too slow, or failed just after a raise: unknown, send again smaller
            return await self._in_pieces(payloads, smaller.attempts)
        if ex.response is None:
            return [failed_outcome(ex)] * len(payloads)
        status = ex.response.status_code
        if classify(status) is Verdict.OK:
            ids = siro_ids(ex.response.content)
            return [Outcome("synced", ex.attempts, status, siro_id=ids.get(p.external_id)) for p in payloads]
        message, issues = _parse(ex.response.content)
        if len(payloads) == 1:
            rel = tuple((path_text(p[1:] if p and p[0] == 0 else p), m) for p, m in issues)
            msg = "; ".join(f"{p or '(body)'}: {m}" for p, m in rel) if rel else message
            return [Outcome("rejected", ex.attempts, status, reject_slug(status), msg, issues=rel)]
        if status == 413:  # too big: learn a smaller size for the run, resend in pieces of that size
            self.sizer.refused(len(payloads))
            return await self._in_pieces(payloads, ex.attempts)
        by_index: dict[int, list[tuple[str, str]]] = {}
        if status == 422:
            for path, msg in issues:
                if path and isinstance(path[0], int) and 0 <= path[0] < len(payloads):
                    by_index.setdefault(path[0], []).append((path_text(path[1:]), msg))
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

    async def _in_pieces(self, payloads: Sequence[Payload], attempts: int) -> list[Outcome]:
        """Send ``payloads`` again in batches of the (just lowered) size; ``attempts`` already spent."""
        pieces: list[Outcome] = []
        while len(pieces) < len(payloads):
            pieces += await self.send_batch(payloads[len(pieces) : len(pieces) + self.sizer.size])
        return [dataclasses.replace(o, attempts=o.attempts + attempts) for o in pieces]

    # -- the retry loop ----------------------------------------------------------

    async def _exchange(self, path: str, body: bytes, records: int = 0) -> Exchange:
        """Send until a final answer (2xx/4xx), retrying transient failures within the budget. A
        batch of ``records`` that SIRO was too slow for raises :class:`_Smaller` (learning sizes)."""
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
                error, last_status = transport_message(exc), None
                failures += 1
                self.breaker.failure(error)
                if isinstance(exc, httpx.TimeoutException | TimeoutError) and self.sizer.too_slow(records):
                    raise _Smaller(attempts) from exc
            else:
                verdict = classify(resp.status_code)
                if verdict is Verdict.FATAL:
                    raise AuthError(auth_message(resp.status_code, resp.content, path))
                if verdict is not Verdict.RETRY:
                    self.breaker.success()
                    if verdict is Verdict.OK:
                        self.pacer.on_success()
                        self.sizer.answered(records, self._clock() - sent_at)
                    return Exchange(resp, attempts, elapsed=self._clock() - started)
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
                    self._check_size(resp.status_code, records, attempts)
            self._check_breaker()
            if (policy.max_attempts is not None and failures >= policy.max_attempts) or self.stopping:
                break
            wait = min(retry_after, policy.retry_after_cap) if retry_after is not None else 0.0
            delay = self._delay(
                last_status == 429, wait if retry_after is not None else None, throttles, failures
            )
            if self._clock() - started + max(delay, wait) > policy.max_elapsed:
                break
            if _debug():
                log.debug("retrying %s in %.2f s (attempt %d failed): %s", path, delay, attempts, error)
            if delay:
                await self._sleep(delay)
        why = "the run was stopping" if self.stopping else "retries exhausted"
        return Exchange(None, attempts, f"{error} ({why})", last_status, self._clock() - started)

    def _check_size(self, status: int, records: int, attempts: int) -> None:
        """A 504 (a gateway gave up on the batch), or another 5xx for a batch larger than any that
        worked: raise :class:`_Smaller` when the size is learned."""
        if self.sizer.too_slow(records) if status == 504 else self.sizer.failed(records):
            raise _Smaller(attempts)

    def _check_breaker(self) -> None:
        if self.breaker.tripped:
            raise ServerUnavailable(
                f"{self.breaker.consecutive} requests in a row failed (last: {self.breaker.last_error}); "
                "SIRO or the network looks down. Run the same command again later: rows not synced "
                "are in the report"
            )

    def _delay(self, throttled: bool, wait: float | None, throttles: int, failures: int) -> float:
        """How long before the next attempt. A 429 waits its Retry-After (``wait``, capped; the pacer
        may hold everyone back too), without one a short jitter; other failures back off."""
        policy = self.settings.retry
        if throttled:
            return wait if wait is not None else backoff_delay(min(throttles, 4), 0.25, 2.0, self._rng)
        return max(wait or 0.0, backoff_delay(failures, policy.backoff_base, policy.backoff_cap, self._rng))

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


class _Smaller(Exception):
    """A batch SIRO was too slow for (504, a timeout) or that failed right after the size was
    raised: its records are unknown; send them again in smaller batches."""

    def __init__(self, attempts: int) -> None:
        super().__init__(attempts)
        self.attempts = attempts
