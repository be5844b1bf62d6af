"""Notifications: POST the run's JSON summary to a webhook when a run ends.

The body is the summary (see ``report.summary_dict``) plus a ``text`` field, so a Slack (or
Teams/Mattermost "incoming webhook") URL shows a readable line. A failing webhook never fails the
run: the problem comes back as a message for the caller to warn about. Webhook URLs are secrets
too (a Slack webhook URL is its own credential): only the host is ever printed.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 10.0


def summary_text(summary: dict[str, object], label: str) -> str:
    counts = summary.get("counts") or {}
    assert isinstance(counts, dict)
    parts = ", ".join(f"{k} {v:,}" for k, v in counts.items() if v)
    verdict = {0: "OK", 1: "finished with rows that did not sync", 2: "could not start", 3: "aborted"}.get(
        int(str(summary.get("exit_code", 1))), "ended"
    )
    text = f"bulk_sync {label}: {verdict}. {summary.get('rows', 0):,} rows: {parts or 'none'}."
    if summary.get("aborted"):
        text += f" Reason: {summary['aborted']}."
    if summary.get("report"):
        text += f" Report: {summary['report']}"
    if summary.get("review_url"):
        text += f" Fix the rows: {summary['review_url']}"
    return text


def post_summary(url: str, summary: dict[str, object], label: str) -> str | None:
    """POST the summary; None when the webhook took it, else what went wrong (never raises)."""
    body = json.dumps({"text": summary_text(summary, label), **summary}, default=str).encode()
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "bulk-sync"}
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as resp:
            if resp.status >= 300:
                return f"the notification webhook at {host_of(url)} answered HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"the notification webhook at {host_of(url)} answered HTTP {exc.code}"
    except Exception as exc:  # a webhook must never break the run
        reason = getattr(exc, "reason", None) or exc
        return f"could not reach the notification webhook at {host_of(url)}: {reason}"
    return None


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")
