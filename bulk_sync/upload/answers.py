"""Upload stage, answers: what an answer means: the verdict of a status (classify, a table), SIRO's
error shapes and their messages, Retry-After, backoff with jitter, a record's Outcome.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import httpx

from ..settings import IDENTITY_PATH, PRODUCTION_BASE_URL, RetryPolicy
from .proof import Proof


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
        msg = "; ".join(f"{path_text(p) or '(body)'}: {m}" for p, m in issues) or "validation failed"
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
    return message, tuple((path_text(p), m) for p, m in issues)


def path_text(path: Sequence[Any]) -> str:
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


def retry_after_of(headers: httpx.Headers) -> float | None:
    """Seconds to wait from a response's Retry-After. An HTTP date is read against the response's
    own ``Date`` (the server's clock), so that a server clock minutes ahead of this machine's does
    not turn "in 2 s" into minutes; without a usable ``Date``, against this machine's clock."""
    value = headers.get("retry-after")
    if not value:
        return None
    now = None
    if (date := headers.get("date")) and not value.strip().replace(".", "", 1).isdigit():
        try:
            now = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            now = None
    return parse_retry_after(value, now)


def too_long(asked: float, elapsed: float, policy: RetryPolicy) -> str:
    """Why a retry is not worth waiting for: SIRO asked to wait past the record's time budget ('' when
    it did not)."""
    if elapsed + asked <= policy.max_elapsed:
        return ""
    left = max(0.0, policy.max_elapsed - elapsed)
    return (
        f"SIRO asked to wait {asked:.0f} s, more than --retry-max-seconds allows "
        f"({left:.0f} s left of {policy.max_elapsed:g} s)"
    )


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**(attempt-1)))."""
    return rng.uniform(0, min(cap, base * 2 ** (attempt - 1)))


@dataclass(slots=True)
class Exchange:
    """The final answer to one request after retries: a response, or the last transient error."""

    response: httpx.Response | None
    attempts: int
    error: str = ""
    http_status: int | None = None
    elapsed: float = 0.0
    proof: Proof = field(default_factory=Proof)  # of a 2xx: the records it acknowledges


def shown(url: str) -> str:
    """A URL as it may be printed: without user, password, query or fragment."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def failed_outcome(ex: Exchange) -> Outcome:
    return Outcome(
        "failed",
        ex.attempts,
        ex.http_status,
        "retries-exhausted",
        f"gave up after {ex.attempts} attempt(s) in {ex.elapsed:.1f}s; last error: {ex.error}",
    )


def reject_slug(status: int) -> str:
    return {422: "api-invalid", 413: "too-large"}.get(status, "api-rejected")


def auth_message(status: int, body: bytes, path: str) -> str:
    message, _ = error_details(body)
    return (
        f"SIRO refused the API token (HTTP {status} on {path}: {message}). Check SIRO_API_TOKEN "
        "or --token-file, and that the token belongs to this organization; nothing more was sent"
    )


CERTIFICATE_HINT = (
    "this machine does not trust the server's certificate. If SIRO is reached through your "
    "organization's proxy or certificate authority, pass --ca-bundle FILE (its CA certificates, PEM) "
    "or set SSL_CERT_FILE"
)


def transport_message(exc: BaseException) -> str:
    text = str(exc)
    if "certificate verify failed" in text.lower():
        reason = text[text.lower().index("certificate verify failed") + 25 :].strip(" :")
        reason = reason.split(" (_ssl.c")[0]
        return f"certificate verify failed ({reason or 'unknown reason'}): {CERTIFICATE_HINT}"
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timed out waiting for SIRO"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection was closed before SIRO answered"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {str(exc)[:200]}"
    detail = str(exc).split("\n")[0][:200]
    return f"connection problem: {type(exc).__name__}" + (f": {detail}" if detail else "")


API_DIR = "/api-externalApi"  # the last part of SIRO's base URL's path


def not_here_message(base_url: str, status: int, location: str | None) -> str:
    """The pre-flight was redirected, or found nothing (404), at ``base_url``: which base URL was
    meant, most likely (shown without user, password or query)."""
    parts = urllib.parse.urlsplit(base_url)
    origin = shown(f"{parts.scheme}://{parts.netloc}")
    path = parts.path.rstrip("/")
    cut = path.find(API_DIR)
    guess = origin + (path[: cut + len(API_DIR)] if cut >= 0 else API_DIR)
    if guess == shown(base_url).rstrip("/"):
        guess = PRODUCTION_BASE_URL
    moved = f" (it redirects to {shown(location)})" if location and 300 <= status < 400 else ""
    return (
        f"not SIRO's API at this path: {shown(base_url)} answered HTTP {status} to GET {IDENTITY_PATH}"
        f"{moved}: did you mean --base-url {guess}? Nothing was sent"
    )
