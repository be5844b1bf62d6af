"""Upload stage, proof: what a 2xx answer to a sync proves. A record counts as stored only when SIRO's
answer says so: a JSON body of the documented shape (``{"data": [Engagement, ...]}`` for a batch,
``{"data": Engagement}`` for one record), holding a result that names the record's externalId and
carries SIRO's id. A proxy's maintenance page, a captive portal, a cut-off body, ``{"data": null}``,
half the results or results naming other records prove nothing for the records they leave out.

The check is cheap on purpose (every answer goes through it): one ``json.loads``, a table of shape
rules, one pass over the results against the externalIds sent; no model is built per result.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

QUOTE_CHARS = 200  # how much of an answer that proves nothing a message quotes


@dataclass(frozen=True, slots=True)
class Proof:
    """What one answer proves: externalId -> SIRO id for each record sent that it acknowledges, and
    why it does not prove the rest ('' when it proves every record sent)."""

    ids: dict[str, str] = field(default_factory=dict)
    problem: str = ""


# (is the parsed body broken this way?, what to say): checked in order, the first that holds wins
_SHAPE: tuple[tuple[Callable[[Any, bool], bool], str], ...] = (
    (lambda doc, batch: not isinstance(doc, dict), "it is JSON but not an object"),
    (lambda doc, batch: "data" not in doc, "it has no `data`"),
    (lambda doc, batch: doc["data"] is None, "its `data` is null"),
    (lambda doc, batch: batch and not isinstance(doc["data"], list), "its `data` is not a list of results"),
    (lambda doc, batch: not batch and not isinstance(doc["data"], dict), "its `data` is not one result"),
)


def acknowledged(body: bytes, sent: Sequence[str], batch: bool) -> Proof:
    """Which of the records ``sent`` (their externalIds) a 2xx answer ``body`` proves stored.

    Results are matched by externalId, whatever their order; a result without SIRO's ``id``, or
    naming a record not sent, proves nothing."""
    doc, problem = _json(body)
    if problem:
        return Proof(problem=problem)
    for broken, problem in _SHAPE:
        if broken(doc, batch):
            return Proof(problem=problem)
    results = doc["data"] if batch else [doc["data"]]
    wanted = set(sent)
    ids: dict[str, str] = {}
    foreign = 0
    for item in results:
        ext = item.get("externalId") if isinstance(item, dict) else None
        if not isinstance(ext, str) or ext not in wanted:
            foreign += 1
            continue
        sid = item.get("id")
        if isinstance(sid, str | int) and not isinstance(sid, bool) and str(sid):
            ids[ext] = str(sid)
    if len(ids) == len(wanted):
        return Proof(ids)
    problem = f"it acknowledges {len(ids)} of the {len(wanted)} record(s) sent"
    if foreign:
        problem += f" ({foreign} result(s) name no record sent)"
    return Proof(ids, problem)


def _json(body: bytes) -> tuple[Any, str]:
    try:
        return json.loads(body), ""
    except ValueError:  # also a body that is not UTF-8
        return None, "it is not JSON" if body.strip() else "it is empty"


# the pre-flight's answer (GET caller-identity): its shape is not documented, so any JSON object
# that holds something passes, and a `data`, when there is one, must be an object as SIRO's are
_IDENTITY: tuple[tuple[Callable[[Any], bool], str], ...] = (
    (lambda doc: not isinstance(doc, dict), "it is JSON but not an object"),
    (lambda doc: not doc, "it is an empty object"),
    (
        lambda doc: "data" in doc and not (isinstance(doc["data"], dict) and doc["data"]),
        "its `data` is not an object",
    ),
)


def identity_problem(body: bytes) -> str:
    """Why a 2xx answer to the pre-flight is not SIRO's (an HTML page, say); '' when it may be."""
    doc, problem = _json(body)
    if problem:
        return problem
    return next((problem for broken, problem in _IDENTITY if broken(doc)), "")


_CONTROL = {c: f"\\x{c:02x}" for c in range(32)} | {9: "\\t", 10: "\\n", 13: "\\r"}


def quote(body: bytes, secret: str = "") -> str:
    """The start of an answer, as a message may show it: its first QUOTE_CHARS characters on one
    line, ``secret`` (the token, should a server echo it) blanked out."""
    text = body[: (QUOTE_CHARS + len(secret)) * 4].decode("utf-8", "replace")
    if secret:
        text = text.replace(secret, "[token]")
    cut = text[:QUOTE_CHARS].translate(_CONTROL)
    return f'"{cut}"' + ("..." if len(text) > QUOTE_CHARS else "")


def unproven_message(path: str, status: int, body: bytes, problem: str, secret: str = "") -> str:
    """Why an answer does not count as SIRO's acknowledgement, quoting what came back."""
    return (
        f"HTTP {status} on {path} is not SIRO's acknowledgement ({problem}); it began: {quote(body, secret)}"
    )
