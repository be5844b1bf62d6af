"""Pipeline, cores: how many processes may work beside this one (``BULK_SYNC_WORKERS``): a dry
run's worker processes, and the helper that reads the second half of a large CSV in its id pass.
"""

from __future__ import annotations

import os
import sys

from ..errors import ConfigError

WORKERS_ENV = "BULK_SYNC_WORKERS"  # how many worker processes a dry run uses; 0: none (one process)


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


def spare_core() -> bool:
    """May a pass fork a helper process: on Linux (forked, it starts with what this one knows),
    with two cores or more, unless ``BULK_SYNC_WORKERS`` is 0 (one process)."""
    if not sys.platform.startswith("linux"):
        return False
    asked = workers_asked()
    if asked is not None:
        return asked > 0
    return len(os.sched_getaffinity(0)) >= 2
