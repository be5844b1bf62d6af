"""Upload stage, calls: SIRO's endpoints besides the sync itself, each called once or a few times a run:
its users (``GET /v1/core/users``, following ``cursor``), the mirror's reconciliation
(``POST .../soft-delete-removed``) and deletes by externalId (``DELETE .../engagements/{id}``).

A plain synchronous httpx client: these calls come before or after the run's concurrent sending,
never beside it. Each retries what the sync retries (408, 429, 5xx, timeouts, dropped connections),
a few times, then raises :class:`CallFailed` with a message a person can act on (401/403 too: a
run's pre-flight, or its first sync request, then stops it as it always did). Messages name the
path, never the token or a query.
"""

from __future__ import annotations

import random
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ..errors import CallFailed
from ..settings import RetryPolicy, Timeouts
from .answers import Verdict, classify, error_details, retry_after_of, transport_message
from .retries import Retries
from .transport import tls_context

USERS_PATH = "/v1/core/users"
SOFT_DELETE_PATH = "/v1/integrations/sync/engagements/soft-delete-removed"
DELETE_PATH = "/v1/integrations/engagements/{id}"
TRIES = 5  # a call that changes SIRO (the mirror's soft-delete, a delete): worth waiting for
LOOKUP_TRIES = 3  # the users, for the rep check: a warning when they do not come, so a short wait
CONNECT_TRIES = 2  # a connection refused, or no such host
MAX_PAGES = 10_000  # a cursor that never ends is SIRO's bug, not a reason to loop for ever


@dataclass(frozen=True)
class SiroUser:
    email: str | None
    name: str
    disabled: bool


class SiroCalls:
    """The one-off calls, on one connection. Use as a context manager."""

    def __init__(
        self,
        base_url: str,
        token: str,
        timeouts: Timeouts | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        ca_bundle: Path | None = None,
    ) -> None:
        t = timeouts or Timeouts()
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(t.total, connect=t.connect, read=t.read),
            transport=transport,
            trust_env=True,
            verify=tls_context(ca_bundle),
        )
        self._sleep = sleep
        self._rng = random.Random()
        self._token = token

    def __enter__(self) -> SiroCalls:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def users(self) -> list[SiroUser]:
        """Every user of the organization, every page (``cursor``), in one list."""
        return list(self._users())

    def _users(self) -> Iterator[SiroUser]:
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = {"cursor": cursor} if cursor else None
            body = self._call("GET", USERS_PATH, params=params, tries=LOOKUP_TRIES)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise CallFailed(f"SIRO's answer on {USERS_PATH} holds no `data` list of users")
            for item in data:
                if isinstance(item, dict):
                    yield _user(item)
            cursor = body.get("cursor") or None
            if cursor is None:
                return
        raise CallFailed(f"{USERS_PATH} kept answering with a next page after {MAX_PAGES} pages")

    def soft_delete_removed(self, valid_external_ids: list[str], from_time: str, to_time: str) -> None:
        """Soft-delete every engagement whose startTime is in [from_time, to_time] and whose
        externalId is not in ``valid_external_ids``."""
        body = {"validExternalIds": valid_external_ids, "fromTime": from_time, "toTime": to_time}
        answer = self._call("POST", SOFT_DELETE_PATH, json=body)
        data = answer.get("data") if isinstance(answer, dict) else None
        if not (isinstance(data, dict) and data.get("success") is True):
            raise CallFailed(
                f"SIRO did not confirm the soft-delete on {SOFT_DELETE_PATH}: {str(answer)[:300]}"
            )

    def delete(self, external_id: str) -> bool:
        """Delete one engagement by its externalId: True when SIRO answered ``true`` (deleted),
        False when it answered ``false`` (it had none). Only a JSON boolean (bare, as documented, or
        as ``{"data": ...}``) counts: any other 200 (a proxy's page, cut-off JSON, ``null``) proves
        nothing, is retried as a failed answer, then raises CallFailed quoting what came back."""
        path = DELETE_PATH.format(id=urllib.parse.quote(external_id, safe=""))
        answer = self._call(
            "DELETE", path, params={"idType": "external"}, shown=DELETE_PATH, accept=_delete_answer
        )
        return bool(_delete_answer(answer))

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        shown: str | None = None,
        tries: int = TRIES,
        accept: Callable[[Any], object] | None = None,
    ) -> Any:
        """Send until a final answer; the parsed JSON of a 2xx. Retries transient failures as the sync
        does (:class:`~.retries.Retries`; here a 429 counts as a try too, and the backoff starts at
        1 s, capped at 10 s; ``tries`` in all), and a 2xx that ``accept`` returns None for (it is
        not the answer the endpoint documents)."""
        where = shown or path
        last = ""
        retries = Retries(_policy(tries), self._rng, time.monotonic)
        for attempt in range(1, tries + 1):
            after: float | None = None
            try:
                resp = self._client.request(method, path, params=params, json=json)
            except httpx.TransportError as exc:
                last = transport_message(exc)
                if isinstance(exc, httpx.ConnectError) and attempt >= CONNECT_TRIES:
                    break  # no such host, or nothing listening: more tries would only wait
            else:
                verdict = classify(resp.status_code)
                message = f"HTTP {resp.status_code} on {where}: {error_details(resp.content)[0]}"
                if verdict is Verdict.FATAL:  # 401/403: the caller decides (a run's pre-flight says it)
                    raise CallFailed(f"SIRO refused the API token ({message})")
                if verdict is Verdict.OK:
                    body = _parsed(resp)
                    if accept is None or accept(body) is not None:
                        return body
                    quoted = _quoted(resp, self._token)
                    last = f"HTTP {resp.status_code} on {where} is not SIRO's answer: {quoted}"
                elif verdict is not Verdict.RETRY:
                    raise CallFailed(message)
                else:
                    last = message
                    after = retry_after_of(resp.headers)
            retries.failed()
            if (wait := retries.wait(after)) is None:
                break
            self._sleep(wait)
        raise CallFailed(f"{last} (gave up after {attempt} attempt(s))")


def _policy(tries: int) -> RetryPolicy:
    """The retries of a call: ``tries`` in all, 1 s then doubled up to 10 s, a Retry-After up to a
    minute; no time budget of their own (a run's calls are few)."""
    return RetryPolicy(
        max_attempts=tries, max_elapsed=24 * 3600, backoff_base=1.0, backoff_cap=10.0, retry_after_cap=60.0
    )


def _parsed(resp: httpx.Response) -> Any:
    """The JSON of an answer, or its text when it is not JSON."""
    try:
        return resp.json()
    except ValueError:
        return resp.text


def _delete_answer(body: Any) -> bool | None:
    """A delete's answer as documented (a JSON boolean, or one under ``data``), or None."""
    data = body.get("data") if isinstance(body, dict) and set(body) == {"data"} else body
    return data if isinstance(data, bool) else None


def _quoted(resp: httpx.Response, token: str) -> str:
    """The first 200 characters of an answer, quoted, the token never among them."""
    text = resp.content[:800].decode("utf-8", "replace")
    if token:
        text = text.replace(token, "[token]")
    return repr(text[:200]) if text.strip() else "an empty body"


def _user(item: dict[str, Any]) -> SiroUser:
    email = item.get("email")
    name = " ".join(str(item.get(k) or "") for k in ("firstName", "lastName")).strip()
    return SiroUser(
        email.strip().lower() if isinstance(email, str) and email.strip() else None,
        name,
        bool(item.get("disabled")),
    )


def active_emails(users: list[SiroUser]) -> frozenset[str]:
    """The emails of the users who are not disabled, lower-case: what a rep's email is matched to."""
    return frozenset(u.email for u in users if u.email and not u.disabled)


def disabled_emails(users: list[SiroUser]) -> frozenset[str]:
    """The emails of disabled users that no active user has, lower-case: a rep SIRO has but will not
    link until the user is re-enabled (not a rep SIRO lacks)."""
    return frozenset(u.email for u in users if u.email and u.disabled) - active_emails(users)
