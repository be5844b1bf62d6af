"""CLI, process: what the command line, which owns its process, reads from the environment and sets
in the process for a run. The library below does neither (see ``tests/test_library_hygiene.py``):
it takes these as arguments (``RunSettings.workers``, a state path) and leaves the process as it
found it.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError
from ..state import default_state_path

WORKERS_ENV = "BULK_SYNC_WORKERS"  # how many worker processes a dry run uses; 0: none (one process)
SWITCH_INTERVAL = 0.001  # seconds: the GIL's switch interval during a run (Python's default: 0.005)


def workers_asked() -> int | None:
    """``BULK_SYNC_WORKERS``, when set (None: not set, the default applies); ConfigError when it is
    not a number from 0 to 64."""
    asked = os.environ.get(WORKERS_ENV, "").strip()
    if not asked:
        return None
    if not asked.isdigit() or int(asked) > 64:
        raise ConfigError(
            f"{WORKERS_ENV}={asked!r}: expected the number of worker processes for a dry run, 0 to 64 "
            "(0: none; unset: one, for a large file on a machine with two cores or more)"
        )
    return int(asked)


def default_state() -> Path:
    """The state file unless --state says otherwise: per user, under ``$XDG_STATE_HOME`` (or
    ``%LOCALAPPDATA%`` on Windows)."""
    return default_state_path(os.environ)


@contextlib.contextmanager
def tuned_for_a_run() -> Iterator[None]:
    """The process set for the run inside: a short GIL switch interval, so that the reader thread
    does not keep the event loop waiting for the GIL, and what is loaded by now (modules, the
    mapping, the plan) frozen out of the cyclic GC's passes, which stay short. The interval is
    restored after; what was frozen stays frozen (it lives as long as the process)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.freeze()
    try:
        yield
    finally:
        sys.setswitchinterval(old)
