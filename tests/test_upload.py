"""Uploader: the response table, error bodies, Retry-After, and retry behaviour (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import random

import httpx
import pytest
from helpers import payload_of, send_through

from bulk_sync.errors import AuthError
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
    """No client rate limit: these tests count the retry waits, and the pace (tested in
    test_pace.py) would add its own waits whenever a jittered backoff is shorter than its spacing."""
    return RunSettings(
        base_url="https://siro.test/api",
        token="s3cret-token",  # type: ignore[arg-type]
        retry=RetryPolicy(**retry),
        rate_per_min=None,
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
            return await up.send(payload_of("E-1"))

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
    assert sum(waits[3:]) >= 3 - 1e-9  # the Retry-After was honoured (as a pause for every request)


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


def _ok(body: list[dict[str, object]]) -> httpx.Response:
    data = [{"id": f"id-{b['externalId']}", "externalId": b["externalId"]} for b in body]
    return httpx.Response(200, json={"data": list(reversed(data))})  # not in input order


def test_batch_results_are_matched_by_external_id_not_order() -> None:
    outcomes, bodies, _ = send_through(_ok, [payload_of(f"E{i}") for i in range(5)])
    assert len(bodies) == 1
    assert [o.siro_id for o in outcomes] == [f"id-E{i}" for i in range(5)]


def test_batch_422_with_indexes_rejects_those_and_resends_the_rest() -> None:
    def handler(body: list[dict[str, object]]) -> httpx.Response:
        bad = [i for i, b in enumerate(body) if str(b["externalId"]).startswith("BAD")]
        if bad:
            issues = [{"code": "custom", "path": [i, "subject"], "message": "reserved word"} for i in bad]
            return httpx.Response(422, json={"name": "ZodError", "issues": issues})
        return _ok(body)

    payloads = [payload_of("BAD1" if i in (3, 50, 97) else f"E{i}") for i in range(100)]
    outcomes, bodies, _ = send_through(handler, payloads)
    assert [len(b) for b in bodies] == [100, 97]
    assert [o.status for o in outcomes].count("synced") == 97
    rejected = [(i, o.message, o.issues) for i, o in enumerate(outcomes) if o.status == "rejected"]
    assert rejected == [(i, "subject: reserved word", (("subject", "reserved word"),)) for i in (3, 50, 97)]
    assert all(o.attempts == 2 for o in outcomes if o.status == "synced")


def test_batch_400_without_index_is_bisected_until_the_bad_record_is_alone() -> None:
    def handler(body: list[dict[str, object]]) -> httpx.Response:
        if any(b["externalId"] == "BAD" for b in body):
            return httpx.Response(400, json={"error": "Bad request"})
        return _ok(body)

    payloads = [payload_of("BAD" if i == 5 else f"E{i}") for i in range(16)]
    outcomes, bodies, _ = send_through(handler, payloads)
    assert [o.status for o in outcomes] == ["synced"] * 5 + ["rejected"] + ["synced"] * 10
    assert outcomes[5].message == "Bad request" and outcomes[5].error_type == "api-rejected"
    assert len(bodies) == 1 + 2 + 2 + 2 + 2  # 16 -> 8+8 -> 4+4 -> 2+2 -> 1+1: log2(n) levels


def test_413_splits_and_lowers_the_batch_size_for_the_run() -> None:
    def handler(body: list[dict[str, object]]) -> httpx.Response:
        return httpx.Response(413, json={"error": "Payload too large"}) if len(body) > 25 else _ok(body)

    outcomes, bodies, up = send_through(handler, [payload_of(f"E{i}") for i in range(100)])
    assert {o.status for o in outcomes} == {"synced"}
    assert up.batch_limit == 25
    assert sorted(len(b) for b in bodies if len(b) <= 25) == [25, 25, 25, 25]


def test_circuit_breaker_stops_after_consecutive_failures() -> None:
    from bulk_sync.errors import ServerUnavailable

    with pytest.raises(ServerUnavailable, match="3 requests in a row failed"):
        send_through(lambda body: httpx.Response(503, text="down"), [payload_of("E1")], breaker=3)
