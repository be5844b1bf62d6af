"""Logging: ``--log-file``, ``--log-level``, ``--log-format json`` (one JSON object a line, for
log shippers). Every record passes a redaction filter that removes the API token and any
Authorization header value, whatever a library or message put in it.

Modules log through ``logging.getLogger(__name__)``; nothing is logged unless the CLI sets up a
handler here (the console gets the CLI's own short messages).
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

from .errors import UsageError

REDACTED = "[REDACTED]"
_AUTH = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(bearer\s+)?[^\s'\",}]+")
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+")


class Redactor(logging.Filter):
    """Replaces secrets in the final message (arguments merged), and in the exception text."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def scrub(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, REDACTED)
        text = _AUTH.sub(lambda m: m.group(1) + REDACTED, text)
        return _BEARER.sub("Bearer " + REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


def setup(path: str | None, level: str, fmt: str, secrets: list[str], verbose: int = 0) -> Redactor:
    """Send bulk_sync's (and aiohttp's) logs to ``path``, and to stderr with ``verbose`` (1: info,
    2: debug); return the redactor to add secrets to."""
    redactor = Redactor(secrets)
    root = logging.getLogger("bulk_sync")
    root.setLevel(level.upper())
    root.propagate = False  # never to Python's last-resort stderr handler: the console is the CLI's
    if verbose:
        console = logging.StreamHandler()  # stderr
        console.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
        console.addFilter(redactor)
        console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(console)
        root.setLevel(min(root.level, console.level))
    if path:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write the log file {path}: {exc.strerror or exc}") from exc
        handler.setLevel(level.upper())
        handler.addFilter(redactor)
        handler.setFormatter(
            JsonFormatter()
            if fmt == "json"
            else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        root.addHandler(handler)
        for name in ("aiohttp", "httpx"):  # their own records pass the same filter
            other = logging.getLogger(name)
            other.setLevel(max(logging.WARNING, root.level))
            other.addHandler(handler)
    return redactor
