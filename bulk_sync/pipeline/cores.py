"""Pipeline, cores: how many processes may work beside this one (``workers``, asked by the caller;
the CLI reads ``BULK_SYNC_WORKERS``): a dry run's worker processes, and the helper that reads the
second half of a large CSV in its id pass.
"""

from __future__ import annotations

import os
import sys


def spare_core(workers: int | None = None) -> bool:
    """May a pass fork a helper process: on Linux (forked, it starts with what this one knows),
    with two cores or more, unless ``workers`` is 0 (one process; None: the machine decides)."""
    if not sys.platform.startswith("linux"):
        return False
    if workers is not None:
        return workers > 0
    return len(os.sched_getaffinity(0)) >= 2
