"""Review, guard: who may use the page, in one place (aiohttp middleware).

* the key: printed at start (or read from ``--key-file``, created on first start, mode 600, so
  links survive a restart); ``?key=`` once, then a **session cookie that is not the key**: a random
  session id signed with an HMAC of the key (HttpOnly, SameSite=Lax so a fix-link opened from
  webmail or a chat app carries it, ``Secure`` under TLS). A wrong or malformed key (non-ASCII
  included) is a 403, never a 500;
* the Host header must name this server: its loopback names, or the host of ``--public-url`` and
  the ``--allow-host`` names (no DNS rebinding from a web page);
* every POST carries the CSRF token of its session (``X-CSRF-Token`` or a form field), an HMAC of
  the key and the session id, never the key itself;
* after ``?key=`` the redirect stays on this server (a path, never ``//elsewhere``);
* every answer: a Content-Security-Policy (scripts from this server only, ``frame-ancestors
  'none'``, ``base-uri 'none'``), ``nosniff``, no referrer, ``Cache-Control: no-store`` (except
  the static files);
* a handler's unexpected error is a 500 that says so in words, the traceback in the server's log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

COOKIE = "bulk_sync_review"
CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
log = logging.getLogger("bulk_sync.review")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def sign(key: str, what: str) -> str:
    return hmac.new(key.encode(), what.encode(), hashlib.sha256).hexdigest()


def equal(given: str, wanted: str) -> bool:
    """Compared in constant time, as bytes: any text (non-ASCII included) compares, never raises."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), wanted.encode())


class Guard:
    """The key, the sessions it signs, the names this server answers to."""

    def __init__(self, key: str, *, tls: bool = False) -> None:
        self.key = key
        self.tls = tls
        self.access: Callable[[str], None] | None = None  # the access log's writer (--access-log)
        self.hosts: set[str] = set()  # Host header values accepted (set once listening)

    def session_of(self, request: web.Request) -> str | None:
        """The session id of a valid signed cookie, or None."""
        sid, _, mac = request.cookies.get(COOKIE, "").partition(".")
        if sid and mac and equal(mac, sign(self.key, "session:" + sid)):
            return sid
        return None

    def csrf(self, sid: str) -> str:
        return sign(self.key, "csrf:" + sid)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            resp = await self._checked(request, handler)
        except web.HTTPException:
            raise
        except Exception as exc:  # reading the request failed (a form that cannot be parsed, ...)
            resp = _failed(request, exc)
        if self.access is not None:  # the path only: never the query (it may hold the key)
            when = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            self.access(f"{when} {request.remote} {request.method} {request.path} {resp.status}")
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        if not request.path.startswith("/static/"):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    async def _checked(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.hosts and (request.host or "").lower() not in self.hosts:
            return _refuse(
                "this server answers only to its own address: open the address `bulk-sync serve` printed "
                "(or start it with --public-url naming the address you use)"
            )
        key = request.query.get("key")
        if key is not None:
            if not equal(key, self.key):
                return _refuse("this key is not the server's: open the address `bulk-sync serve` printed")
            return self._login(request)
        sid = self.session_of(request)
        if sid is None:
            return _refuse("open the address `bulk-sync serve` printed (it holds the key) to start a session")
        if request.method == "POST":
            token = request.headers.get("X-CSRF-Token", "")
            if not token and request.content_type in (
                "multipart/form-data",
                "application/x-www-form-urlencoded",
            ):
                try:
                    token = str((await request.post()).get("csrf", ""))
                except ValueError as exc:  # aiohttp's word for a multipart body it cannot parse
                    return web.Response(status=400, text=f"400: the form could not be read ({exc})")
            if not equal(token, self.csrf(sid)):
                return _refuse("this page is stale or came from another site: reload it, then try again")
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:  # said on the page in words, the traceback logged
            return _failed(request, exc)

    def _login(self, request: web.Request) -> web.StreamResponse:
        """A new session, then the same page without the key: a path on this server, never elsewhere."""
        path = "/" + request.path.lstrip("/\\")  # "//evil.example/" must not become a site
        query = {k: v for k, v in request.query.items() if k != "key"}
        clean = str(request.rel_url.with_path(path).with_query(query))
        if not clean.startswith("/") or clean.startswith(("//", "/\\")):
            clean = "/"
        found = web.Response(status=302, headers={"Location": clean})
        sid = secrets.token_urlsafe(18)
        found.set_cookie(
            COOKIE,
            f"{sid}.{sign(self.key, 'session:' + sid)}",
            httponly=True,
            samesite="Lax",
            secure=self.tls or None,
            path="/",
        )
        return found


def _refuse(text: str) -> web.Response:
    return web.Response(status=403, text=f"403: {text}")


def any_key() -> str:
    return secrets.token_urlsafe(24)


def check_key(key: str) -> str:
    """A key read from a file: letters, digits, '-', '_' (it goes in a URL), long enough."""
    key = key.strip()
    if len(key) < 16 or not key.isascii() or not all(c.isalnum() or c in "-_" for c in key):
        raise ValueError("the key must be at least 16 letters, digits, '-' or '_'")
    return key


def key_from_file(path: Path) -> tuple[str, str | None]:
    """The key kept in ``path`` (created on first start: a new random key, mode 600, never through
    a link planted there), and a warning when others may read it. Raises ValueError / OSError
    saying what is wrong."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(any_key() + "\n")
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"the key file {path} is not a plain file (a symbolic link?)")
    key = check_key(path.read_text(encoding="ascii", errors="replace"))
    loose = info.st_mode & 0o077
    warning = f"warning: the key file {path} can be read by others: chmod 600 {path}" if loose else None
    return key, warning


def access_log(path: Path) -> Callable[[str], None]:
    """A writer of access lines appended to ``path`` (created mode 600, never through a link)."""
    flags = (
        os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    )
    fh = os.fdopen(os.open(path, flags, 0o600), "a", encoding="utf-8", buffering=1)

    def write(line: str) -> None:
        fh.write(line + "\n")

    return write


def _failed(request: web.Request, exc: Exception) -> web.Response:
    """An unexpected error: a 500 that says so in words (what failed, in one line), the traceback in
    the server's log."""
    log.error("review: %s %s failed", request.method, request.path, exc_info=exc)
    return web.Response(
        status=500,
        text=f"the review server failed on this request ({type(exc).__name__}: {exc}); nothing was "
        "changed by it: see the log of `bulk-sync serve`, then try again",
    )
