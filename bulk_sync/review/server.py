"""Review, server: `bulk-sync serve` in the foreground, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from .app import Review

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def serve(review: Review, host: str, port: int, announce: Callable[[str], None] = print) -> None:
    """Serve until Ctrl-C / SIGTERM; say where (with the key) once listening."""
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    async def main() -> None:
        runner = web.AppRunner(review.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        real = runner.addresses[0][1]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        review.hosts = {f"{h}:{real}" for h in {shown, "127.0.0.1", "localhost", host}}
        if host not in LOOPBACK:
            announce(f"warning: listening on {host}, not only this machine: anyone who can reach it and has "
                     "the key can see the reports and drop files into the inbox")  # fmt: skip
        stopped = asyncio.Event()  # SIGTERM (systemd's stop) ends it as Ctrl-C does: uploads removed
        with contextlib.suppress(NotImplementedError):  # (Windows: no signal handlers in the loop)
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
        announce(f"open http://{shown}:{real}/?key={review.key}")
        try:
            await stopped.wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    announce("review page stopped")


class ReviewThread:
    """The review app on 127.0.0.1 in a background thread (tests); ``url`` once started."""

    def __init__(self, review: Review, host: str = "127.0.0.1") -> None:
        import threading

        self.review, self.host = review, host
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="bulk_sync-review")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

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
        self.review.hosts = {f"{self.host}:{self.port}", f"localhost:{self.port}"}
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def stop(self) -> None:
        loop, self._loop = self._loop, None  # once: a test may stop it before its fixture does
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(10)
