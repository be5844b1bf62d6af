"""Errors: the exception tree, grouped by what the caller does next.

::

    BulkSyncError                    root; every error bulk_sync raises on purpose
    ├── ConfigError                  could not start: nothing was sent  -> exit 2
    │   ├── UsageError               bad flags, missing token, bad settings, unusable paths
    │   ├── MappingError             the mapping YAML is wrong (carries every problem at once)
    │   ├── SourceError              a file cannot be read, or lacks a mapped column
    │   ├── StateError               the state file is in use, damaged, or cannot be written
    │   ├── Held                     a guard held the run: the file drifted, or a mirror would
    │   │                            delete too much (nothing sent or deleted)
    │   └── StartError               found at the pre-flight: every row is reported not_sent
    │       ├── Unreachable          SIRO cannot be reached at all (refused, no such host, ...)
    │       ├── TokenRefused         SIRO refused the token before anything was sent
    │       └── NotSiro              the base URL answers, but not as SIRO (a 3xx, a 404, a web page)
    └── FatalError                   stop the run now, drain, write the report -> exit 3
        ├── AuthError                401/403 mid-run: the token is wrong for every row
        ├── ServerUnavailable        the circuit breaker tripped: many failures in a row
        ├── OutputError              the report cannot be written (a full disk): stop
        ├── CallFailed               a call besides the sync (users, mirror, delete) failed for good
        ├── FileChanged              an input file changed while it was read (still being written)
        └── Interrupted              SIGINT/SIGTERM

Row-level problems are *data*, not exceptions: a :class:`RowError` (slug, column, message)
travels with the row to the report and the run goes on.

Foreign libraries' exceptions are translated at exactly one boundary each: httpx in
``upload/``, pydantic in ``payload/build.py``/``mapping/parse.py``, pandas/openpyxl in ``load/``,
sqlite3 in ``state.py``. A transient delivery failure is not an exception at all: ``upload/``
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


class Held(ConfigError):
    """A guard held the run before it changed anything: the file drifted from the last good run, or
    a mirror would soft-delete more than it may. The message names what and the flag to accept it."""


class Unreachable(StartError):
    """SIRO cannot be reached at all at the base URL (connection refused, no such host, timeouts)."""


class TokenRefused(StartError):
    """SIRO refused the token at the pre-flight (401/403): a configuration problem, not a retry."""


class NotSiro(StartError):
    """The pre-flight's answer is not SIRO's: a redirect or a 404 (the base URL's path is wrong), or
    a 2xx that is not SIRO's caller identity (a proxy's or a captive portal's page)."""


class FatalError(BulkSyncError):
    """Stop dispatching, let in-flight work end, write the report."""

    exit_code = EXIT_ABORTED


class AuthError(FatalError):
    """The API refused the token (401/403). Every further request would fail the same way."""


class ServerUnavailable(FatalError):
    """Too many consecutive failed requests: SIRO (or the network) is down. Stop, report, resume later."""


class Interrupted(FatalError):
    """The run was asked to stop by a signal."""


class FileChanged(FatalError):
    """An input file changed (grew, shrank, was written to) after it was opened: what is past the
    snapshot taken at open is never read, and the run stops before more of the file is sent."""


class CallFailed(FatalError):
    """A call besides the sync itself (SIRO's users, the mirror's soft-delete, a delete by id) failed
    for good, after its retries."""


class OutputError(FatalError):
    """The report (or the state file) cannot be written any more mid-run, e.g. the disk is full:
    stop sending; what SIRO acknowledged so far is in the state file."""


# The catalogue of what a report's `error_type` column can say: slug -> what it means. Code and
# docs are held to it (tests/test_errors_catalogue.py): every slug the code writes is here, and
# docs/reference/mapping.md's table lists exactly ROW_ERRORS.
ROW_ERRORS: dict[str, str] = {
    "missing-value": "a required value is empty (or an object is sent without a part SIRO requires)",
    "invalid-enum": "a value is not in the map and not a SIRO value",
    "unmapped-value": "a text value is not in a map whose `default` is `invalid`",
    "bad-datetime": "a date/time does not match the formats, or does not exist in the zone",
    "ambiguous-datetime": "a local date-time happens twice (the hour repeated when clocks go back) "
    "and the mapping does not say which (`ambiguous: earlier` or `later`)",
    "bad-duration": "a `duration` cell is not an elapsed time",
    "bad-number": "a cell is not a number (or outside its field's range, or more digits than SIRO keeps)",
    "bad-boolean": "a cell is not true-false",
    "ambiguous-number": "a number cell reads both ways (`1,500`: 1500 or 1.5), and its column does not say",
    "bad-email": "an email target holds no plausible address",
    "bad-encoding": "a cell holds bytes that are not valid UTF-8, a NUL byte, or the replacement character",
    "unknown-rep": "no engagement user's email is an active SIRO user (`--require-known-reps`)",
    "too-large": "the record's JSON is larger than a request may carry (`--max-body-bytes`)",
    "bad-timezone": "a `timezone_column` cell is not an IANA zone",
    "no-match": "an `extract` pattern found nothing in the cell",
    "group-conflict": "a field differs between the rows of a `group_by` group",
    "extra-cells": "a CSV row has more cells than the header (an unquoted delimiter shifted it)",
    "footer": "(skipped) a report footer line, a totals row, or a row below one (`stop_at`)",
    "filter": "(skipped) the mapping's `skip` rule leaves the row out",
    "invalid-field": "any other rule of the SIRO schema",
    "api-invalid": "SIRO answered 422 for the record",
    "api-rejected": "SIRO answered another 4xx for the record",
}
# Message templates of the row errors whose message has a fixed shape: slug -> str.format template.
ROW_TEMPLATES: dict[str, str] = {
    "ambiguous-datetime": "{text} happens twice in {zone} (the clocks go back an hour): {earlier} or "
    "{later}, and nothing in the file says which; set `ambiguous: earlier` or `ambiguous: later` in the "
    "field's `datetime:` in the mapping (or give the time with its offset)",
}
RUN_ERRORS: dict[str, str] = {
    "retries-exhausted": "the record's retries ran out (5xx, timeouts, dropped connections)",
    "auth-refused": "SIRO refused the token mid-run (401/403): the run stopped",
    "server-unavailable": "too many requests in a row failed (--circuit-breaker): the run stopped",
    "aborted": "the run stopped before this row was sent",
    "interrupted": "the run was stopped while this row's request was in flight",
}


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
