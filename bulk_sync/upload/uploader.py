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

from ..errors import AuthError, NotSiro, ServerUnavailable, TokenRefused, Unreachable
from ..pace import CircuitBreaker, Pacer
from ..payload import Payload
from ..settings import IDENTITY_PATH, SYNC_PATHS, RunSettings
from .answers import (
    Exchange,
    Outcome,
    Verdict,
    _parse,
    auth_message,
    classify,
    error_details,
    failed_outcome,
    not_here_message,
    path_text,
    reject_slug,
    retry_after_of,
    shown,
    transport_message,
)
from .proof import Proof, acknowledged, identity_problem, quote, unproven_message
from .retries import Retries
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
            settings.concurrency, report_sent=settings.rate_per_min is not None, ca_bundle=settings.ca_bundle
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
        self._secret = settings.token.get_secret_value()  # blanked out of any answer a message quotes
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
        """Pre-flight, before anything is sent: SIRO can be reached at the base URL, it is SIRO that
        answers there, and the token works.

        Raises TokenRefused on 401/403; NotSiro on a redirect or a 404/405/410 (the base URL's path
        is wrong) or a 2xx that is not SIRO's caller identity (a proxy's page); Unreachable when no
        answer comes after a few tries a second or two apart (connection refused, no such host,
        timeouts). Any other answer, even a 5xx, means SIRO is there: the uploads retry what needs
        retrying."""
        last = ""
        for attempt in range(PREFLIGHT_TRIES):
            if attempt:
                await self._sleep(0.5 * attempt)
            try:
                resp = await self._request("GET", IDENTITY_PATH, None)
            except (httpx.TransportError, TimeoutError) as exc:
                last = transport_message(exc)
                if last.startswith("certificate verify failed"):  # no retry will change it
                    raise Unreachable(
                        f"cannot reach SIRO at {shown(self._base)}: {last}; nothing was sent"
                    ) from exc
                continue
            status = resp.status_code
            if classify(status) is Verdict.FATAL:
                message, _ = error_details(resp.content)
                raise TokenRefused(
                    f"SIRO refused the API token from {self.settings.token_source} (HTTP {status} "
                    f"on {IDENTITY_PATH}: {message}): check it, or make a new one (an admin makes tokens "
                    "in SIRO: Person icon -> API Tokens). Nothing was sent"
                )
            if 300 <= status < 400 or status in _NOT_HERE:
                raise NotSiro(not_here_message(self._base, status, resp.headers.get("location")))
            if 200 <= status < 300 and (problem := identity_problem(resp.content)):
                raise NotSiro(
                    f"this server is not SIRO: {shown(self._base)} answered GET {IDENTITY_PATH} with HTTP "
                    f"{status}, not SIRO's caller identity ({problem}; it began: "
                    f"{quote(resp.content, self._secret)}). Check --base-url; nothing was sent"
                )
            return
        raise Unreachable(
            f"cannot reach SIRO at {shown(self._base)}: {last}. Check --base-url and the network; "
            "nothing was sent"
        )

    # -- one record --------------------------------------------------------------

    async def send(self, payload: Payload) -> Outcome:
        """PUT one record to the single-record endpoint."""
        ext = payload.external_id
        ex = await self._exchange(SYNC_PATHS[self.settings.resource][0], payload.raw, (ext,), batch=False)
        if ex.response is None:
            return failed_outcome(ex)
        status = ex.response.status_code
        if classify(status) is Verdict.OK:
            return Outcome("synced", ex.attempts, status, siro_id=ex.proof.ids[ext])
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
        sent = [p.external_id for p in payloads]
        endpoint = SYNC_PATHS[self.settings.resource][1]
        try:
            ex = await self._exchange(endpoint, body, sent, batch=True, records=len(payloads))
        except _Smaller as smaller:  # too slow, or failed just after a raise: unknown, send again smaller
            return await self._in_pieces(payloads, smaller.attempts)
        if ex.response is None:
            return [failed_outcome(ex)] * len(payloads)
        status = ex.response.status_code
        if classify(status) is Verdict.OK:
            return await self._acknowledged(payloads, ex)
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

    async def _acknowledged(self, payloads: Sequence[Payload], ex: Exchange) -> list[Outcome]:
        """The outcomes of a batch SIRO answered 2xx: synced, each record its answer proves; the
        rest (half the results, say) are sent again, in a batch of their own."""
        ids, status = ex.proof.ids, ex.http_status
        if len(ids) == len(payloads):
            return [Outcome("synced", ex.attempts, status, siro_id=ids[p.external_id]) for p in payloads]
        if _debug():
            log.debug("resending %d record(s): %s", len(payloads) - len(ids), ex.proof.problem)
        rest = iter(await self.send_batch([p for p in payloads if p.external_id not in ids]))
        out: list[Outcome] = []
        for p in payloads:
            if p.external_id in ids:
                out.append(Outcome("synced", ex.attempts, status, siro_id=ids[p.external_id]))
            else:
                o = next(rest)
                out.append(dataclasses.replace(o, attempts=o.attempts + ex.attempts))
        return out

    async def _in_pieces(self, payloads: Sequence[Payload], attempts: int) -> list[Outcome]:
        """Send ``payloads`` again in batches of the (just lowered) size; ``attempts`` already spent."""
        pieces: list[Outcome] = []
        while len(pieces) < len(payloads):
            pieces += await self.send_batch(payloads[len(pieces) : len(pieces) + self.sizer.size])
        return [dataclasses.replace(o, attempts=o.attempts + attempts) for o in pieces]

    # -- the retry loop ----------------------------------------------------------

    async def _exchange(
        self, path: str, body: bytes, sent: Sequence[str], *, batch: bool, records: int = 0
    ) -> Exchange:
        """Send until a final answer (a 2xx that proves at least one of the records ``sent`` stored, or
        a 4xx), retrying transient failures, a 2xx that proves nothing among them, within the budget.
        A batch of ``records`` SIRO was too slow for raises :class:`_Smaller` (learning sizes)."""
        retries = Retries(self.settings.retry, self._rng, self._clock)
        attempts = 0
        error, last_status = "", None
        while True:
            sent_at = self._clock() if self.pacer.free() else await self.pacer.acquire()
            attempts += 1
            retry_after = None
            try:
                resp = await self._request("PUT", path, body, paced=sent_at)
            except (httpx.TransportError, TimeoutError) as exc:
                error, last_status = self._transport_failed(exc, records, attempts), None
                retries.failed()
            else:
                verdict = classify(resp.status_code)
                if verdict is Verdict.FATAL:
                    raise AuthError(auth_message(resp.status_code, resp.content, path))
                proof = acknowledged(resp.content, sent, batch) if verdict is Verdict.OK else _NO_PROOF
                if verdict is Verdict.REJECT or proof.ids:
                    self.breaker.success()
                    if verdict is Verdict.OK:
                        self.pacer.on_success()
                        self.sizer.answered(records, self._clock() - sent_at)
                    return Exchange(
                        resp, attempts, elapsed=retries.elapsed, proof=proof, http_status=resp.status_code
                    )
                last_status, error = resp.status_code, self._failed_answer(path, resp, proof)
                retry_after = retry_after_of(resp.headers)
                if resp.status_code == 429:  # flow control: steer the pace; bounded by time, not attempts
                    retries.throttled()
                    self._throttled(sent_at, retry_after)
                else:
                    retries.failed()
                    self.breaker.failure(error)
                    if resp.status_code >= 500:  # a 2xx that proves nothing says nothing of the size
                        self._check_size(resp.status_code, records, attempts)
            self._check_breaker()
            if self.stopping or (delay := retries.wait(retry_after, throttled=last_status == 429)) is None:
                break
            if _debug():
                log.debug("retrying %s in %.2f s (attempt %d failed): %s", path, delay, attempts, error)
            if delay:
                await self._sleep(delay)
        why = "the run was stopping" if self.stopping else retries.why
        return Exchange(None, attempts, f"{error} ({why})", last_status, retries.elapsed)

    def _transport_failed(self, exc: Exception, records: int, attempts: int) -> str:
        """A request that got no answer: counted by the breaker; a batch that timed out while its
        size is learned raises :class:`_Smaller`. Returns what to say of it."""
        error = transport_message(exc)
        self.breaker.failure(error)
        if isinstance(exc, httpx.TimeoutException | TimeoutError) and self.sizer.too_slow(records):
            raise _Smaller(attempts) from exc
        return error

    def _throttled(self, sent_at: float, retry_after: float | None) -> None:
        """A 429: flow control, not a failure; the pace steps down (to Retry-After when given)."""
        self.breaker.success()
        cap = self.settings.retry.retry_after_cap
        self.pacer.on_throttled(sent_at, None if retry_after is None else min(retry_after, cap))

    def _check_size(self, status: int, records: int, attempts: int) -> None:
        """A 504 (a gateway gave up on the batch), or another 5xx for a batch larger than any that
        worked: raise :class:`_Smaller` when the size is learned."""
        if self.sizer.too_slow(records) if status == 504 else self.sizer.failed(records):
            raise _Smaller(attempts)

    def _failed_answer(self, path: str, resp: httpx.Response, proof: Proof) -> str:
        """What a retryable answer said: a 5xx/408/429's message, or why a 2xx proves nothing."""
        if classify(resp.status_code) is Verdict.OK:
            return unproven_message(path, resp.status_code, resp.content, proof.problem, self._secret)
        return f"HTTP {resp.status_code} on {path}: {error_details(resp.content)[0]}"

    def _check_breaker(self) -> None:
        if self.breaker.tripped:
            raise ServerUnavailable(
                f"{self.breaker.consecutive} requests in a row failed (last: {self.breaker.last_error}); "
                "SIRO or the network looks down. Run the same command again later: rows not synced "
                "are in the report"
            )

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
_NOT_HERE = frozenset({404, 405, 410})  # at the pre-flight: nothing of SIRO's API at this path
_NO_PROOF = Proof()


class _Smaller(Exception):
    """A batch SIRO was too slow for (504, a timeout) or that failed right after the size was
    raised: its records are unknown; send them again in smaller batches."""

    def __init__(self, attempts: int) -> None:
        super().__init__(attempts)
        self.attempts = attempts
