"""CLI: flags -> settings, progress bar, printed summary, exit codes. Nothing imports this module.

Exit codes: 0 every row synced (or valid, for `validate`); 1 the run finished but some rows did
not sync; 2 could not start (bad flags, mapping or file; nothing sent); 3 aborted mid-run (the
token was refused, a signal).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from . import __version__
from .errors import EXIT_ABORTED, EXIT_OK, EXIT_ROWS_FAILED, BulkSyncError, ConfigError, UsageError
from .payload import Payload
from .pipeline import Plan, prepare, prepare_retry, run, state_lock
from .report import STATUSES, CsvReport, RowResult, Summary
from .settings import PRODUCTION_BASE_URL, TOKEN_ENV, RetryPolicy, RunSettings, Timeouts, read_token
from .state import default_state_path

EPILOG_RUN = """\
example:
  export SIRO_API_TOKEN=...            # or --token-file /etc/bulk_sync/token
  bulk-sync run export.csv --mapping mappings/engagements.yaml
  bulk-sync run example_data/engagements.csv --mapping mappings/engagements.yaml --sandbox

exit codes: 0 all rows synced or unchanged, 1 some rows did not sync (see the report),
            2 could not start (nothing sent), 3 aborted mid-run (token refused, SIRO down, signal)
"""
EPILOG_RETRY = """\
example:
  bulk-sync run export.csv --mapping m.yaml --report reports/nightly.csv     # some rows fail
  bulk-sync retry reports/nightly.csv --mapping m.yaml                     # resend exactly those
"""
EPILOG_VALIDATE = """\
example:
  bulk-sync validate export.xlsx --sheet Events --mapping mappings/engagements.yaml --show 2
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

    def command(name: str, help: str, epilog: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help,
            epilog=epilog,
            allow_abbrev=False,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def common(sp: argparse.ArgumentParser, *, files: bool = True) -> None:
        if files:
            sp.add_argument("files", nargs="+", metavar="FILE", help="CSV or .xlsx files")
        sp.add_argument("--mapping", "-m", required=True, help="mapping YAML (see mappings/README.md)")
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
        sp.add_argument("--report", help="CSV report path (default: reports/<file>-<time>.csv)")
        sp.add_argument("--limit", type=_nonneg_int, help="read only the first N data rows")
        sp.add_argument("--quiet", "-q", action="store_true", help="print only errors and the report path")

    def delivery(r: argparse.ArgumentParser) -> None:
        r.add_argument("--base-url", help=f"SIRO External API base URL (default {PRODUCTION_BASE_URL})")
        r.add_argument("--token-file", help=f"file holding the API token (default: ${TOKEN_ENV})")
        r.add_argument(
            "--sandbox",
            action="store_true",
            help="start the built-in SIRO emulator on 127.0.0.1 and sync to it (a rehearsal)",
        )
        r.add_argument(
            "--concurrency", type=_pos_int, default=8, help="requests in flight at once (default 8)"
        )
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
            default=6,
            help="tries per request on 5xx/408/timeouts/dropped connections (default 6); "
            "429s are bounded by --retry-max-seconds only",
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

    r = command("run", "map the files and sync every row to SIRO", EPILOG_RUN)
    common(r)
    delivery(r)
    rt = command("retry", "resend the rows that did not sync in an earlier run's report", EPILOG_RETRY)
    rt.add_argument("previous", metavar="REPORT", help="the CSV report of the earlier run")
    common(rt, files=False)
    delivery(rt)

    v = command("validate", "build every payload and write the report; send nothing", EPILOG_VALIDATE)
    common(v)
    v.add_argument(
        "--show", type=_nonneg_int, default=0, metavar="N", help="print the first N payloads as JSON"
    )

    s = command("sandbox", "run the SIRO emulator on 127.0.0.1 (for rehearsals)", EPILOG_SANDBOX)
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
        "--rate-window",
        type=_pos_float,
        default=60.0,
        help="the limit's sliding window in seconds (default 60)",
    )
    s.add_argument("--no-validate", action="store_true", help="skip schema validation (for load tests)")
    s.add_argument("--seed", type=int, help="random seed for the injected faults")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "sandbox":
            return _sandbox(args)
        return _run(args)
    except BulkSyncError as exc:
        _err(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_ABORTED
    except BrokenPipeError:  # e.g. `bulk-sync validate ... --show 5 | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return EXIT_ROWS_FAILED


def _run(args: argparse.Namespace) -> int:
    dry = args.command == "validate"
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
    server = None
    if dry:
        settings = RunSettings(token=SecretStr("unused"), dry_run=True, limit=args.limit)
    else:
        if args.sandbox and args.base_url:
            raise UsageError("--sandbox and --base-url exclude each other")
        if args.sandbox:
            try:
                token = read_token(args.token_file)
            except UsageError:
                token = read_token(None, env={TOKEN_ENV: "sandbox-" + secrets.token_hex(16)})
            from .sandbox import SandboxServer

            server = SandboxServer(token.get_secret_value()).start()
            base_url = server.base_url
            _say(args, f"sandbox: SIRO emulator listening on {base_url} (records are discarded at exit)")
        else:
            token = read_token(args.token_file)
            base_url = args.base_url or PRODUCTION_BASE_URL
        settings = _delivery_settings(args, base_url, token)
    report_path = Path(args.report) if args.report else _default_report(plan)
    try:
        with state_lock(settings, getattr(args, "wait_lock", 0.0)):
            summary = _execute(args, plan, settings, report_path)
    finally:
        if server is not None:
            server.stop()
    _print_summary(args, summary, report_path, dry)
    if summary.aborted:
        _err(f"aborted: {summary.aborted}")
        return EXIT_ABORTED
    return EXIT_OK if summary.all_good else EXIT_ROWS_FAILED


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


def _execute(args: argparse.Namespace, plan: Plan, settings: RunSettings, report_path: Path) -> Summary:
    show = getattr(args, "show", 0)
    shown: list[Payload] = []

    def on_payload(p: Payload) -> None:
        if len(shown) < show:
            shown.append(p)
            print(json.dumps(p.body, indent=2, ensure_ascii=False))

    try:
        report = CsvReport(report_path)
    except OSError as exc:
        raise ConfigError(f"cannot write the report {report_path}: {exc.strerror or exc}") from exc
    bar = _progress(args)
    with report:

        def emit(result: RowResult) -> None:
            report.write(result)
            bar(result)

        try:
            return run(plan, settings, emit, on_payload=on_payload if show else None)
        finally:
            bar(None)


def _progress(args: argparse.Namespace) -> Callable[[RowResult | None], None]:
    """A tqdm bar on the terminal (rows/s, counts); nothing when output is not a terminal."""
    if args.quiet or not (sys.stdout.isatty() and sys.stderr.isatty()):
        return lambda r: None
    from tqdm import tqdm

    bar = tqdm(unit=" rows", desc="bulk-sync", dynamic_ncols=True, smoothing=0.1)
    bad = 0

    def update(result: RowResult | None) -> None:
        nonlocal bad
        if result is None:
            bar.close()
            return
        if result.status not in {"synced", "valid"}:
            bad += 1
            bar.set_postfix(not_synced=bad, refresh=False)
        bar.update(1)

    return update


def _print_summary(args: argparse.Namespace, s: Summary, report: Path, dry: bool) -> None:
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
                print(f"  {status:<9} {s.counts[status]:>9,}")
        if s.error_types:
            print("  by error type: " + ", ".join(f"{k} {v}" for k, v in s.error_types.most_common()))
    print(f"report: {report}")


def _default_report(plan: Plan) -> Path:
    stem = plan.jobs[0][0].path.stem if plan.jobs else "run"
    return Path("reports") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.csv"


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
