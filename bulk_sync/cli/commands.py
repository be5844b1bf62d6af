"""CLI, commands: bulk-sync init-mapping, sandbox and serve; the checks of watch's routes."""

from __future__ import annotations

import argparse
import csv
import os
import secrets
from pathlib import Path
from typing import Any

from ..config import load_profile
from ..csvfields import long_fields
from ..errors import (
    EXIT_OK,
    MappingError,
    UsageError,
)
from ..settings import (
    TOKEN_ENV,
    read_token,
)
from .values import delimiter_flag


def check_routes(routes: list[Any], cfg_path: Path | None) -> None:
    """Every route's mapping loads and its profile exists, checked before the first file is taken:
    a typo in the config is one error at start-up (exit 2), not every dropped file in failed/."""
    from ..pipeline import check_mapping

    for route in routes:
        where = f"the watch route {route.match!r}" if route.match != "*" else "the watch's --mapping"
        if not Path(route.mapping).is_file():
            raise UsageError(f"{where} names the mapping {route.mapping}, which does not exist")
        check_mapping(route.mapping)
        if route.profile is not None:
            if cfg_path is None:
                raise UsageError(f"{where} names the profile {route.profile!r}, but there is no config file")
            load_profile(cfg_path, route.profile)


def init_mapping_command(args: argparse.Namespace) -> int:
    from ..load import open_source
    from ..scaffold import starter

    src = open_source(
        args.file, sheet=args.sheet, encoding=args.encoding, delimiter=delimiter_flag(args.delimiter)
    )
    text = starter(src, src.label, args.resource)
    if not args.output:
        print(text, end="")
        return EXIT_OK
    out = Path(args.output)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; pass --force to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    todos = _todos_left(out)
    print(
        f"wrote {out}"
        + (f": replace its TODOs ({todos}), then" if todos else ": check it, then")
        + f" run bulk-sync validate {args.file} -m {out}"
    )
    return EXIT_OK


def _todos_left(mapping_path: Path) -> int:
    """How many TODOs `validate` will list for the mapping (its values, not its comments)."""
    from ..pipeline import check_mapping

    try:
        check_mapping(mapping_path)
    except MappingError as exc:
        return sum("TODO left" in p for p in exc.problems)
    return 0


def profile_mapping(cfg_path: Path | None, profile: str | None) -> str | None:
    value = load_profile(cfg_path, profile).get("mapping")
    return str(value) if value else None


def sandbox_users(path: Path) -> list[dict[str, Any]]:
    """The sandbox's SIRO users from a CSV (email, and optional firstName, lastName, disabled)."""
    from ..sandbox import user_record

    try:
        with long_fields(), path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --users {path}: {exc}") from exc
    if rows and "email" not in rows[0]:
        raise UsageError(f"--users {path}: no `email` column (it has: {', '.join(rows[0])})")
    return [
        user_record(
            r["email"].strip(),
            (r.get("firstName") or "").strip(),
            (r.get("lastName") or "").strip(),
            (r.get("disabled") or "").strip().lower() in {"true", "1", "yes"},
            n,
        )
        for n, r in enumerate(rows, start=1)
    ]


def sandbox_command(args: argparse.Namespace) -> int:
    from ..sandbox import Faults, serve_forever

    try:
        token = read_token(args.token_file, env=os.environ).get_secret_value()
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
        max_batch=args.max_batch,
        work_per_record=args.work_ms / 1000.0,
        gateway_timeout=args.gateway_timeout,
        seed=args.seed,
        users_page=args.users_page,
    )
    users = sandbox_users(Path(args.users)) if args.users else None
    serve_forever(token, faults, args.host, args.port, announce=lambda m: print(m, flush=True), users=users)
    return EXIT_OK


def serve_command(args: argparse.Namespace) -> int:
    from ..review import Review, serve
    from ..review.guard import access_log, key_from_file
    from ..review.preview import Limits
    from ..review.server import public_host, tls_context

    inbox = Path(args.inbox) if args.inbox else None
    if inbox is not None and not inbox.is_dir():
        raise UsageError(f"the inbox {inbox} is not a folder")
    if inbox is None and not args.reports:
        raise UsageError("give --inbox (a watched folder) or --reports DIR (where CLI runs write reports)")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("give both --tls-cert and --tls-key (or neither)")
    try:
        if args.public_url:
            public_host(args.public_url)
        key, warning = key_from_file(Path(args.key_file)) if args.key_file else (None, None)
        tls = tls_context(Path(args.tls_cert), Path(args.tls_key)) if args.tls_cert else None
        access = access_log(Path(args.access_log)) if args.access_log else None
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise UsageError(f"serve: {exc}") from None
    if warning:
        print(warning, flush=True)
    review = Review(
        inbox,
        [Path(r) for r in args.reports],
        Path(args.mappings),
        key=key,
        max_upload_mb=args.max_upload_mb,
        tls=tls is not None or str(args.public_url or "").startswith("https:"),
        limits=Limits(seconds=args.preview_seconds, memory_mb=args.preview_memory_mb),
    )
    review.guard.access = access
    serve(
        review,
        args.host,
        args.port,
        announce=lambda m: print(m, flush=True),
        public_url=args.public_url,
        allow_hosts=args.allow_host,
        tls=tls,
    )
    return EXIT_OK
