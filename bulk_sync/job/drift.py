"""Job, drift: the drift hold around a scheduled job: before anything is sent, the files' shape
against the job's last good run (held: exit 2); after a good run (or one whose drift was
accepted), the new normal.
"""

from __future__ import annotations

from ..pipeline import Plan
from ..pipeline.drift import Shape, drifts, hold, read_columns, shape_of
from ..report import Summary
from ..settings import RunSettings
from ..state import StateStore, target_for
from .events import Events, log


def check_drift(
    job: str | None, accept: bool, plan: Plan, settings: RunSettings, events: Events
) -> Shape | None:
    """The files' shape (to be remembered after a good run), once checked against the job's last good
    one; raises Held when it drifted and the drift was not accepted. None: no check (no job, no
    state, or a dry run)."""
    if job is None or settings.state_path is None or settings.dry_run:
        return None
    shape, counts = shape_of(plan)
    with StateStore(settings.state_path, target_for(settings)) as store:
        stored = store.job_shape(job)
    if stored is None:
        events.info(f"drift: the first run of the job {job!r}: its files become the normal")
        return shape
    last = Shape.from_data(stored)
    found = drifts(last, shape, counts, read_columns(plan))
    if found and not accept:
        raise hold(job, last, found)
    if found:
        events.info(f"drift accepted (--accept-drift) for the job {job!r}: " + "; ".join(found))
        log.warning("drift accepted for %s: %s", job, "; ".join(found))
    return shape


def remember_shape(
    job: str | None, accept: bool, shape: Shape, settings: RunSettings, summary: Summary, code: int
) -> None:
    """After the run: a good one (every row fine, or within the failures allowed), or one whose drift
    was accepted, makes the files' shape the job's normal."""
    if job is None or settings.state_path is None or summary.aborted:
        return
    if code != 0 and not accept:
        return
    with StateStore(settings.state_path, target_for(settings)) as store:
        store.remember_job(job, shape.data())
