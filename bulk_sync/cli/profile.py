"""CLI, profile: a config profile's keys as the defaults of the flags with the same names, where
each value came from (a flag typed on the command line wins, and a conflict names both sides), and
the rehearsal rule: ``--sandbox`` never touches a profile's state, log, report folder or webhook.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import config_path, load_profile
from ..errors import UsageError

SANDBOX_DIR = Path("bulk_sync-sandbox")  # a rehearsal's outputs, in the working directory
# what a rehearsal leaves alone when a profile sets it (and the command line does not)
_PRODUCTION = ("state", "log_file", "report_dir", "notify_url")


@dataclass(frozen=True)
class Origin:
    """Where a run's settings came from: the config file, the profile, and which flags it set."""

    config: Path | None = None
    profile: str | None = None
    keys: frozenset[str] = frozenset()  # dests whose value is the profile's (not typed)
    typed: frozenset[str] = frozenset()  # dests typed on the command line

    @property
    def profile_used(self) -> bool:
        return self.config is not None and (self.profile is not None or bool(self.keys))

    def of(self, dest: str) -> str:
        if dest not in self.keys:
            return "the command line"
        return f"the profile {self.profile or 'default'!r} of {self.config}"


def profile_defaults(argv: list[str]) -> tuple[Path | None, str | None, dict[str, Any]]:
    """The config file and profile named by --config/--profile (or the default ones), and the
    profile's settings."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--profile")
    known, _ = pre.parse_known_args(argv)
    path = config_path(known.config, os.environ)
    return path, known.profile, load_profile(path, known.profile)


def origin(
    parser: argparse.ArgumentParser,
    argv: list[str],
    config: Path | None,
    profile: str | None,
    settings: dict[str, Any],
) -> Origin:
    """Which of the profile's ``settings`` a run took: those whose flag was not typed."""
    typed = set()
    for action in parser._actions:
        for opt in action.option_strings:
            if any(a == opt or a.startswith(opt + "=") for a in argv):
                typed.add(action.dest)
    return Origin(config, profile, frozenset(set(settings) - typed), frozenset(typed))


def rehearse(args: argparse.Namespace, where: Origin, *, reports: bool = True) -> list[str]:
    """With --sandbox: the profile's production settings set aside (its base URL, state, log,
    report folder, summary and webhook; the outputs go to ./bulk_sync-sandbox/). A rehearsal of a
    job (a profile's, or --job) keeps its state and the sandbox's records in that folder, so that
    the next rehearsal finds what this one sent, as the job will in production (unchanged rows
    skipped, the drift hold, the mirror). Returns what to tell the user. A --base-url typed beside
    --sandbox is an error naming both. ``reports``: say where the reports go (a watcher's go to
    its inbox)."""
    if not getattr(args, "sandbox", False):
        return []
    if getattr(args, "base_url", None):
        if "base_url" not in where.keys:
            raise UsageError("--sandbox and --base-url exclude each other (both given on the command line)")
        args.base_url = None
    moved = [k for k in _PRODUCTION if k in where.keys and getattr(args, k, None) is not None]
    if where.profile_used and "report_dir" not in where.typed | set(moved) and hasattr(args, "report_dir"):
        args.report_dir = str(SANDBOX_DIR / "reports")  # the default folder too: a rehearsal's reports apart
        moved.append("report_dir")
    job = getattr(args, "command", "run") == "run" and (
        where.profile_used or bool(getattr(args, "job", None))
    )
    if job:
        args.sandbox_keep = str(SANDBOX_DIR.resolve())  # (a watcher's children: wherever they start)
    for key in moved:
        if key == "notify_url":
            args.notify_url = None
        elif key == "state":
            args.state = str(SANDBOX_DIR.resolve() / "state.sqlite3") if job else None
        elif key == "report_dir":
            args.report_dir = str(SANDBOX_DIR / "reports")
        else:
            setattr(args, key, str(SANDBOX_DIR / Path(getattr(args, key)).name))
    aside = [k for k in ("base_url", *moved) if k in where.keys]
    if not job:
        return []
    name = (
        f"the profile {where.profile or 'default'!r} ({where.config})"
        if where.profile_used
        else f"the job {args.job!r}"
    )
    return [
        f"sandbox rehearsal with {name}: "
        + (f"set aside its {', '.join(aside)}; " if aside else "")
        + (f"reports go to {SANDBOX_DIR}/reports/; " if reports else "")
        + "the sandbox's records and this rehearsal's state are "
        f"kept in {SANDBOX_DIR}/ for the next rehearsal (remove it to start afresh); no webhook is posted"
    ]
