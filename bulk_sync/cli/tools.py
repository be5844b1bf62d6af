"""CLI, tools: the parsers of the commands around a run: watch, init-mapping, sandbox, delete."""

from __future__ import annotations

import argparse
from typing import Any, cast

from ..settings import PRODUCTION_BASE_URL, TOKEN_ENV
from .epilogs import EPILOG_DELETE, EPILOG_INIT, EPILOG_SANDBOX, EPILOG_WATCH
from .values import fraction, nonneg_float, nonneg_int, pos_float, pos_int


def command(sub: Any, name: str, help: str, epilog: str) -> argparse.ArgumentParser:
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


def watch_parser(sub: Any) -> None:
    """bulk-sync watch INBOX"""
    w = command(
        sub, "watch", "sync every spreadsheet dropped into a folder (inbox -> done/failed)", EPILOG_WATCH
    )
    w.add_argument("inbox", metavar="INBOX", help="the folder people drop files into")
    w.add_argument("--mapping", "-m", help="mapping for files no [[watch.routes]] rule matches")
    w.add_argument("--once", action="store_true", help="process what is there, then exit (for cron)")
    w.add_argument(
        "--settle", type=pos_float, help="seconds a file's size and time must stay unchanged (default 5)"
    )
    w.add_argument("--poll", type=pos_float, help="seconds between scans of the folder (default 2)")
    w.add_argument("--config", metavar="PATH", help="config file with [watch] routes and profiles")
    w.add_argument("--profile", help="profile for every run (a route's own profile wins)")
    w.add_argument("--base-url", help="passed to every run")
    w.add_argument(
        "--sandbox",
        action="store_true",
        help="rehearse: every file sent to the SIRO emulator on 127.0.0.1; its records and the "
        "runs' state kept in ./bulk_sync-sandbox/ from file to file (a profile's places set aside)",
    )
    w.add_argument("--allow-insecure-http", action="store_true", help="passed to every run (see run)")
    w.add_argument("--token-file", help="passed to every run")
    w.add_argument(
        "--review-url",
        metavar="URL",
        help="where `bulk-sync serve` runs (e.g. http://127.0.0.1:8765): alerts and failed/'s "
        "-error.txt link to the run's page",
    )


def init_parser(sub: Any) -> None:
    """bulk-sync init-mapping FILE"""
    im = command(
        sub, "init-mapping", "write a starter mapping by matching a file's headers to SIRO", EPILOG_INIT
    )
    im.add_argument("file", metavar="FILE", help="a sample export (CSV or workbook)")
    im.add_argument("--output", "-o", help="write the mapping here (default: print it)")
    im.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    im.add_argument("--sheet", help="workbook sheet (default: the first visible sheet)")
    im.add_argument("--encoding", help="CSV text encoding (default: detected)")
    im.add_argument("--delimiter", help="CSV delimiter (default: detected)")
    im.add_argument(
        "--resource",
        choices=["engagements", "opportunities"],
        help="what each row becomes in SIRO (default: engagements, or what a preset that fits says)",
    )


def sandbox_parser(sub: Any) -> None:
    """bulk-sync sandbox"""
    s = command(sub, "sandbox", "run the SIRO emulator on 127.0.0.1 (for rehearsals)", EPILOG_SANDBOX)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=nonneg_int, default=8787, help="port (default 8787; 0 = any free port)")
    s.add_argument(
        "--token-file", help=f"accept this token (default: ${TOKEN_ENV}, else a random one is printed)"
    )
    s.add_argument("--latency", type=nonneg_float, default=0.0, help="seconds added to each answer")
    s.add_argument("--error-rate", type=fraction, default=0.0, help="share of requests answered 5xx")
    s.add_argument("--throttle-rate", type=fraction, default=0.0, help="share answered 429 + Retry-After")
    s.add_argument("--drop-rate", type=fraction, default=0.0, help="share of connections dropped")
    s.add_argument("--rate-per-min", type=pos_int, help="enforce a requests-per-minute limit (SIRO: 1000)")
    s.add_argument(
        "--limiter",
        choices=["sliding", "fixed", "bucket"],
        default="sliding",
        help="how --rate-per-min is kept: a sliding window, fixed windows starting on the clock, or a "
        "token bucket (default sliding)",
    )
    s.add_argument(
        "--rate-window",
        type=pos_float,
        default=60.0,
        help="sliding and fixed: the limit's window in seconds (default 60)",
    )
    s.add_argument("--burst", type=pos_int, default=1, help="bucket: its size (default 1, the strictest)")
    s.add_argument(
        "--rate-retry-after",
        action="store_true",
        help="the limit's 429s carry Retry-After (whole seconds; default: none, as SIRO documents none)",
    )
    s.add_argument("--no-validate", action="store_true", help="skip schema validation (for load tests)")
    s.add_argument(
        "--max-batch", type=pos_int, metavar="N", help="answer 413 to a batch of more than N records"
    )
    s.add_argument(
        "--work-ms",
        type=nonneg_float,
        default=0.0,
        metavar="MS",
        help="milliseconds of work a record takes (requests are worked on side by side; default 0)",
    )
    s.add_argument(
        "--gateway-timeout",
        type=pos_float,
        metavar="SECONDS",
        help="answer 504 to a request still at work after this long; its records are stored anyway",
    )
    s.add_argument(
        "--users",
        metavar="CSV",
        help="SIRO's users for GET /v1/core/users (the rep check): a CSV with an `email` column "
        "(and optional firstName, lastName, disabled); without it the endpoint answers 404",
    )
    s.add_argument("--users-page", type=pos_int, default=100, help="users per page (default 100)")
    s.add_argument("--seed", type=int, help="random seed for the injected faults")


def serve_parser(sub: Any) -> None:
    """bulk-sync serve --inbox INBOX"""
    s = command(
        sub,
        "serve",
        "a local review page: see runs, fix bad rows in the browser, send them",
        "example:\n  bulk-sync serve --inbox /srv/siro-inbox --mappings mappings   # prints where to open it",
    )
    s.add_argument(
        "--inbox", metavar="DIR", help="the watched inbox: its done/ and failed/ runs; fixed rows go there"
    )
    s.add_argument(
        "--reports",
        metavar="DIR",
        action="append",
        default=[],
        help="a report folder of CLI runs (repeatable)",
    )
    s.add_argument(
        "--mappings",
        metavar="DIR",
        default="mappings",
        help="mappings offered for a preview (default mappings/)",
    )
    s.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; another one warns)"
    )
    s.add_argument("--port", type=nonneg_int, default=8765, help="port (default 8765; 0 = any free port)")
    s.add_argument(
        "--max-upload-mb", type=pos_float, default=50.0, help="largest file a preview takes (default 50)"
    )
    _serve_reach(s)
    s.add_argument(
        "--preview-seconds",
        type=pos_float,
        default=60.0,
        help="a preview longer than this is stopped (default 60)",
    )
    s.add_argument(
        "--preview-memory-mb",
        type=pos_int,
        default=2048,
        help="memory a preview may use (default 2048)",
    )


def _serve_reach(s: Any) -> None:
    """serve's flags for being reached from other desks, safely."""
    s.add_argument(
        "--public-url",
        metavar="URL",
        help="the address people open from their desks (e.g. https://review.example.com): printed with "
        "the key, and its host accepted (with --host 0.0.0.0, or behind a reverse proxy)",
    )
    s.add_argument(
        "--allow-host",
        metavar="NAME",
        action="append",
        default=[],
        help="another host name people may use to reach it (repeatable)",
    )
    s.add_argument(
        "--key-file",
        metavar="PATH",
        help="keep the key here so links survive restarts (created on first start, mode 600)",
    )
    s.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate (with --tls-key)")
    s.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    s.add_argument(
        "--access-log",
        metavar="PATH",
        help="append one line per request here: time, address, method, path, status",
    )


def delete_parser(sub: Any) -> None:
    """bulk-sync delete --external-ids FILE"""
    d = command(
        sub,
        "delete",
        "delete engagements from SIRO by externalId (a rare clean-up; asks first)",
        EPILOG_DELETE,
    )
    d.add_argument("--external-ids", required=True, metavar="FILE", help="the externalIds to delete")
    d.add_argument("--yes", "-y", action="store_true", help="do not ask: delete (for scripts)")
    d.add_argument("--dry-run", action="store_true", help="list what would be deleted; send nothing")
    d.add_argument(
        "--all-rows",
        action="store_true",
        help="from a report: every row's externalId, whatever its status (default: synced, unchanged)",
    )
    d.add_argument("--base-url", help=f"SIRO External API base URL (default {PRODUCTION_BASE_URL})")
    d.add_argument(
        "--allow-insecure-http", action="store_true", help="accept an http:// --base-url (see run)"
    )
    d.add_argument("--token-file", help=f"file holding the API token (default: ${TOKEN_ENV})")
    d.add_argument(
        "--state",
        metavar="PATH",
        help="the state file that forgets what is deleted (default: run's, in $XDG_STATE_HOME/bulk_sync/ "
        "or %%LOCALAPPDATA%%\\bulk_sync\\ on Windows)",
    )
    d.add_argument(
        "--no-state", action="store_true", help="leave every state file as it is (said in the output)"
    )
    d.add_argument(
        "--wait-lock",
        type=nonneg_float,
        default=0.0,
        metavar="SECONDS",
        help="if a run holds the state file, wait this long for it (default: refuse at once)",
    )
    d.add_argument("--config", metavar="PATH", help="config file with profiles")
    d.add_argument("--profile", help="profile in the config file")
