"""CLI, child: ``python -m bulk_sync.cli.child`` runs one job handed over as a
:class:`~bulk_sync.job.spec.JobSpec` in JSON on its standard input (the watcher runs each dropped
file so). The token is read from where the spec says, never from the spec; signals are held as
the command line holds them; the job's lines and result are printed as `bulk-sync run --quiet`
prints them (the watcher keeps them in the run's run.log and quotes its ``error:`` lines); the
exit code is the job's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from .. import __version__, logs
from ..errors import EXIT_ABORTED, EXIT_CONFIG, BulkSyncError
from ..job.spec import JobSpec
from ..signals import hold, release
from ..watch import PARENT_ENV, die_with_parent
from .process import workers_asked
from .progress import err, log
from .run import could_not_start, finish, run_spec, target_of
from .scratch import run_folder


def main() -> int:
    hold()  # a signal is noted; the job acts on it (see signals)
    try:
        return _main(sys.stdin.buffer.read())
    finally:
        release(deliver=False)


def _main(text: bytes) -> int:
    die_with_parent(os.environ.get(PARENT_ENV))  # started by `watch`: it ends with the watcher
    try:
        spec = JobSpec.from_json(text)
    except ValueError as exc:
        err(f"error: what was handed over is not a job: {exc}")
        return EXIT_CONFIG
    args = _flags(spec)
    try:
        with run_folder():  # this run's temporary files; those of killed runs removed first
            return _run(spec, args)
    except BulkSyncError as exc:
        err(f"error: {exc}")
        if could_not_start(exc):
            finish(args, exc.exit_code, str(exc), spec.outputs.review_url)
        return exc.exit_code
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_ABORTED


def _run(spec: JobSpec, args: argparse.Namespace) -> int:
    redactor = logs.setup(spec.log.file, spec.log.level, spec.log.format, [])
    if spec.dry:
        workers_asked()  # a bad BULK_SYNC_WORKERS is refused before anything is read
    log.info("bulk-sync %s %s started", __version__, spec.command)
    return run_spec(spec, target_of(spec.target, spec.dry), args, redactor)


def _flags(spec: JobSpec) -> argparse.Namespace:
    """What the CLI's printing reads of a run's flags, from the spec (printed as with --quiet)."""
    return argparse.Namespace(
        command=spec.command,
        dry_run=spec.dry_run,
        quiet=True,
        verbose=0,
        warnings=False,
        show=0,
        heartbeat=spec.log.heartbeat,
        files=spec.files,
        previous=spec.previous,
        mapping=spec.mapping,
        max_failures=spec.max_failures,
        state=spec.state,
        no_state=spec.state is None,
        sandbox=spec.target.kind == "sandbox",
        summary_json=spec.outputs.summary_json,
        notify_url=spec.outputs.notify_url,
        notify_on=spec.outputs.notify_on,
        started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


if __name__ == "__main__":
    sys.exit(main())
