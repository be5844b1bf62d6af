"""CLI: flags -> settings, progress bar, printed summary, exit codes. Nothing imports this module.

Exit codes: 0 every row synced (or valid, for `validate`); 1 the run finished but some rows did
not sync; 2 could not start (bad flags, mapping or file; nothing sent); 3 aborted mid-run (the
token was refused, a signal).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import secrets
import signal
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

from pydantic import SecretStr

from . import __version__, logs
from .config import config_path, load_profile, load_watch
from .errorfile import Failures, Kept, write_error_files
from .errors import (
    EXIT_ABORTED,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_ROWS_FAILED,
    BulkSyncError,
    ConfigError,
    UsageError,
)
from .notify import post_summary
from .payload import Payload
from .pipeline import Plan, prepare, prepare_retry, run, scan_columns, state_lock
from .report import (
    GOOD,
    STATUSES,
    TO_FIX,
    WARNING_SEPARATOR,
    CsvReport,
    ResultBlock,
    RowResult,
    Summary,
    XlsxReport,
    summary_dict,
)
from .settings import (
    PRODUCTION_BASE_URL,
    TOKEN_ENV,
    UNLIMITED_BODY,
    RetryPolicy,
    RunSettings,
    Timeouts,
    read_token,
)
from .state import default_state_path

log = logging.getLogger(__name__)
LIST_LIMIT = 1000  # `validate` prints this many row problems; the report has them all

EPILOG_RUN = """\
example:
  export SIRO_API_TOKEN=...            # or --token-file /etc/bulk_sync/token
  bulk-sync run export.csv --mapping mappings/engagements.yaml
  bulk-sync run example_data/engagements.csv --mapping mappings/engagements.yaml --sandbox
  bulk-sync run export.xlsx --sheet '*' --profile nightly --report-xlsx --summary-json last-run.json

exit codes: 0 all rows synced or unchanged, 1 some rows did not sync (see the report),
            2 could not start (nothing sent), 3 aborted mid-run (token refused, SIRO down, signal)
"""
EPILOG_RETRY = """\
example:
  bulk-sync run export.csv --mapping m.yaml --report reports/nightly.csv     # some rows fail
  bulk-sync retry reports/nightly.csv --mapping m.yaml                     # resend exactly those
"""
EPILOG_VALIDATE = """\
what it does: reads every row, maps it and checks the payload against SIRO's schema, exactly as
`run` does; sends nothing to SIRO and needs no token. Its only side effects are the files it
writes: the report (--report, or under --report-dir), the error file beside it when rows are
invalid, --report-xlsx, --summary-json and --log-file. It never posts a notification webhook
and never reads or writes the state file.

example:
  bulk-sync validate export.xlsx --sheet Events --mapping mappings/engagements.yaml --show 2
  bulk-sync validate report.csv --delimiter ';' --encoding cp1252 -m m.yaml --max-failures 2%
"""
EPILOG_WATCH = """\
example:
  bulk-sync watch /srv/dropbox --mapping mappings/engagements.yaml          # runs until SIGTERM
  bulk-sync watch /srv/dropbox --config bulk_sync.toml --once               # cron: what is there

  Files dropped in INBOX go to INBOX/processing/ once complete, then to INBOX/done/ or
  INBOX/failed/ with their reports and error file. Routing rules: [[watch.routes]] in the config.
exit codes: 0 stopped normally (--once: every file filed in done/), 1 some files went to failed/,
            2 could not start
"""
EPILOG_INIT = """\
example:
  bulk-sync init-mapping exports/meetings.csv -o mappings/meetings.yaml
  bulk-sync validate exports/meetings.csv -m mappings/meetings.yaml      # then fix what it says
"""
EPILOG_SANDBOX = """\
example:
  SIRO_API_TOKEN=test-token bulk-sync sandbox --port 8787 --error-rate 0.1
  # then, in another terminal:
  SIRO_API_TOKEN=test-token bulk-sync run file.csv --mapping m.yaml --base-url http://127.0.0.1:8787
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bulk-sync", description="Load CRM appointment spreadsheets into SIRO.", allow_abbrev=False
    )
    p.add_argument("--version", action="version", version=f"bulk-sync {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_run_parser, _retry_parser, _validate_parser, _watch_parser, _init_parser, _sandbox_parser):
        add(sub)
    return p


def _command(sub: Any, name: str, help: str, epilog: str) -> argparse.ArgumentParser:
    return cast(
        argparse.ArgumentParser,
        sub.add_parser(
            name,
            help=help,
            epilog=epilog,
            allow_abbrev=False,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        ),
    )


def _run_parser(sub: Any) -> None:
    """bulk-sync run FILE... --mapping M"""
    r = _command(sub, "run", "map the files and sync every row to SIRO", EPILOG_RUN)
    _add_files_and_outputs(r)
    _add_sending(r)


def _retry_parser(sub: Any) -> None:
    """bulk-sync retry REPORT --mapping M"""
    rt = _command(sub, "retry", "resend the rows that did not sync in an earlier run's report", EPILOG_RETRY)
    rt.add_argument("previous", metavar="REPORT", help="the CSV report of the earlier run")
    _add_files_and_outputs(rt, files=False)
    _add_sending(rt)


def _validate_parser(sub: Any) -> None:
    """bulk-sync validate FILE... --mapping M"""
    v = _command(sub, "validate", "build every payload and write the report; send nothing", EPILOG_VALIDATE)
    _add_files_and_outputs(v)
    v.add_argument(
        "--show", type=_nonneg_int, default=0, metavar="N", help="print the first N payloads as JSON"
    )
    v.add_argument(
        "--max-body-bytes",
        type=_pos_int,
        help="also check that no record is larger than this as JSON (too-large), as run always does "
        "(run's default: 5000000); it costs a look at the longest cells",
    )


def _watch_parser(sub: Any) -> None:
    """bulk-sync watch INBOX"""
    w = _command(
        sub, "watch", "sync every spreadsheet dropped into a folder (inbox -> done/failed)", EPILOG_WATCH
    )
    w.add_argument("inbox", metavar="INBOX", help="the folder people drop files into")
    w.add_argument("--mapping", "-m", help="mapping for files no [[watch.routes]] rule matches")
    w.add_argument("--once", action="store_true", help="process what is there, then exit (for cron)")
    w.add_argument(
        "--settle", type=_pos_float, help="seconds a file's size and time must stay unchanged (default 5)"
    )
    w.add_argument("--poll", type=_pos_float, help="seconds between scans of the folder (default 2)")
    w.add_argument("--config", metavar="PATH", help="config file with [watch] routes and profiles")
    w.add_argument("--profile", help="profile for every run (a route's own profile wins)")
    w.add_argument("--base-url", help="passed to every run")
    w.add_argument("--allow-insecure-http", action="store_true", help="passed to every run (see run)")
    w.add_argument("--token-file", help="passed to every run")


def _init_parser(sub: Any) -> None:
    """bulk-sync init-mapping FILE"""
    im = _command(
        sub, "init-mapping", "write a starter mapping by matching a file's headers to SIRO", EPILOG_INIT
    )
    im.add_argument("file", metavar="FILE", help="a sample export (CSV or workbook)")
    im.add_argument("--output", "-o", help="write the mapping here (default: print it)")
    im.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    im.add_argument("--sheet", help="workbook sheet (default: the first visible sheet)")
    im.add_argument("--encoding", help="CSV text encoding (default: detected)")
    im.add_argument("--delimiter", help="CSV delimiter (default: detected)")


def _sandbox_parser(sub: Any) -> None:
    """bulk-sync sandbox"""
    s = _command(sub, "sandbox", "run the SIRO emulator on 127.0.0.1 (for rehearsals)", EPILOG_SANDBOX)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=_nonneg_int, default=8787, help="port (default 8787; 0 = any free port)")
    s.add_argument(
        "--token-file", help=f"accept this token (default: ${TOKEN_ENV}, else a random one is printed)"
    )
    s.add_argument("--latency", type=_nonneg_float, default=0.0, help="seconds added to each answer")
    s.add_argument("--error-rate", type=_fraction, default=0.0, help="share of requests answered 5xx")
    s.add_argument("--throttle-rate", type=_fraction, default=0.0, help="share answered 429 + Retry-After")
    s.add_argument("--drop-rate", type=_fraction, default=0.0, help="share of connections dropped")
    s.add_argument("--rate-per-min", type=_pos_int, help="enforce a requests-per-minute limit (SIRO: 1000)")
    s.add_argument(
        "--limiter",
        choices=["sliding", "fixed", "bucket"],
        default="sliding",
        help="how --rate-per-min is kept: a sliding window, fixed windows starting on the clock, or a "
        "token bucket (default sliding)",
    )
    s.add_argument(
        "--rate-window",
        type=_pos_float,
        default=60.0,
        help="sliding and fixed: the limit's window in seconds (default 60)",
    )
    s.add_argument("--burst", type=_pos_int, default=1, help="bucket: its size (default 1, the strictest)")
    s.add_argument(
        "--rate-retry-after",
        action="store_true",
        help="the limit's 429s carry Retry-After (whole seconds; default: none, as SIRO documents none)",
    )
    s.add_argument("--no-validate", action="store_true", help="skip schema validation (for load tests)")
    s.add_argument("--seed", type=int, help="random seed for the injected faults")


def _add_files_and_outputs(sp: argparse.ArgumentParser, *, files: bool = True) -> None:
    """The files, the mapping, how to read them, and where the outputs go (run, retry, validate)."""
    if files:
        sp.add_argument("files", nargs="+", metavar="FILE", help="CSV or .xlsx files")
    sp.add_argument("--mapping", "-m", help="mapping YAML (see mappings/README.md); required")
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
        "--summary-json", metavar="PATH", help="write counts, duration, files and exit code as JSON"
    )
    sp.add_argument(
        "--max-failures",
        metavar="N|N%",
        help="tolerate up to N rows (or N%% of rows) that do not sync: exit 0 instead of 1 (default 0)",
    )
    sp.add_argument("--limit", type=_nonneg_int, help="read only the first N data rows")
    sp.add_argument("--quiet", "-q", action="store_true", help="print only errors and the report path")
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
    sp.add_argument(
        "--config", metavar="PATH", help="config file (default $BULK_SYNC_CONFIG or ./bulk_sync.toml)"
    )
    sp.add_argument("--profile", help="profile of the config file to use (default: [profiles.default])")


def _add_sending(r: argparse.ArgumentParser) -> None:
    """Where and how a run sends (run, retry): connection, pace and retries, state."""
    _add_connection(r)
    _add_pace_and_retries(r)
    _add_state(r)


def _add_connection(r: argparse.ArgumentParser) -> None:
    """The end-of-run webhook, where SIRO is, the token."""
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
    r.add_argument("--base-url", help=f"SIRO External API base URL (default {PRODUCTION_BASE_URL})")
    r.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="accept an http:// --base-url that is not this machine (the token then crosses the "
        "network unencrypted)",
    )
    r.add_argument("--token-file", help=f"file holding the API token (default: ${TOKEN_ENV})")
    r.add_argument(
        "--sandbox",
        action="store_true",
        help="start the built-in SIRO emulator on 127.0.0.1 and sync to it (a rehearsal)",
    )


def _add_pace_and_retries(r: argparse.ArgumentParser) -> None:
    """Concurrency, batches, pace, retries, timeouts."""
    r.add_argument("--concurrency", type=_pos_int, default=8, help="requests in flight at once (default 8)")
    r.add_argument(
        "--batch-size",
        type=_pos_int,
        default=100,
        help="records per request to the batch endpoint (default 100)",
    )
    r.add_argument(
        "--max-body-bytes",
        type=_pos_int,
        default=5_000_000,
        help="cap on one request body; batches are cut to fit (default 5000000)",
    )
    r.add_argument(
        "--no-batch", action="store_true", help="one record per request (the single-record endpoint)"
    )
    r.add_argument(
        "--rate-per-min",
        type=_nonneg_float,
        default=1000.0,
        help="client-side limit, requests per minute, shared by all workers (default 1000, "
        "SIRO's limit per token; 0 = no limit)",
    )
    r.add_argument(
        "--circuit-breaker",
        type=_nonneg_int,
        default=30,
        metavar="N",
        help="stop the run after N failed requests in a row (default 30; 0 = never)",
    )
    r.add_argument(
        "--max-attempts",
        type=_pos_int,
        help="at most this many tries per request (default: no count; a request is retried on "
        "5xx/408/429/timeouts/dropped connections for --retry-max-seconds)",
    )
    r.add_argument(
        "--retry-max-seconds",
        type=_pos_float,
        default=300.0,
        help="stop retrying a record after this long (default 300)",
    )
    r.add_argument(
        "--retry-backoff",
        type=_nonneg_float,
        default=0.5,
        help="first retry wait in seconds, doubled each try, jittered (default 0.5)",
    )
    r.add_argument("--connect-timeout", type=_pos_float, default=10.0, help="seconds (default 10)")
    r.add_argument("--read-timeout", type=_pos_float, default=60.0, help="seconds (default 60)")
    r.add_argument(
        "--request-timeout",
        type=_pos_float,
        default=120.0,
        help="seconds for one whole request (default 120)",
    )
    r.add_argument(
        "--no-preflight",
        action="store_true",
        help="skip the token check (GET caller-identity) before sending",
    )


def _add_state(r: argparse.ArgumentParser) -> None:
    """What was synced before."""
    r.add_argument(
        "--state",
        metavar="PATH",
        help=f"state file: what was synced before (default {default_state_path()}; with --sandbox: none)",
    )
    r.add_argument("--no-state", action="store_true", help="remember nothing; send every record")
    r.add_argument(
        "--full", action="store_true", help="send every record, even those unchanged since the last sync"
    )
    r.add_argument(
        "--wait-lock",
        type=_nonneg_float,
        default=0.0,
        metavar="SECONDS",
        help="if another run holds the state file, wait this long for it (default: refuse at once)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from .watch import die_with_parent

    die_with_parent()  # a run started by `watch` ends with it
    parser = build_parser()
    try:
        profile = _profile_defaults(argv)
    except BulkSyncError as exc:
        _err(f"error: {exc}")
        return exc.exit_code
    for sp in _subparsers(parser).values():
        dests = {a.dest for a in sp._actions}
        sp.set_defaults(**{k: v for k, v in profile.items() if k in dests})
    args = parser.parse_args(argv)
    args.token_env = profile.get("token_env", TOKEN_ENV)
    try:
        if args.command == "sandbox":
            return _sandbox(args)
        if args.command == "watch":
            return _watch(args)
        if args.command == "init-mapping":
            return _init_mapping(args)
        return _run(args)
    except BulkSyncError as exc:
        _err(f"error: {exc}")
        if exc.exit_code == EXIT_CONFIG or isinstance(exc, ConfigError):
            _finish(args, exc.exit_code, None, [], error=str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_ABORTED
    except BrokenPipeError:  # e.g. `bulk-sync validate ... --show 5 | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return EXIT_ROWS_FAILED


def _profile_defaults(argv: list[str]) -> dict[str, Any]:
    """The config profile named by --config/--profile (or the default one), as flag defaults."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--profile")
    known, _ = pre.parse_known_args(argv)
    return load_profile(config_path(known.config), known.profile)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _run(args: argparse.Namespace) -> int:
    dry = args.command == "validate"
    args.started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    redactor = logs.setup(args.log_file, args.log_level, args.log_format, [])
    args.redactor = redactor
    if not args.mapping:
        raise UsageError("--mapping is required (or `mapping` in the config profile)")
    if args.max_failures is not None:
        _max_failures(str(args.max_failures), 1)  # a bad value is refused before anything is read
    log.info("bulk-sync %s %s started", __version__, args.command)
    if args.command == "retry":
        plan = prepare_retry(
            args.previous, args.mapping, encoding=args.encoding, delimiter=_delimiter(args.delimiter)
        )
        if plan is None:
            print(f"nothing to retry: every row of {args.previous} synced")
            return EXIT_OK
    else:
        plan = prepare(
            args.files,
            args.mapping,
            sheet=args.sheet,
            encoding=args.encoding,
            delimiter=_delimiter(args.delimiter),
        )
    for w in plan.warnings:
        _err(f"warning: {w}")
        log.warning("%s", w)
    plan = scan_columns(plan, limit=args.limit)  # ids and number columns, before anything is sent
    server = None
    if dry:
        settings = RunSettings(
            token=SecretStr("unused"),
            dry_run=True,
            limit=args.limit,
            max_body_bytes=args.max_body_bytes or UNLIMITED_BODY,
        )
    else:
        if args.sandbox and args.base_url:
            raise UsageError("--sandbox and --base-url exclude each other")
        if args.sandbox:
            try:
                token = read_token(args.token_file, env_name=args.token_env)
            except UsageError:
                token = read_token(None, env={TOKEN_ENV: "sandbox-" + secrets.token_hex(16)})
            from .sandbox import SandboxServer

            server = SandboxServer(token.get_secret_value()).start()
            base_url = server.base_url
            _say(args, f"sandbox: SIRO emulator listening on {base_url} (records are discarded at exit)")
        else:
            base_url = check_base_url(args.base_url or PRODUCTION_BASE_URL, args.allow_insecure_http)
            token = read_token(args.token_file, env_name=args.token_env)
        redactor.secrets.append(token.get_secret_value())
        settings = _delivery_settings(args, base_url, token)
        log.info("sending to %s (batch %s, concurrency %d)", base_url, settings.batch, settings.concurrency)
    report_path = Path(args.report) if args.report else _default_report(plan, args.report_dir)
    args.report_path = report_path
    failures: Failures = {}
    kept = Kept()  # the cells of invalid rows, remembered while reading, for the error file
    try:
        with state_lock(settings, getattr(args, "wait_lock", 0.0)):
            summary = _execute(args, plan, settings, report_path, failures, kept)
    finally:
        if server is not None:
            server.stop()
    written = [report_path]
    if args.report_xlsx:
        written.append(report_path.with_suffix(".xlsx"))
    if failures:
        try:
            written += write_error_files([src for src, _ in plan.jobs], failures, report_path, kept)
        except (BulkSyncError, OSError) as exc:  # the run's outcome stands; say why the file is missing
            _err(f"warning: could not write the error file: {exc}")
    _print_summary(args, summary, written, dry)
    if summary.aborted:
        could_not_start = summary.aborted_code == EXIT_CONFIG
        _err(f"{'error' if could_not_start else 'aborted'}: {summary.aborted}")
        code = summary.aborted_code
    else:
        code = _verdict(args, summary)
    if summary.report_incomplete:
        _err(f"warning: the report is incomplete: {summary.report_incomplete}")
    _finish(args, code, summary, written)
    return code


def _verdict(args: argparse.Namespace, summary: Summary) -> int:
    """0 when every row is fine, or when the rows that did not sync are within --max-failures."""
    bad = sum(n for status, n in summary.counts.items() if status not in GOOD)
    if bad == 0:
        return EXIT_OK
    if args.max_failures is not None:
        allowed = _max_failures(str(args.max_failures), summary.rows)
        if bad <= allowed:
            _say(
                args,
                f"{bad:,} rows did not sync: within --max-failures {args.max_failures} ({allowed:,} rows)",
            )
            return EXIT_OK
        _err(f"{bad:,} rows did not sync: more than --max-failures {args.max_failures} ({allowed:,} rows)")
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


def _finish(
    args: argparse.Namespace,
    code: int,
    summary: Summary | None,
    written: list[Path],
    error: str | None = None,
) -> None:
    """After the run (or after it could not start): summary JSON, notification, last log line."""
    data: dict[str, Any] = (
        summary_dict(summary, code)
        if summary is not None
        else {"exit_code": code, "rows": 0, "counts": {}, "files": list(getattr(args, "files", []) or [])}
    )
    data.update(
        command=args.command,
        started_at=getattr(args, "started_at", None),
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        report=str(written[0]) if written else None,
        outputs=[str(p) for p in written],
    )
    if error:
        data["error"] = error
    log.log(
        logging.INFO if code == EXIT_OK else logging.WARNING,
        "finished with exit code %d: %s",
        code,
        json.dumps(data.get("counts", {})),
    )
    if getattr(args, "summary_json", None):
        try:
            out = Path(args.summary_json)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        except OSError as exc:
            _err(f"warning: could not write the summary JSON {args.summary_json}: {exc.strerror or exc}")
    url = getattr(args, "notify_url", None)  # a dry run posts nothing, anywhere (validate has no flag)
    if url and args.command != "validate" and (args.notify_on == "always" or code != EXIT_OK):
        problem = post_summary(
            url, data, label=" ".join(Path(f).name for f in data.get("files", [])[:3]) or args.command
        )
        if problem:
            _err(f"warning: {problem} (the run's result is unchanged)")
            log.warning("%s", problem)


def _delivery_settings(args: argparse.Namespace, base_url: str, token: SecretStr) -> RunSettings:
    if args.no_state:
        state = None
    elif args.state:
        state = Path(args.state)
    else:  # a sandbox forgets everything at exit: remembering would wrongly skip rows next time
        state = None if args.sandbox else default_state_path()
    return RunSettings(
        base_url=base_url,
        token=token,
        token_source=f"the file {args.token_file}" if args.token_file else f"${args.token_env}",
        concurrency=args.concurrency,
        limit=args.limit,
        batch=not args.no_batch,
        batch_size=args.batch_size,
        max_body_bytes=args.max_body_bytes,
        rate_per_min=args.rate_per_min or None,
        breaker=args.circuit_breaker or None,
        state_path=state,
        full=args.full,
        retry=RetryPolicy(
            max_attempts=args.max_attempts,
            max_elapsed=args.retry_max_seconds,
            backoff_base=args.retry_backoff,
        ),
        timeouts=Timeouts(connect=args.connect_timeout, read=args.read_timeout, total=args.request_timeout),
    )


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
    bar, note = _progress(args, estimate if plan.only_rows is None and args.limit is None else args.limit)
    summary: Summary | None = None
    listing = args.command == "validate" and not args.quiet
    listed = [0]
    with report:

        def emit(result: RowResult | ResultBlock) -> None:
            noted: Iterable[RowResult]
            every: Iterable[RowResult]
            if isinstance(result, ResultBlock):  # rows that need no attention (valid, unchanged)
                report.write_block(result)
                noted, every = result.noted(), result
            else:
                report.write(result)
                noted = every = (result,)
                if result.status in TO_FIX:  # the error file holds the rows a person must fix
                    failures.setdefault((result.source_file, result.sheet), {})[result.row_number] = result
            if listing:
                for r in noted:
                    for line in _problem_lines(r):
                        listed[0] += 1
                        if listed[0] <= LIST_LIMIT:  # stderr (stdout is --show's JSON), above the bar
                            note(line)
            if xlsx is not None:
                for r in every:
                    xlsx.write(r)
            bar(result)

        try:
            summary = run(
                plan,
                settings,
                emit,
                on_payload=on_payload if show else None,
                kept=kept,
                preflight=not getattr(args, "no_preflight", False),
                events=note,
            )
        finally:
            bar(None)
            if listed[0] > LIST_LIMIT:
                note(f"... and {listed[0] - LIST_LIMIT:,} more row problems: every one is in the report")
            if xlsx is not None:
                try:
                    xlsx.close(summary, {"command": args.command, "mapping": str(args.mapping)})
                except Exception as exc:  # xlsxwriter raises its own types for a failed write
                    _err(f"warning: could not write the XLSX report: {exc}")
    if report.error is not None and summary.report_incomplete is None:  # its last lines were lost
        summary.report_incomplete = (
            f"its last lines could not be written ({report.error.strerror or report.error})"
        )
    return summary


def _problem_lines(r: RowResult) -> list[str]:
    """`validate`'s lines for a row: its problem, and each of its warnings."""
    where = f"{Path(r.source_file).name}{f' [{r.sheet}]' if r.sheet else ''} row {r.row_number}"
    lines = []
    if r.error_type and r.status not in GOOD:
        column = f" [{r.column}]" if r.column else ""
        lines.append(f"{where}{column}: {r.status} {r.error_type}: {r.message}")
    if r.warning:
        lines += [f"{where}: warning {w}" for w in r.warning.split(WARNING_SEPARATOR)]
    return lines


def _progress(
    args: argparse.Namespace, total: int | None = None
) -> tuple[Callable[[RowResult | ResultBlock | None], None], Callable[[str], None]]:
    """A tqdm bar on the terminal: rows done (read and sent: a row counts when it is decided),
    rows/s, and an ETA from the estimated row count; nothing when output is not a terminal.
    Also returns how to print a line to stderr without breaking the bar."""
    if args.quiet or not (sys.stdout.isatty() and sys.stderr.isatty()):
        return (lambda r: None), (lambda line: print(line, file=sys.stderr))
    from tqdm import tqdm

    bar = tqdm(total=total, unit=" rows", desc="bulk-sync", dynamic_ncols=True, smoothing=0.1)
    bad = 0

    def update(result: RowResult | ResultBlock | None) -> None:
        nonlocal bad
        if result is None:
            bar.close()
            return
        if isinstance(result, ResultBlock):
            bar.update(len(result))  # blocks hold rows that are fine (valid, unchanged)
            return
        if result.status not in GOOD:
            bad += 1
            bar.set_postfix(not_synced=bad, refresh=False)
        bar.update(1)

    return update, (lambda line: tqdm.write(line, file=sys.stderr))


def _print_summary(args: argparse.Namespace, s: Summary, written: list[Path], dry: bool) -> None:
    if not args.quiet:
        verb = "checked" if dry else "processed"
        print(
            f"{verb} {s.rows} rows from {len(s.files)} file(s) in {s.duration:.1f}s "
            f"({s.rows_per_second:,.0f} rows/s)"
            + (
                ""
                if dry
                else f", {s.requests} requests" + (f" ({s.throttled} answered 429)" if s.throttled else "")
            )
        )
        for status in STATUSES:
            if s.counts.get(status):
                print(f"  {status:<10} {s.counts[status]:>9,}")
        if s.error_types:
            print("  by error type: " + ", ".join(f"{k} {v}" for k, v in s.error_types.most_common()))
        if s.warnings:
            print("  warnings: " + ", ".join(f"{k} {v}" for k, v in s.warnings.most_common()))
    resend = s.counts.get("not_sent", 0) + s.counts.get("failed", 0)
    if resend and not dry:
        print(
            f"{resend:,} row(s) were not sent or failed; they need no fixing, only sending: run the same "
            f"command again (the state skips what SIRO acknowledged), or: bulk-sync retry {written[0]} "
            f"--mapping {args.mapping}"
        )
    print(f"report: {written[0]}")
    for extra in written[1:]:
        kind = "error file (fix and drop again)" if "-errors" in extra.stem else "report"
        print(f"{kind}: {extra}")


def _default_report(plan: Plan, folder: str = "reports") -> Path:
    stem = plan.jobs[0][0].path.stem if plan.jobs else "run"
    return Path(folder) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.csv"


def _watch(args: argparse.Namespace) -> int:
    from . import watch

    inbox = Path(args.inbox)
    if not inbox.is_dir():
        raise UsageError(f"the inbox {inbox} is not a folder")
    cfg_path = config_path(args.config)
    section = load_watch(cfg_path)
    routes = watch.routes_from(section.routes, args.mapping or _profile_mapping(cfg_path, args.profile))
    if not routes:
        raise UsageError("no mapping: give --mapping, or [[watch.routes]] in the config file")
    _check_routes(routes, cfg_path)
    extra = []
    if args.base_url:
        extra += ["--base-url", check_base_url(args.base_url, args.allow_insecure_http)]
    if args.allow_insecure_http:
        extra.append("--allow-insecure-http")
    if args.token_file:
        extra += ["--token-file", str(Path(args.token_file).resolve())]
    cfg = watch.WatchConfig(
        inbox=inbox,
        routes=routes,
        settle=args.settle or section.settle_seconds or 5.0,
        poll=args.poll or section.poll_seconds or 2.0,
        config=str(cfg_path.resolve()) if cfg_path else None,
        profile=args.profile,
        extra_args=extra,
    )
    w = watch.Watcher(cfg, say=lambda m: print(m, flush=True))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, w.on_signal)
    print(f"watching {w.inbox} (drop files there; results in done/ and failed/)", flush=True)
    before = len(list(w.dirs["failed"].iterdir()))
    if args.once:
        w.run_once()
    else:
        w.run_forever()
    failed_now = len(list(w.dirs["failed"].iterdir()))
    return EXIT_ROWS_FAILED if failed_now > before else EXIT_OK


def _check_routes(routes: list[Any], cfg_path: Path | None) -> None:
    """Every route's mapping loads and its profile exists, checked before the first file is taken:
    a typo in the config is one error at start-up (exit 2), not every dropped file in failed/."""
    from .pipeline import check_mapping

    for route in routes:
        where = f"the watch route {route.match!r}" if route.match != "*" else "the watch's --mapping"
        if not Path(route.mapping).is_file():
            raise UsageError(f"{where} names the mapping {route.mapping}, which does not exist")
        check_mapping(route.mapping)
        if route.profile is not None:
            if cfg_path is None:
                raise UsageError(f"{where} names the profile {route.profile!r}, but there is no config file")
            load_profile(cfg_path, route.profile)


def _init_mapping(args: argparse.Namespace) -> int:
    from .load import open_source
    from .scaffold import starter

    src = open_source(
        args.file, sheet=args.sheet, encoding=args.encoding, delimiter=_delimiter(args.delimiter)
    )
    text = starter(src, src.label)
    if not args.output:
        print(text, end="")
        return EXIT_OK
    out = Path(args.output)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; pass --force to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    todos = text.count("TODO")
    print(
        f"wrote {out}"
        + (f": replace its TODOs ({todos}), then" if todos else ": check it, then")
        + f" run bulk-sync validate {args.file} -m {out}"
    )
    return EXIT_OK


def _profile_mapping(cfg_path: Path | None, profile: str | None) -> str | None:
    value = load_profile(cfg_path, profile).get("mapping")
    return str(value) if value else None


def _sandbox(args: argparse.Namespace) -> int:
    from .sandbox import Faults, serve_forever

    try:
        token = read_token(args.token_file).get_secret_value()
        print("sandbox: accepting the token from " + (args.token_file or f"${TOKEN_ENV}"))
    except UsageError:
        token = "sandbox-" + secrets.token_hex(8)
        print(f"sandbox: no token configured; accepting the generated token {token}")
    faults = Faults(
        latency=args.latency,
        error_5xx=args.error_rate,
        throttle=args.throttle_rate,
        drop_before=args.drop_rate,
        rate_per_min=args.rate_per_min,
        rate_window=args.rate_window,
        limiter=args.limiter,
        rate_burst=args.burst,
        rate_retry_after=args.rate_retry_after,
        validate=not args.no_validate,
        seed=args.seed,
    )
    serve_forever(token, faults, args.host, args.port, announce=lambda m: print(m, flush=True))
    return EXIT_OK


def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, flush=True)


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_base_url(url: str, allow_insecure: bool = False) -> str:
    """The base URL, if it is one bulk_sync can send the token to: https://, or http:// to this
    machine (or anywhere with ``allow_insecure``). Raises UsageError saying what is wrong."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        what = f"has the scheme {parts.scheme}://" if parts.scheme and parts.netloc else "has no https://"
        raise UsageError(
            f"--base-url {url!r} {what}; it must be an https:// URL (e.g. {PRODUCTION_BASE_URL})"
        )
    if not parts.hostname:
        raise UsageError(f"--base-url {url!r} names no host")
    if parts.scheme == "http" and not allow_insecure and not _loopback(parts.hostname):
        raise UsageError(
            f"--base-url {url!r} is http://: the API token would cross the network unencrypted. "
            "Use https://, or pass --allow-insecure-http if this network is trusted"
        )
    return url.strip()


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _delimiter(text: str | None) -> str | None:
    """`--delimiter` as typed in a shell: `\\t` or `tab` mean a tab."""
    if text is None:
        return None
    named = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    value = named.get(text.lower(), text)
    if len(value) != 1:
        raise UsageError(f"--delimiter must be one character (or tab, comma, semicolon, pipe), got {text!r}")
    return value


def _pos_int(text: str) -> int:
    return int(_typed(text, int, lambda v: v > 0, "a whole number above 0"))


def _nonneg_int(text: str) -> int:
    return int(_typed(text, int, lambda v: v >= 0, "a whole number, 0 or more"))


def _pos_float(text: str) -> float:
    return float(_typed(text, float, lambda v: v > 0, "a number above 0"))


def _nonneg_float(text: str) -> float:
    return float(_typed(text, float, lambda v: v >= 0, "a number, 0 or more"))


def _fraction(text: str) -> float:
    return float(_typed(text, float, lambda v: 0 <= v <= 1, "a fraction between 0 and 1"))


def _typed(text: str, kind: Callable[[str], Any], ok: Callable[[Any], bool], what: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
