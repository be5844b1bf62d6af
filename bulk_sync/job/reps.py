"""Job, reps: what a job learns from SIRO before it starts: its users, for the rep check (one fetch
a job, every page; GETs only, so a dry run may do it too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from ..errors import CallFailed, ConfigError, UsageError
from ..pipeline import RepCheck
from ..settings import Timeouts
from .events import Events

RepMode = Literal["check", "require", "off"]
NO_TOKEN = "set $SIRO_API_TOKEN or pass --token-file"


def rep_check(
    mode: RepMode,
    base_url: str,
    token: SecretStr | None,
    events: Events,
    *,
    timeouts: Timeouts | None = None,
    resource: str = "engagements",
    sandbox: bool = False,
    ca_bundle: Path | None = None,
) -> tuple[RepCheck | None, str]:
    """SIRO's active users' emails for the rep check (None when it is not made), and a note saying
    how the reps were checked, or why not. ``require`` makes a failed fetch an error."""
    required = mode == "require"
    if resource != "engagements":
        if required:
            raise UsageError("--require-known-reps is for engagements: SIRO matches only them to recordings")
        return None, f"not checked ({resource} are not matched to recordings)"
    if mode == "off":
        return None, "not checked (--no-rep-check)"
    if sandbox:
        if required:
            raise UsageError("--require-known-reps needs SIRO's users; the --sandbox emulator has none")
        return None, "not checked (the --sandbox emulator has no SIRO users)"
    if token is None:
        if required:
            raise UsageError(f"--require-known-reps needs SIRO's users: {NO_TOKEN}")
        note = "not checked: no API token (set $SIRO_API_TOKEN or --token-file to check each row's rep)"
        events.info(f"reps: {note}")
        return None, note
    from ..upload.calls import SiroCalls, active_emails, disabled_emails  # httpx: only when needed

    try:
        with SiroCalls(base_url, token.get_secret_value(), timeouts, ca_bundle=ca_bundle) as calls:
            users = calls.users()
    except CallFailed as exc:
        if required:
            raise ConfigError(f"--require-known-reps: SIRO's users could not be fetched: {exc}") from exc
        note = f"not checked: SIRO's users could not be fetched ({exc})"
        events.warning(f"reps {note}")
        return None, note
    known = active_emails(users)
    note = f"checked against {len(known):,} active SIRO users ({len(users):,} users in all)"
    events.info(f"reps: {note}")
    return RepCheck(known, required, disabled=disabled_emails(users)), note
