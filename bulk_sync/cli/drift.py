"""CLI, drift: the drift hold around a scheduled run: before anything is sent, the files' shape against
the job's last good run (held: exit 2); after a good run (or one whose drift was accepted), the new
normal.
"""

from __future__ import annotations

import argparse

from ..pipeline import Plan
from ..pipeline.drift import Shape, drifts, hold, read_columns, shape_of
from ..report import Summary
from ..settings import RunSettings
from ..state import StateStore, target_of
from .progress import log, say


def job_of(args: argparse.Namespace) -> str | None:
    """The job a run belongs to (--job, else its profile); None: an ad-hoc run (or `retry`, or
    `validate`), no drift check."""
    if args.command != "run" or getattr(args, "no_drift_check", False):
        return None
    if getattr(args, "job", None):
        return str(args.job)
    return f"profile:{args.profile}" if getattr(args, "profile", None) else None


def check_drift(args: argparse.Namespace, plan: Plan, settings: RunSettings) -> Shape | None:
    """The files' shape (to be remembered after a good run), once checked against the job's last good
    one; raises Held when it drifted and the drift was not accepted. None: no check."""
    job = job_of(args)
    if job is None or settings.state_path is None or settings.dry_run:
        return None
    shape, counts = shape_of(plan)
    store = StateStore(settings.state_path, target_of(settings.base_url, settings.resource))
    try:
        stored = store.job_shape(job)
    finally:
        store.close()
    if stored is None:
        say(args, f"drift: the first run of the job {job!r}: its files become the normal")
        return shape
    last = Shape.from_data(stored)
    found = drifts(last, shape, counts, read_columns(plan))
    if found and not args.accept_drift:
        raise hold(job, last, found)
    if found:
        say(args, f"drift accepted (--accept-drift) for the job {job!r}: " + "; ".join(found))
        log.warning("drift accepted for %s: %s", job, "; ".join(found))
    return shape


def remember_shape(
    args: argparse.Namespace, shape: Shape, settings: RunSettings, summary: Summary, code: int
) -> None:
    """After the run: a good one (every row fine, or within --max-failures), or one whose drift was
    accepted, makes the files' shape the job's normal."""
    job = job_of(args)
    if job is None or settings.state_path is None or summary.aborted:
        return
    if code != 0 and not args.accept_drift:
        return
    store = StateStore(settings.state_path, target_of(settings.base_url, settings.resource))
    try:
        store.remember_job(job, shape.data())
    finally:
        store.close()
