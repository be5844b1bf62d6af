"""Review, server: `bulk-sync serve` in the foreground, on 127.0.0.1 unless told otherwise.

Reachable from other desks only when asked: ``--host`` another address (it warns), and the names
people type accepted as the Host header: ``--public-url`` (the address printed, e.g. behind a
reverse proxy) and ``--allow-host``; listening on every address (0.0.0.0, ::) also accepts the
machine's own names. IPv6 addresses are printed in brackets. TLS with ``--tls-cert/--tls-key``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from .app import Review

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
WILDCARD = {"0.0.0.0", "::", ""}


def bracket(host: str) -> str:
    """``host`` as it goes in a URL or a Host header: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def public_host(url: str) -> str:
    """The Host header a browser sends for ``url`` (its port only when not the scheme's default)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--public-url {url!r} is not an http:// or https:// address")
    host = bracket(parts.hostname.lower())
    return f"{host}:{parts.port}" if parts.port else host


def accepted(host: str, port: int, public_url: str | None, allow: Iterable[str]) -> set[str]:
    """Every Host header value this server answers to."""
    names = {"127.0.0.1", "localhost", "[::1]", bracket(host) if host not in WILDCARD else "127.0.0.1"}
    if host in WILDCARD:
        names |= {bracket(n.lower()) for n in {socket.gethostname(), socket.getfqdn()} if n}
    names |= {bracket(a.strip().lower()) for a in allow if a.strip()}
    out = {f"{n}:{port}" for n in names}
    out |= {bracket(a.strip().lower()) for a in allow if a.strip()}  # behind a proxy on 80/443
    if public_url:
        out.add(public_host(public_url))
    return out


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context from PEM files; raises OSError / ssl.SSLError saying what is wrong."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def serve(
    review: Review,
    host: str,
    port: int,
    announce: Callable[[str], None] = print,
    *,
    public_url: str | None = None,
    allow_hosts: Iterable[str] = (),
    tls: ssl.SSLContext | None = None,
) -> None:
    """Serve until Ctrl-C / SIGTERM; say where (with the key) once listening."""
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    allow = list(allow_hosts)

    async def main() -> None:
        # stopping waits at most 1 s for requests in flight (a preview's child is killed first)
        runner = web.AppRunner(review.app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host or None, port, ssl_context=tls)
        await site.start()
        real = int(runner.addresses[0][1])
        review.hosts = accepted(host, real, public_url, allow)
        if host not in LOOPBACK:
            where = bracket(host or "0.0.0.0")
            announce(f"warning: listening on {where}, not only this machine: anyone who can reach it "
                     "and has the key can see the reports and drop files into the inbox")  # fmt: skip
        stopped = asyncio.Event()  # SIGTERM (systemd's stop) ends it as Ctrl-C does: uploads removed
        with contextlib.suppress(NotImplementedError):  # (Windows: no signal handlers in the loop)
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
        shown = "127.0.0.1" if host in WILDCARD else host
        base = (
            public_url.rstrip("/")
            if public_url
            else f"{'https' if tls else 'http'}://{bracket(shown)}:{real}"
        )
        announce(f"open {base}/?key={review.key}")
        try:
            await stopped.wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    announce("review page stopped")


class ReviewThread:
    """The review app on 127.0.0.1 in a background thread (tests); ``url`` once started."""

    def __init__(self, review: Review, host: str = "127.0.0.1", allow_hosts: Iterable[str] = ()) -> None:
        import threading

        self.review, self.host = review, host
        self.allow = list(allow_hosts)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="bulk_sync-review")

    @property
    def url(self) -> str:
        return f"http://{bracket(self.host)}:{self.port}"

    def start(self) -> ReviewThread:
        self._thread.start()
        self._ready.wait(10)
        return self

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        runner = web.AppRunner(self.review.app(), access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, self.host, 0)
        loop.run_until_complete(site.start())
        self.port = int(runner.addresses[0][1])
        self.review.hosts = accepted(self.host, self.port, None, self.allow)
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def stop(self) -> None:
        loop, self._loop = self._loop, None  # once: a test may stop it before its fixture does
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(10)
