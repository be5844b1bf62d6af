"""Sandbox, server: the emulator served on 127.0.0.1: on a thread of its own (tests, --sandbox), or in
the foreground (`bulk-sync sandbox`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from . import kept
from .app import Faults, Sandbox, SandboxState


class SandboxServer:
    """Runs a :class:`Sandbox` on 127.0.0.1 in a background thread (for tests and ``run --sandbox``).
    ``keep``: a JSON file its records are read from at start and written to at stop (:mod:`.kept`)."""

    def __init__(
        self,
        token: str,
        faults: Faults | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: list[dict[str, Any]] | None = None,
        keep: Path | None = None,
    ):
        self.sandbox = Sandbox(token, faults, users)
        self.keep = keep
        if keep is not None:
            kept.load(keep, self.sandbox.state)
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def state(self) -> SandboxState:
        return self.sandbox.state

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
        self._thread = threading.Thread(target=self._serve, name="siro-sandbox", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            try:
                loop.run_until_complete(self._startup())
            except BaseException as exc:  # reported to the starting thread
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            loop.run_forever()
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
        except Exception as exc:  # a client that dropped mid-answer must not kill the thread: keep it
            self.shutdown_error = exc
        finally:
            loop.close()

    shutdown_error: Exception | None = None

    async def _startup(self) -> None:
        self._runner = web.AppRunner(self.sandbox.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):  # already closed
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None
            if self.keep is not None:
                kept.save(self.sandbox.state, self.keep)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(
    token: str,
    faults: Faults,
    host: str,
    port: int,
    announce: Any = print,
    users: list[dict[str, Any]] | None = None,
) -> None:
    """`bulk-sync sandbox`: run in the foreground until Ctrl-C."""
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    sandbox = Sandbox(token, faults, users)

    async def main() -> None:
        runner = web.AppRunner(sandbox.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
        real_port = runner.addresses[0][1]
        announce(f"SIRO sandbox listening on http://{host}:{real_port} (Ctrl-C to stop)")
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(main())
    except KeyboardInterrupt:
        announce(f"sandbox stopped: {json.dumps(sandbox.state.stats())}")
