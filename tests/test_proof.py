"""What a 2xx answer to a sync proves (upload/proof.py), as a table; and what the uploader does with an
answer that proves nothing, or only part of a batch (issue 33: any HTTP 200 was taken as stored)."""

from __future__ import annotations

import email.utils
import json
import time

import httpx
import pytest
from helpers import payload_of, send_through

from bulk_sync.payload import Payload
from bulk_sync.settings import RetryPolicy
from bulk_sync.upload.answers import not_here_message, retry_after_of, too_long
from bulk_sync.upload.proof import QUOTE_CHARS, acknowledged, identity_problem, quote

TWO = ("E1", "E2")
R1 = {"id": "eng_1", "externalId": "E1"}
R2 = {"id": "eng_2", "externalId": "E2"}
BOTH = {"E1": "eng_1", "E2": "eng_2"}


def _j(doc: object) -> bytes:
    return json.dumps(doc).encode()


# (body, batch?, ids proven, words of the problem ('' = every record proven))
TABLE = [
    (_j({"data": [R1, R2]}), True, BOTH, ""),
    (_j({"data": [R2, R1]}), True, BOTH, ""),  # any order: matched by externalId
    (_j({"data": [R1, R2], "extra": 1}), True, BOTH, ""),
    (_j({"data": [{**R1, "id": 7}, R2]}), True, {"E1": "7", "E2": "eng_2"}, ""),
    (b"<html><body>Welcome</body></html>", True, {}, "not JSON"),
    (b'{"data": [{"id": "eng_1", "externalId": "E1"}, {"id": "eng', True, {}, "not JSON"),
    (b"", True, {}, "empty"),
    (b"\xff\xfe garbage", True, {}, "not JSON"),
    (_j({"data": None}), True, {}, "`data` is null"),
    (_j({"ok": True}), True, {}, "no `data`"),
    (_j([R1, R2]), True, {}, "not an object"),
    (_j("stored"), True, {}, "not an object"),
    (_j({"data": R1}), True, {}, "not a list"),
    (_j({"data": []}), True, {}, "acknowledges 0 of the 2"),
    (_j({"data": [R1]}), True, {"E1": "eng_1"}, "acknowledges 1 of the 2"),
    (
        _j({"data": [R1, {"id": "x", "externalId": "OTHER"}]}),
        True,
        {"E1": "eng_1"},
        "1 result(s) name no record",
    ),
    (
        _j({"data": [{"id": "a", "externalId": "X1"}, {"id": "b", "externalId": "X2"}]}),
        True,
        {},
        "0 of the 2",
    ),
    (_j({"data": [{"externalId": "E1"}, R2]}), True, {"E2": "eng_2"}, "1 of the 2"),  # no SIRO id
    (_j({"data": [{**R1, "id": ""}, {**R2, "id": None}]}), True, {}, "0 of the 2"),
    (_j({"data": [{**R1, "id": True}, R2]}), True, {"E2": "eng_2"}, "1 of the 2"),
    (_j({"data": [{**R1, "externalId": ["E1"]}, "E2", None, 3]}), True, {}, "4 result(s) name no record"),
]


@pytest.mark.parametrize(("body", "batch", "ids", "problem"), TABLE)
def test_what_an_answer_proves(body: bytes, batch: bool, ids: dict[str, str], problem: str) -> None:
    proof = acknowledged(body, TWO, batch)
    assert proof.ids == ids
    assert (problem in proof.problem) if problem else proof.problem == ""


SINGLE = [
    (_j({"data": R1}), {"E1": "eng_1"}, ""),
    (_j({"data": [R1]}), {}, "not one result"),
    (_j({"data": {**R1, "externalId": "E9"}}), {}, "0 of the 1"),
    (_j({"data": None}), {}, "null"),
    (b"OK", {}, "not JSON"),
]


@pytest.mark.parametrize(("body", "ids", "problem"), SINGLE)
def test_what_an_answer_to_one_record_proves(body: bytes, ids: dict[str, str], problem: str) -> None:
    proof = acknowledged(body, ("E1",), batch=False)
    assert proof.ids == ids
    assert (problem in proof.problem) if problem else proof.problem == ""


def test_quote_is_short_one_line_and_never_shows_the_token() -> None:
    token = "tok-SECRET-123"
    body = b"<html>\r\n<p>your token " + token.encode() + b" is</p>" + b"x" * 500
    q = quote(body, token)
    assert token not in q and "[token]" in q
    assert "\n" not in q and "\\r\\n" in q
    assert q.endswith("...") and len(q) <= QUOTE_CHARS + 10
    # a token straddling the cut is blanked whole, not left half-shown
    edge = b"a" * (QUOTE_CHARS - 5) + token.encode()
    assert "tok-S" not in quote(edge, token)


# ----------------------------------------------------------------------------- the uploader


def _go(handler, payloads: list[Payload], batch: bool = True, **retry: float):  # type: ignore[no-untyped-def]
    """Through the uploader, SIRO mocked: (the outcomes, the request bodies)."""
    outcomes, bodies, _ = send_through(
        handler, payloads, batch=batch, token="s3cret-token", breaker=None, retry=RetryPolicy(**retry)
    )
    return outcomes, bodies


def _stored(body: object) -> httpx.Response:
    items = body if isinstance(body, list) else [body]
    data = [{"id": f"id-{b['externalId']}", "externalId": b["externalId"]} for b in items]  # type: ignore[index]
    return httpx.Response(200, json={"data": data if isinstance(body, list) else data[0]})


def test_a_200_html_page_is_retried_then_failed_quoting_it_never_synced() -> None:
    page = b"<html><body>Maintenance: back soon. s3cret-token</body></html>"
    outcomes, bodies = _go(
        lambda body: httpx.Response(200, content=page, headers={"Content-Type": "text/html"}),
        [payload_of("E1"), payload_of("E2")],
        max_attempts=3,
    )
    assert len(bodies) == 3  # the usual retry policy
    assert [o.status for o in outcomes] == ["failed", "failed"]
    msg = outcomes[0].message
    assert "not SIRO's acknowledgement (it is not JSON)" in msg and "<html><body>Maintenance" in msg
    assert "s3cret-token" not in msg and outcomes[0].http_status == 200


def test_a_bad_answer_then_a_good_one_syncs() -> None:
    answers = iter([httpx.Response(200, json={"data": None}), None])

    def handler(body: object) -> httpx.Response:
        return next(answers) or _stored(body)

    outcomes, bodies = _go(handler, [payload_of("E1")], batch=False)
    assert len(bodies) == 2
    assert (outcomes[0].status, outcomes[0].siro_id, outcomes[0].attempts) == ("synced", "id-E1", 2)


def test_half_the_results_sync_that_half_and_resend_the_rest() -> None:
    def half(body: list[dict[str, str]]) -> httpx.Response:
        data = [{"id": f"id-{b['externalId']}", "externalId": b["externalId"]} for b in body]
        return httpx.Response(200, json={"data": data[: max(1, len(data) // 2)]})

    payloads = [payload_of(f"E{i}") for i in range(8)]
    outcomes, bodies = _go(half, payloads)
    assert [len(b) for b in bodies] == [8, 4, 2, 1]  # type: ignore[arg-type]
    assert [o.status for o in outcomes] == ["synced"] * 8
    assert [o.siro_id for o in outcomes] == [f"id-E{i}" for i in range(8)]
    assert [o.attempts for o in outcomes] == [1] * 4 + [2] * 2 + [3, 4]


def test_foreign_results_prove_nothing_and_fail_in_the_end() -> None:
    def foreign(body: list[dict[str, str]]) -> httpx.Response:
        return httpx.Response(
            200, json={"data": [{"id": "x", "externalId": "NOT-" + b["externalId"]} for b in body]}
        )

    outcomes, bodies = _go(foreign, [payload_of("E1"), payload_of("E2")], max_attempts=2)
    assert len(bodies) == 2 and {o.status for o in outcomes} == {"failed"}
    assert "acknowledges 0 of the 2 record(s) sent (2 result(s) name no record sent)" in outcomes[0].message


NOW = time.time()
AHEAD = NOW + 600  # a server clock 10 minutes ahead of this machine's


def _http(t: float) -> str:
    return email.utils.formatdate(t, usegmt=True)


# (Retry-After, Date, seconds to wait)
RETRY_AFTER = [
    ("2", None, 2.0),
    ("2", _http(AHEAD), 2.0),  # seconds: the Date does not matter
    (_http(AHEAD + 2), _http(AHEAD), 2.0),  # a date: against the server's own clock
    (_http(AHEAD - 5), _http(AHEAD), 0.0),  # already past, by the server's clock
    ("soon", _http(AHEAD), None),
    (None, _http(AHEAD), None),
]


@pytest.mark.parametrize(
    ("value", "date", "wait"),
    RETRY_AFTER,
    ids=["seconds", "seconds-date", "date", "date-past", "junk", "none"],
)
def test_retry_after_is_read_against_the_answers_date(
    value: str | None, date: str | None, wait: float | None
) -> None:
    headers = httpx.Headers({k: v for k, v in (("Retry-After", value), ("Date", date)) if v is not None})
    got = retry_after_of(headers)
    assert got == wait if wait is None else got == pytest.approx(wait, abs=1.5)


def test_without_a_usable_date_header_this_machines_clock_is_used() -> None:
    for date in ("not a date", None):
        headers = httpx.Headers({"Retry-After": _http(time.time() + 30), **({"Date": date} if date else {})})
        assert retry_after_of(headers) == pytest.approx(30, abs=1.5)


def test_a_wait_past_the_budget_is_named() -> None:
    policy = RetryPolicy(max_elapsed=300)
    assert too_long(86400, 0, policy) == (
        "SIRO asked to wait 86400 s, more than --retry-max-seconds allows (300 s left of 300 s)"
    )
    assert too_long(60, 200, policy) == ""
    assert "60 s left" in too_long(61, 240, policy)


def test_a_429_asking_past_the_budget_fails_at_once_saying_so() -> None:
    outcomes, bodies = _go(
        lambda body: httpx.Response(429, headers={"Retry-After": "86400"}, json={"error": "slow down"}),
        [payload_of("E1")],
    )
    assert len(bodies) == 1 and outcomes[0].status == "failed"
    assert "SIRO asked to wait 86400 s, more than --retry-max-seconds allows" in outcomes[0].message


# (the pre-flight's 2xx body, words of the problem ('' = it may be SIRO's caller identity))
IDENTITY = [
    (b'{"data": {"organizationId": "org_1", "type": "organization-api-token"}}', ""),
    (b'{"organizationId": "org_1"}', ""),  # the shape is not documented: any object that holds something
    (b"<html><body>Sign in to the Wi-Fi</body></html>", "not JSON"),
    (b"", "empty"),
    (b"[]", "not an object"),
    (b"{}", "empty object"),
    (b'{"data": null}', "`data` is not an object"),
    (b'{"data": []}', "`data` is not an object"),
    (b'{"data": {}}', "`data` is not an object"),
    (b'{"data": {"organizationId": "o"', "not JSON"),
]


@pytest.mark.parametrize(("body", "problem"), IDENTITY)
def test_what_the_preflight_takes_for_sirOs_identity(body: bytes, problem: str) -> None:
    got = identity_problem(body)
    assert (problem in got and got) if problem else got == ""


@pytest.mark.parametrize(
    ("base", "status", "location", "meant"),
    [
        ("https://siro.example", 404, None, "https://siro.example/api-externalApi"),
        ("https://siro.example/api-externalApi/v1", 404, None, "https://siro.example/api-externalApi"),
        ("https://siro.example/api-externalApi", 404, None, "https://functions.siro.ai/api-externalApi"),
        (
            "http://127.0.0.1:8080/",
            301,
            "https://x.example/login?next=/a",
            "http://127.0.0.1:8080/api-externalApi",
        ),
    ],
)
def test_a_404_or_redirect_names_the_base_url_most_likely_meant(
    base: str, status: int, location: str | None, meant: str
) -> None:
    message = not_here_message(base, status, location)
    assert message.startswith(f"not SIRO's API at this path: {base} answered HTTP {status} to GET ")
    assert f"did you mean --base-url {meant}?" in message
    assert ("(it redirects to https://x.example/login)" in message) == (location is not None)
    assert "next=" not in message
