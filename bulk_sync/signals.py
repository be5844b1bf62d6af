"""Signals that arrive before a run's event loop handles them: SIGINT and SIGTERM are held (noted,
not raised) from the CLI's first line, so that a Ctrl-C while modules are imported, the mapping is
read or the id pass runs never ends in a traceback (nor in pandas' "Error tokenizing data", which
is what a KeyboardInterrupt inside its parser turns into), and a SIGTERM does not kill the process
before the report is written. The CLI asks :func:`pending` at its checkpoints, and hands it to the
run, whose event loop acts on a signal held before it took over.

Only the CLI's entry point calls :func:`hold`; the library never changes the process's handlers.
"""

from __future__ import annotations

import signal
from typing import Any

_HELD = (signal.SIGINT, signal.SIGTERM)
_held: list[str] = []  # the names of the signals received while held, in order
_before: dict[int, Any] = {}  # the handlers :func:`hold` replaced


def _note(signum: int, frame: Any) -> None:
    _held.append(signal.Signals(signum).name)


def hold() -> None:
    """From now on SIGINT and SIGTERM are only noted (see :func:`pending`). Again: no change."""
    for sig in _HELD:
        try:
            current = signal.getsignal(sig)
            if current is not _note:
                signal.signal(sig, _note)
                _before.setdefault(sig, current)
        except ValueError:  # not the main thread (main() called by a test's thread): nothing held
            return


def pending() -> str | None:
    """The name of the first signal received while held (``SIGINT``), or None."""
    return _held[0] if _held else None


def release(*, deliver: bool) -> None:
    """The handlers from before :func:`hold` back; ``deliver``: a signal held meanwhile is raised
    again now, as if it had just arrived (a command that handles signals its own way)."""
    for sig, handler in list(_before.items()):
        try:
            signal.signal(sig, handler)
        except ValueError:
            return
        del _before[sig]
    held = list(_held)
    _held.clear()
    if deliver and held:
        signal.raise_signal(signal.Signals[held[0]])
