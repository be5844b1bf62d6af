"""CLI, args: the flags of every command (build_parser, a function per command and per group of flags)
and the types that check their values.
"""

from __future__ import annotations

import argparse
from typing import Any

from .. import __version__
from ..settings import (
    PRODUCTION_BASE_URL,
    TOKEN_ENV,
)
from .epilogs import EPILOG_COMPLETION, EPILOG_RETRY, EPILOG_RUN, EPILOG_TOP, EPILOG_VALIDATE
from .parser import Parser
from .profile import origin, profile_defaults
from .tools import command, delete_parser, init_parser, sandbox_parser, serve_parser, watch_parser
from .values import batch_size, nonneg_float, nonneg_int, pos_float, pos_int

SHELLS = ("bash", "zsh", "fish", "tcsh", "powershell")  # what shtab writes


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="bulk-sync",
        description="Load CRM appointment spreadsheets into SIRO.",
        epilog=EPILOG_TOP,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", "-V", action="version", version=f"bulk-sync {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_run_parser, _retry_parser, _validate_parser, watch_parser, init_parser, sandbox_parser):
        add(sub)
    delete_parser(sub)
    serve_parser(sub)
    c = command(sub, "completion", "print a shell completion script", EPILOG_COMPLETION)
    c.add_argument("shell", choices=SHELLS, help="the shell: " + ", ".join(SHELLS))
    return p


def parse(argv: list[str], parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """The command line as flags: a config profile's settings (``--config``, ``--profile``) as the
    defaults of the flags of the same names, what was typed over them. A bad flag exits 2 (argparse);
    a config file that cannot be read raises a BulkSyncError."""
    parser = parser or build_parser()
    cfg, profile_name, profile = profile_defaults(argv)
    for sp in subparsers(parser).values():
        dests = {a.dest for a in sp._actions}
        sp.set_defaults(**{k: v for k, v in profile.items() if k in dests})
    args = parser.parse_args(argv)
    args.token_env = profile.get("token_env", TOKEN_ENV)
    args.profile_keys = frozenset(profile)  # the flags whose default the profile gave
    chosen = subparsers(parser).get(args.command, parser)
    args.origin = origin(chosen, argv, cfg, profile_name, profile)
    return args


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _run_parser(sub: Any) -> None:
    """bulk-sync run FILE... --mapping M"""
    r = command(sub, "run", "map the files and sync every row to SIRO", EPILOG_RUN)
    _add_files_and_outputs(r)
    _add_sending(r)
    _add_mirror(r.add_argument_group("mirror deletes"))
    job = r.add_argument_group("scheduled job")
    job.add_argument(
        "--job",
        metavar="NAME",
        help="the scheduled job this run belongs to (default: its --profile): its files are held when "
        "they drift from the job's last good run",
    )
    job.add_argument(
        "--accept-drift", action="store_true", help="send a drifted file anyway; it becomes the normal"
    )
    job.add_argument("--no-drift-check", action="store_true", help="no drift check, even with a job")
    r.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing: what `validate` does, with this command's flags (with --mirror: what it "
        "would remove)",
    )


def _add_mirror(r: Any) -> None:
    """--mirror and its guards (run, validate)."""
    r.add_argument(
        "--mirror",
        action="store_true",
        help="the files are the complete list of appointments for their window: after a run in which "
        "every row synced, soft-delete in SIRO what they do not list (guarded; see "
        "docs/how-to/mirror-deletes.md)",
    )
    r.add_argument(
        "--window",
        dest="mirror_window",
        metavar="FROM..TO",
        help="--mirror's window of start times, required: dates are whole UTC days, date-times need a "
        "zone, --window=-7d..+30d (with `=`) is relative to the run's start in the job's time zone "
        "(profile: mirror_window)",
    )
    r.add_argument(
        "--accept-truncation",
        action="store_true",
        help="--mirror: send a file that looks cut short (every record it would remove starts at or "
        "after its last row)",
    )
    r.add_argument(
        "--mirror-max-days",
        type=pos_float,
        help="hold the mirror when its window spans more days (default 62)",
    )
    r.add_argument(
        "--mirror-max-removed",
        metavar="SHARE",
        help="hold the mirror when it would remove more of the records synced earlier in the window "
        "(default 10%%)",
    )


def _retry_parser(sub: Any) -> None:
    """bulk-sync retry REPORT --mapping M"""
    rt = command(sub, "retry", "resend the rows that did not sync in an earlier run's report", EPILOG_RETRY)
    rt.add_argument("previous", metavar="REPORT", help="the CSV report of the earlier run")
    _add_files_and_outputs(rt, files=False)
    _add_sending(rt)
    rt.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing: check the rows that would be resent, as `validate` does",
    )


def _validate_parser(sub: Any) -> None:
    """bulk-sync validate FILE... --mapping M"""
    v = command(sub, "validate", "build every payload and write the report; send nothing", EPILOG_VALIDATE)
    _add_files_and_outputs(v)
    v.add_argument(
        "--show",
        type=nonneg_int,
        default=0,
        metavar="N",
        help="print the first N payloads as JSON (with a state file: of the rows a run would send)",
    )
    v.add_argument(
        "--warnings",
        action="store_true",
        help="list each row's warnings too (default: the rows that are not valid are listed, the "
        "warnings counted by kind)",
    )
    siro = v.add_argument_group("SIRO, for the rep check (nothing is sent)")
    siro.add_argument("--base-url", help="SIRO's API, for the rep check's GET of its users (no other call)")
    siro.add_argument(
        "--allow-insecure-http", action="store_true", help="accept an http:// --base-url (see run)"
    )
    siro.add_argument(
        "--token-file", help=f"file holding the API token (default: ${TOKEN_ENV}); none: no rep check"
    )
    siro.add_argument(
        "--ca-bundle",
        metavar="FILE",
        help="CA certificates (PEM) to trust instead of the system's, for a proxy or a certificate "
        "authority of your organization (or set SSL_CERT_FILE)",
    )
    _add_reps(siro)
    state = v.add_argument_group("state")
    state.add_argument(
        "--state",
        metavar="PATH",
        help="the state file to predict the effect against: new, changed, unchanged (default: the run's "
        "default state file, when it exists); read, never written",
    )
    state.add_argument("--no-state", action="store_true", help="predict nothing: read no state file")
    _add_mirror(v.add_argument_group("mirror deletes"))
    v.add_argument(
        "--max-body-bytes",
        type=pos_int,
        default=5_000_000,
        help="check that no record is larger than this as JSON (too-large), as run does (default "
        "5000000, run's default: give run's value when run is given another)",
    )


def _add_files_and_outputs(sp: argparse.ArgumentParser, *, files: bool = True) -> None:
    """The files, the mapping, how to read them, where the outputs go, what is printed, the config
    (run, retry, validate), each in a group of its own in --help."""
    _add_input(sp.add_argument_group("input"), files)
    _add_outputs(sp.add_argument_group("outputs"))
    _add_printing(sp.add_argument_group("progress and logging"))
    cfg = sp.add_argument_group("config file")
    cfg.add_argument(
        "--config", metavar="PATH", help="config file (default $BULK_SYNC_CONFIG or ./bulk_sync.toml)"
    )
    cfg.add_argument("--profile", help="profile of the config file to use (default: [profiles.default])")


def _add_input(sp: Any, files: bool) -> None:
    """The files, the mapping and how to read them."""
    if files:
        sp.add_argument("files", nargs="+", metavar="FILE", help="CSV or .xlsx files")
    sp.add_argument("--mapping", "-m", help="mapping YAML (see docs/reference/mapping.md); required")
    if files:  # retry takes each row's sheet from the report
        sp.add_argument(
            "--sheet",
            help="workbook sheet(s): a name, a position (1 = first visible), a glob like 'Q*', "
            "or '*' for every visible sheet (default: the first visible sheet)",
        )
    sp.add_argument(
        "--encoding",
        help="CSV text encoding (default: detected: BOM, UTF-8, else a guessed Windows code page)",
    )
    sp.add_argument("--delimiter", help="CSV delimiter, e.g. ';' or '\\t' for tab (default: detected)")
    sp.add_argument("--limit", type=nonneg_int, help="read only the first N data rows")


def _add_outputs(sp: Any) -> None:
    """The report, its .xlsx, the summary JSON; what counts as a failed run."""
    sp.add_argument("--report", help="CSV report path (default: <report dir>/<file>-<time>.csv)")
    sp.add_argument(
        "--report-dir", default="reports", help="folder for default report names (default reports)"
    )
    sp.add_argument(
        "--report-xlsx",
        action="store_true",
        help="also write the report as an .xlsx beside the CSV (Summary and Results sheets)",
    )
    sp.add_argument(
        "--summary-json",
        metavar="PATH",
        help="write counts, duration, files and exit code as JSON here (default: <report>-summary.json)",
    )
    sp.add_argument(
        "--max-failures",
        metavar="N|N%",
        help="tolerate up to N rows (or N%% of rows) that do not sync: exit 0 instead of 1 (default 0)",
    )


def _add_printing(sp: Any) -> None:
    """What is printed while a run goes on, and its log."""
    sp.add_argument("--quiet", "-q", action="store_true", help="print only errors and the report path")
    sp.add_argument(
        "--verbose", "-v", action="count", default=0, help="also print the log on stderr (-v info, -vv debug)"
    )
    sp.add_argument(
        "--heartbeat",
        type=nonneg_float,
        default=30.0,
        metavar="SECONDS",
        help="when output is not a terminal (cron, systemd, a log file): a progress line this often, "
        "on stderr (not with --quiet) and in the log (default 30; 0 = none)",
    )
    sp.add_argument("--log-file", metavar="PATH", help="append a log of the run to PATH (secrets redacted)")
    sp.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="default info"
    )
    sp.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="json: one object a line (default text)",
    )


def _add_reps(r: Any) -> None:
    """The rep check: each row's engagement users against SIRO's users (run, retry, validate)."""
    r.add_argument(
        "--require-known-reps",
        action="store_true",
        help="a row none of whose engagement users is an active SIRO user (by email) is invalid "
        "(unknown-rep), not sent; default: sent, with a matching-warning",
    )
    r.add_argument(
        "--no-rep-check", action="store_true", help="do not fetch SIRO's users; check no row's rep"
    )


def _add_sending(r: argparse.ArgumentParser) -> None:
    """Where and how a run sends (run, retry), each in a group of its own in --help: the webhook,
    the connection, the rep check, pace and retries, state."""
    _add_webhook(r.add_argument_group("webhook"))
    siro = r.add_argument_group("SIRO and its token")
    _add_connection(siro)
    _add_reps(siro)
    _add_pace_and_retries(r.add_argument_group("pace, batches and retries"))
    _add_state(r.add_argument_group("state"))


def _add_webhook(r: Any) -> None:
    """The end-of-run webhook."""
    r.add_argument(
        "--notify-url",
        metavar="URL",
        help="POST a JSON summary (with a Slack-style `text`) when the run ends",
    )
    r.add_argument(
        "--notify-on",
        default="always",
        choices=["always", "failure"],
        help="failure: only when the exit code is not 0 (default always)",
    )


def _add_connection(r: Any) -> None:
    """Where SIRO is, the token (or the sandbox)."""
    r.add_argument("--base-url", help=f"SIRO External API base URL (default {PRODUCTION_BASE_URL})")
    r.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="accept an http:// --base-url that is not this machine (the token then crosses the "
        "network unencrypted)",
    )
    r.add_argument("--token-file", help=f"file holding the API token (default: ${TOKEN_ENV})")
    r.add_argument(
        "--ca-bundle",
        metavar="FILE",
        help="CA certificates (PEM) to trust instead of the system's, for a proxy or a certificate "
        "authority of your organization (or set SSL_CERT_FILE)",
    )
    r.add_argument(
        "--sandbox",
        action="store_true",
        help="start the built-in SIRO emulator on 127.0.0.1 and sync to it (a rehearsal)",
    )


def _add_pace_and_retries(r: Any) -> None:
    """Concurrency, batches, pace, retries, timeouts."""
    r.add_argument("--concurrency", type=pos_int, default=8, help="requests in flight at once (default 8)")
    r.add_argument(
        "--batch-size",
        type=batch_size,
        default="auto",
        help="records per request to the batch endpoint: a number, or auto (the default): start at 100, "
        "or where the last run to this SIRO ended, and learn the largest size SIRO takes in time",
    )
    r.add_argument(
        "--max-batch-size",
        type=pos_int,
        default=1000,
        help="--batch-size auto never goes past this (default 1000, ~2.5 MB of typical records, half "
        "the body cap)",
    )
    r.add_argument(
        "--max-body-bytes",
        type=pos_int,
        default=5_000_000,
        help="cap on one request body; batches are cut to fit (default 5000000)",
    )
    r.add_argument(
        "--no-batch", action="store_true", help="one record per request (the single-record endpoint)"
    )
    r.add_argument(
        "--rate-per-min",
        type=nonneg_float,
        default=1000.0,
        help="client-side limit, requests per minute, shared by all workers (default 1000, "
        "SIRO's limit per token; 0 = no limit)",
    )
    r.add_argument(
        "--circuit-breaker",
        type=nonneg_int,
        default=30,
        metavar="N",
        help="stop the run after N failed requests in a row (default 30; 0 = never)",
    )
    r.add_argument(
        "--max-attempts",
        type=pos_int,
        help="at most this many tries per request (default: no count; a request is retried on "
        "5xx/408/429/timeouts/dropped connections for --retry-max-seconds)",
    )
    r.add_argument(
        "--retry-max-seconds",
        type=pos_float,
        default=300.0,
        help="stop retrying a record after this long (default 300)",
    )
    r.add_argument(
        "--retry-backoff",
        type=nonneg_float,
        default=0.5,
        help="first retry wait in seconds, doubled each try, jittered (default 0.5)",
    )
    r.add_argument("--connect-timeout", type=pos_float, default=10.0, help="seconds (default 10)")
    r.add_argument("--read-timeout", type=pos_float, default=60.0, help="seconds (default 60)")
    r.add_argument(
        "--request-timeout",
        type=pos_float,
        default=120.0,
        help="seconds for one whole request (default 120)",
    )
    r.add_argument(
        "--no-preflight",
        action="store_true",
        help="skip the token check (GET caller-identity) before sending",
    )


def _add_state(r: Any) -> None:
    """What was synced before."""
    r.add_argument(
        "--state",
        metavar="PATH",
        help="state file: what was synced before (default: $XDG_STATE_HOME/bulk_sync/state.sqlite3, "
        "~/.local/state/bulk_sync/state.sqlite3 when it is unset, %%LOCALAPPDATA%%\\bulk_sync\\state.sqlite3 "
        "on Windows; with --sandbox: none, a job's rehearsal: ./bulk_sync-sandbox/)",
    )
    r.add_argument("--no-state", action="store_true", help="remember nothing; send every record")
    r.add_argument(
        "--full", action="store_true", help="send every record, even those unchanged since the last sync"
    )
    r.add_argument(
        "--wait-lock",
        type=nonneg_float,
        default=0.0,
        metavar="SECONDS",
        help="if another run holds the state file, wait this long for it (default: refuse at once)",
    )
