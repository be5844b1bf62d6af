"""CLI: flags -> the job's objects (bulk_sync.Sync), progress bar, printed summary, exit codes.
Nothing imports this module.

Exit codes: 0 every row synced (or valid, for `validate`); 1 the run finished but some rows did
not sync; 2 could not start (bad flags, mapping or file; nothing sent); 3 aborted mid-run (the
token was refused, a signal).

The parts, one way (each imports only those listed before it):

    epilogs    the examples under each command's --help
    progress   the progress bar, the printed summary, messages on stderr; the CLI's logger
    values     the types that check a flag's value
    profile    the config profile as flag defaults; a --sandbox rehearsal sets it aside
    tools      the flags of watch, init-mapping, sandbox, delete
    parser     argparse with "did you mean"
    process    what the CLI reads from the environment and sets in its process for a run
    args       the flags of every command (build_parser) and their types
    delete     delete by externalId; the state forgets each id as SIRO confirms it
    streams    standard input and pipes, read once into a temporary file
    outputs    a job's events on the terminal: the bar, the problems `validate` lists
    run        run / retry / validate: flags -> bulk_sync.Sync, its result printed, the exit code
    commands   watch, init-mapping, sandbox
    scratch    each run's own temporary folder; the folders of killed runs removed at the next start
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..errors import EXIT_ABORTED, EXIT_CONFIG, EXIT_ROWS_FAILED, BulkSyncError, ConfigError
from ..settings import TOKEN_ENV, token_file_warning
from ..signals import hold, release
from .args import build_parser
from .commands import init_mapping_command, sandbox_command, serve_command, watch_command
from .profile import origin, profile_defaults, rehearse
from .progress import err
from .run import finish, run_command
from .scratch import run_folder


def main(argv: Sequence[str] | None = None) -> int:
    hold()  # (again: `bulk-sync` comes here first) a signal is noted; a run acts on it (see signals)
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        release(deliver=False)  # a signal held after the run has decided its exit code changes nothing


_HOLDING = {"run", "validate", "retry"}  # commands that act on a held signal; the others as before


def _main(argv: list[str]) -> int:
    from ..watch import PARENT_ENV, die_with_parent

    die_with_parent(os.environ.get(PARENT_ENV))  # a run started by `watch` ends with it
    parser = build_parser()
    try:
        cfg, profile_name, profile = profile_defaults(argv)
    except BulkSyncError as exc:
        err(f"error: {exc}")
        return exc.exit_code
    for sp in _subparsers(parser).values():
        dests = {a.dest for a in sp._actions}
        sp.set_defaults(**{k: v for k, v in profile.items() if k in dests})
    args = parser.parse_args(argv)
    if args.command not in _HOLDING:
        release(deliver=True)  # they handle signals their own way (a sandbox stops on Ctrl-C)
    args.token_env = profile.get("token_env", TOKEN_ENV)
    args.profile_keys = frozenset(profile)  # the flags whose default the profile gave
    chosen = _subparsers(parser).get(args.command, parser)
    args.origin = origin(chosen, argv, cfg, profile_name, profile)
    if getattr(args, "token_file", None) and (warning := token_file_warning(args.token_file)):
        err(warning)
    try:
        for line in rehearse(args, args.origin):
            if not getattr(args, "quiet", False):
                print(line, flush=True)
    except BulkSyncError as exc:
        err(f"error: {exc}")
        return exc.exit_code
    try:
        if args.command == "completion":
            import shtab

            print(shtab.complete(parser, args.shell))
            return 0
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
        with run_folder():  # this run's temporary files; those of killed runs removed first
            return run_command(args)
    except BulkSyncError as exc:
        err(f"error: {exc}")
        if _could_not_start(exc):
            finish(args, exc.exit_code, str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_ABORTED
    except BrokenPipeError:  # e.g. `bulk-sync validate ... --show 5 | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return EXIT_ROWS_FAILED


def _could_not_start(exc: BulkSyncError) -> bool:
    """An error before the job started (the job writes the summary JSON of its own)."""
    return (exc.exit_code == EXIT_CONFIG or isinstance(exc, ConfigError)) and not getattr(
        exc, "outcome_written", False
    )


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}
