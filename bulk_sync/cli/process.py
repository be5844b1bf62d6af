"""CLI, process: what the command line, which owns its process, sets in it for a run. The library
below leaves the process as it found it (see ``tests/test_library_hygiene.py``).
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator

SWITCH_INTERVAL = 0.001  # seconds: the GIL's switch interval during a run (Python's default: 0.005)


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
