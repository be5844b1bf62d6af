"""CLI, run: bulk-sync run / retry / validate: the plan, the run with its outputs (report, .xlsx, error
files, listed problems), the exit code, the summary JSON and the webhook.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from .. import __version__, logs
from ..errorfile import Failures, Kept
from ..errors import (
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_ROWS_FAILED,
    ConfigError,
    UsageError,
)
from ..payload import Payload
from ..pipeline import (
    Plan,
    RepCheck,
    prepare,
    prepare_retry,
    run,
    scan_columns,
    spare_core,
    state_lock,
)
from ..pipeline.finish import Outcome, error_files, notify, outcome_data, write_summary_json
from ..report import (
    GOOD,
    CsvReport,
    Summary,
    XlsxReport,
)
from ..settings import (
    RunSettings,
)
from ..signals import hold, pending
from .drift import check_drift, remember_shape
from .mirror import finish_mirror, mirror_rules, prepare_mirror
from .outputs import Outputs
from .process import tuned_for_a_run, workers_asked
from .progress import err, log, print_summary, progress, say
from .sending import sending_settings
from .siro import dry_state, rep_check, validate_connection
from .streams import Streams, streams
from .values import delimiter_flag

if TYPE_CHECKING:
    from ..sandbox import SandboxServer


def run_command(args: argparse.Namespace) -> int:
    with streams(pending) as spool:  # standard input and pipes, kept in a temporary file of the run
        return _run_command(args, spool)


def _run_command(args: argparse.Namespace, spool: Streams) -> int:
    dry = args.command == "validate" or bool(getattr(args, "dry_run", False))
    args.started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    redactor = logs.setup(args.log_file, args.log_level, args.log_format, [], verbose=args.verbose)
    args.redactor = redactor
    if not args.mapping and args.command == "retry":
        args.mapping = _mapping_of_the_run(Path(args.previous))
        if args.mapping:
            say(args, f"mapping: {args.mapping} (the one the report's run used, per its summary JSON)")
    if not args.mapping:
        raise UsageError("--mapping is required (or `mapping` in the config profile)")
    if args.max_failures is not None:
        _max_failures(str(args.max_failures), 1)  # a bad value is refused before anything is read
    workers = workers_asked() if dry else None  # a bad BULK_SYNC_WORKERS is refused before anything is read
    log.info("bulk-sync %s %s started", __version__, args.command)
    _not_stopped()
    plan = _plan(args, dry, spool, workers)
    if plan is None:
        print(f"nothing to retry: every row of {args.previous} synced")
        return EXIT_OK
    mirror = mirror_rules(args)
    settings, server, reps, note = _connect(args, dry, redactor, plan.spec.resource, workers)
    settings = settings.model_copy(update={"resource": plan.spec.resource})  # its paths, its state
    plan = dataclasses.replace(plan, reps=reps, reps_note=note)
    report_path = Path(args.report) if args.report else _default_report(plan, args.report_dir)
    if report_path.suffix.lower() in (".xlsx", ".xlsm"):  # they want it in Excel: the CSV goes beside it
        report_path = report_path.with_suffix(".csv")
        args.report_xlsx = True
    args.report_path = report_path
    failures = Failures()
    kept = Kept()  # the cells of invalid rows, remembered while reading, for the error file
    mplan = shape = None
    try:
        with state_lock(settings, getattr(args, "wait_lock", 0.0)):
            shape = check_drift(args, plan, settings)  # held before anything is sent
            mplan = prepare_mirror(args, plan, settings, mirror) if mirror is not None else None
            summary = _execute(args, plan, settings, report_path, failures, kept)
    finally:
        if server is not None:
            server.stop()
    try:
        written = _written(args, plan, report_path, failures, kept)
    finally:
        failures.close()
    if mplan is not None and dry:  # what it would remove, before the summary that counts it
        written += finish_mirror(args, mplan, summary, settings, report_path, dry, EXIT_OK)[0]
    print_summary(args, summary, written, dry)
    code = _exit_code(args, summary)
    if mplan is not None and not dry:
        listing, code = finish_mirror(args, mplan, summary, settings, report_path, dry, code)
        written += listing
    if shape is not None:
        remember_shape(args, shape, settings, summary, code)
    finish(args, code, summary, written)
    return code


def _connect(
    args: argparse.Namespace, dry: bool, redactor: logs.Redactor, resource: str, workers: int | None
) -> tuple[RunSettings, SandboxServer | None, RepCheck | None, str]:
    """The run's settings (the sandbox started with --sandbox), and SIRO's users for the rep check;
    ``workers``: a dry run's worker processes (None: the default)."""
    server = None
    if dry:
        base_url, token = validate_connection(args)
        settings = RunSettings(
            base_url=base_url,
            token=SecretStr("unused"),
            dry_run=True,
            limit=args.limit,
            max_body_bytes=args.max_body_bytes,
            state_path=dry_state(args),
            workers=workers,
        )
    else:
        settings, server = sending_settings(args, redactor)
        base_url, token = settings.base_url, settings.token
    try:
        if pending() is not None:  # stopping: no call to SIRO, every row is reported not_sent
            reps, note = None, "not checked (the run was stopped)"
        else:
            reps, note = rep_check(args, base_url, token, settings.timeouts, resource)
    except BaseException:
        if server is not None:
            server.stop()
        raise
    return settings, server, reps, note


def _mapping_of_the_run(report: Path) -> str | None:
    """The mapping the run that wrote ``report`` used, from the summary JSON beside it (None when
    there is none, or it names no mapping that still exists)."""
    try:
        data = json.loads(report.with_name(report.stem + "-summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    mapping = data.get("mapping") if isinstance(data, dict) else None
    return mapping if isinstance(mapping, str) and Path(mapping).is_file() else None


def _beside_report(args: argparse.Namespace) -> Path | None:
    """``<report>-summary.json``, once the run has a report."""
    report = getattr(args, "report_path", None)
    return report.with_name(report.stem + "-summary.json") if isinstance(report, Path) else None


def _plan(args: argparse.Namespace, dry: bool, spool: Streams, workers: int | None) -> Plan | None:
    """Everything checked before sending: the mapping, the files, their columns (None: a retry with
    nothing left to send). A dry run reads a large CSV's ids in two halves at once (a run is bound
    by SIRO's quota: the second or so this saves is not worth the memory of a second process)."""
    if args.command == "retry":
        plan = prepare_retry(
            args.previous, args.mapping, encoding=args.encoding, delimiter=delimiter_flag(args.delimiter)
        )
        if plan is None:
            return None
    else:
        plan = prepare(
            spool.paths(args.files),
            args.mapping,
            sheet=args.sheet,
            encoding=args.encoding,
            delimiter=delimiter_flag(args.delimiter),
        )
    for w in plan.warnings:
        err(f"warning: {w}")
        log.warning("%s", w)
    _not_stopped()
    # ids and number columns, before anything is sent; from here a signal ends with the report
    return scan_columns(
        plan, limit=args.limit, helper=dry and spare_core(workers), stopping=lambda: pending() is not None
    )


def _not_stopped() -> None:
    """A signal held before any row was read (see signals): stop here, exit 2, nothing written."""
    name = pending()
    if name is not None:
        raise ConfigError(f"stopped by {name} before any row was read: nothing was sent")


def _written(
    args: argparse.Namespace, plan: Plan, report_path: Path, failures: Failures, kept: Kept
) -> list[Path]:
    """The report (and its .xlsx), then the error files of the rows to fix."""
    written = [report_path]
    if args.report_xlsx:
        written.append(report_path.with_suffix(".xlsx"))
    files, problem = error_files(plan, failures, report_path, kept)
    if problem:
        err(f"warning: {problem}")
    return written + files


def _exit_code(args: argparse.Namespace, summary: Summary) -> int:
    if summary.aborted:
        could_not_start = summary.aborted_code == EXIT_CONFIG
        err(f"{'error' if could_not_start else 'aborted'}: {summary.aborted}")
        code = summary.aborted_code
    else:
        code = _verdict(args, summary)
    if summary.report_incomplete:
        err(f"warning: the report is incomplete: {summary.report_incomplete}")
    return code


def _verdict(args: argparse.Namespace, summary: Summary) -> int:
    """0 when every row is fine, or when the rows that did not sync are within --max-failures."""
    bad = sum(n for status, n in summary.counts.items() if status not in GOOD)
    if bad == 0:
        return EXIT_OK
    if args.max_failures is not None:
        allowed = _max_failures(str(args.max_failures), summary.rows)
        if bad <= allowed:
            say(
                args,
                f"{bad:,} rows did not sync: within --max-failures {args.max_failures} ({allowed:,} rows)",
            )
            return EXIT_OK
        err(f"{bad:,} rows did not sync: more than --max-failures {args.max_failures} ({allowed:,} rows)")
    return EXIT_ROWS_FAILED


def _max_failures(text: str, rows: int) -> int:
    """`N` rows, or `N%` of the rows read (rounded down)."""
    try:
        if text.endswith("%"):
            pct = float(text[:-1])
            if not 0 <= pct <= 100:
                raise ValueError
            return int(rows * pct / 100)
        n = int(text)
        if n < 0:
            raise ValueError
        return n
    except ValueError:
        raise UsageError(
            f"--max-failures takes a row count or a percentage (e.g. 25 or 2%), not {text!r}"
        ) from None


def finish(
    args: argparse.Namespace,
    code: int,
    summary: Summary | None,
    written: list[Path],
    error: str | None = None,
) -> None:
    """After the run (or after it could not start): summary JSON, notification, last log line."""
    run = Outcome(
        args.command,
        code,
        files=list(getattr(args, "files", []) or []),
        started_at=getattr(args, "started_at", None),
        written=written,
        error=error,
        mapping=str(Path(args.mapping).resolve()) if getattr(args, "mapping", None) else None,
        review_url=getattr(args, "review_link", None),
    )
    data = outcome_data(summary, run)
    log.log(
        logging.INFO if code == EXIT_OK else logging.WARNING,
        "finished with exit code %d: %s",
        code,
        json.dumps(data.get("counts", {})),
    )
    target = getattr(args, "summary_json", None) or _beside_report(args)
    if target:  # beside the report by default: the review page lists the run from it
        problem = write_summary_json(str(target), data)
        if problem:
            err(f"warning: {problem}")
    url = getattr(args, "notify_url", None)  # validate has no such flag
    problem = notify(
        url, data, notify_on=getattr(args, "notify_on", "always"), command=args.command, code=code
    )
    if problem:
        err(f"warning: {problem} (the run's result is unchanged)")
        log.warning("%s", problem)


def _execute(
    args: argparse.Namespace,
    plan: Plan,
    settings: RunSettings,
    report_path: Path,
    failures: Failures,
    kept: Kept,
) -> Summary:
    show = getattr(args, "show", 0)
    shown: list[Payload] = []

    def on_payload(p: Payload) -> None:
        if len(shown) < show:
            shown.append(p)
            print(json.dumps(p.body, indent=2, ensure_ascii=False))

    try:
        report = CsvReport(report_path)
        xlsx = XlsxReport(report_path.with_suffix(".xlsx")) if args.report_xlsx else None
    except OSError as exc:
        raise ConfigError(f"cannot write the report {report_path}: {exc.strerror or exc}") from exc
    estimate = sum(src.estimated_rows() for src, _ in plan.jobs)
    bar, note = progress(args, estimate if plan.only_rows is None and args.limit is None else args.limit)
    listing = args.command == "validate" and not args.quiet
    out = Outputs(report, xlsx, failures, bar, note, listing, warnings=getattr(args, "warnings", False))
    summary: Summary | None = None
    with report:
        try:
            with tuned_for_a_run():  # the CLI owns its process: set for the run's speed
                summary = run(
                    plan,
                    settings,
                    out.emit,
                    on_payload=on_payload if show else None,
                    show=show,
                    kept=kept,
                    preflight=not getattr(args, "no_preflight", False),
                    events=note,
                    held=pending,
                )
        finally:
            hold()  # the run's event loop let go of the signals: noted again, until the end
            bar(None)
            out.close(summary, {"command": args.command, "mapping": str(args.mapping)})
    if report.error is not None and summary.report_incomplete is None:  # its last lines were lost
        summary.report_incomplete = (
            f"its last lines could not be written ({report.error.strerror or report.error})"
        )
    return summary


def _default_report(plan: Plan, folder: str = "reports") -> Path:
    stem = plan.jobs[0][0].path.stem if plan.jobs else "run"
    return Path(folder) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.csv"
