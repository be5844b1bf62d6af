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

SAME_SIGNAL_SECONDS = 0.5  # a held signal seen again by the loop within this long is the same one


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
    replayed: list[tuple[str, float]] = []  # the signal the caller held, when it was handed on

    def once(signame: str) -> None:
        # A signal that arrives while the handlers change hands is held by the caller's handler
        # and also reaches the loop's (its wakeup byte is written either way): the same signal,
        # seen twice. The first delivery of that signal soon after the held one was handed on is
        # taken as it; a second Ctrl-C later is a second one.
        if replayed and replayed[0][0] == signame and loop.time() - replayed.pop()[1] < SAME_SIGNAL_SECONDS:
            return
        replayed.clear()
        handler(signame)

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, once, sig.name)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
            pass
    name = held()  # one the caller held before the handlers above took over
    if name is not None:
        replayed.append((name, loop.time()))
        handler(name)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
