"""CLI, siro: what a run learns from SIRO before it starts: its users, for the rep check (one fetch a
run, every page; GETs only, so `validate` may do it too).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pydantic import SecretStr

from ..errors import CallFailed, ConfigError, UsageError
from ..pipeline import RepCheck
from ..settings import PRODUCTION_BASE_URL, Timeouts, read_token
from ..state import check_path
from .process import default_state
from .progress import err, log, say
from .sending import ca_bundle, check_base_url


def validate_connection(args: argparse.Namespace) -> tuple[str, SecretStr | None]:
    """`validate`'s base URL and token, when it has one (it needs none: without, no rep check)."""
    base_url = check_base_url(args.base_url or PRODUCTION_BASE_URL, args.allow_insecure_http)
    try:
        token = read_token(args.token_file, env=os.environ, env_name=args.token_env)
    except UsageError:
        if args.token_file:  # named, and unreadable: say so
            raise
        return base_url, None
    args.redactor.secrets.append(token.get_secret_value())
    return base_url, token


def dry_state(args: argparse.Namespace) -> Path | None:
    """The state file a dry run reads (never writes) to predict the effect: --state, else the
    default one when it exists; None with --no-state."""
    if getattr(args, "no_state", False):
        return None
    if getattr(args, "state", None):
        check_path(Path(args.state))  # a folder, a symlink loop: said, not taken for "no state yet"
        return Path(args.state)
    default = default_state()
    return default if default.is_file() else None


def rep_check(
    args: argparse.Namespace,
    base_url: str,
    token: SecretStr | None,
    timeouts: Timeouts | None = None,
    resource: str = "engagements",
) -> tuple[RepCheck | None, str]:
    """SIRO's active users' emails for the rep check (None when it is not made), and a note saying
    how the reps were checked, or why not. ``--require-known-reps`` makes a failed fetch an error."""
    required = bool(getattr(args, "require_known_reps", False))
    if resource != "engagements":
        if required:
            raise UsageError("--require-known-reps is for engagements: SIRO matches only them to recordings")
        return None, f"not checked ({resource} are not matched to recordings)"
    if getattr(args, "no_rep_check", False):
        if required:
            raise UsageError("--require-known-reps and --no-rep-check exclude each other")
        return None, "not checked (--no-rep-check)"
    if getattr(args, "sandbox", False):
        if required:
            raise UsageError("--require-known-reps needs SIRO's users; the --sandbox emulator has none")
        return None, "not checked (the --sandbox emulator has no SIRO users)"
    if token is None:
        if required:
            raise UsageError(
                "--require-known-reps needs SIRO's users: set $SIRO_API_TOKEN or pass --token-file"
            )
        note = "not checked: no API token (set $SIRO_API_TOKEN or --token-file to check each row's rep)"
        say(args, f"reps: {note}")
        return None, note
    from ..upload.calls import SiroCalls, active_emails, disabled_emails  # httpx: only when needed

    try:
        with SiroCalls(base_url, token.get_secret_value(), timeouts, ca_bundle=ca_bundle(args)) as calls:
            users = calls.users()
    except CallFailed as exc:
        if required:
            raise ConfigError(f"--require-known-reps: SIRO's users could not be fetched: {exc}") from exc
        note = f"not checked: SIRO's users could not be fetched ({exc})"
        err(f"warning: reps {note}")
        log.warning("reps %s", note)
        return None, note
    known = active_emails(users)
    note = f"checked against {len(known):,} active SIRO users ({len(users):,} users in all)"
    say(args, f"reps: {note}")
    log.info("reps %s", note)
    return RepCheck(known, required, disabled=disabled_emails(users)), note
