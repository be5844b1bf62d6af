"""Uploader: the response table, error bodies, Retry-After, and retry behaviour (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import random

import httpx
import pytest

from bulk_sync.errors import AuthError
from bulk_sync.payload import Payload
from bulk_sync.settings import RetryPolicy, RunSettings
from bulk_sync.upload import Uploader, Verdict, backoff_delay, classify, error_details, parse_retry_after


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.OK),
        (201, Verdict.OK),
        (204, Verdict.OK),
        (301, Verdict.REJECT),
        (400, Verdict.REJECT),
        (401, Verdict.FATAL),
        (403, Verdict.FATAL),
        (404, Verdict.REJECT),
        (408, Verdict.RETRY),
        (409, Verdict.REJECT),
        (413, Verdict.REJECT),
        (422, Verdict.REJECT),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (504, Verdict.RETRY),
    ],
)
def test_classify(status: int, verdict: Verdict) -> None:
    assert classify(status) is verdict


@pytest.mark.parametrize(
    ("body", "message", "issues"),
    [
        (
            b'{"error": "externalId already used by a deleted record"}',
            "externalId already used by a deleted record",
            (),
        ),
        (
            b'{"name":"ZodError","issues":[{"code":"invalid_type","path":["account","addresses",0,"zip"],'
            b'"message":"Required"}]}',
            "account.addresses[0].zip: Required",
            (("account.addresses[0].zip", "Required"),),
        ),
        (b"Bad Gateway", "Bad Gateway", ()),
        (b"", "(empty response body)", ()),
        (b"[1,2]", "[1,2]", ()),
    ],
)
def test_error_details(body: bytes, message: str, issues: tuple[tuple[str, str], ...]) -> None:
    assert error_details(body) == (message, issues)


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_800_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == pytest.approx(
        30, abs=1
    )
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_backoff_is_capped_and_jittered() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(a, 0.5, 4.0, rng) for a in range(1, 12)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) == len(delays)


def _settings(**retry: float) -> RunSettings:
    return RunSettings(
        base_url="https://siro.test/api",
        token="s3cret-token",  # type: ignore[arg-type]
        retry=RetryPolicy(**retry),
    )  # type: ignore[arg-type]


def _send(responses: list[httpx.Response | Exception], **retry: float) -> tuple[object, list[float], int]:
    """Send one payload through a transport that answers `responses` in turn."""
    seen: list[httpx.Request] = []
    waits: list[float] = []
    now = [0.0]  # a fake clock that moves only when the uploader sleeps

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        r = responses[len(seen) - 1]
        if isinstance(r, Exception):
            raise r
        return r

    async def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    async def go() -> object:
        async with Uploader(
            _settings(**retry), transport=httpx.MockTransport(handler), sleep=sleep, clock=lambda: now[0]
        ) as up:
            return await up.send(Payload("E-1", {"externalId": "E-1"}))

    outcome = asyncio.run(go())
    assert all(r.headers["authorization"] == "Bearer s3cret-token" for r in seen)
    assert all(json.loads(r.content) == {"externalId": "E-1"} for r in seen)
    return outcome, waits, len(seen)


def test_transient_failures_are_retried_until_success() -> None:
    outcome, waits, n = _send(
        [
            httpx.Response(503, text="busy"),
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            httpx.Response(429, headers={"Retry-After": "3"}, json={"error": "Too many requests"}),
            httpx.Response(200, json={"data": {"id": "eng_1", "externalId": "E-1"}}),
        ]
    )
    assert n == 5
    assert (outcome.status, outcome.attempts, outcome.siro_id) == ("synced", 5, "eng_1")  # type: ignore[attr-defined]
    assert sum(waits[3:]) >= 3  # the Retry-After was honoured (as a pause for every request)


def test_4xx_is_final_with_the_servers_message() -> None:
    body = {
        "name": "ZodError",
        "issues": [{"code": "invalid_type", "path": ["startTime"], "message": "Expected string"}],
    }
    outcome, waits, n = _send([httpx.Response(422, json=body)])
    assert n == 1 and waits == []
    assert outcome.status == "rejected"  # type: ignore[attr-defined]
    assert outcome.message == "startTime: Expected string"  # type: ignore[attr-defined]
    assert outcome.issues == (("startTime", "Expected string"),)  # type: ignore[attr-defined]


def test_retries_are_bounded_by_attempts() -> None:
    outcome, waits, n = _send([httpx.Response(500, json={"error": "boom"})] * 3, max_attempts=3)
    assert n == 3 and len(waits) == 2
    assert outcome.status == "failed"  # type: ignore[attr-defined]
    assert "gave up after 3 attempt(s)" in outcome.message and "boom" in outcome.message  # type: ignore[attr-defined]


def test_retries_are_bounded_by_elapsed_time() -> None:
    outcome, _, n = _send([httpx.Response(429, headers={"Retry-After": "100"})] * 5, max_elapsed=10)
    assert n == 1
    assert outcome.status == "failed"  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_stops_everything(status: int) -> None:
    with pytest.raises(AuthError, match=f"HTTP {status}") as info:
        _send([httpx.Response(status, json={"error": "Unauthorized"})])
    assert "s3cret" not in str(info.value)
