"""CLI, run: bulk-sync run / retry / validate: the flags turned into a :class:`~bulk_sync.job.Sync`,
its result printed, its exit code returned. The job itself (the plan, the rep check, the guards,
the outputs, the summary JSON, the webhook) lives in :mod:`bulk_sync.job`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import SecretStr, ValidationError

from .. import __version__, logs
from ..errors import EXIT_CONFIG, EXIT_OK, BulkSyncError, ConfigError, UsageError
from ..job import Delivery, Guards, Outputs, Reading, Sandbox, Siro, SyncResult
from ..job.outputs import About, write_outcome
from ..job.reps import RepMode
from ..job.spec import JobSpec, LogSpec, TargetSpec
from ..pipeline.mirror import MAX_DAYS, MAX_REMOVED, MirrorRules
from ..settings import PRODUCTION_BASE_URL, TOKEN_ENV, RetryPolicy, Timeouts, read_token
from ..signals import pending
from .outputs import CliEvents
from .process import default_state, workers_asked
from .progress import err, log, print_summary, say
from .streams import Streams, streams
from .values import delimiter_flag


def run_command(args: argparse.Namespace) -> int:
    with streams(pending) as spool:  # standard input and pipes, kept in a temporary file of the run
        return _run_command(args, spool)


def _run_command(args: argparse.Namespace, spool: Streams) -> int:
    dry = args.command == "validate" or bool(getattr(args, "dry_run", False))
    args.started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    redactor = logs.setup(args.log_file, args.log_level, args.log_format, [], verbose=args.verbose)
    workers = workers_asked() if dry else None  # a bad BULK_SYNC_WORKERS is refused before anything is read
    log.info("bulk-sync %s %s started", __version__, args.command)
    where = target_spec(args, dry)
    target = target_of(where, dry)  # the token read (or refused) before the other flags are checked
    files = [] if args.command == "retry" else spool.paths(args.files)
    return run_spec(job_spec(args, dry, where, files, workers), target, args, redactor)


def run_spec(spec: JobSpec, target: Siro | Sandbox, args: argparse.Namespace, redactor: logs.Redactor) -> int:
    """The job of ``spec`` sent to ``target``, its events and result printed; the exit code."""
    token = target.token
    if token is not None:
        redactor.secrets.append(token if isinstance(token, str) else token.get_secret_value())
    result = spec.call(
        target,
        events=CliEvents(args),
        stop=pending,
        show=getattr(args, "show", 0),
        started_at=args.started_at,
    )
    return _said(args, result, spec.dry)


def job_spec(
    args: argparse.Namespace,
    dry: bool,
    where: TargetSpec,
    files: Sequence[str | Path],
    workers: int | None = None,
) -> JobSpec:
    """The flags as a :class:`JobSpec` (``where``: the target, from :func:`target_spec`); no token in it."""
    try:
        return _job_spec(args, dry, where, files, workers)
    except ValidationError as exc:  # a profile's value no flag would take (flags are checked by argparse)
        raise UsageError(f"the settings make no job: {exc}") from None


def _job_spec(
    args: argparse.Namespace, dry: bool, where: TargetSpec, files: Sequence[str | Path], workers: int | None
) -> JobSpec:
    return JobSpec(
        command=args.command,
        dry_run=bool(getattr(args, "dry_run", False)),
        files=[str(f) for f in files],
        previous=getattr(args, "previous", None),
        mapping=args.mapping,
        target=where,
        state=None if (state := _state(args, dry)) is None else str(state),
        guards=_guards(args),
        delivery=_delivery(args, dry),
        reading=Reading(
            sheet=getattr(args, "sheet", None),
            encoding=args.encoding,
            delimiter=delimiter_flag(args.delimiter),
            limit=args.limit,
        ),
        full=bool(getattr(args, "full", False)),
        wait_lock=getattr(args, "wait_lock", 0.0),
        workers=workers,
        outputs=Outputs(
            report=args.report or None,
            report_dir=args.report_dir,
            xlsx=bool(args.report_xlsx),
            summary_json=getattr(args, "summary_json", None),
            notify_url=getattr(args, "notify_url", None),
            notify_on=getattr(args, "notify_on", "always"),
        ),
        max_failures=args.max_failures,
        log=LogSpec(
            file=args.log_file, level=args.log_level, format=args.log_format, heartbeat=args.heartbeat
        ),
    )


def _said(args: argparse.Namespace, result: SyncResult, dry: bool) -> int:
    """The result on the terminal and in the log; the exit code."""
    if result.nothing_to_retry:
        print(f"nothing to retry: every row of {args.previous} synced")
        return EXIT_OK
    summary = result.summary
    assert summary is not None
    args.mapping = result.mapping  # (a retry's, from the report's summary JSON)
    print_summary(args, summary, result.outputs, dry)
    if summary.aborted:
        could_not_start = summary.aborted_code == EXIT_CONFIG
        err(f"{'error' if could_not_start else 'aborted'}: {summary.aborted}")
    elif result.failed_rows and result.allowed_failures is not None:
        bad, allowed, flag = result.failed_rows, result.allowed_failures, args.max_failures
        if bad <= allowed:
            say(args, f"{bad:,} rows did not sync: within --max-failures {flag} ({allowed:,} rows)")
        else:
            err(f"{bad:,} rows did not sync: more than --max-failures {flag} ({allowed:,} rows)")
    if summary.report_incomplete:
        err(f"warning: the report is incomplete: {summary.report_incomplete}")
    _logged(result.exit_code, result.counts)
    return result.exit_code


def _logged(code: int, counts: dict[str, int]) -> None:
    log.log(
        logging.INFO if code == EXIT_OK else logging.WARNING,
        "finished with exit code %d: %s",
        code,
        json.dumps(counts),
    )


def could_not_start(exc: BulkSyncError) -> bool:
    """An error before the job started (the job writes the summary JSON of its own)."""
    return (exc.exit_code == EXIT_CONFIG or isinstance(exc, ConfigError)) and not getattr(
        exc, "outcome_written", False
    )


def finish(args: argparse.Namespace, code: int, error: str, review_url: str | None = None) -> None:
    """A command that could not start: its summary JSON (with --summary-json), its webhook, the log."""
    about = About(args.command, list(getattr(args, "files", []) or []), getattr(args, "mapping", None), None)
    outputs = Outputs(
        summary_json=getattr(args, "summary_json", None),
        notify_url=getattr(args, "notify_url", None),
        notify_on=getattr(args, "notify_on", "always"),
        review_url=review_url,
    )
    _logged(code, {})
    write_outcome(about, outputs, code, None, [], CliEvents(args), error=error)


# -- flags -> the job's objects --------------------------------------------------------------------


def target_spec(args: argparse.Namespace, dry: bool) -> TargetSpec:
    """Where the job sends, and where its token comes from: $SIRO_API_TOKEN (or the profile's
    variable) or --token-file, never a flag's value (a dry run: where it would send)."""
    sandbox = bool(getattr(args, "sandbox", False))
    if sandbox and args.base_url and not dry:
        raise UsageError("--sandbox and --base-url exclude each other")
    return TargetSpec(
        kind="sandbox" if sandbox and not args.base_url else "siro",
        base_url=args.base_url or PRODUCTION_BASE_URL,
        allow_insecure_http=bool(args.allow_insecure_http),
        ca_bundle=getattr(args, "ca_bundle", None),
        token_env=args.token_env,
        token_file=args.token_file,
        keep=getattr(args, "sandbox_keep", None) if sandbox else None,
    )


def target_of(where: TargetSpec, dry: bool) -> Siro | Sandbox:
    """The target with its token, read from where ``where`` says (a dry run: the token for the rep
    check, if there is one; the sandbox: a random one, if none is set)."""
    if dry or where.kind == "sandbox":
        try:
            token: SecretStr | None = read_token(where.token_file, env=os.environ, env_name=where.token_env)
        except UsageError:
            if dry and where.token_file:  # named, and unreadable: say so
                raise
            token = None if dry else read_token(None, env={TOKEN_ENV: "sandbox-" + secrets.token_hex(16)})
        return where.target(token)
    return where.target(read_token(where.token_file, env=os.environ, env_name=where.token_env))


def _state(args: argparse.Namespace, dry: bool) -> Path | None:
    """The state file: --state, else the default one (a dry run: when it exists; a sandbox run:
    none, the sandbox forgets everything at exit, unless it is a job's rehearsal, which keeps its
    state beside the sandbox's records); None with --no-state."""
    if getattr(args, "no_state", False):
        return None
    if getattr(args, "state", None):
        return Path(args.state)
    if dry:
        default = default_state()
        return default if default.is_file() else None
    if args.sandbox:
        keep = getattr(args, "sandbox_keep", None)
        return Path(keep) / "state.sqlite3" if keep else None
    return default_state()


def _guards(args: argparse.Namespace) -> Guards:
    reps: RepMode = "check"
    if getattr(args, "no_rep_check", False):
        if getattr(args, "require_known_reps", False):
            raise UsageError("--require-known-reps and --no-rep-check exclude each other")
        reps = "off"
    elif getattr(args, "require_known_reps", False):
        reps = "require"
    job = None
    if args.command == "run" and not getattr(args, "no_drift_check", False):
        if getattr(args, "job", None):
            job = str(args.job)
        elif getattr(args, "profile", None):
            job = f"profile:{args.profile}"
    return Guards(
        job=job, accept_drift=bool(getattr(args, "accept_drift", False)), mirror=_mirror(args), reps=reps
    )


def _mirror(args: argparse.Namespace) -> MirrorRules | None:
    """The mirror's rules from the flags (None without --mirror)."""
    if not getattr(args, "mirror", False):
        profile: frozenset[str] = getattr(args, "profile_keys", frozenset())
        for flag, name in (
            ("mirror_window", "window"),
            ("mirror_max_days", None),
            ("mirror_max_removed", None),
        ):
            if getattr(args, flag, None) is not None and flag not in profile:
                raise UsageError(f"--{(name or flag).replace('_', '-')} needs --mirror")
        return None
    removed = MAX_REMOVED if args.mirror_max_removed is None else _share(str(args.mirror_max_removed))
    return MirrorRules(
        window=getattr(args, "mirror_window", None) or None,
        max_days=MAX_DAYS if args.mirror_max_days is None else float(args.mirror_max_days),
        max_removed=removed,
        accept_truncation=bool(getattr(args, "accept_truncation", False)),
    )


def _share(text: str) -> float:
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise UsageError(f"--mirror-max-removed takes a percentage (10%) or a fraction (0.1), not {text!r}")
    return value


def _delivery(args: argparse.Namespace, dry: bool) -> Delivery:
    if dry:
        return Delivery(max_body_bytes=args.max_body_bytes)
    return Delivery(
        concurrency=args.concurrency,
        batch=not args.no_batch,
        batch_size=args.batch_size,
        max_batch_size=args.max_batch_size,
        max_body_bytes=args.max_body_bytes,
        rate_per_min=args.rate_per_min or None,
        breaker=args.circuit_breaker or None,
        retry=RetryPolicy(
            max_attempts=args.max_attempts,
            max_elapsed=args.retry_max_seconds,
            backoff_base=args.retry_backoff,
        ),
        timeouts=Timeouts(connect=args.connect_timeout, read=args.read_timeout, total=args.request_timeout),
        preflight=not getattr(args, "no_preflight", False),
    )
