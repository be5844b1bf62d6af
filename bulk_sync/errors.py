"""Errors: the exception tree, grouped by what the caller does next.

::

    BulkSyncError                    root; every error bulk_sync raises on purpose
    ├── ConfigError                  could not start: nothing was sent  -> exit 2
    │   ├── UsageError               bad flags, missing token, bad settings, unusable paths
    │   ├── MappingError             the mapping YAML is wrong (carries every problem at once)
    │   ├── SourceError              a file cannot be read, or lacks a mapped column
    │   ├── StateError               the state file is in use, damaged, or cannot be written
    │   └── StartError               found at the pre-flight: every row is reported not_sent
    │       ├── Unreachable          SIRO cannot be reached at all (refused, no such host, ...)
    │       └── TokenRefused         SIRO refused the token before anything was sent
    └── FatalError                   stop the run now, drain, write the report -> exit 3
        ├── AuthError                401/403 mid-run: the token is wrong for every row
        ├── ServerUnavailable        the circuit breaker tripped: many failures in a row
        ├── OutputError              the report cannot be written (a full disk): stop
        └── Interrupted              SIGINT/SIGTERM

Row-level problems are *data*, not exceptions: a :class:`RowError` (slug, column, message)
travels with the row to the report and the run goes on.

Foreign libraries' exceptions are translated at exactly one boundary each: httpx in
``upload.py``, pydantic in ``payload.py``/``mapping.py``, pandas/openpyxl in ``load.py``,
sqlite3 in ``state.py``. A transient delivery failure is not an exception at all: ``upload.py``
retries it and a row whose retries run out becomes a ``failed`` result.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_ROWS_FAILED = 1
EXIT_CONFIG = 2
EXIT_ABORTED = 3


class BulkSyncError(Exception):
    """Root of every error bulk_sync raises on purpose."""

    exit_code = EXIT_CONFIG


class ConfigError(BulkSyncError):
    """The run could not start; nothing was sent."""

    exit_code = EXIT_CONFIG


class UsageError(ConfigError):
    """Bad command-line flags or settings."""


class MappingError(ConfigError):
    """The mapping file is invalid. ``problems`` holds every problem found, with its place."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"mapping {path}: {len(problems)} {noun}:\n{lines}")


class SourceError(ConfigError):
    """An input file cannot be read, or lacks a column the mapping needs."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class StateError(ConfigError):
    """The state file cannot be used: in use by another run, damaged, or in a folder that cannot be
    written. At the start nothing was sent (exit 2); see :class:`StateBroken` for mid-run."""


class StartError(ConfigError):
    """The run could not start, found once the report was open (the pre-flight): nothing was sent,
    every row is reported ``not_sent``, exit 2."""


class Unreachable(StartError):
    """SIRO cannot be reached at all at the base URL (connection refused, no such host, timeouts)."""


class TokenRefused(StartError):
    """SIRO refused the token at the pre-flight (401/403): a configuration problem, not a retry."""


class FatalError(BulkSyncError):
    """Stop dispatching, let in-flight work end, write the report."""

    exit_code = EXIT_ABORTED


class AuthError(FatalError):
    """The API refused the token (401/403). Every further request would fail the same way."""


class ServerUnavailable(FatalError):
    """Too many consecutive failed requests: SIRO (or the network) is down. Stop, report, resume later."""


class Interrupted(FatalError):
    """The run was asked to stop by a signal."""


class OutputError(FatalError):
    """The report (or the state file) cannot be written any more mid-run, e.g. the disk is full:
    stop sending; what SIRO acknowledged so far is in the state file."""


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem with one input row, as a person fixing the spreadsheet needs it.

    ``slug`` is stable and machine-readable (``missing-value``, ``invalid-enum``,
    ``bad-datetime``, ``bad-number``, ``invalid-field``, ``api-rejected``, ...);
    ``column`` is the spreadsheet header the problem comes from, when known.
    """

    slug: str
    message: str
    column: str | None = None
