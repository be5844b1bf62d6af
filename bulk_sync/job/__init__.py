"""Job: the one API every caller uses (the command line, the watcher, the review page, a Python
task): :class:`Sync` runs a job and returns a :class:`SyncResult`.

    events      what a job tells its caller while it goes on (Events)
    targets     where it sends: Siro, Sandbox; how: Delivery
    reps        SIRO's users, for the rep check
    drift       the drift hold of a scheduled job
    mirror      the mirror's guards, soft-delete and list
    outputs     the report, its .xlsx, the summary JSON, the webhook (Outputs)
    result      SyncResult, the exit code
    sync        Sync, Guards, Reading: the job's steps
    check       rows checked as validate checks them (Sync.check_rows)
    spec        one job as data (JobSpec, JSON): a job handed to another process (the watcher's child)
"""

from __future__ import annotations

from .events import Events
from .outputs import Outputs
from .result import SyncResult
from .sync import CheckedRow, Guards, Mirror, Reading, Sync
from .targets import Delivery, Sandbox, Siro

__all__ = [
    "CheckedRow",
    "Delivery",
    "Events",
    "Guards",
    "Mirror",
    "Outputs",
    "Reading",
    "Sandbox",
    "Siro",
    "Sync",
    "SyncResult",
]
