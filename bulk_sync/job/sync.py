"""Job, sync: :class:`Sync`, the whole life of a job, called the same way by the command line, the
watcher, the review page and any Python caller (a notebook, an orchestrator's task).

A job: the plan (the mapping bound to the files, every column checked, the id pass) before
anything is sent; the connection (the base URL checked, or the sandbox started) and SIRO's users
for the rep check; under the state's lock, the drift hold and the mirror's guards; the run, each
row's result written to the report as it comes; then the error files, the mirror's soft-delete,
the job's new normal, the summary JSON and the webhook. It returns a :class:`SyncResult`; it
raises (see :mod:`bulk_sync.errors`) only when it cannot start.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ..errorfile import Failures, Kept
from ..errors import EXIT_CONFIG, BulkSyncError, ConfigError, UsageError
from ..payload import Payload
from ..pipeline import Plan, RepCheck, prepare, prepare_retry, run, scan_columns, spare_core, state_lock
from ..pipeline.finish import error_files
from ..pipeline.mirror import MirrorRules, parse_window
from ..report import Summary
from ..settings import PRODUCTION_BASE_URL, RunSettings
from ..state import check_path
from .drift import check_drift, remember_shape
from .events import QUIET, Events, log
from .mirror import finish_mirror, prepare_mirror
from .outputs import About, Outputs, RowWriter, write_outcome
from .reps import RepMode, rep_check
from .result import SyncResult, allowed, verdict
from .targets import Connection, Delivery, Sandbox, Siro, Target, check_base_url, connect, run_settings

Mirror = MirrorRules  # the mirror's rules: window, max_days, max_removed, accept_truncation


@dataclasses.dataclass(frozen=True)
class Guards:
    """What holds a job before anything is sent. ``job``: its name, for the drift hold (the files'
    shape against the job's last good run; None: no drift check); ``accept_drift``: send anyway,
    and make the new shape the normal; ``mirror``: soft-delete what the files no longer list
    (:class:`Mirror`); ``reps``: check each row's rep against SIRO's users (``"require"``: a rep
    SIRO does not know makes the row invalid, and a failed fetch stops the job; ``"off"``)."""

    job: str | None = None
    accept_drift: bool = False
    mirror: MirrorRules | None = None
    reps: RepMode = "check"


@dataclasses.dataclass(frozen=True)
class Reading:
    """How the files are read: a sheet (None: the first, or the mapping's), an encoding and a
    delimiter when they cannot be told from the file, and at most ``limit`` data rows."""

    sheet: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    limit: int | None = None


class Sync:
    """One job: a mapping, a target and a state, run over files.

    >>> sync = Sync("mappings/engagements.yaml", Siro(token=token), state="bulk_sync-state.sqlite")
    >>> result = sync.run(["export.csv"], outputs=Outputs(report="reports/export.csv"))
    >>> result.counts, result.exit_code

    ``target``: :class:`Siro`, :class:`Sandbox`, or None (a dry run that knows no SIRO: no rep
    check); ``state``: the state file (what was synced, so a rerun sends only what changed; None:
    no state, every row is sent and nothing remembered); ``full``: send every row, even those the
    state says are unchanged; ``workers``: a dry run's worker processes (None: as many as the
    machine spares; 0: this process alone)."""

    def __init__(
        self,
        mapping: str | Path | None,
        target: Target | None = None,
        *,
        state: str | Path | None = None,
        guards: Guards | None = None,
        delivery: Delivery | None = None,
        reading: Reading | None = None,
        full: bool = False,
        wait_lock: float = 0.0,
        workers: int | None = None,
    ) -> None:
        self.mapping = str(mapping) if mapping is not None else None
        self.target = target
        self.state = Path(state) if state is not None else None
        self.guards = guards or Guards()
        self.delivery = delivery or Delivery()
        self.reading = reading or Reading()
        self.full = full
        self.wait_lock = wait_lock
        self.workers = workers

    # -- the three ways to run a job -------------------------------------------------------------

    def run(self, files: Sequence[str | Path], *, dry_run: bool = False, **kw: Any) -> SyncResult:
        """Send the files' rows (``dry_run``: check them and predict the effect, send nothing)."""
        return _Job(self, "run", dry_run, files=[str(f) for f in files], **kw).go()

    def validate(self, files: Sequence[str | Path], **kw: Any) -> SyncResult:
        """Check the files' rows as a run would, send nothing: each row valid or not, and why."""
        return _Job(self, "validate", True, files=[str(f) for f in files], **kw).go()

    def retry(self, report: str | Path, *, dry_run: bool = False, **kw: Any) -> SyncResult:
        """Send again the rows of an earlier run's report that did not sync (failed, not_sent),
        read from their files; with no mapping, the one that run used (its summary JSON says)."""
        return _Job(self, "retry", dry_run, previous=str(report), **kw).go()

    def check_rows(
        self, headers: list[str], rows: list[list[str]], *, payloads: bool = True
    ) -> list[CheckedRow]:
        """Each row (cells in ``headers``' order) checked exactly as :meth:`validate` checks a file
        holding them (the rep check included); each valid row's payload unless ``payloads`` is false."""
        from .check import check_rows  # the rows go through a file of their own

        return check_rows(self, headers, rows, payloads=payloads)


@dataclasses.dataclass
class CheckedRow:
    """What :meth:`Sync.check_rows` says of one row: its status, its problem (type, columns,
    message) or warning, and (valid rows) its payload."""

    status: str
    error_type: str | None = None
    columns: list[str] = dataclasses.field(default_factory=list)
    message: str | None = None
    warning: str | None = None
    payload: dict[str, Any] | None = None


class _Job:
    """One call of :class:`Sync`: its steps, in order."""

    def __init__(
        self,
        sync: Sync,
        command: str,
        dry: bool,
        *,
        files: list[str] | None = None,
        previous: str | None = None,
        outputs: Outputs | None = None,
        events: Events | None = None,
        stop: Callable[[], str | None] | None = None,
        max_failures: int | str | None = None,
        show: int = 0,
        handle_signals: bool = True,
        started_at: str | None = None,
    ) -> None:
        self.sync, self.command, self.dry = sync, command, dry
        self.files, self.previous = files or [], previous
        self.outputs = outputs or Outputs()
        self.events = events or QUIET
        self.stop = stop or (lambda: None)
        self.max_failures, self.show, self.handle_signals = max_failures, show, handle_signals
        self.started_at = started_at or time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.mapping = sync.mapping
        self.report_path: Path | None = None

    def go(self) -> SyncResult:
        try:
            return self._go()
        except BulkSyncError as exc:
            if exc.exit_code == EXIT_CONFIG or isinstance(exc, ConfigError):  # could not start: said
                self._outcome(exc.exit_code, None, [], error=str(exc))
                exc.outcome_written = True  # type: ignore[attr-defined]  # (the CLI writes no other)
            raise

    def _go(self) -> SyncResult:
        allowed(self.max_failures, 1)  # a bad value is refused before anything is read
        if self.mapping is None and self.previous is not None:
            self.mapping = _mapping_of_the_run(Path(self.previous))
            if self.mapping:
                self.events.info(
                    f"mapping: {self.mapping} (the one the report's run used, per its summary JSON)"
                )
        if not self.mapping:
            raise UsageError("--mapping is required (or `mapping` in the config profile)")
        self._not_stopped()
        plan = self._plan()
        if plan is None:
            return SyncResult(self.command, 0, dry_run=self.dry, nothing_to_retry=True)
        mirror = self._mirror_rules()
        conn, settings, reps, note = self._connect(plan.spec.resource)
        try:
            settings = settings.model_copy(update={"resource": plan.spec.resource})
            plan = dataclasses.replace(plan, reps=reps, reps_note=note)
            first = plan.jobs[0][0].path if plan.jobs else None
            report_path, xlsx = self.outputs.report_path(first)
            self.report_path = report_path
            return self._send(plan, settings, mirror, report_path, xlsx)
        finally:
            if conn is not None:
                conn.close()

    def _send(
        self,
        plan: Plan,
        settings: RunSettings,
        mirror: MirrorRules | None,
        report_path: Path,
        xlsx: bool,
    ) -> SyncResult:
        guards = self.sync.guards
        job = guards.job if self.command == "run" else None
        failures, kept = Failures(), Kept()  # the rows to fix, and their cells, for the error file
        mplan = shape = None
        with state_lock(settings, self.sync.wait_lock):  # (the target stays up for the mirror's deletes)
            shape = check_drift(job, guards.accept_drift, plan, settings, self.events)
            if mirror is not None:
                mplan = prepare_mirror(plan, settings, mirror, self.events)
            summary = self._execute(plan, settings, report_path, xlsx, failures, kept)
        try:
            written = [report_path, *([report_path.with_suffix(".xlsx")] if xlsx else [])]
            files, problem = error_files(plan, failures, report_path, kept)
            written += files
        finally:
            failures.close()
        problems = [problem] if problem else []
        for p in problems:
            self.events.warning(p)
        if summary.aborted:
            code, bad, limit = summary.aborted_code, 0, None
        else:
            code, bad, limit = verdict(summary, self.max_failures)
        if mplan is not None:
            listing, code = finish_mirror(self.events, mplan, summary, settings, report_path, self.dry, code)
            written += listing
        if shape is not None:
            remember_shape(job, guards.accept_drift, shape, settings, summary, code)
        result = SyncResult(self.command, code, summary, written, self.dry, bad, limit, problems=problems)
        result.data = self._outcome(code, summary, written)
        return result

    def _execute(
        self,
        plan: Plan,
        settings: RunSettings,
        report_path: Path,
        xlsx: bool,
        failures: Failures,
        kept: Kept,
    ) -> Summary:
        shown = 0

        def on_payload(p: Payload) -> None:
            nonlocal shown
            if shown < self.show:
                shown += 1
                self.events.payload(p.body)

        writer = RowWriter(report_path, xlsx, failures, self.events)
        limit = self.sync.reading.limit
        estimate = sum(src.estimated_rows() for src, _ in plan.jobs)
        self.events.started(estimate if plan.only_rows is None and limit is None else limit)
        summary: Summary | None = None
        with writer.report:
            try:
                summary = run(
                    plan,
                    settings,
                    writer.emit,
                    on_payload=on_payload if self.show else None,
                    show=self.show,
                    kept=kept,
                    preflight=self.sync.delivery.preflight,
                    events=self.events.notice,
                    ahead=self.events.ahead,
                    held=self.stop,
                    handle_signals=self.handle_signals,
                )
            finally:
                writer.close(summary, {"command": self.command, "mapping": str(self.mapping)})
        report = writer.report
        if report.error is not None and summary.report_incomplete is None:  # its last lines were lost
            summary.report_incomplete = (
                f"its last lines could not be written ({report.error.strerror or report.error})"
            )
        return summary

    # -- before anything is sent ------------------------------------------------------------------

    def _not_stopped(self) -> None:
        """A signal received before any row was read: stop here, nothing written."""
        name = self.stop()
        if name is not None:
            raise ConfigError(f"stopped by {name} before any row was read: nothing was sent")

    def _plan(self) -> Plan | None:
        """Everything checked before sending: the mapping, the files, their columns (None: a retry
        with nothing left to send). A dry run reads a large CSV's ids in two halves at once."""
        r = self.sync.reading
        assert self.mapping is not None
        if self.previous is not None:
            plan = prepare_retry(self.previous, self.mapping, encoding=r.encoding, delimiter=r.delimiter)
            if plan is None:
                return None
        else:
            plan = prepare(
                list[str | Path](self.files),
                self.mapping,
                sheet=r.sheet,
                encoding=r.encoding,
                delimiter=r.delimiter,
            )
        for w in plan.warnings:
            self.events.warning(w)
        self._not_stopped()
        # ids and number columns, before anything is sent; from here a signal ends with the report
        return scan_columns(
            plan,
            limit=r.limit,
            helper=self.dry and spare_core(self.sync.workers),
            stopping=lambda: self.stop() is not None,
        )

    def _mirror_rules(self) -> MirrorRules | None:
        rules = self.sync.guards.mirror
        if rules is None:
            return None
        if self.sync.reading.limit is not None:
            raise UsageError("--mirror needs whole files: not with --limit")
        if rules.window:
            parse_window(rules.window)  # a bad window is refused before anything is read
        watched = str(self.sync.guards.job or "").startswith("watch:")
        return dataclasses.replace(rules, watched=watched) if watched != rules.watched else rules

    def _connect(self, resource: str) -> tuple[Connection | None, RunSettings, RepCheck | None, str]:
        """The run's settings (the sandbox started), and SIRO's users for the rep check."""
        target, sync = self.sync.target, self.sync
        conn: Connection | None = None
        if self.dry:
            base_url, token = _dry_target(target)
            if sync.state is not None:
                check_path(sync.state)  # a folder, a symlink loop: said, not taken for "no state yet"
            settings = RunSettings(
                base_url=base_url,
                identity=target.identity if isinstance(target, Sandbox) else None,  # a kept one's state
                token=SecretStr("unused"),
                dry_run=True,
                limit=sync.reading.limit,
                max_body_bytes=sync.delivery.max_body_bytes,
                state_path=sync.state,
                workers=sync.workers,
            )
        else:
            if target is None:
                raise UsageError("a run that sends needs a target: Siro(token=...) or Sandbox()")
            if isinstance(target, Siro) and not target.token:
                raise UsageError(
                    "no API token: set the environment variable SIRO_API_TOKEN or pass --token-file"
                )
            conn = connect(target, self.events, sync.delivery.rate_per_min)
            settings = run_settings(conn, sync.delivery, sync.state, full=sync.full, limit=sync.reading.limit)
            base_url, token = conn.base_url, conn.token
            log.info(
                "sending to %s (batch %s, concurrency %d)", base_url, settings.batch, settings.concurrency
            )
        try:
            if self.stop() is not None:  # stopping: no call to SIRO, every row is reported not_sent
                reps, note = None, "not checked (the run was stopped)"
            else:
                reps, note = rep_check(
                    sync.guards.reps,
                    base_url,
                    token,
                    self.events,
                    timeouts=settings.timeouts,
                    resource=resource,
                    sandbox=isinstance(target, Sandbox),
                    ca_bundle=settings.ca_bundle if not self.dry else _ca(target),
                )
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return conn, settings, reps, note

    # -- after ------------------------------------------------------------------------------------

    def _outcome(
        self, code: int, summary: Summary | None, written: list[Path], error: str | None = None
    ) -> dict[str, Any]:
        about = About(self.command, self.files, self.mapping, self.started_at)
        return write_outcome(
            about, self.outputs, code, summary, written, self.events, report=self.report_path, error=error
        )


def _dry_target(target: Target | None) -> tuple[str, SecretStr | None]:
    """A dry run's base URL (the state's target) and token, when it has one (it needs none)."""
    if isinstance(target, Siro):
        base_url = check_base_url(target.base_url, target.allow_insecure_http)
        return base_url, (target.secret() if target.token else None)
    if isinstance(target, Sandbox):  # nothing is sent: the state read is production's, no rep check
        return PRODUCTION_BASE_URL, None
    return PRODUCTION_BASE_URL, None


def _ca(target: Target | None) -> Path | None:
    from .targets import ca_bundle

    return ca_bundle(target.ca_bundle) if isinstance(target, Siro) else None


def _mapping_of_the_run(report: Path) -> str | None:
    """The mapping the run that wrote ``report`` used, from the summary JSON beside it (None when
    there is none, or it names no mapping that still exists)."""
    try:
        data = json.loads(report.with_name(report.stem + "-summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    mapping = data.get("mapping") if isinstance(data, dict) else None
    return mapping if isinstance(mapping, str) and Path(mapping).is_file() else None
