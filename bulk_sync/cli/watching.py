"""CLI, watching: bulk-sync watch INBOX. The routes checked, and each route's runs made a
:class:`~bulk_sync.job.spec.JobSpec` once, at start, from `run`'s own flags (the route's config
profile and the watch's --base-url, --allow-insecure-http, --token-file), so that a setting no run
would take stops the watcher at start (exit 2), not every dropped file. The watcher fills in each
file's part and hands the spec to a child (:mod:`bulk_sync.cli.child`) as JSON.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from ..config import config_path, load_watch
from ..errors import EXIT_OK, EXIT_ROWS_FAILED, UsageError
from ..inbox import Route
from ..job.result import allowed
from ..job.spec import JobSpec
from ..job.targets import check_base_url
from .args import parse
from .commands import check_routes, profile_mapping
from .profile import rehearse
from .run import job_spec, target_spec

# the child: python -m bulk_sync.cli.child, with SIGINT/SIGTERM held from its first line (as
# `python -m bulk_sync` holds them) rather than after the CLI's modules are imported
CHILD = [
    sys.executable,
    "-c",
    "import bulk_sync.signals as s; s.hold(); import bulk_sync.cli.child as c; raise SystemExit(c.main())",
]


def watch_command(args: argparse.Namespace) -> int:
    from .. import inbox as drop
    from .. import watch

    inbox = Path(args.inbox)
    if not inbox.is_dir():
        raise UsageError(f"the inbox {inbox} is not a folder")
    cfg_path = config_path(args.config, os.environ)
    section = load_watch(cfg_path)
    routes = drop.routes_from(
        section.routes,
        args.mapping or profile_mapping(cfg_path, args.profile),
        base=cfg_path.resolve().parent if cfg_path else None,
    )
    if not routes:
        raise UsageError("no mapping: give --mapping, or [[watch.routes]] in the config file")
    check_routes(routes, cfg_path)
    extra = []
    if args.sandbox:
        if args.base_url:
            raise UsageError("--sandbox and --base-url exclude each other")
        extra.append("--sandbox")
    if args.base_url:
        extra += ["--base-url", check_base_url(args.base_url, args.allow_insecure_http)]
    if args.allow_insecure_http:
        extra.append("--allow-insecure-http")
    if args.token_file:
        extra += ["--token-file", str(Path(args.token_file).resolve())]
    config = str(cfg_path.resolve()) if cfg_path else None
    jobs = route_jobs(routes, config, args.profile, extra)
    cfg = drop.WatchConfig(
        inbox=inbox,
        routes=routes,
        settle=args.settle or section.settle_seconds or 5.0,
        poll=args.poll or section.poll_seconds or 2.0,
        config=config,
        profile=args.profile,
        review_url=args.review_url,
    )
    lock = drop.hold_inbox(inbox)  # before anything in the inbox is touched
    try:
        w = watch.Watcher(cfg, jobs, CHILD, say=lambda m: print(m, flush=True))
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, w.on_signal)
        print(f"watching {w.inbox} (drop files there; results in done/ and failed/)", flush=True)
        before = len(list(w.dirs["failed"].iterdir()))
        if args.once:
            w.run_once()
        else:
            w.run_forever()
        failed_now = len(list(w.dirs["failed"].iterdir()))
    finally:
        lock.release(remove=True)
    return EXIT_ROWS_FAILED if failed_now > before else EXIT_OK


def route_jobs(
    routes: list[Route], config: str | None, profile: str | None, extra: list[str]
) -> dict[str | None, JobSpec]:
    """The job of each profile the routes use (a route's own, else the watch's --profile): `run`'s
    flags for it, parsed and turned into a spec as `run` turns them. The file, its mapping and its
    sheet, the job's name and the outputs are the watcher's to fill in for each file."""
    jobs: dict[str | None, JobSpec] = {}
    for name in dict.fromkeys(route.profile or profile for route in routes):
        argv = ["run", "-", "--job", "watch"]  # a job: the drift check is on, unless the profile says no
        argv += ["--config", config] if config else []
        argv += ["--profile", name] if name else []
        said = f"the profile {name!r}" if name else "the default profile"
        try:
            flags = parse(argv + extra)
        except SystemExit as exc:  # argparse said what (a profile's value no flag takes)
            raise UsageError(f"the runs of {said} cannot start with these settings (see above)") from exc
        for line in rehearse(flags, flags.origin, reports=False):
            print(line, flush=True)
        dry = bool(getattr(flags, "dry_run", False))
        jobs[name] = job_spec(flags, dry, target_spec(flags, dry), [])
        allowed(jobs[name].max_failures, 1)  # a bad --max-failures: refused now
    return jobs
