"""Job, mirror: the mirror around a run: its guards before anything is sent, the soft-delete after a
run in which every row synced (or, in a dry run, what it would remove), and the list of what was
removed beside the report.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from ..errors import EXIT_ABORTED, EXIT_CONFIG, CallFailed, Held
from ..pipeline import Plan
from ..pipeline.mirror import MirrorPlan, MirrorRules, after_run_guard, plan_mirror
from ..report import Summary, neutralise
from ..settings import RunSettings
from ..state import StateStore, target_for
from .events import Events, log

SHOWN = 20  # removed records listed on the terminal; the CSV has them all


def prepare_mirror(plan: Plan, settings: RunSettings, rules: MirrorRules, events: Events) -> MirrorPlan:
    """The guards that hold the run before anything is sent; the plan of what would be removed."""
    if settings.state_path is None:
        mplan = plan_mirror(plan, None, rules)
    else:
        with StateStore(settings.state_path, target_for(settings)) as store:
            mplan = plan_mirror(plan, store, rules)
    events.info(f"mirror: the window {mplan.declared} is {mplan.window_text}")
    listed = len(mplan.removed)
    events.info(
        f"mirror: the files list {len(set(mplan.keep)):,} externalIds for the window {mplan.window_text}; "
        f"of the {mplan.earlier:,} records synced earlier in it, {listed:,} "
        f"{'is' if listed == 1 else 'are'} not listed",
    )
    if mplan.unplaced:
        events.info(f"mirror: {mplan.unplaced:,} records in the state have no start time (synced by an older "
            "bulk_sync): they are not counted until sent again (--full)")  # fmt: skip
    return mplan


def finish_mirror(
    events: Events,
    mplan: MirrorPlan,
    summary: Summary,
    settings: RunSettings,
    report_path: Path,
    dry: bool,
    code: int,
) -> tuple[list[Path], int]:
    """After the run: soft-delete (or, dry, say what would be); the list beside the report, and the
    exit code (2 when the mirror was held, 3 when SIRO did not confirm it)."""
    listing = report_path.with_name(report_path.stem + "-mirror.csv")
    summary.mirror = {
        "window": mplan.window_text,
        "declared": mplan.declared,
        "earlier": mplan.earlier,
        "removed": 0,
        "dry_run": dry,
    }
    if dry:
        summary.mirror["would_remove"] = len(mplan.removed)
        _write(listing, mplan, "would be soft-deleted")
        _show(events, mplan, "would soft-delete")
        return [listing], code
    from ..upload.calls import SiroCalls  # httpx: only when there is a call to make

    try:
        after_run_guard(summary)
        assert settings.token is not None
        with SiroCalls(
            settings.base_url,
            settings.token.get_secret_value(),
            settings.timeouts,
            ca_bundle=settings.ca_bundle,
        ) as calls:
            calls.soft_delete_removed(sorted(set(mplan.keep)), mplan.low, mplan.high)
    except Held as exc:
        events.error(str(exc))
        log.error("%s", exc)
        summary.mirror["held"] = str(exc)
        return [], EXIT_CONFIG
    except CallFailed as exc:
        events.error(f"the mirror's soft-delete failed: {exc}; nothing more was changed; run again")
        summary.mirror["error"] = str(exc)
        return [], EXIT_ABORTED
    if settings.state_path is not None:
        with StateStore(settings.state_path, target_for(settings)) as store:
            store.forget([key for key, _, _ in mplan.removed])
    summary.mirror["removed"] = len(mplan.removed)
    _write(listing, mplan, "soft-deleted")
    _show(events, mplan, "soft-deleted")
    log.info("mirror: soft-deleted %d records in %s", len(mplan.removed), mplan.window_text)
    return [listing], code


def _show(events: Events, mplan: MirrorPlan, verb: str) -> None:
    n = len(mplan.removed)
    events.info(f"mirror: {verb} {n:,} {'record' if n == 1 else 'records'} with a start in "
        f"{mplan.window_text} that the files do not list (per the state)")  # fmt: skip
    for key, start, _ in mplan.removed[:SHOWN]:
        events.info(f"  {key}  (start {start})")
    if len(mplan.removed) > SHOWN:
        events.info(f"  ... and {len(mplan.removed) - SHOWN:,} more (see the -mirror.csv beside the report)")


def _write(path: Path, mplan: MirrorPlan, action: str) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        out = csv.writer(fh)
        out.writerow(["external_id", "start_time", "siro_id", "action", "window", "at"])
        for key, start, siro_id in mplan.removed:
            out.writerow([neutralise(key), start, siro_id or "", action, mplan.window_text, now])
