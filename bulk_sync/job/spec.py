"""Job, spec: one job as data. A :class:`JobSpec` holds what :class:`~bulk_sync.job.Sync` is built
with and what its ``run``, ``validate`` or ``retry`` is called with, and turns to JSON and back, so
that a job can be handed to another process (the watcher's child) as structured data, not flags.

It says where the API token comes from (an environment variable's name, or a token file's path),
never the token itself: the process that runs the job reads it (:class:`TargetSpec`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from ..settings import PRODUCTION_BASE_URL, TOKEN_ENV
from .outputs import Outputs
from .result import SyncResult
from .sync import Guards, Reading, Sync
from .targets import Delivery, Sandbox, Siro


class TargetSpec(BaseModel):
    """Where a job sends (``"siro"``: the API at ``base_url``; ``"sandbox"``: the emulator, started
    for the job), and where its token is read from: ``token_file`` if given, else the environment
    variable ``token_env``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["siro", "sandbox"] = "siro"
    base_url: str = PRODUCTION_BASE_URL
    allow_insecure_http: bool = False
    ca_bundle: str | None = None
    token_env: str = TOKEN_ENV
    token_file: str | None = None
    keep: str | None = None  # the sandbox's: a folder where it keeps its records between jobs

    @property
    def token_source(self) -> str:
        """Where the token comes from, as messages say it."""
        return f"the file {self.token_file}" if self.token_file else f"${self.token_env}"

    def target(self, token: SecretStr | str | None) -> Siro | Sandbox:
        """The target, with the token read from where this spec says (None: a dry run's, no rep
        check; for the sandbox: a random one)."""
        if self.kind == "sandbox":
            return Sandbox(token=token, token_source=self.token_source, keep=self.keep)
        return Siro(token, self.base_url, self.allow_insecure_http, self.ca_bundle, self.token_source)


class LogSpec(BaseModel):
    """Where the process that runs the job logs (``file``: None, no log file), and how often a
    progress line is written when the output is not a terminal (``heartbeat`` seconds; 0: never)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str | None = None
    level: str = "info"  # debug, info, warning, error
    format: str = "text"  # text, json: one object a line
    heartbeat: float = 30.0


class JobSpec(BaseModel):
    """One call of :class:`Sync` as data: ``command`` (run, validate, retry) over ``files`` (retry:
    the ``previous`` run's report), with the mapping, the target, the state file, the guards, the
    delivery, the reading, the outputs and ``max_failures``, and the log of the process that runs it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    command: Literal["run", "validate", "retry"] = "run"
    dry_run: bool = False
    files: list[str] = []
    previous: str | None = None
    mapping: str | None = None
    target: TargetSpec = TargetSpec()
    state: str | None = None
    guards: Guards = Guards()
    delivery: Delivery = Delivery()
    reading: Reading = Reading()
    full: bool = False
    wait_lock: float = 0.0
    workers: int | None = None  # a dry run's worker processes (None: as the machine spares)
    outputs: Outputs = Outputs()
    max_failures: int | str | None = None
    log: LogSpec = LogSpec()

    @field_validator("outputs")
    @classmethod
    def _paths_as_text(cls, outputs: Outputs) -> Outputs:
        """Paths as text, so that a spec read back from its JSON equals the one written."""
        report, summary = outputs.report, outputs.summary_json
        return dataclasses.replace(
            outputs,
            report=None if report is None else str(report),
            report_dir=str(outputs.report_dir),
            summary_json=None if summary is None else str(summary),
        )

    @property
    def dry(self) -> bool:
        """Whether the job sends nothing (``validate``, or a dry run)."""
        return self.command == "validate" or self.dry_run

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> JobSpec:
        return cls.model_validate_json(text)

    def sync(self, target: Siro | Sandbox | None) -> Sync:
        """The :class:`Sync` this spec describes, sending to ``target`` (:meth:`TargetSpec.target`
        with the token the caller read)."""
        return Sync(
            self.mapping,
            target,
            state=self.state,
            guards=self.guards,
            delivery=self.delivery,
            reading=self.reading,
            full=self.full,
            wait_lock=self.wait_lock,
            workers=self.workers,
        )

    def call(self, target: Siro | Sandbox | None, **options: Any) -> SyncResult:
        """The job run: :meth:`Sync.run`, :meth:`~Sync.validate` or :meth:`~Sync.retry` with this
        spec's outputs and ``max_failures``, and the caller's ``options`` (events, stop, show, ...)."""
        sync = self.sync(target)
        options = {"outputs": self.outputs, "max_failures": self.max_failures, **options}
        if self.command == "retry":
            if self.previous is None:
                raise ValueError("a retry's spec names the previous run's report")
            return sync.retry(self.previous, dry_run=self.dry_run, **options)
        if self.command == "validate":
            return sync.validate(self.files, **options)
        return sync.run(self.files, dry_run=self.dry_run, **options)
