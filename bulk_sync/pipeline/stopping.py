"""Pipeline, stopping: how a run is asked to stop: SIGINT and SIGTERM handled by its event loop (and
one its caller held before the loop took them), a reason set for a stop found elsewhere, and the
report's last line after a hard stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator

from ..errors import BulkSyncError
from ..report import NOT_SENT, RowResult
from .results import Stop


def stopped_hard(last: tuple[str, str | None, int] | None, verb: str = "send") -> RowResult:
    """The report's last line after a second signal: where it stops (the rows after were not read)."""
    file, sheet, row = last if last is not None else ("", None, 0)
    return RowResult(
        file,
        sheet,
        row + 1,
        None,
        NOT_SENT,
        error_type="interrupted",
        message=(
            f"the run was stopped hard here: the report stops after row {row}; this row and every "
            f"row after it (and any later file) were not read: run the same command again to {verb} them"
        ),
    )


def halt_with(stop: Stop, reason: BulkSyncError, halt: Callable[[BulkSyncError], None] | None) -> None:
    if halt is not None:
        halt(reason)
    else:
        stop.reason = reason


@contextlib.contextmanager
def signals(
    handler: Callable[[str], None], *, enabled: bool, held: Callable[[], str | None]
) -> Iterator[None]:
    if not enabled:
        yield
        return
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handler, sig.name)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
            pass
    name = held()  # one the caller held before the handlers above took over
    if name is not None:
        handler(name)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
