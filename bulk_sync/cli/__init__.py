"""CLI: flags -> settings, progress bar, printed summary, exit codes. Nothing imports this module.

Exit codes: 0 every row synced (or valid, for `validate`); 1 the run finished but some rows did
not sync; 2 could not start (bad flags, mapping or file; nothing sent); 3 aborted mid-run (the
token was refused, a signal).

The parts, one way (each imports only those listed before it):

    epilogs    the examples under each command's --help
    args       the flags of every command (build_parser) and their types
    progress   the progress bar, the printed summary, messages on stderr; the CLI's logger
    sending    flags -> where and how to send (base URL check, token, the sandbox with --sandbox)
    run        run / retry / validate: plan, execute, report and error files, exit code
    commands   watch, init-mapping, sandbox
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from ..config import config_path, load_profile
from ..errors import EXIT_ABORTED, EXIT_CONFIG, EXIT_ROWS_FAILED, BulkSyncError, ConfigError
from ..settings import TOKEN_ENV, token_file_warning
from .args import build_parser
from .commands import init_mapping_command, sandbox_command, serve_command, watch_command
from .progress import err
from .run import finish, run_command


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from ..watch import die_with_parent

    die_with_parent()  # a run started by `watch` ends with it
    parser = build_parser()
    try:
        profile = _profile_defaults(argv)
    except BulkSyncError as exc:
        err(f"error: {exc}")
        return exc.exit_code
    for sp in _subparsers(parser).values():
        dests = {a.dest for a in sp._actions}
        sp.set_defaults(**{k: v for k, v in profile.items() if k in dests})
    args = parser.parse_args(argv)
    args.token_env = profile.get("token_env", TOKEN_ENV)
    if getattr(args, "token_file", None) and (warning := token_file_warning(args.token_file)):
        err(warning)
    try:
        if args.command == "sandbox":
            return sandbox_command(args)
        if args.command == "watch":
            return watch_command(args)
        if args.command == "init-mapping":
            return init_mapping_command(args)
        if args.command == "serve":
            return serve_command(args)
        if args.command == "delete":
            from .delete import delete_command

            return delete_command(args)
        return run_command(args)
    except BulkSyncError as exc:
        err(f"error: {exc}")
        if exc.exit_code == EXIT_CONFIG or isinstance(exc, ConfigError):
            finish(args, exc.exit_code, None, [], error=str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        err("interrupted")
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
